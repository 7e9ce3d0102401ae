"""PSNR and SSIM with the SR community's (BasicSR's) conventions as explicit arguments.

Default convention: images in [0, 1] are mapped to [0, 255] and rounded to 8-bit levels (as
BasicSR's ``tensor2img`` does before measuring), ``crop_border`` pixels are removed on every side
(BasicSR uses the scale factor), and SSIM uses MATLAB's 11x11 Gaussian window (sigma 1.5,
K1 = 0.01, K2 = 0.03, 'valid' filtering), computed per channel and averaged.
"""

from __future__ import annotations

import dm_pix
import jax.numpy as jnp

CONVENTION = ("[0,255] 8-bit, border crop = scale, SSIM: 11x11 Gaussian window sigma 1.5, "
              "K1=0.01, K2=0.03 (MATLAB/BasicSR)")


def to_pixel_range(images, *, crop_border: int, data_range: float = 255.0,
                   quantize: bool = True):
  """Maps NHWC [0, 1] images to [0, data_range], optionally rounded, borders cropped."""
  x = jnp.clip(jnp.asarray(images, jnp.float32), 0.0, 1.0) * data_range
  if quantize:
    x = jnp.round(x)
  if crop_border:
    x = x[..., crop_border:-crop_border, crop_border:-crop_border, :]
  return x


def psnr_db(sr, hr, *, crop_border: int, data_range: float = 255.0, quantize: bool = True):
  """Per-image PSNR in dB of NHWC [0, 1] batches; returns shape (N,)."""
  sr = to_pixel_range(sr, crop_border=crop_border, data_range=data_range, quantize=quantize)
  hr = to_pixel_range(hr, crop_border=crop_border, data_range=data_range, quantize=quantize)
  mse = jnp.mean((sr - hr) ** 2, axis=(-3, -2, -1))
  return 10.0 * jnp.log10(data_range**2 / jnp.maximum(mse, 1e-10))


def ssim(sr, hr, *, crop_border: int, data_range: float = 255.0, quantize: bool = True):
  """Per-image SSIM of NHWC [0, 1] batches (MATLAB window); returns shape (N,)."""
  sr = to_pixel_range(sr, crop_border=crop_border, data_range=data_range, quantize=quantize)
  hr = to_pixel_range(hr, crop_border=crop_border, data_range=data_range, quantize=quantize)
  # Normalising by data_range first keeps float32 variances well conditioned.
  return dm_pix.ssim(sr / data_range, hr / data_range, max_val=1.0, filter_size=11,
                     filter_sigma=1.5, k1=0.01, k2=0.03)
