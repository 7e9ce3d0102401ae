"""VDSR (Kim et al., CVPR 2016): 20 3x3 convs on the bicubic upsample, global residual."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sinsr_jax.data import degradations
from sinsr_jax.models.conv import Conv
from sinsr_jax.models.repeat import repeat_blocks


class ConvReLU(Conv):
  """A conv and its ReLU; its parameters are the conv's own (kernel, bias), as nn.Conv's."""

  @nn.compact
  def __call__(self, x):
    return nn.relu(super().__call__(x))


class VDSR(nn.Module):
  """LR -> MATLAB bicubic upsample -> ``depth`` convs (ReLU between) -> + upsample."""

  scale: int = 4
  channels: int = 1
  width: int = 64
  depth: int = 20
  scan: bool = True  # the width-to-width convs (conv_1 ..) as one nn.scan (conv_scan1)
  remat: bool = False  # recompute each conv's activations in the backward pass

  @nn.compact
  def __call__(self, lr, train: bool = False):
    del train
    if self.depth < 2:
      raise ValueError(f"VDSR needs depth >= 2 (a first and a last conv), got {self.depth}")
    up = degradations.bicubic_upscale(lr, self.scale, xp=jnp)
    x = nn.relu(Conv(self.width, (3, 3), name="conv_0")(up))  # channels -> width
    x, _ = repeat_blocks(ConvReLU, x, self.depth - 2, name="conv", scan=self.scan,
                         remat=self.remat, start=1, features=self.width, kernel_size=(3, 3))
    return up + Conv(self.channels, (3, 3), name=f"conv_{self.depth - 1}")(x)
