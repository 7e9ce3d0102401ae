"""Reading a run for inference: the EMA generator alone, equal to the whole state's."""

import jax
import numpy as np
import pytest
import sinsr as sinsr_config  # configs/sinsr.py (conftest puts configs/ on sys.path)

from sinsr_jax.training import checkpointing, parallel, runs, train


@pytest.mark.slow
def test_load_reads_only_the_ema_generator_and_equals_the_whole_state(trained_tiny_run,
                                                                      monkeypatch):
  config = runs.read_config(str(trained_tiny_run))
  mesh = parallel.make_mesh(jax.local_devices()[:1])
  template = train.initial_state(config, *train.build_models(config),
                                 *train.build_optimizers(config.optim), mesh)
  manager = checkpointing.make_manager(str(trained_tiny_run), None, read_only=True)
  try:
    whole = checkpointing.restore_latest(manager, template, read_only=True)
  finally:
    manager.close()

  def refuse(*_, **__):
    raise AssertionError("runs.load built the training state")

  # Nothing but the generator is built: no discriminator, no optimiser, no train state.
  monkeypatch.setattr(train, "build_models", refuse)
  monkeypatch.setattr(train, "build_optimizers", refuse)
  monkeypatch.setattr(train, "initial_state", refuse)
  run = runs.load(str(trained_tiny_run))
  assert run.step == int(whole.step)
  for got, want in zip(jax.tree.leaves(run.params), jax.tree.leaves(whole.ema_params),
                       strict=True):
    np.testing.assert_array_equal(got, np.asarray(want))
  for got, want in zip(jax.tree.leaves(run.model_state), jax.tree.leaves(whole.g_state),
                       strict=True):
    np.testing.assert_array_equal(got, np.asarray(want))
  assert jax.tree.structure(run.params) == jax.tree.structure(whole.ema_params)


def test_a_run_without_checkpoints_is_one_clear_error(tmp_path):
  from sinsr_jax.errors import UserError

  with pytest.raises(UserError, match="config.json"):
    runs.load(str(tmp_path))


def _folder_with_checkpoints(tmp_path, config):
  workdir = tmp_path / "run"
  (workdir / "checkpoints" / "40").mkdir(parents=True)
  (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
  return str(workdir)


@pytest.mark.parametrize("change, named", [
    (lambda c: setattr(c, "seed", 1), "seed: 0 there, 1 here"),
    (lambda c: setattr(c.loss.weights, "ssim", (0.0,)), "loss.weights.ssim"),
    (lambda c: setattr(c.train, "pretrain_steps", 3), "train.pretrain_steps"),
    (lambda c: setattr(c.model, "width", 16), "model.width: 32 there, 16 here"),
])
def test_resuming_with_another_config_is_refused(tmp_path, change, named):
  from sinsr_jax.errors import UserError

  config = sinsr_config.get_config("quick")
  workdir = _folder_with_checkpoints(tmp_path, config)
  other = sinsr_config.get_config("quick")
  change(other)
  with pytest.raises(UserError, match="holds checkpoints of another run.*" + named.replace(
      "(", r"\(").replace(")", r"\)")):
    train.check_same_run(other, workdir)


def test_resuming_with_more_steps_or_another_layout_is_allowed(tmp_path):
  config = sinsr_config.get_config("quick")
  workdir = _folder_with_checkpoints(tmp_path, config)
  longer = sinsr_config.get_config("quick")
  longer.train.num_steps, longer.train.eval_every = 4000, 100
  longer.model.scan, longer.data.num_workers = True, 0
  train.check_same_run(longer, workdir)  # no error
