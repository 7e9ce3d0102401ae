"""Loss terms: references, invariants and the direction of the adversarial terms."""

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from sinsr_jax import losses


def test_sobel_equals_scipy_in_the_interior():
  x = np.random.default_rng(0).random((2, 12, 10, 3)).astype(np.float32)
  grads = np.asarray(losses.sobel(x))
  assert grads.shape == (2, 12, 10, 3, 2)
  for n in range(2):
    for c in range(3):
      for axis in (0, 1):
        ref = ndimage.sobel(x[n, :, :, c].astype(np.float64), axis=axis)
        np.testing.assert_allclose(grads[n, 1:-1, 1:-1, c, axis], ref[1:-1, 1:-1], atol=1e-5)


def test_terms_vanish_on_identical_images_and_grow_otherwise():
  rng = np.random.default_rng(1)
  hr = jnp.asarray(ndimage.gaussian_filter(rng.random((2, 24, 24, 1)), (0, 1, 1, 0)),
                   jnp.float32)
  sr = hr + 0.05 * jnp.asarray(rng.standard_normal(hr.shape), jnp.float32)
  for term in (losses.pixel_l1, losses.sobel_gradient_l2, losses.ssim_loss):
    assert abs(float(term(hr, hr))) < 1e-6
    assert float(term(sr, hr)) > 1e-4
    grads = jax.grad(lambda s, t=term: t(s, hr))(sr)
    assert np.all(np.isfinite(np.asarray(grads)))


def test_gradient_loss_ignores_a_constant_offset():
  hr = jnp.asarray(np.random.default_rng(2).random((1, 16, 16, 1)), jnp.float32)
  assert float(losses.sobel_gradient_l2(hr + 0.2, hr)) < 1e-8
  assert float(losses.pixel_l1(hr + 0.2, hr)) > 0.19


def test_adversarial_sides_push_the_right_way():
  real, fake = jnp.full((2, 4, 4, 1), 3.0), jnp.full((2, 4, 4, 1), -3.0)
  # A discriminator that is right has a low loss; swapped (the original code's bug) a high one.
  assert float(losses.d_loss_bce(real, fake)) < 0.1
  assert float(losses.d_loss_bce(fake, real)) > 5.0
  # The generator's loss falls as the discriminator calls its output real.
  assert float(losses.g_loss_bce(real)) < float(losses.g_loss_bce(fake))
  d_fake = jax.grad(lambda f: losses.d_loss_bce(real, f))(jnp.zeros((1, 2, 2, 1)))
  g_fake = jax.grad(losses.g_loss_bce)(jnp.zeros((1, 2, 2, 1)))
  assert np.all(np.asarray(d_fake) > 0) and np.all(np.asarray(g_fake) < 0)
