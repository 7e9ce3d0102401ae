"""Building blocks shared by the generators and discriminators (NHWC, flax linen)."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from sinsr_jax.models.conv import Conv


def lrelu(x):
  return nn.leaky_relu(x, negative_slope=0.2)


def pixel_shuffle(x, factor: int):
  """(N, H, W, C*r*r) -> (N, H*r, W*r, C), channel order as torch.nn.PixelShuffle."""
  n, h, w, c = x.shape
  out_c = c // (factor * factor)
  x = x.reshape(n, h, w, out_c, factor, factor)
  x = x.transpose(0, 1, 4, 2, 5, 3)
  return x.reshape(n, h * factor, w * factor, out_c)


def resize_to(x, hw: tuple[int, int], method: str = "bilinear"):
  """Resizes NHWC features to spatial size ``hw``."""
  return jax.image.resize(x, (x.shape[0], *hw, x.shape[-1]), method=method)


class CBAM(nn.Module):
  """Convolutional block attention (Woo et al. 2018): channel, then 7x7 spatial attention."""

  reduction: int = 8
  spatial_kernel: int = 7

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    hidden = nn.Dense(max(1, channels // self.reduction), name="mlp_hidden")
    project = nn.Dense(channels, name="mlp_out")
    mlp = lambda v: project(nn.relu(hidden(v)))  # shared by the avg- and max-pooled paths
    channel_att = nn.sigmoid(mlp(jnp.mean(x, axis=(1, 2))) + mlp(jnp.max(x, axis=(1, 2))))
    x = x * channel_att[:, None, None, :]
    pooled = jnp.concatenate([jnp.mean(x, -1, keepdims=True), jnp.max(x, -1, keepdims=True)], -1)
    k = self.spatial_kernel
    spatial_att = nn.sigmoid(Conv(1, (k, k), name="spatial_conv")(pooled))
    return x * spatial_att


class SqueezeExcite(nn.Module):
  """Channel attention of Hu et al. 2018."""

  reduction: int = 8

  @nn.compact
  def __call__(self, x):
    channels = x.shape[-1]
    s = nn.relu(nn.Dense(max(1, channels // self.reduction))(jnp.mean(x, axis=(1, 2))))
    return x * nn.sigmoid(nn.Dense(channels)(s))[:, None, None, :]


def attention_block(kind: str):
  if kind == "cbam":
    return CBAM()
  if kind == "se":
    return SqueezeExcite()
  if kind == "none":
    return None
  raise ValueError(f"unknown attention {kind!r}; valid: none, cbam, se")


class ResidualDenseBlock(nn.Module):
  """ESRGAN's dense block: 5 convs with dense connections; the 0.2 scale is on the residual."""

  features: int
  growth: int = 32
  res_scale: float = 0.2

  @nn.compact
  def __call__(self, x):
    feats = [x]
    for _ in range(4):
      feats.append(lrelu(Conv(self.growth, (3, 3))(jnp.concatenate(feats, -1))))
    residual = Conv(self.features, (3, 3))(jnp.concatenate(feats, -1))
    return x + self.res_scale * residual


class RRDB(nn.Module):
  """Residual-in-residual dense block, with optional attention after each dense block."""

  features: int
  growth: int = 32
  attention: str = "cbam"
  res_scale: float = 0.2

  @nn.compact
  def __call__(self, x):
    y = x
    for _ in range(3):
      y = ResidualDenseBlock(self.features, self.growth, self.res_scale)(y)
      att = attention_block(self.attention)
      if att is not None:
        y = att(y)
    return x + self.res_scale * y


class PixelShuffleUpsampler(nn.Module):
  """Conv to r*r*C channels, then pixel shuffle: x2 stages for 2/4/8, one x3 stage for 3."""

  scale: int
  features: int

  @nn.compact
  def __call__(self, x):
    factors = [3] if self.scale == 3 else [2] * {2: 1, 4: 2, 8: 3}[self.scale]
    for r in factors:
      x = lrelu(pixel_shuffle(Conv(self.features * r * r, (3, 3))(x), r))
    return x
