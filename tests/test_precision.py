"""Mixed precision: bf16 activations, f32 parameters, optimizer state and losses."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import tiny_config
from sinsr_jax import models
from sinsr_jax.training import parallel, precision, train


def test_bf16_forward_is_close_to_f32_and_returns_f32():
  g = models.create_generator("sinsr", scale=4, channels=1, stem_width=8, width=8, num_rrdb=1,
                              growth=4)
  lr = jnp.asarray(np.random.default_rng(0).random((2, 12, 12, 1), np.float32))
  # Each compiled as one program (op by op, every operation compiles apart: most of the time).
  variables = jax.jit(g.init)(jax.random.PRNGKey(0), lr)
  full = jax.jit(g.apply)(variables, lr)
  mixed = jax.jit(precision.MixedPrecision(g).apply)(variables, lr)
  assert mixed.dtype == jnp.float32
  error = float(jnp.max(jnp.abs(mixed - full)))
  assert 1e-6 < error < 0.05  # bf16 really ran (8-bit mantissa), and stayed close


@pytest.mark.slow
def test_bf16_training_keeps_f32_state(tmp_path):
  config = tiny_config(str(tmp_path), num_steps=2, pretrain_steps=1)
  config.train.compute_dtype = "bfloat16"
  mesh = parallel.make_mesh()
  state, pretrain, gan = train.setup_steps(config, mesh)
  before = jax.device_get(state.g_params)
  rng = np.random.default_rng(0)
  for step in (pretrain, gan):
    batch = {"hr": rng.random((4, 32, 32, 1), np.float32),
             "lr": rng.random((4, 8, 8, 1), np.float32)}
    state, metrics = step(state, parallel.shard_batch(batch, mesh))
    assert all(np.isfinite(v) for v in jax.device_get(metrics).values())
  for leaf in jax.tree.leaves((state.g_params, state.d_params, state.ema_params,
                               state.g_opt_state, state.d_opt_state)):
    assert leaf.dtype in (jnp.float32, jnp.int32)  # master weights, Adam moments, counts
  moved = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), before,
                       jax.device_get(state.g_params))
  assert max(jax.tree.leaves(moved)) > 0
