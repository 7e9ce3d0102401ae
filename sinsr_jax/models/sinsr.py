"""The SINSR generator: a multi-scale RRDB trunk with CBAM attention (DESIGN.md section 4).

Three parallel paths see the shallow features at full, half (pool -> RRDBs -> up) and double
(up -> RRDBs -> pool) resolution; their concatenation is fused, upsampled by pixel shuffle (a conv
expands channels first), and added to the MATLAB-bicubic upsample of the LR input.

With ``gradient_branch`` (the seed's phase 5), an SPSR-style branch takes the LR gradient map and
the full-resolution path's features after up to three evenly spaced RRDBs and the fused trunk;
it predicts the HR gradient map, and its HR features are fused with the trunk's by a conv
before the output conv. The output is then {"sr": SR image, "grad": predicted HR gradient map}.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from sinsr_jax.data import degradations
from sinsr_jax.models.blocks import RRDB, PixelShuffleUpsampler, lrelu, resize_to
from sinsr_jax.models.conv import Conv
from sinsr_jax.models.gradient import GradientBranch, gradient_map
from sinsr_jax.models.repeat import repeat_blocks


class RRDBStack(nn.Module):
  """RRDBs in sequence (blocks ``RRDB_i``, or ``RRDB_scan0`` scanned); returns the last output
  and, with ``keep_outputs``, every block's output (stacked on axis 0 when scanned)."""

  features: int
  num_blocks: int
  growth: int
  attention: str
  scan: bool = True
  remat: bool = False
  keep_outputs: bool = False

  @nn.compact
  def __call__(self, x):
    return repeat_blocks(RRDB, x, self.num_blocks, name="RRDB", scan=self.scan,
                         remat=self.remat, keep_outputs=self.keep_outputs,
                         features=self.features, growth=self.growth, attention=self.attention)


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
  gradient_branch: bool = False
  scan: bool = True  # RRDBs of each path as one nn.scan (compiled once); False: unrolled
  remat: bool = False  # recompute each RRDB's activations in the backward pass

  @nn.compact
  def __call__(self, lr, train: bool = False):
    del train  # no dropout or batch statistics
    h, w = lr.shape[1], lr.shape[2]
    stem = Conv(self.stem_width, (3, 3), name="stem")(lr)
    feats = Conv(self.width, (1, 1), name="stem_proj")(stem)
    stack = lambda name, keep=False: RRDBStack(
        self.width, self.num_rrdb, self.growth, self.attention, self.scan, self.remat, keep,
        name=name)
    paths, taps = [], []
    for path in self.scales:
      if path == "full":
        last, outputs = stack("full", keep=self.gradient_branch)(feats)
        paths.append(last)
        taps = [outputs[i] for i in range(self.num_rrdb)] if self.gradient_branch else []
      elif path == "down_up":
        low = nn.avg_pool(feats, (2, 2), strides=(2, 2), padding="SAME")
        paths.append(resize_to(stack("down_up")(low)[0], (h, w)))
      elif path == "up_down":
        high = stack("up_down")(resize_to(feats, (2 * h, 2 * w)))[0]
        paths.append(nn.avg_pool(high, (2, 2), strides=(2, 2)))
      else:
        raise ValueError(f"unknown scale path {path!r}; valid: full, down_up, up_down")
    fused = Conv(self.width, (3, 3), name="fuse")(jnp.concatenate(paths, -1))
    fused = fused + feats  # long skip over the trunk
    up = PixelShuffleUpsampler(self.scale, self.width, name="upsample")(fused)
    up = lrelu(Conv(self.width, (3, 3), name="hr_conv")(up))
    bicubic = degradations.bicubic_upscale(lr, self.scale, xp=jnp)
    if not self.gradient_branch:
      return bicubic + Conv(self.channels, (3, 3), name="out_conv")(up)
    branch_features, gradient = GradientBranch(
        self.width, self.growth, self.channels,
        PixelShuffleUpsampler(self.scale, self.width, name="branch_upsample"),
        name="gradient_branch")(gradient_map(lr), [*taps[::max(1, len(taps) // 3)][:3], fused])
    # A conv fuses the two at HR size (SPSR's RRDB at 2x width there costs more than the trunk).
    up = lrelu(Conv(self.width, (3, 3), name="fusion")(
        jnp.concatenate([up, branch_features], -1)))
    return {"sr": bicubic + Conv(self.channels, (3, 3), name="out_conv")(up),
            "grad": gradient}
