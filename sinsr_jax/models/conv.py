"""The models' convolution: ``nn.Conv`` whose backward pass XLA's CPU backend runs fast in loops.

XLA's CPU compiler rewrites convolutions into the one layout its Eigen kernels take (NHWC input,
HWIO kernel) in the program's top level only. The backward pass of a convolution inside a loop,
as in a scanned stack of blocks (``model.scan``), keeps the layouts of JAX's transpose rule (a
flipped ``01oi`` kernel; the batch as the feature axis for the weight gradient) and runs through a
naive loop nest: four scanned 3x3 convs took 1567 ms forward+backward against 39 ms unrolled.
Here the backward pass is written in that canonical layout itself, the same arithmetic XLA
produces for the top level, so scanned and unrolled blocks run the same kernels. Used on CPU for
stride-1, undilated, ungrouped 2-D convolutions in NHWC/HWIO; anything else, and every other
backend, calls ``lax.conv_general_dilated`` as ``nn.Conv`` does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                         batch_group_count=1, precision=None, preferred_element_type=None):
  """``lax.conv_general_dilated``, with the canonical-layout backward pass where it applies."""
  pads = _canonical_pads(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                         dimension_numbers, feature_group_count, batch_group_count,
                         preferred_element_type)
  if pads is None:
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers, feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, precision=precision,
        preferred_element_type=preferred_element_type)
  return _conv(lhs, rhs, pads, precision)


def _canonical_pads(lhs, rhs, strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
                    feature_groups, batch_groups, preferred_element_type):
  """The explicit ((top, bottom), (left, right)) padding when the fast path applies, else None."""
  if jax.default_backend() != "cpu" or lhs.ndim != 4 or rhs.ndim != 4:
    return None
  ones = lambda v: v is None or all(d == 1 for d in v)  # noqa: E731
  if not (ones(strides) and ones(lhs_dilation) and ones(rhs_dilation) and feature_groups == 1
          and batch_groups == 1 and preferred_element_type is None):
    return None
  if lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != \
      lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC):
    return None
  kernel = rhs.shape[:2]
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs.shape[1:3], kernel, (1, 1), padding)
  pads = tuple((int(lo), int(hi)) for lo, hi in padding)
  if any(not (0 <= p < k) for (lo, hi), k in zip(pads, kernel, strict=True) for p in (lo, hi)):
    return None
  return pads


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv(x, w, pads, precision):
  return lax.conv_general_dilated(x, w, (1, 1), pads, dimension_numbers=NHWC,
                                  precision=precision)


def _conv_fwd(x, w, pads, precision):
  return _conv(x, w, pads, precision), (x, w)


def _conv_bwd(pads, precision, residuals, g):
  x, w = residuals
  (kh, kw), ((top, bottom), (left, right)) = w.shape[:2], pads
  # dx: g correlated with the flipped kernel, input and output channels swapped.
  dx = lax.conv_general_dilated(
      g, jnp.flip(w, (0, 1)).transpose(0, 1, 3, 2).astype(g.dtype), (1, 1),
      ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right)),
      dimension_numbers=NHWC, precision=precision)
  # dw: the padded input correlated with g over the image, the batch summed as the feature axis:
  # input channels play the batch, g is the kernel, the output is (C_in, kh, kw, C_out).
  dw = lax.conv_general_dilated(
      x.transpose(3, 1, 2, 0), g.transpose(1, 2, 0, 3).astype(x.dtype), (1, 1), pads,
      dimension_numbers=NHWC, precision=precision).transpose(1, 2, 0, 3)
  return dx.astype(x.dtype), dw.astype(w.dtype)


_conv.defvjp(_conv_fwd, _conv_bwd)


class Conv(nn.Conv):
  """``nn.Conv`` (same parameters, same names) on ``conv_general_dilated`` above."""

  conv_general_dilated: Callable | None = conv_general_dilated
