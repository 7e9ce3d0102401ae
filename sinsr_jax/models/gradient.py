"""The gradient branch (SPSR, Ma et al. CVPR 2020) and its gradient-map operator.

The branch sees the LR image's gradient map and, at several depths, the SR trunk's features;
it predicts the HR gradient map (supervised by the gradient map of HR) and hands its HR
features back to be fused into the SR output.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from sinsr_jax.models.blocks import RRDB, lrelu
from sinsr_jax.models.conv import Conv

# SPSR's kernels: central differences, as cross-correlations on NHWC.
_DY = jnp.array([[0.0, -1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
_DX = _DY.T


def gradient_map(images, eps: float = 1e-6):
  """Per-channel gradient magnitude sqrt(dx^2 + dy^2 + eps), zero-padded as SPSR's Get_gradient."""
  channels = images.shape[-1]
  kernels = jnp.tile(jnp.stack([_DY, _DX], -1)[:, :, None, :], (1, 1, 1, channels))
  d = jax.lax.conv_general_dilated(
      images, kernels, window_strides=(1, 1), padding="SAME",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels,
      precision=jax.lax.Precision.HIGHEST)
  d = d.reshape(*d.shape[:-1], channels, 2)
  return jnp.sqrt(jnp.sum(d * d, axis=-1) + eps)


class GradientBranch(nn.Module):
  """(LR gradient map, trunk taps at LR size) -> (HR branch features, HR gradient map)."""

  width: int
  growth: int
  channels: int
  upsampler: nn.Module  # LR features (width) -> HR features (width)

  @nn.compact
  def __call__(self, lr_gradient, taps):
    start = Conv(self.width, (3, 3), name="in_conv")(lr_gradient)
    x = start
    for i, tap in enumerate(taps):  # concat with the trunk -> RRDB at 2x width -> back to width
      x = RRDB(2 * self.width, self.growth, attention="none",
               name=f"rrdb_{i}")(jnp.concatenate([x, tap], -1))
      x = Conv(self.width, (3, 3), name=f"reduce_{i}")(x)
    x = start + Conv(self.width, (3, 3), name="lr_conv")(x)
    features = self.upsampler(x)
    gradient = Conv(self.channels, (3, 3), name="grad_out")(
        lrelu(Conv(self.width, (3, 3), name="grad_hr_conv")(features)))
    return features, gradient


class GradientFusion(nn.Module):
  """Concatenated SR-trunk and branch HR features -> RRDB at 2x width -> ``width`` features."""

  width: int
  growth: int

  @nn.compact
  def __call__(self, sr_features, branch_features):
    x = RRDB(2 * self.width, self.growth, attention="none", name="rrdb")(
        jnp.concatenate([sr_features, branch_features], -1))
    return lrelu(Conv(self.width, (3, 3), name="reduce")(x))
