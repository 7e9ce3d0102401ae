"""Image statistics that separate real SEM micrographs from synthetic ones (pure numpy).

Every function takes a 2-D gray image in [0, 1] (float) and returns plain floats, so the
statistics of sem_synthetic versions and of real frames can be compared in one table
(benchmarks/realism.py).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats

# Mid-frequency band (cycles/px) of the spectrum fit: above the frame-size scale, below the band
# where noise and the probe dominate.
SLOPE_BAND = (0.02, 0.2)


def spectrum_slope(image: np.ndarray, band: tuple[float, float] = SLOPE_BAND) -> float:
  """Slope of the log-log radially averaged power spectrum over `band` (natural images ~ -2;
  white noise 0)."""
  h, w = image.shape
  window = np.outer(np.hanning(h), np.hanning(w))  # no spectral leakage from the frame edges
  power = np.abs(np.fft.fft2((image - image.mean()) * window)) ** 2
  f = np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))
  edges = np.geomspace(band[0], band[1], 16)
  which = np.digitize(f.ravel(), edges)
  sums = np.bincount(which, power.ravel(), len(edges) + 1)[1:-1]
  counts = np.bincount(which, minlength=len(edges) + 1)[1:-1]
  ok = counts > 0
  centres = np.sqrt(edges[:-1] * edges[1:])[ok]
  return float(np.polyfit(np.log(centres), np.log(sums[ok] / counts[ok] + 1e-20), 1)[0])


def gradient_stats(image: np.ndarray) -> dict[str, float]:
  """Sobel gradient magnitude: mean, median, 99th percentile and (excess) kurtosis."""
  mag = np.hypot(ndimage.sobel(image, 0), ndimage.sobel(image, 1))[1:-1, 1:-1].ravel()
  return {"grad_mean": float(mag.mean()), "grad_p50": float(np.median(mag)),
          "grad_p99": float(np.percentile(mag, 99)), "grad_kurtosis": float(stats.kurtosis(mag))}


def local_contrast(image: np.ndarray, window: int = 16) -> dict[str, float]:
  """Std in non-overlapping window x window blocks: median and spread (90th - 10th pct)."""
  h, w = (s - s % window for s in image.shape)
  blocks = image[:h, :w].reshape(h // window, window, w // window, window).std(axis=(1, 3))
  p10, p50, p90 = np.percentile(blocks, [10, 50, 90])
  return {"contrast_median": float(p50), "contrast_spread": float(p90 - p10)}


def noise_sigma(image: np.ndarray) -> float:
  """Noise std from the MAD of the finest diagonal Haar detail (Donoho's estimator, what
  skimage.restoration.estimate_sigma does with pywt)."""
  h, w = (s - s % 2 for s in image.shape)
  x = image[:h, :w]
  diagonal = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2.0
  return float(np.median(np.abs(diagonal)) / 0.6745)


def image_stats(image: np.ndarray) -> dict[str, float]:
  """Every statistic of one gray image in [0, 1]."""
  image = np.asarray(image, np.float64)
  return {"spectrum_slope": spectrum_slope(image), **gradient_stats(image),
          **local_contrast(image), "noise_sigma": noise_sigma(image)}


def summarize(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
  """Per statistic over images: median, 10th and 90th percentiles."""
  out = {}
  for key in rows[0]:
    values = np.array([r[key] for r in rows])
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    out[key] = {"median": float(p50), "p10": float(p10), "p90": float(p90)}
  return out
