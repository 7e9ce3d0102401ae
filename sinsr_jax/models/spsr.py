"""SPSR (Ma et al., CVPR 2020): an RRDB SR branch and a gradient branch fused before the output.

The SR branch is RRDBNet's trunk; the gradient branch takes the LR gradient map and the trunk's
features after every ``tap_every``-th RRDB (blocks 5, 10, 15, 20 of 23 in the paper), predicts
the HR gradient map, and its HR features are fused into the SR branch's.
Output: {"sr": SR image, "grad": predicted HR gradient map}.
"""

from __future__ import annotations

import flax.linen as nn

from sinsr_jax.models.blocks import RRDB, lrelu
from sinsr_jax.models.conv import Conv
from sinsr_jax.models.gradient import GradientBranch, GradientFusion, gradient_map
from sinsr_jax.models.repeat import repeat_blocks
from sinsr_jax.models.rrdbnet import nearest_upsample


class NearestUpsampler(nn.Module):
  """ESRGAN's upsampling: nearest x2 (x3 once for x3) + conv + LeakyReLU per stage."""

  scale: int
  width: int

  @nn.compact
  def __call__(self, x):
    for i, r in enumerate([3] if self.scale == 3 else [2] * {2: 1, 4: 2}[self.scale]):
      x = lrelu(Conv(self.width, (3, 3), name=f"up_{i}")(nearest_upsample(x, r)))
    return x


def trunk_segments(num_blocks: int, tap_every: int, max_taps: int = 4):
  """[(start, stop, tapped)]: the trunk's runs of blocks; ``tapped``: the branch reads the output
  (after every ``tap_every``-th block, at most ``max_taps`` times: 5, 10, 15, 20 of 23)."""
  ends = [i for i in range(tap_every, num_blocks + 1, tap_every)][:max_taps]
  bounds = [0, *ends] + ([num_blocks] if not ends or ends[-1] < num_blocks else [])
  return [(a, b, b in ends) for a, b in zip(bounds, bounds[1:], strict=False)]


class SPSR(nn.Module):
  scale: int = 4
  channels: int = 3
  width: int = 64
  num_blocks: int = 23
  growth: int = 32
  tap_every: int = 5
  scan: bool = True  # the trunk's segments between taps each one nn.scan (rrdb_scan0, _scan5..)
  remat: bool = False  # recompute each RRDB's activations in the backward pass

  @nn.compact
  def __call__(self, lr, train: bool = False):
    del train
    feat = Conv(self.width, (3, 3), name="conv_first")(lr)
    x, taps = feat, []
    for start, stop, tapped in trunk_segments(self.num_blocks, self.tap_every):
      x, _ = repeat_blocks(RRDB, x, stop - start, name="rrdb", scan=self.scan, remat=self.remat,
                           start=start, features=self.width, growth=self.growth,
                           attention="none")
      if tapped:
        taps.append(x)
    feat = feat + Conv(self.width, (3, 3), name="conv_body")(x)
    sr_features = NearestUpsampler(self.scale, self.width, name="upsample")(feat)
    sr_features = lrelu(Conv(self.width, (3, 3), name="conv_hr")(sr_features))
    branch_features, gradient = GradientBranch(
        self.width, self.growth, self.channels,
        NearestUpsampler(self.scale, self.width, name="branch_upsample"),
        name="gradient_branch")(gradient_map(lr), taps or [x])
    fused = GradientFusion(self.width, self.growth, name="fusion")(sr_features, branch_features)
    sr = Conv(self.channels, (3, 3), name="conv_last")(
        lrelu(Conv(self.width, (3, 3), name="conv_fused")(fused)))
    return {"sr": sr, "grad": gradient}


