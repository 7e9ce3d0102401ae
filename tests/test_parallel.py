"""The data-parallel step: 4 simulated CPU devices give the state of 1 device, same batch."""

import jax
import ml_collections
import numpy as np
import pytest

from conftest import tiny_config
from sinsr_jax.training import parallel, train


def _run(config, devices, batches):
  mesh = parallel.make_mesh(devices)
  state, pretrain, gan = train.setup_steps(config, mesh)
  history = []
  for step_fn, batch in zip([pretrain, gan, gan], batches, strict=True):
    state, metrics = step_fn(state, parallel.shard_batch(batch, mesh))
    history.append(jax.device_get(metrics))
  return jax.device_get(state), history


@pytest.mark.parametrize("generator,discriminator", [
    # SINSR's generator; its discriminator with spectral norm, whose power iteration keeps state
    # (the default layer norm is per sample: nothing the mesh could change).
    # CBAM off: it pools each sample on its own, and it doubles the four compiles.
    ({"attention": "none"}, {"name": "sinsr_patch", "width": 4, "stage_widths": (8, 8, 16, 16),
                             "norm": "spectral"}),
    ({"name": "srresnet", "width": 8, "num_blocks": 1}, {"name": "vgg", "width": 4}),
])
@pytest.mark.slow
def test_four_devices_match_one_device(tmp_path, generator, discriminator):
  """Batch norm is synchronised over the mesh, so it too sees the global batch."""
  assert jax.device_count() == 4, "conftest sets --xla_force_host_platform_device_count=4"
  config = tiny_config(str(tmp_path))
  config.train.batch_size = 8
  if generator and "name" in generator:
    config.model = ml_collections.ConfigDict({"channels": 1, **generator})
  elif generator:
    config.model.update(generator)
  if discriminator:
    config.discriminator = ml_collections.ConfigDict(discriminator)
  rng = np.random.default_rng(0)
  batches = [{"hr": rng.random((8, 32, 32, 1), np.float32),
              "lr": rng.random((8, 8, 8, 1), np.float32)} for _ in range(3)]
  one, one_metrics = _run(config, jax.devices()[:1], batches)
  four, four_metrics = _run(config, jax.devices(), batches)
  assert int(one.step) == int(four.step) == 3
  paths = jax.tree_util.tree_flatten_with_path(one)[0]
  for (path, a), b in zip(paths, jax.tree.leaves(four), strict=True):
    # 1 and 4 devices sum their convolutions' batches in different orders. Adam divides each
    # gradient by its own running size, so a parameter whose gradient is near zero can move by a
    # few 1e-5 apart after 3 steps (measured 2.6e-5 at most); the weights agree to 1e-4.
    # The optimiser's moments are sums of gradients, which the VGG discriminator's first layers
    # give with cancellation: on an AVX-512 CPU they differ by up to 1.6 % of a layer's norm
    # (2026-11-30; within 1e-4 on the CPUs before). Batch norm over one device's 2 samples would
    # change the statistics themselves, not their rounding; the weights above check it too.
    if "opt_state" in jax.tree_util.keystr(path):
      a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
      assert np.linalg.norm(a - b) <= 0.05 * np.linalg.norm(a) + 1e-9, jax.tree_util.keystr(path)
    else:
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=5e-5, err_msg=jax.tree_util.keystr(path))
  for a, b in zip(one_metrics, four_metrics, strict=True):
    assert a.keys() == b.keys()
    for k in a:
      assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6)
  # The GAN steps really moved the discriminator and changed G beyond pretraining.
  assert "d_loss" in one_metrics[-1] and "loss/adversarial" in one_metrics[-1]
