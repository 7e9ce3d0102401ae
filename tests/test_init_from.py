"""Fine-tuning from a run: --config.train.init_from starts from its EMA generator."""

import jax
import numpy as np
import pytest

from conftest import tiny_config
from sinsr_jax.errors import UserError
from sinsr_jax.training import init_from, parallel, runs, train


def _fresh_state(config):
  mesh = parallel.make_mesh()
  return train.initial_state(config, *train.build_models(config),
                             *train.build_optimizers(config.optim), mesh), (
      lambda c: train.initial_state(c, *train.build_models(c), *train.build_optimizers(c.optim),
                                    mesh))


@pytest.mark.slow
def test_init_from_starts_at_the_source_ema_with_everything_else_fresh(trained_tiny_run,
                                                                       tiny_data_dir):
  source = runs.load(str(trained_tiny_run))
  config = tiny_config(tiny_data_dir)
  fresh, build = _fresh_state(config)
  state = init_from.initialize(fresh, str(trained_tiny_run), build)
  assert int(state.step) == 0
  for got, ema in zip(jax.tree.leaves(state.g_params), jax.tree.leaves(source.params),
                      strict=True):
    np.testing.assert_array_equal(np.asarray(got), ema)
  for got, ema in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(source.params),
                      strict=True):
    np.testing.assert_array_equal(np.asarray(got), ema)
  for got, new in zip(jax.tree.leaves(state.g_opt_state), jax.tree.leaves(fresh.g_opt_state),
                      strict=True):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(new))  # Adam moments: fresh
  np.testing.assert_array_equal(np.asarray(state.rng), np.asarray(fresh.rng))


@pytest.mark.slow
def test_init_from_refuses_another_architecture_naming_the_parameter(trained_tiny_run,
                                                                     tiny_data_dir, ledger):
  ledger.tried("init_from: another width, not a run", 2)
  config = tiny_config(tiny_data_dir)
  config.model.width = 16
  fresh, build = _fresh_state(config)
  with pytest.raises(UserError, match=r"init_from=.*: its generator holds "
                     r"down_up\.RRDB_0\..* of shape .*, this config builds"):
    init_from.initialize(fresh, str(trained_tiny_run), build)
  with pytest.raises(UserError, match="init_from=/nowhere: run folder /nowhere not found"):
    init_from.initialize(fresh, "/nowhere", build)


@pytest.mark.slow
def test_training_with_init_from_moves_off_the_source_by_one_adam_step(trained_tiny_run,
                                                                       tiny_data_dir, tmp_path):
  source = runs.load(str(trained_tiny_run))
  config = tiny_config(tiny_data_dir, num_steps=1, pretrain_steps=1, eval_every=1,
                       checkpoint_every=1, init_from=str(trained_tiny_run))
  train.train_and_evaluate(config, str(tmp_path / "tuned"))
  tuned = runs.load(str(tmp_path / "tuned"))
  assert tuned.step == 1
  # One Adam step moves each weight by about the learning rate; a fresh init is far away.
  shift = max(float(np.abs(a - b).max()) for a, b in zip(
      jax.tree.leaves(tuned.params), jax.tree.leaves(source.params), strict=True))
  assert shift <= 2 * config.optim.g_lr
