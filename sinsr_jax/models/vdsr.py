"""VDSR (Kim et al., CVPR 2016): 20 3x3 convs on the bicubic upsample, global residual."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sinsr_jax import degradations


class VDSR(nn.Module):
  """LR -> MATLAB bicubic upsample -> ``depth`` convs (ReLU between) -> + upsample."""

  scale: int = 4
  channels: int = 1
  width: int = 64
  depth: int = 20

  @nn.compact
  def __call__(self, lr, train: bool = False):
    del train
    up = degradations.bicubic_upscale(lr, self.scale, xp=jnp)
    x = up
    for i in range(self.depth - 1):
      x = nn.relu(nn.Conv(self.width, (3, 3), name=f"conv_{i}")(x))
    return up + nn.Conv(self.channels, (3, 3), name=f"conv_{self.depth - 1}")(x)
