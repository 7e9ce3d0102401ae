"""SwinIR, lightweight variant (Liang et al., ICCVW 2021): residual Swin Transformer blocks.

conv -> residual Swin Transformer blocks (RSTB: ``depth`` Swin layers with window attention,
every second one on windows shifted by half a window, then a 3x3 conv, all around a residual)
-> LayerNorm -> conv + long skip -> "pixelshuffledirect" reconstruction (one conv to
channels * scale^2, pixel shuffle). Images are reflect-padded to a multiple of the window and
the output cropped back, as the reference code does; the input is centred on the dataset mean.
Defaults are the paper's light model: embed 60, 4 RSTBs of depth 6, 6 heads, window 8, MLP 2x.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sinsr_jax.models.blocks import pixel_shuffle
from sinsr_jax.models.conv import Conv
from sinsr_jax.models.repeat import repeat_blocks


def _windows(x, w: int):
  """(N, H, W, C) -> (N * H/w * W/w, w*w, C)."""
  n, h, wd, c = x.shape
  x = x.reshape(n, h // w, w, wd // w, w, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(-1, w * w, c)


def _unwindows(x, w: int, n: int, h: int, wd: int):
  c = x.shape[-1]
  x = x.reshape(n, h // w, wd // w, w, w, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, h, wd, c)


def _relative_position_index(w: int) -> np.ndarray:
  coords = np.stack(np.meshgrid(np.arange(w), np.arange(w), indexing="ij")).reshape(2, -1)
  rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (w - 1)
  return rel[..., 0] * (2 * w - 1) + rel[..., 1]  # (w*w, w*w)


def _shift_mask(h: int, wd: int, w: int, shift: int) -> np.ndarray:
  """-100 where two positions of a shifted window come from different image regions."""
  region = np.zeros((1, h, wd, 1), np.float32)
  cuts = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
  for k, (hs, ws) in enumerate((a, b) for a in cuts for b in cuts):
    region[:, hs, ws, :] = k
  ids = _windows(region, w)[..., 0]  # (windows, w*w); numpy in, numpy out
  return np.where(ids[:, :, None] != ids[:, None, :], -100.0, 0.0).astype(np.float32)


class WindowAttention(nn.Module):
  dim: int
  heads: int
  window: int

  @nn.compact
  def __call__(self, x, mask=None):
    b, t, c = x.shape
    head_dim = c // self.heads
    qkv = nn.Dense(3 * c, name="qkv")(x).reshape(b, t, 3, self.heads, head_dim)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (b, heads, t, d)
    attn = (q * head_dim ** -0.5) @ k.transpose(0, 1, 3, 2)
    table = self.param("relative_position_bias_table", nn.initializers.truncated_normal(0.02),
                       ((2 * self.window - 1) ** 2, self.heads))
    bias = table[_relative_position_index(self.window).reshape(-1)].reshape(t, t, self.heads)
    attn = attn + bias.transpose(2, 0, 1)[None]
    if mask is not None:  # (windows, t, t), windows ordered as in the batch
      nw = mask.shape[0]
      attn = attn.reshape(b // nw, nw, self.heads, t, t) + mask[None, :, None]
      attn = attn.reshape(b, self.heads, t, t)
    out = jax.nn.softmax(attn, axis=-1) @ v
    return nn.Dense(c, name="proj")(out.transpose(0, 2, 1, 3).reshape(b, t, c))


class SwinLayer(nn.Module):
  """One Swin layer; ``shifted`` (every second layer): windows shifted by half a window. A Python
  bool (unrolled) picks the code path; a traced one (scanned) rolls by ``shifted * shift`` and
  masks by ``shifted * mask``, which is the same arithmetic (a roll by 0 and a +0 mask)."""

  dim: int
  heads: int
  window: int
  mlp_ratio: float

  @nn.compact
  def __call__(self, x, shifted=False):
    n, h, wd, c = x.shape
    window, shift = min(self.window, h, wd), self.window // 2 if min(h, wd) > self.window else 0
    static = isinstance(shifted, bool)
    if static and not shifted:
      shift = 0
    y = nn.LayerNorm(epsilon=1e-5, name="norm1")(x)
    mask = None
    if shift:
      amount = shift if static else shifted.astype(jnp.int32) * shift
      y = jnp.roll(y, (-amount, -amount), axis=(1, 2))
      mask = jnp.asarray(_shift_mask(h, wd, window, shift))
      if not static:
        mask = jnp.where(shifted, mask, 0.0)
    y = WindowAttention(self.dim, self.heads, window, name="attn")(_windows(y, window), mask)
    y = _unwindows(y, window, n, h, wd)
    if shift:
      y = jnp.roll(y, (amount, amount), axis=(1, 2))
    x = x + y
    y = nn.LayerNorm(epsilon=1e-5, name="norm2")(x)
    y = nn.Dense(int(c * self.mlp_ratio), name="fc1")(y)
    y = nn.Dense(c, name="fc2")(nn.gelu(y, approximate=False))
    return x + y


class RSTB(nn.Module):
  """``depth`` Swin layers (``layer_i``, or ``layer_scan0`` scanned) and a conv, residual."""

  dim: int
  depth: int
  heads: int
  window: int
  mlp_ratio: float
  scan: bool = True
  remat: bool = False

  @nn.compact
  def __call__(self, x):
    y, _ = repeat_blocks(SwinLayer, x, self.depth, name="layer", scan=self.scan,
                         remat=self.remat, per_block=[i % 2 == 1 for i in range(self.depth)],
                         dim=self.dim, heads=self.heads, window=self.window,
                         mlp_ratio=self.mlp_ratio)
    return x + Conv(self.dim, (3, 3), name="conv")(y)


class SwinIR(nn.Module):
  scale: int = 4
  channels: int = 1
  embed_dim: int = 60
  depths: tuple[int, ...] = (6, 6, 6, 6)
  heads: int = 6
  window: int = 8
  mlp_ratio: float = 2.0
  data_mean: float = 0.5  # inputs are centred on it (the reference uses DIV2K's RGB mean)
  scan: bool = True  # each RSTB's Swin layers as one nn.scan (rstb_i/layer_scan0)
  remat: bool = False  # recompute each layer's activations in the backward pass

  @nn.compact
  def __call__(self, lr, train: bool = False):
    del train
    n, h, wd, _ = lr.shape
    pad_h, pad_w = -h % self.window, -wd % self.window
    x = jnp.pad(lr, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect") - self.data_mean
    shallow = Conv(self.embed_dim, (3, 3), name="conv_first")(x)
    y = nn.LayerNorm(epsilon=1e-5, name="patch_norm")(shallow)  # patch embedding's norm
    for i, depth in enumerate(self.depths):
      y = RSTB(self.embed_dim, depth, self.heads, self.window, self.mlp_ratio, self.scan,
               self.remat, name=f"rstb_{i}")(y)
    y = nn.LayerNorm(epsilon=1e-5, name="norm")(y)
    y = shallow + Conv(self.embed_dim, (3, 3), name="conv_after_body")(y)
    s = self.scale
    out = pixel_shuffle(Conv(self.channels * s * s, (3, 3), name="upsample")(y), s)
    return out[:, :h * s, :wd * s] + self.data_mean
