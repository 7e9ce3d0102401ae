"""Bicubic: the SR community's baseline, MATLAB-compatible antialiased bicubic. No parameters."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sinsr_jax.data import degradations


class Bicubic(nn.Module):
  scale: int = 4
  channels: int = 1

  @nn.compact
  def __call__(self, lr, train: bool = False):
    del train
    return degradations.bicubic_upscale(lr, self.scale, xp=jnp)
