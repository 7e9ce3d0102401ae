"""Discriminators. SINSR's is a conditional multi-scale residual PatchGAN (DESIGN.md section 4)."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sinsr_jax.data import degradations
from sinsr_jax.models.blocks import lrelu, resize_to
from sinsr_jax.models.conv import Conv
from sinsr_jax.models.srresnet import batch_norm

NORMS = ("none", "batch", "spectral", "layer", "instance")


class _Layers:
  """Convs and post-conv normalisation for one ``norm`` choice, in one call's context.

  ``spectral`` wraps every conv in spectral normalisation (power-iteration vectors in the
  ``batch_stats`` collection, updated in training) and adds no post-norm; ``batch`` uses batch
  statistics synchronised over ``axis_name`` in training; ``layer``/``instance`` are
  batch-independent group norms.
  """

  def __init__(self, norm: str, train: bool, axis_name: str | None):
    if norm not in NORMS:
      raise ValueError(f"unknown discriminator norm {norm!r}; valid: {', '.join(NORMS)}")
    self.norm, self.train, self.axis_name = norm, train, axis_name

  def conv(self, x, features, kernel, strides=1, name=None, use_bias=True):
    conv = Conv(features, (kernel, kernel), strides=(strides, strides), use_bias=use_bias,
                   name=None if self.norm == "spectral" else name)
    if self.norm == "spectral":
      return nn.SpectralNorm(conv, name=name)(x, update_stats=self.train)
    return conv(x)

  def post_norm(self, x, name):
    if self.norm == "batch":
      return batch_norm(self.train, self.axis_name, name=name)(x)
    if self.norm == "layer":  # over H, W and C of each image
      return nn.GroupNorm(num_groups=1, name=name)(x)
    if self.norm == "instance":
      return nn.GroupNorm(num_groups=None, group_size=1, name=name)(x)
    return x


class ResidualBlock(nn.Module):
  features: int
  norm: str = "none"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    layers = _Layers(self.norm if self.norm == "spectral" else "none", train, self.axis_name)
    y = lrelu(layers.conv(x, self.features, 3, name="conv_0"))
    return x + layers.conv(y, self.features, 3, name="conv_1")


class ConditionalPatchDiscriminator(nn.Module):
  """(LR, HR-or-SR) -> logit map at 1/16 of the HR size.

  The LR condition is bicubic-upsampled and stacked with the image, so the discriminator judges
  whether the image is a plausible super-resolution *of this LR input*.
  """

  scale: int = 4
  width: int = 32
  stage_widths: tuple[int, ...] = (64, 128, 256, 512)
  norm: str = "layer"  # none | batch | spectral | layer | instance
  axis_name: str | None = None  # the data-parallel mesh axis, for synchronised batch norm

  @nn.compact
  def __call__(self, lr, image, train: bool = False):
    layers = _Layers(self.norm, train, self.axis_name)
    h, w = image.shape[1], image.shape[2]
    cond = degradations.bicubic_upscale(lr, self.scale, xp=jnp)
    x = lrelu(layers.conv(jnp.concatenate([image, cond], -1), self.width, 3, name="stem"))
    block = lambda name: ResidualBlock(self.width, self.norm, self.axis_name, name=name)  # noqa: E731
    branches = [block("branch_full")(x, train)]
    for factor in (2, 4):
      low = nn.avg_pool(x, (factor, factor), strides=(factor, factor), padding="SAME")
      branches.append(resize_to(block(f"branch_1_{factor}")(low, train), (h, w)))
    x = jnp.concatenate(branches, -1)
    for i, features in enumerate(self.stage_widths):
      # Batch and instance norm remove a per-channel bias: none to train (see srresnet.py).
      x = layers.conv(x, features, 4, strides=2, name=f"down_{i}",
                      use_bias=self.norm not in ("batch", "instance"))
      x = lrelu(layers.post_norm(x, f"norm_{i}"))
    return layers.conv(x, 1, 4, name="logits")


class VGGDiscriminator(nn.Module):
  """VGG-style image discriminator of the GAN baselines; judges the image alone (LR unused).

  ``esrgan``: ESRGAN/BasicSR's VGGStyleDiscriminator (3x3 and 4x4-stride-2 conv pairs from
  ``width`` to 8x``width``, five stages, batch norm, dense 100 -> 1); ``srgan``: SRGAN's
  (3x3 convs, stride 2 every second one, four stages, dense 1024 -> 1). The dense layer adapts
  to the patch size (128 in the papers).
  """

  scale: int = 4
  variant: str = "esrgan"  # esrgan | srgan
  width: int = 64
  norm: str = "batch"  # none | batch | spectral
  axis_name: str | None = None

  @nn.compact
  def __call__(self, lr, image, train: bool = False):
    del lr
    if self.variant not in ("esrgan", "srgan"):
      raise ValueError(f"unknown VGG discriminator variant {self.variant!r}; valid: esrgan, srgan")
    layers = _Layers(self.norm, train, self.axis_name)
    esrgan = self.variant == "esrgan"
    widths = [self.width * m for m in ((1, 2, 4, 8, 8) if esrgan else (1, 2, 4, 8))]
    x = image
    for i, features in enumerate(widths):
      for j, (kernel, stride) in enumerate(((3, 1), (4 if esrgan else 3, 2))):
        first = i == 0 and j == 0
        x = layers.conv(x, features, kernel, stride, name=f"conv{i}_{j}",
                        use_bias=first or self.norm in ("none", "spectral"))
        if not first:
          x = layers.post_norm(x, f"bn{i}_{j}")
        x = lrelu(x)
    x = x.reshape(x.shape[0], -1)
    x = lrelu(nn.Dense(100 if esrgan else 1024, name="linear1")(x))
    return nn.Dense(1, name="linear2")(x)
