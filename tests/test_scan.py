"""Scanned repeated blocks (model.scan): the same function as unrolled, and checkpoints of either
layout restoring into the other."""

import json
import pathlib
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from conftest import REPO, tiny_config
from sinsr_jax import models
from sinsr_jax.models import layout
from sinsr_jax.training import checkpointing, runs, train
from sinsr_jax.training.steps import apply_model, split_variables

TINY = {  # widths of a few channels; depths that make every scan hold several blocks
    "sinsr": dict(stem_width=4, width=4, num_rrdb=2, growth=2, gradient_branch=True),
    "esrgan": dict(width=4, num_blocks=3, growth=2),
    "spsr": dict(width=4, num_blocks=5, growth=2, tap_every=2),  # segments 0-1, 2-3, 4
    "vdsr": dict(width=8, depth=5),
    "srresnet": dict(width=8, num_blocks=3),
    "swinir": dict(embed_dim=4, depths=(3,), heads=2, window=4),  # 12 px > window: shifted
}
SCANNED = {"sinsr": "full.RRDB_scan0", "esrgan": "rrdb_scan0", "spsr": "rrdb_scan2",
           "vdsr": "conv_scan1", "srresnet": "block_scan0", "swinir": "rstb_0.layer_scan0"}


def _pair(name, **extra):
  make = lambda scan: models.create_generator(name, scale=4, channels=1, scan=scan,  # noqa: E731
                                              **TINY[name], **extra)
  return make(False), make(True)


def _lr(seed=0, size=12):
  return jnp.asarray(np.random.default_rng(seed).random((2, size, size, 1)), jnp.float32)


def _max_difference(a, b) -> float:
  return max(float(jnp.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                                          strict=True))


@pytest.mark.parametrize("name", sorted(TINY))
def test_scanned_and_unrolled_forms_agree_on_the_same_weights(name):
  unrolled, scanned = _pair(name)
  lr = _lr()
  params, state = split_variables(jax.jit(unrolled.init)(jax.random.PRNGKey(0), lr))
  abstract = jax.eval_shape(scanned.init, jax.random.PRNGKey(0), lr)
  s_params, s_state = split_variables(layout.to_layout({"params": params, **state}, abstract))
  assert SCANNED[name] in checkpointing.shapes(s_params) or any(
      k.startswith(SCANNED[name] + ".") for k in checkpointing.shapes(s_params))
  assert not layout.same_layout(params, s_params)
  # Parameter counts do not depend on the layout (test_zoo compares them to the papers').
  assert sum(x.size for x in jax.tree.leaves(params)) == \
      sum(x.size for x in jax.tree.leaves(s_params))
  for train_mode in (False, True) if state else (False,):  # batch statistics: updated in scan
    apply = lambda m, t=train_mode: jax.jit(  # noqa: E731
        lambda p, s, x: apply_model(m, p, s, x, train=t))
    out_u, new_u = apply(unrolled)(params, state, lr)
    out_s, new_s = apply(scanned)(s_params, s_state, lr)
    assert _max_difference(out_u, out_s) < 1e-5
    if new_u:
      assert _max_difference(layout.to_layout(new_s, new_u), new_u) < 1e-5


def test_remat_changes_neither_outputs_nor_gradients():
  _, scanned = _pair("vdsr")
  remat = models.create_generator("vdsr", scale=4, channels=1, scan=True, remat=True,
                                  **TINY["vdsr"])
  lr = _lr(1)
  params = jax.jit(scanned.init)(jax.random.PRNGKey(0), lr)["params"]
  grad = lambda m: jax.jit(jax.grad(  # noqa: E731
      lambda p: jnp.mean(m.apply({"params": p}, lr) ** 2)))
  assert _max_difference(grad(scanned)(params), grad(remat)(params)) < 1e-6


def test_layout_converts_a_train_state_both_ways():
  """Params, Adam's moments and EMA weights convert alike, and back to the same values."""
  unrolled, scanned = _pair("srresnet")
  lr = _lr()
  params_u = jax.jit(unrolled.init)(jax.random.PRNGKey(0), lr)
  tx = optax.adam(1e-3)
  opt_u = tx.init(params_u["params"])
  opt_u = jax.tree.map(lambda x: x + 0.5 if x.dtype == jnp.float32 else x, opt_u)
  state_u = {"params": params_u, "opt": opt_u}
  params_s = jax.eval_shape(scanned.init, jax.random.PRNGKey(0), lr)
  template_s = {"params": params_s, "opt": jax.eval_shape(tx.init, params_s["params"])}
  state_s = layout.to_layout(state_u, template_s)
  np.testing.assert_array_equal(  # block 1's conv, unrolled and as row 1 of the scanned stack
      state_s["opt"][0].mu["block_scan0"]["conv_0"]["kernel"][1],
      state_u["opt"][0].mu["block_1_conv_0"]["kernel"])
  np.testing.assert_array_equal(state_s["params"]["batch_stats"]["block_scan0"]["bn_1"]["var"][2],
                                state_u["params"]["batch_stats"]["block_2_bn_1"]["var"])
  back = layout.to_layout(state_s, state_u)
  assert jax.tree.structure(back) == jax.tree.structure(state_u)
  assert _max_difference(back, state_u) == 0.0
  shapes_only = layout.to_layout(jax.eval_shape(lambda: state_u), template_s)  # orbax metadata
  assert checkpointing.shapes(shapes_only) == checkpointing.shapes(template_s)


def test_layout_refuses_another_model_naming_the_parameter():
  _, scanned = _pair("esrgan")
  wider = models.create_generator("esrgan", scale=4, channels=1, scan=False,
                                  **{**TINY["esrgan"], "width": 8})
  lr = _lr()
  with pytest.raises(layout.LayoutError, match=r"params\..* has shape \(8,\), the template \(4,\)"):
    layout.to_layout(jax.eval_shape(wider.init, jax.random.PRNGKey(0), lr),
                     jax.eval_shape(scanned.init, jax.random.PRNGKey(0), lr))
  deeper = models.create_generator("esrgan", scale=4, channels=1, scan=False,
                                   **{**TINY["esrgan"], "num_blocks": 4})
  with pytest.raises(layout.LayoutError, match=r"rrdb_3\..* has no place"):
    layout.to_layout(jax.eval_shape(deeper.init, jax.random.PRNGKey(0), lr),
                     jax.eval_shape(scanned.init, jax.random.PRNGKey(0), lr))


def _config_files():
  return sorted(str(p.relative_to(REPO)) for p in (REPO / "configs").rglob("*.py")
                if p.name not in ("ablations.py", "baseline_recipes.py"))


@pytest.mark.parametrize("config_file", _config_files())
def test_every_config_has_the_layout_switches(config_file):
  import importlib.util

  spec = importlib.util.spec_from_file_location("config_under_test", REPO / config_file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for arg in (None, "quick"):
    config = module.get_config(arg)
    assert config.model.scan is False and config.model.remat is False
    for scan in (True, False):  # models without repeated blocks ignore the switches
      models.create_generator(config.model.name, scale=4, channels=1,
                              **{k: v for k, v in config.model.items()
                                 if k not in ("name", "channels", "scan")}, scan=scan)


@pytest.mark.slow
def test_a_run_of_the_unrolled_layout_loads_evaluates_and_resumes_scanned(tiny_data_dir, tmp_path):
  """A run trained unrolled (as every run before model.scan), read back with scanning on:
  the generator-only load, evaluation and a resumed training all convert its checkpoint."""
  run = tmp_path / "run"
  # Pixel-loss steps only: the discriminator has no repeated blocks, and its GAN step would be
  # compiled twice more (unrolled and scanned) for nothing the layouts change.
  config = tiny_config(tiny_data_dir, num_steps=3, pretrain_steps=4, eval_every=3,
                       checkpoint_every=3)
  # CBAM off halves each compile; its layout is covered by the equality tests above.
  config.model.update(num_rrdb=2, scan=False, attention="none")
  train.train_and_evaluate(config, str(run))
  unrolled = runs.load(str(run))
  assert "full.RRDB_1.ResidualDenseBlock_2.Conv_4.kernel" in checkpointing.shapes(
      unrolled.params)

  saved = json.loads((run / "config.json").read_text())
  for key in models.LAYOUT_OPTIONS:  # a config.json from before the switches existed
    del saved["model"][key]
  (run / "config.json").write_text(json.dumps(saved))
  scanned = runs.load(str(run))
  assert scanned.step == 3
  key = "ResidualDenseBlock_2.Conv_4.kernel"
  assert checkpointing.shapes(scanned.params)[f"full.RRDB_scan0.{key}"] == \
      (2, *checkpointing.shapes(unrolled.params)[f"full.RRDB_1.{key}"])
  lr = _lr(3, 8)
  assert _max_difference(unrolled.sr_fn()(lr), scanned.sr_fn()(lr)) < 1e-5

  template = {"ema_params": scanned.params, "g_state": scanned.model_state}
  manager = checkpointing.make_manager(str(run), None, read_only=True)
  try:
    part = checkpointing.restore_part(manager, 3, template)
  finally:
    manager.close()
  assert _max_difference(part["ema_params"], scanned.params) == 0.0

  config.model.scan = True
  metrics = train.evaluate(config, str(run))
  assert np.isfinite(metrics["psnr_db"])
  config.train.num_steps = 4
  train.train_and_evaluate(config, str(run))  # resumes at step 3: Adam's moments converted
  resumed = runs.load(str(run))
  assert resumed.step == 4
  assert 0 < _max_difference(resumed.params, scanned.params) < 0.05  # one small step on

  copy = pathlib.Path(shutil.copytree(run, tmp_path / "back"))
  saved["model"]["scan"] = False  # and the scanned checkpoint read back unrolled
  (copy / "config.json").write_text(json.dumps(saved))
  assert _max_difference(runs.load(str(copy)).sr_fn()(lr), resumed.sr_fn()(lr)) < 1e-5
