"""SRResNet, the SRGAN generator (Ledig et al., CVPR 2017).

9x9 head conv + PReLU; residual blocks conv-BN-PReLU-conv-BN; conv-BN and a long skip; x2
pixel-shuffle stages (conv to 4x channels, shuffle, PReLU; one x3 stage for x3); 9x9 output conv.
Convs followed by batch norm have no bias: BN removes it, and Adam would turn its zero gradient's
rounding noise into full-size steps.
Batch statistics are averaged over ``axis_name`` in training, so a data-parallel run normalises
with the global batch exactly as a one-device run does.
"""

from __future__ import annotations

import functools

import flax.linen as nn

from sinsr_jax.models.blocks import pixel_shuffle
from sinsr_jax.models.conv import Conv
from sinsr_jax.models.repeat import repeat_blocks


def batch_norm(train: bool, axis_name: str | None, name: str | None = None):
  """torch.nn.BatchNorm2d's defaults (momentum 0.1, eps 1e-5), synchronised across devices."""
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                      axis_name=axis_name if train else None, name=name)


def residual_block(x, width: int, bn, named):
  """conv-BN-PReLU-conv-BN + skip; ``named(part)``: the name of each part's module."""
  y = Conv(width, (3, 3), name=named("conv_0"), use_bias=False)(x)
  y = nn.PReLU(negative_slope_init=0.25, name=named("act"))(bn(named("bn_0"))(y))
  y = Conv(width, (3, 3), name=named("conv_1"), use_bias=False)(y)
  return x + bn(named("bn_1"))(y)


class ResidualBlock(nn.Module):
  """One residual block as a module, for scanning: parts conv_0, act, bn_0, conv_1, bn_1."""

  width: int
  train: bool
  axis_name: str | None

  @nn.compact
  def __call__(self, x):
    return residual_block(x, self.width, functools.partial(batch_norm, self.train,
                                                           self.axis_name), lambda part: part)


class SRResNet(nn.Module):
  scale: int = 4
  channels: int = 1
  width: int = 64
  num_blocks: int = 16
  axis_name: str | None = None  # the data-parallel mesh axis, for synchronised batch norm
  # The residual blocks as one nn.scan (block_scan0/conv_0, ..., batch statistics scanned with
  # them); False: unrolled, parts named block_{i}_conv_0, block_{i}_act, ... at the top level.
  scan: bool = True
  remat: bool = False  # recompute each block's activations in the backward pass (scanned)

  @nn.compact
  def __call__(self, lr, train: bool = False):
    bn = functools.partial(batch_norm, train, self.axis_name)
    head = nn.PReLU(negative_slope_init=0.25, name="head_act")(
        Conv(self.width, (9, 9), name="head")(lr))
    x = head
    if self.scan:
      x, _ = repeat_blocks(ResidualBlock, x, self.num_blocks, name="block", scan=True,
                           remat=self.remat, width=self.width, train=train,
                           axis_name=self.axis_name)
    else:  # the parts inline, as runs of the unrolled layout hold them (remat: scanned only)
      for i in range(self.num_blocks):
        x = residual_block(x, self.width, bn, lambda part, i=i: f"block_{i}_{part}")
    x = head + bn("body_bn")(Conv(self.width, (3, 3), name="body_conv", use_bias=False)(x))
    factors = [3] if self.scale == 3 else [2] * {2: 1, 4: 2}[self.scale]
    for i, r in enumerate(factors):
      x = pixel_shuffle(Conv(self.width * r * r, (3, 3), name=f"up_{i}")(x), r)
      x = nn.PReLU(negative_slope_init=0.25, name=f"up_{i}_act")(x)
    return Conv(self.channels, (9, 9), name="out")(x)
