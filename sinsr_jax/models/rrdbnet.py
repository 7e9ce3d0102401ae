"""RRDBNet, the ESRGAN generator (Wang et al., ECCVW 2018), as in the reference code.

conv_first; ``num_blocks`` residual-in-residual dense blocks (no attention); conv_body with a
long skip; nearest-neighbour x2 upsampling + conv + LeakyReLU per stage; conv_hr; conv_last.
x2 folds the input by pixel-unshuffle and reuses the x4 tail (as BasicSR does); x3 upsamples
once by nearest x3. With width 64, 23 blocks, growth 32, 3 channels, x4: 16,697,987 parameters.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sinsr_jax.models.blocks import RRDB, lrelu
from sinsr_jax.models.conv import Conv
from sinsr_jax.models.repeat import repeat_blocks


def pixel_unshuffle(x, factor: int):
  """(N, H, W, C) -> (N, H/r, W/r, C*r*r), channel order as torch.nn.PixelUnshuffle."""
  n, h, w, c = x.shape
  x = x.reshape(n, h // factor, factor, w // factor, factor, c)
  return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // factor, w // factor, c * factor * factor)


def nearest_upsample(x, factor: int):
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class RRDBNet(nn.Module):
  scale: int = 4
  channels: int = 3
  width: int = 64
  num_blocks: int = 23
  growth: int = 32
  scan: bool = True  # the trunk's RRDBs as one nn.scan (rrdb_scan0); False: rrdb_0 .. rrdb_22
  remat: bool = False  # recompute each RRDB's activations in the backward pass

  @nn.compact
  def __call__(self, lr, train: bool = False):
    del train
    x = lr
    if self.scale == 2:
      if lr.shape[1] % 2 or lr.shape[2] % 2:
        raise ValueError(f"RRDBNet x2 needs even LR sizes, got {lr.shape[1:3]}")
      x = pixel_unshuffle(lr, 2)
    feat = Conv(self.width, (3, 3), name="conv_first")(x)
    body, _ = repeat_blocks(RRDB, feat, self.num_blocks, name="rrdb", scan=self.scan,
                            remat=self.remat, features=self.width, growth=self.growth,
                            attention="none")
    feat = feat + Conv(self.width, (3, 3), name="conv_body")(body)
    for i, r in enumerate([3] if self.scale == 3 else [2, 2]):
      feat = lrelu(Conv(self.width, (3, 3), name=f"conv_up{i + 1}")(nearest_upsample(feat, r)))
    feat = lrelu(Conv(self.width, (3, 3), name="conv_hr")(feat))
    return Conv(self.channels, (3, 3), name="conv_last")(feat)
