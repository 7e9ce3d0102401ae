"""The models' convolution: lax's values and gradients, with a backward pass in Eigen's layout."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from sinsr_jax.models import conv


def _pair(rng, kernel, c_in, c_out):
  x = jnp.asarray(rng.standard_normal((2, 11, 13, c_in)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((*kernel, c_in, c_out)), jnp.float32)
  return x, w


@pytest.mark.parametrize("kernel,padding", [
    ((3, 3), "SAME"), ((3, 3), "VALID"), ((1, 1), "SAME"), ((9, 9), "SAME"),
    ((4, 4), "SAME"),  # even kernel: padding (1, 2), unequal sides
    ((3, 3), ((0, 2), (1, 0))), ((3, 3), ((2, 2), (1, 1)))])
def test_values_and_gradients_are_lax_conv_general_dilateds(kernel, padding):
  x, w = _pair(np.random.default_rng(0), kernel, 3, 5)

  def loss(f):
    return lambda x, w: jnp.sum(jnp.sin(f(x, w, (1, 1), padding, dimension_numbers=conv.NHWC)))

  reference, ours = loss(lax.conv_general_dilated), loss(conv.conv_general_dilated)
  assert float(ours(x, w)) == pytest.approx(float(reference(x, w)), rel=1e-6)
  for want, got in zip(jax.grad(reference, (0, 1))(x, w),
                       jax.jit(jax.grad(ours, (0, 1)))(x, w), strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(jnp.abs(want).max()))
  assert "custom_vjp_call" in str(jax.make_jaxpr(jax.grad(ours))(x, w))  # our backward ran


@pytest.mark.parametrize("strides,groups", [((2, 2), 1), ((1, 1), 3)])
def test_strided_or_grouped_convolutions_are_lax_as_they_are(strides, groups):
  x, w = _pair(np.random.default_rng(1), (3, 3), 3, 6)
  w = w[:, :, : 3 // groups]
  f = lambda x, w: conv.conv_general_dilated(  # noqa: E731
      x, w, strides, "SAME", dimension_numbers=conv.NHWC, feature_group_count=groups)
  assert "custom_vjp_call" not in str(jax.make_jaxpr(jax.grad(lambda x: f(x, w).sum()))(x))
  np.testing.assert_array_equal(f(x, w), lax.conv_general_dilated(
      x, w, strides, "SAME", dimension_numbers=conv.NHWC, feature_group_count=groups))


def test_the_backward_pass_of_a_scanned_stack_keeps_eigens_layout():
  """In a loop XLA's CPU compiler leaves lax's transposed convolutions in their own layouts,
  which run as naive loops (40x slower); ours are all in the one layout it hands to Eigen."""
  if jax.default_backend() != "cpu":
    pytest.skip("the layout rewrite and the fast path are CPU-specific")
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.random((2, 8, 8, 4)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 3, 4, 4)) * 0.1, jnp.float32)

  def dim_labels(f):
    def loss(w):
      h, _ = lax.scan(lambda h, k: (jax.nn.relu(f(h, k, (1, 1), "SAME",
                                                  dimension_numbers=conv.NHWC)), None), x, w)
      return jnp.mean(h ** 2)
    hlo = jax.jit(jax.grad(loss)).lower(w).compile().as_text()
    return set(re.findall(r"convolution\(.*dim_labels=(\S+?),", hlo))

  assert dim_labels(conv.conv_general_dilated) == {"b01f_01io->b01f"}
  assert len(dim_labels(lax.conv_general_dilated)) > 1  # what this module is for
