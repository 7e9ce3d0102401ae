"""PSNR/SSIM with BasicSR conventions against skimage.metrics."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from sinsr_jax import metrics


def _pair(seed, shape, noise):
  rng = np.random.default_rng(seed)
  from scipy import ndimage

  hr = ndimage.gaussian_filter(rng.random(shape), (0, 2, 2, 0)).astype(np.float32)
  sr = np.clip(hr + noise * rng.standard_normal(shape), 0, 1).astype(np.float32)
  return sr, hr


def _pixels(x, border):
  return np.round(np.clip(x, 0, 1) * 255.0)[:, border:-border, border:-border, :]


@pytest.mark.parametrize("channels,noise", [(1, 0.02), (1, 0.1), (3, 0.05)])
def test_psnr_and_ssim_match_skimage(channels, noise):
  sr, hr = _pair(channels, (3, 48, 40, channels), noise)
  psnr = np.asarray(metrics.psnr_db(sr, hr, crop_border=4))
  ssim = np.asarray(metrics.ssim(sr, hr, crop_border=4))
  s, h = _pixels(sr, 4), _pixels(hr, 4)
  for i in range(3):
    ref_psnr = peak_signal_noise_ratio(h[i], s[i], data_range=255)
    ref_ssim = structural_similarity(h[i], s[i], gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255,
                                     channel_axis=-1)
    assert abs(psnr[i] - ref_psnr) < 1e-3
    assert abs(ssim[i] - ref_ssim) < 1e-4


def test_convention_arguments_matter():
  sr, hr = _pair(0, (1, 32, 32, 1), 0.05)
  sr[:, :2] = 1.0  # damage only the border
  cropped = float(metrics.psnr_db(sr, hr, crop_border=4)[0])
  uncropped_pixels = np.round(np.clip(sr, 0, 1) * 255) - np.round(np.clip(hr, 0, 1) * 255)
  full = 10 * np.log10(255**2 / np.mean(uncropped_pixels**2))
  assert cropped > full + 3  # the crop removes the damaged rows
  assert float(metrics.ssim(hr, hr, crop_border=4)[0]) == pytest.approx(1.0, abs=1e-6)
