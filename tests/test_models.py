"""The model registry, SINSR generator and conditional discriminator."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinsr_jax import models
from sinsr_jax.data import degradations
from sinsr_jax.errors import ConfigError
from sinsr_jax.models.blocks import pixel_shuffle

TINY_G = dict(stem_width=8, width=8, num_rrdb=1, growth=4)
TINY_D = dict(width=4, stage_widths=(8, 8, 16, 16))


def _compiled(model):
  """(init, apply) each compiled as one program: run op by op, a SINSR's hundreds of operations
  are each compiled apart, which took most of these tests' time."""
  return jax.jit(model.init), jax.jit(model.apply, static_argnames="train")


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_and_discriminator_shapes(scale, channels):
  # Shapes and dtypes only: traced, not compiled (the tests below run the models).
  lr = jax.ShapeDtypeStruct((2, 9, 11, channels), jnp.float32)
  key = jax.random.PRNGKey(0)
  g = models.create_generator("sinsr", scale=scale, channels=channels, **TINY_G)
  sr = jax.eval_shape(lambda: g.apply(g.init(key, jnp.zeros(lr.shape)), jnp.zeros(lr.shape),
                                      train=False))
  assert sr.shape == (2, 9 * scale, 11 * scale, channels) and sr.dtype == jnp.float32
  d = models.create_discriminator("sinsr_patch", scale=scale, **TINY_D)
  hr = jnp.zeros((2, 16 * scale, 16 * scale, channels))
  lr16 = jnp.zeros((2, 16, 16, channels))
  logits = jax.eval_shape(lambda: d.apply(d.init(key, lr16, hr), lr16, hr))
  assert logits.shape == (2, scale, scale, 1)  # PatchGAN map at 1/16 of the HR size


def test_generator_is_a_residual_on_bicubic():
  """With the output conv zeroed the generator returns exactly the MATLAB bicubic upsample."""
  lr = jnp.asarray(np.random.default_rng(1).random((1, 8, 8, 1)), jnp.float32)
  g_init, g_apply = _compiled(models.create_generator("sinsr", scale=4, channels=1, **TINY_G))
  params = g_init(jax.random.PRNGKey(0), lr)["params"]
  params["out_conv"] = jax.tree.map(jnp.zeros_like, params["out_conv"])
  np.testing.assert_allclose(g_apply({"params": params}, lr),
                             degradations.bicubic_upscale(np.asarray(lr), 4), atol=1e-5)


def test_discriminator_depends_on_the_lr_condition():
  d_init, d_apply = _compiled(models.create_discriminator("sinsr_patch", scale=4, **TINY_D))
  rng = np.random.default_rng(2)
  hr = jnp.asarray(rng.random((1, 64, 64, 1)), jnp.float32)
  lr_a, lr_b = (jnp.asarray(rng.random((1, 16, 16, 1)), jnp.float32) for _ in range(2))
  variables = d_init(jax.random.PRNGKey(0), lr_a, hr)
  assert not np.allclose(d_apply(variables, lr_a, hr), d_apply(variables, lr_b, hr))


def test_pixel_shuffle_matches_torch_semantics():
  """out[c, h*r+i, w*r+j] = in[c*r*r + i*r + j, h, w] (torch.nn.PixelShuffle), in NHWC."""
  r, c = 2, 3
  x = np.random.default_rng(3).random((1, 4, 5, c * r * r)).astype(np.float32)
  out = np.asarray(pixel_shuffle(jnp.asarray(x), r))
  for ch in range(c):
    for i in range(r):
      for j in range(r):
        np.testing.assert_array_equal(out[0, i::r, j::r, ch], x[0, :, :, ch * r * r + i * r + j])


def test_registry_errors_name_the_valid_choices():
  with pytest.raises(ConfigError, match="supports x2, x3, x4"):
    models.create_generator("sinsr", scale=5, channels=1)
  with pytest.raises(ConfigError, match="valid: " + ", ".join(sorted(models.GENERATORS))):
    models.create_generator("srgan9", scale=4, channels=1)
  with pytest.raises(ConfigError, match="no option depth.*valid: attention"):
    models.create_generator("sinsr", scale=4, channels=1, depth=3)


@pytest.mark.parametrize("attention", ["none", "cbam", "se"])
def test_attention_variants_build(attention):
  g = models.create_generator("sinsr", scale=2, channels=1, attention=attention, **TINY_G)
  lr = jnp.zeros((1, 8, 8, 1))
  assert jax.eval_shape(lambda: g.apply(g.init(jax.random.PRNGKey(0), lr), lr)).shape == \
      (1, 16, 16, 1)
