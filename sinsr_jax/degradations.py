"""MATLAB-compatible bicubic resizing (the SR community's degradation and baseline).

MATLAB's ``imresize`` is separable: along each axis every output pixel is a weighted sum of
input pixels, weights from Keys' cubic kernel (a = -0.5), widened by 1/scale when downscaling
(antialiasing), with symmetric padding at the borders. We build that weighting once per
(input length, output length) as a dense matrix, so one implementation serves numpy (the input
pipeline) and jax.numpy (the models' bicubic skip path, under jit with static shapes).
"""

from __future__ import annotations

import functools

import numpy as np

SUPPORTED_SCALES = (2, 3, 4)


def _cubic(x: np.ndarray) -> np.ndarray:
  absx = np.abs(x)
  absx2, absx3 = absx**2, absx**3
  return ((1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1) +
          (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2)))


@functools.lru_cache(maxsize=256)
def resize_matrix(in_len: int, out_len: int) -> np.ndarray:
  """Returns the (out_len, in_len) float32 matrix of MATLAB's bicubic imresize along one axis."""
  if in_len < 1 or out_len < 1:
    raise ValueError(f"cannot resize length {in_len} to {out_len}")
  scale = out_len / in_len
  kernel_width = 4.0 / scale if scale < 1 else 4.0
  x = np.arange(1, out_len + 1, dtype=np.float64)
  u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # output pixel centre in input coordinates (1-based)
  left = np.floor(u - kernel_width / 2)
  taps = int(np.ceil(kernel_width)) + 2
  indices = left[:, None] + np.arange(taps)[None, :]
  distance = u[:, None] - indices
  weights = scale * _cubic(distance * scale) if scale < 1 else _cubic(distance)
  weights /= weights.sum(axis=1, keepdims=True)
  # Symmetric padding: index 0 maps to 1, in_len + 1 to in_len, and so on (1-based).
  mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
  cols = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_len)]
  matrix = np.zeros((out_len, in_len), np.float64)
  np.add.at(matrix, (np.repeat(np.arange(out_len), taps), cols.ravel()), weights.ravel())
  return matrix.astype(np.float32)


def imresize(images, out_hw: tuple[int, int], xp=np):
  """Bicubic-resizes ``images`` (..., H, W, C) to (..., out_h, out_w, C), MATLAB-style.

  ``xp`` is numpy or jax.numpy; values are not clipped (bicubic overshoots slightly).
  """
  in_h, in_w = images.shape[-3], images.shape[-2]
  mat_h = xp.asarray(resize_matrix(in_h, out_hw[0]))
  mat_w = xp.asarray(resize_matrix(in_w, out_hw[1]))
  kwargs = {} if xp is np else {"precision": "highest"}
  out = xp.einsum("oh,...hwc->...owc", mat_h, images, **kwargs)
  return xp.einsum("pw,...owc->...opc", mat_w, out, **kwargs)


def bicubic_downscale(hr, scale: int, xp=np):
  """LR = MATLAB bicubic downscale of ``hr`` (..., H, W, C) by an integer ``scale``."""
  h, w = hr.shape[-3], hr.shape[-2]
  if h % scale or w % scale:
    raise ValueError(f"HR size {h}x{w} is not divisible by scale {scale}")
  return imresize(hr, (h // scale, w // scale), xp=xp)


def bicubic_upscale(lr, scale: int, xp=np):
  """MATLAB bicubic upscale of ``lr`` (..., h, w, C) by an integer ``scale``."""
  return imresize(lr, (lr.shape[-3] * scale, lr.shape[-2] * scale), xp=xp)


def quantize_8bit(images: np.ndarray) -> np.ndarray:
  """Clips to [0, 1] and rounds to 8-bit levels, as when an LR image is stored as PNG/JPEG."""
  return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0
