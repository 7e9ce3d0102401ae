"""Discriminators. SINSR's is a conditional multi-scale residual PatchGAN (DESIGN.md section 4)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sinsr_jax import degradations
from sinsr_jax.models.blocks import lrelu, resize_to


def _norm(kind: str, name: str):
  if kind == "none":
    return lambda x: x
  if kind == "layer":  # over H, W and C of each image: independent of the batch
    return nn.GroupNorm(num_groups=1, name=name)
  if kind == "instance":
    return nn.GroupNorm(num_groups=None, group_size=1, name=name)
  raise ValueError(f"unknown discriminator norm {kind!r}; valid: none, layer, instance")


class ResidualBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    y = lrelu(nn.Conv(self.features, (3, 3))(x))
    return x + nn.Conv(self.features, (3, 3))(y)


class ConditionalPatchDiscriminator(nn.Module):
  """(LR, HR-or-SR) -> logit map at 1/16 of the HR size.

  The LR condition is bicubic-upsampled and stacked with the image, so the discriminator judges
  whether the image is a plausible super-resolution *of this LR input*.
  """

  scale: int = 4
  width: int = 32
  stage_widths: tuple[int, ...] = (64, 128, 256, 512)
  norm: str = "layer"

  @nn.compact
  def __call__(self, lr, image, train: bool = False):
    del train
    h, w = image.shape[1], image.shape[2]
    cond = degradations.bicubic_upscale(lr, self.scale, xp=jnp)
    x = lrelu(nn.Conv(self.width, (3, 3), name="stem")(jnp.concatenate([image, cond], -1)))
    branches = [ResidualBlock(self.width, name="branch_full")(x)]
    for factor in (2, 4):
      low = nn.avg_pool(x, (factor, factor), strides=(factor, factor), padding="SAME")
      low = ResidualBlock(self.width, name=f"branch_1_{factor}")(low)
      branches.append(resize_to(low, (h, w)))
    x = jnp.concatenate(branches, -1)
    for i, features in enumerate(self.stage_widths):
      x = nn.Conv(features, (4, 4), strides=(2, 2), name=f"down_{i}")(x)
      x = lrelu(_norm(self.norm, f"norm_{i}")(x))
    return nn.Conv(1, (4, 4), name="logits")(x)
