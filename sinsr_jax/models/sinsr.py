"""The SINSR generator: a multi-scale RRDB trunk with CBAM attention (DESIGN.md section 4).

Three parallel paths see the shallow features at full, half (pool -> RRDBs -> up) and double
(up -> RRDBs -> pool) resolution; their concatenation is fused, upsampled by pixel shuffle (a conv
expands channels first), and added to the MATLAB-bicubic upsample of the LR input.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sinsr_jax import degradations
from sinsr_jax.models.blocks import RRDB, PixelShuffleUpsampler, lrelu, resize_to


class RRDBStack(nn.Module):
  features: int
  num_blocks: int
  growth: int
  attention: str

  @nn.compact
  def __call__(self, x):
    for _ in range(self.num_blocks):
      x = RRDB(self.features, self.growth, self.attention)(x)
    return x


class SINSRGenerator(nn.Module):
  """LR (N, h, w, C) in [0, 1] -> SR (N, h*scale, w*scale, C)."""

  scale: int = 4
  channels: int = 1
  stem_width: int = 128
  width: int = 64
  num_rrdb: int = 2  # per scale path
  growth: int = 32
  attention: str = "cbam"
  scales: tuple[str, ...] = ("full", "down_up", "up_down")

  @nn.compact
  def __call__(self, lr, train: bool = False):
    del train  # no dropout or batch statistics
    h, w = lr.shape[1], lr.shape[2]
    stem = nn.Conv(self.stem_width, (3, 3), name="stem")(lr)
    feats = nn.Conv(self.width, (1, 1), name="stem_proj")(stem)
    stack = lambda name: RRDBStack(self.width, self.num_rrdb, self.growth, self.attention,
                                   name=name)
    paths = []
    for path in self.scales:
      if path == "full":
        paths.append(stack("full")(feats))
      elif path == "down_up":
        low = nn.avg_pool(feats, (2, 2), strides=(2, 2), padding="SAME")
        paths.append(resize_to(stack("down_up")(low), (h, w)))
      elif path == "up_down":
        high = stack("up_down")(resize_to(feats, (2 * h, 2 * w)))
        paths.append(nn.avg_pool(high, (2, 2), strides=(2, 2)))
      else:
        raise ValueError(f"unknown scale path {path!r}; valid: full, down_up, up_down")
    fused = nn.Conv(self.width, (3, 3), name="fuse")(jnp.concatenate(paths, -1))
    fused = fused + feats  # long skip over the trunk
    up = PixelShuffleUpsampler(self.scale, self.width, name="upsample")(fused)
    up = lrelu(nn.Conv(self.width, (3, 3), name="hr_conv")(up))
    residual = nn.Conv(self.channels, (3, 3), name="out_conv")(up)
    return degradations.bicubic_upscale(lr, self.scale, xp=jnp) + residual
