"""The learning-rate schedules of the two optimisers."""

import jax.numpy as jnp
import numpy as np
import pytest

from sinsr_jax.training import train


def _first_update(tx, count: int) -> float:
  """Adam's first update of a scalar parameter, its schedule at count ``count``: -lr(count)."""
  params = {"w": jnp.zeros(())}
  adam, schedule = tx.init(params)  # optax.adam: scale_by_adam, then the scheduled rate
  state = (adam, schedule._replace(count=jnp.asarray(count, jnp.int32)))
  updates, _ = tx.update({"w": jnp.ones(())}, state, params)
  return -float(updates["w"])


@pytest.mark.parametrize("pretrain_steps", [0, 300])
def test_discriminator_rate_keeps_its_ratio_to_the_generator_in_the_gan_phase(pretrain_steps):
  import ml_collections

  optim = ml_collections.ConfigDict(dict(g_lr=5e-4, d_lr=2e-4, b1=0.9, b2=0.99, decay_rate=0.8,
                                         decay_steps=200))
  g_tx, d_tx = train.build_optimizers(optim, pretrain_steps)
  # The discriminator's optimiser first counts at the GAN phase's first step, where the
  # generator's stands at pretrain_steps: their rates must keep the configured 2.5 ratio.
  for gan_steps in (0, 100, 450):
    g_rate = _first_update(g_tx, pretrain_steps + gan_steps)
    d_rate = _first_update(d_tx, gan_steps)
    np.testing.assert_allclose(g_rate / d_rate, 2.5, rtol=1e-4)
    np.testing.assert_allclose(g_rate, 5e-4 * 0.8 ** ((pretrain_steps + gan_steps) / 200),
                               rtol=1e-4)
