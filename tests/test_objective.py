"""The convex combination: weight checks, the linear schedule, what the steps log, ablations."""

import json
import math

import jax
import numpy as np
import pytest

from conftest import tiny_config
from sinsr_jax import losses
from sinsr_jax.errors import ConfigError
from sinsr_jax.losses import objective
from sinsr_jax.training import parallel, train


@pytest.mark.parametrize("weights,fragment", [
    ({"ssim": (-1.0,)}, "loss.weights.ssim must be non-negative"),
    ({"ssim": (1.0, -0.5)}, "loss.weights.ssim must be non-negative"),
    ({"ssim": (float("nan"),)}, "loss.weights.ssim must be non-negative"),
    ({"ssim": (float("inf"),)}, "loss.weights.ssim must be non-negative"),
    ({"ssim": (1.0, 2.0, 3.0)}, "(value,) or (start, end)"),
    ({"ssim": (0.0,), "tv": (0.0, 0.0)}, "all zero"),
    ({"ssim": (1.0, 0.0), "tv": (0.0,)}, "all reach 0 at the schedule's end"),
])
def test_weights_outside_the_simplex_cone_are_rejected(weights, fragment, ledger):
  ledger.tried("config")
  with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
    losses.check_weights(weights)


def test_scheduled_weights_move_linearly_and_normalise_to_one():
  weights = losses.check_weights({"adversarial": (100.0, 60.0), "ssim": (300.0, 350.0),
                                  "tv": 2.0})
  assert weights["tv"] == (2.0, 2.0)
  for progress, expected in ((0.0, (100, 300, 2)), (0.5, (80, 325, 2)), (1.0, (60, 350, 2)),
                             (-1.0, (100, 300, 2)), (7.0, (60, 350, 2))):  # clipped outside
    raw = losses.scheduled_weights(weights, progress)
    np.testing.assert_allclose([raw["adversarial"], raw["ssim"], raw["tv"]], expected)
    terms = {"adversarial": 0.7, "ssim": 0.2, "tv": 0.05}
    total, normalised = losses.convex_combination(terms, raw)
    assert sum(float(w) for w in normalised.values()) == pytest.approx(1.0)
    reference = sum(w * terms[k] for k, w in zip(terms, expected, strict=True)) / sum(expected)
    assert float(total) == pytest.approx(reference, rel=1e-6)


def test_convex_combination_leaves_out_absent_terms():
  raw = {"pixel": 1.0, "gradient_branch": 3.0}  # a model without a branch has no such term
  total, normalised = losses.convex_combination({"pixel": 0.5}, raw)
  assert float(total) == pytest.approx(0.5) and float(normalised["pixel"]) == 1.0


def test_sinsr_default_weights_are_the_originals():
  import sinsr

  w = objective.raw_weights(sinsr.get_config().loss)
  on = {k: v for k, v in w.items() if max(v) > 0}
  assert on == {"adversarial": (100, 60), "perceptual": (2, 1.5), "gradient": (500, 350),
                "second_order": (150, 100), "ssim": (300, 350), "auxiliary": (500, 800),
                "gradient_branch": (250, 250)}
  fixed = sinsr.get_config()
  fixed.loss.schedule = "fixed"
  assert objective.raw_weights(fixed.loss)["adversarial"] == (100.0, 100.0)


def _steps(config, mesh):
  state, pretrain, gan = train.setup_steps(config, mesh)
  return state, (pretrain, gan)


def _batches(n, batch=4):
  rng = np.random.default_rng(0)
  return [{"hr": rng.random((batch, 32, 32, 1), np.float32),
           "lr": rng.random((batch, 8, 8, 1), np.float32)} for _ in range(n)]


@pytest.mark.slow
def test_gan_steps_log_every_term_and_train_the_gradient_map_discriminator(tmp_path):
  """Every term and its scheduled weight is logged; the gradient-map discriminator trains beside
  the image discriminator (one run: each GAN step of the tiny model compiles for half a minute)."""
  config = tiny_config(str(tmp_path), num_steps=3, pretrain_steps=1)
  config.loss.weights.tv = (10.0, 0.0)  # a term scheduled down to 0 stays in, weight 0 at the end
  config.loss.weights.gradient_adversarial = (50.0,)
  mesh = parallel.make_mesh(jax.devices()[:1])
  state, (pretrain, gan) = _steps(config, mesh)
  assert set(state.d_params) == {"image", "gradient"}
  before = jax.device_get(state.d_params)
  logged = []
  for i, batch in enumerate(_batches(3)):
    state, metrics = (pretrain if i == 0 else gan)(state, parallel.shard_batch(batch, mesh))
    logged.append(jax.device_get(metrics))
  assert set(logged[0]) == {"g_loss", "loss/pixel", "weight/pixel", "nonfinite"}
  assert all(m["nonfinite"] == 0.0 for m in logged)  # finite updates, none skipped
  raw = objective.raw_weights(config.loss)
  expected_terms = {"adversarial", "gradient", "second_order", "ssim", "auxiliary", "tv",
                    "gradient_adversarial"}
  for metrics, progress in ((logged[1], 0.0), (logged[2], 1.0)):  # GAN steps 2 and 3 of 3
    assert {k[5:] for k in metrics if k.startswith("loss/")} == expected_terms
    at = {k: s + (e - s) * progress for k, (s, e) in raw.items() if k in expected_terms}
    for term in expected_terms:
      assert metrics[f"weight/{term}"] == pytest.approx(at[term] / sum(at.values()), rel=1e-5)
      assert math.isfinite(metrics[f"loss/{term}"]) and metrics[f"loss/{term}"] >= 0
    total = sum(metrics[f"weight/{k}"] * metrics[f"loss/{k}"] for k in expected_terms)
    assert metrics["g_loss"] == pytest.approx(total, rel=1e-5)
    for key in ("d_loss", "d_loss_gradient", "d_accuracy_gradient"):
      assert key in metrics and math.isfinite(metrics[key]), key
  assert logged[2]["weight/tv"] == 0.0 < logged[1]["weight/tv"]
  after = jax.device_get(state.d_params)
  for name in ("image", "gradient"):
    moved = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(before[name]),
                                                  jax.tree.leaves(after[name]), strict=True)]
    assert all(moved), name


def test_unknown_choices_are_config_errors(tmp_path, ledger):
  ledger.tried("config")
  config = tiny_config(str(tmp_path))
  config.loss.schedule = "cosine"
  with pytest.raises(ConfigError, match="loss.schedule='cosine' is not one of linear, fixed"):
    objective.build(config)
  config = tiny_config(str(tmp_path))
  config.loss.vgg.layers = ("relu5_5",)
  with pytest.raises(ConfigError, match="vgg19 has no layer relu5_5"):
    objective.build(config)
  config = tiny_config(str(tmp_path))
  config.loss.vgg.layer_weights = (1.0, 2.0)
  with pytest.raises(ConfigError, match="one per layer"):
    objective.build(config)
  config = tiny_config(str(tmp_path))
  for term in config.loss.weights:
    config.loss.weights[term] = (0.0,)
  config.loss.weights.gradient_branch = (1.0,)
  with pytest.raises(ConfigError, match="only gradient_branch, vae_reconstruction, kl"):
    objective.build(config)
  config = tiny_config(str(tmp_path))
  config.loss.pretrain_weights.pixel = 0.0
  with pytest.raises(ConfigError, match="pretrain_weights.pixel must be positive"):
    objective.build(config)


def test_ablation_grid_is_sinsr_with_one_change_each():
  import ablations
  import sinsr

  base = sinsr.get_config().to_dict()
  assert set(ablations.ABLATIONS) == {"full", "gradient_branch", "fixed_weights",
                                      *(f"no_{t}" for t in ablations.TERMS)}
  for name in ablations.ABLATIONS:
    config = ablations.get_config(name)
    assert config.ablation == name
    changed = {f"{g}.{k}" for g, group in base.items() if isinstance(group, dict)
               for k in _diff(group, config[g].to_dict())}
    assert len(changed) == (0 if name == "full" else 1), (name, changed)
    if name.startswith("no_"):
      term = name[3:]
      assert max(objective.raw_weights(config.loss)[term]) == 0
      assert max(objective.raw_weights(sinsr.get_config().loss)[term]) > 0
    quick = ablations.get_config(f"{name},quick")  # combines with SINSR's variants
    assert quick.train.num_steps == sinsr.get_config("quick").train.num_steps
  assert ablations.get_config("fixed_weights").loss.schedule == "fixed"
  assert ablations.get_config("gradient_branch").model.gradient_branch
  with pytest.raises(ValueError, match="name one ablation"):
    ablations.get_config("quick")
  commands = ablations.commands("quick")
  assert len(commands) == len(ablations.ABLATIONS)
  assert "--config=configs/ablations.py:no_ssim,quick" in "\n".join(commands)


def _diff(a: dict, b: dict, prefix: str = ""):
  for k in a:
    if isinstance(a[k], dict):
      yield from _diff(a[k], b[k], f"{prefix}{k}.")
    elif a[k] != b[k]:
      yield f"{prefix}{k}"


@pytest.mark.slow
def test_ablation_runs_from_the_command_line(tiny_data_dir, tmp_path):
  from test_cli import _main, _tiny_flags

  flags = [f.replace("configs/sinsr.py:quick", "configs/ablations.py:no_ssim,quick")
           for f in _tiny_flags(tiny_data_dir)]
  # Pixel-loss steps only: the run is the plain tiny run's program (a compile-cache hit); what
  # the ablation changes in the GAN step is the objective's, tested above.
  result = _main(*flags, "--config.train.pretrain_steps=2", f"--workdir={tmp_path}")
  assert result.returncode == 0, result.stderr[-3000:]
  config = json.loads((tmp_path / "config.json").read_text())
  assert config["ablation"] == "no_ssim" and config["loss"]["weights"]["ssim"] == [0.0]


def _test_made_vgg19(path, widths=(4, 8, 8, 8, 8)):
  """A narrow VGG19 with random weights, as `python -m sinsr_jax.weights convert` writes it."""
  import jax.numpy as jnp

  from sinsr_jax import weights
  from sinsr_jax.models import vgg

  module = vgg.Features(arch="vgg19", outputs=("relu5_4",), widths=widths)
  params = jax.device_get(module.init(jax.random.PRNGKey(3), jnp.zeros((1, 32, 32, 3))))["params"]
  weights.write_checkpoint(str(path), params, {"arch": "vgg19", "preprocessing": "torch",
                                                "source_file": "test-made", "source_sha256": ""})
  return str(path)


@pytest.mark.slow
def test_full_sinsr_loss_trains_through_the_gan_phase_with_a_weights_file(tiny_data_dir,
                                                                          tmp_path):
  from test_cli import _main, _tiny_flags

  vgg_file = _test_made_vgg19(tmp_path / "vgg19.msgpack")
  result = _main(*_tiny_flags(tiny_data_dir), "--config.train.num_steps=3",
                 "--config.loss.weights.perceptual=2.0,1.5", "--config.loss.weights.tv=0.01",
                 "--config.loss.gan_kind=hinge", "--config.loss.pixel_kind=charbonnier",
                 f"--config.loss.vgg.weights={vgg_file}", f"--workdir={tmp_path / 'run'}")
  assert result.returncode == 0, result.stderr[-3000:]
  log = (tmp_path / "run" / "log.txt").read_text()  # the whole log; the console shows progress
  assert "Perceptual term: vgg19" in log
  logged = [line for line in log.splitlines() if "] [3] " in line and "g_loss" in line]
  assert logged, log[-3000:]
  for term in ("adversarial", "perceptual", "gradient", "second_order", "tv", "ssim",
               "auxiliary"):
    assert f"loss/{term}=" in logged[0] and f"weight/{term}=" in logged[0], term
  assert "SR PSNR" in result.stdout


def test_missing_vgg_weights_stop_the_run_before_any_work(tmp_path, ledger):
  ledger.tried("weights file")
  from test_cli import _assert_one_clear_error, _main

  data_dir = tmp_path / "never_prepared"
  result = _main("--config=configs/sinsr.py", "--config.data.builder_config=tiny",
                 f"--config.data.data_dir={data_dir}", "--config.loss.vgg.download=False",
                 f"--workdir={tmp_path / 'run'}", env={"SINSR_WEIGHTS_DIR": str(tmp_path / "w")})
  _assert_one_clear_error(result, 1, "VGG19 weights not found",
                          "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
                          str(tmp_path / "w"), "loss.vgg.weights")
  assert not data_dir.exists()  # stopped before preparing data or compiling anything
