"""MATLAB-compatible bicubic resizing (the SR community's degradation and baseline).

MATLAB's ``imresize`` is separable: along each axis every output pixel is a weighted sum of
input pixels, weights from Keys' cubic kernel (a = -0.5), widened by 1/scale when downscaling
(antialiasing), with symmetric padding at the borders. We build that weighting once per
(input length, output length) as a dense matrix, so one implementation serves numpy (the input
pipeline) and jax.numpy (the models' bicubic skip path, under jit with static shapes).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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


# --- SEM degradation model: probe blur -> bicubic sampling -> acquisition noise -------------

Range = tuple[float, float]


def as_range(value, name: str) -> Range:
  """A fixed value ``v``, ``(v,)`` or a range ``(lo, hi)`` -> (lo, hi), checked non-negative."""
  values = tuple(value) if isinstance(value, (tuple, list)) else (value,)
  if len(values) not in (1, 2):
    raise ValueError(f"{name} must be a value or a (low, high) range, got {value!r}")
  lo, hi = float(values[0]), float(values[-1])
  if lo < 0 or hi < lo:
    raise ValueError(f"{name} must satisfy 0 <= low <= high, got {value!r}")
  return lo, hi


@dataclass(frozen=True)
class SEMDegradation:
  """How an LR micrograph is made from an HR one; each parameter is sampled per image.

  blur_sigma: Gaussian blur (HR pixels) before downscaling, a wider probe; 0 = none.
  dose: Poisson shot noise, electrons per pixel at full brightness; 0 = noiseless.
  gamma_shape: multiplicative Gamma speckle of mean 1 and shape k (fast dwell times); 0 = none.
  read_noise: Gaussian detector noise sigma on the [0, 1] scale; 0 = none.
  """

  scale: int
  blur_sigma: Range = (0.0, 0.0)
  dose: Range = (0.0, 0.0)
  gamma_shape: Range = (0.0, 0.0)
  read_noise: Range = (0.0, 0.0)
  quantize: bool = True

  @classmethod
  def from_config(cls, scale: int, cfg, quantize: bool) -> SEMDegradation:
    return cls(scale=scale, quantize=quantize,
               **{f: as_range(cfg[f], f"data.degradation.{f}")
                  for f in ("blur_sigma", "dose", "gamma_shape", "read_noise")})

  def describe(self) -> dict:
    return {"resize": f"MATLAB bicubic x1/{self.scale}", "blur_sigma": self.blur_sigma,
            "dose": self.dose, "gamma_shape": self.gamma_shape, "read_noise": self.read_noise,
            "quantize_8bit": self.quantize,
            "order": "blur(HR) -> bicubic downscale -> Poisson(dose) -> Gamma speckle -> "
                     "+ Gaussian read noise -> clip -> 8-bit"}

  def __call__(self, hr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HR (H, W, C) in [0, 1] -> LR (H/s, W/s, C). Deterministic given ``rng``."""
    draw = lambda r: r[0] if r[0] == r[1] else rng.uniform(*r)
    sigma = draw(self.blur_sigma)
    if sigma > 0:
      hr = ndimage.gaussian_filter(hr, (sigma, sigma, 0), mode="reflect")
    lr = bicubic_downscale(hr, self.scale)
    dose = draw(self.dose)
    if dose > 0:
      lr = rng.poisson(np.clip(lr, 0.0, 1.0) * dose) / dose
    shape = draw(self.gamma_shape)
    if shape > 0:
      lr = lr * rng.gamma(shape, 1.0 / shape, lr.shape)
    read = draw(self.read_noise)
    if read > 0:
      lr = lr + rng.normal(0.0, read, lr.shape)
    lr = lr.astype(np.float32)
    return quantize_8bit(lr) if self.quantize else np.clip(lr, 0.0, 1.0)
