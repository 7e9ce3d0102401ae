"""Structure metrics: does SR keep the edges and particles a microscopist measures?

- GMSD (Xue et al., IEEE TIP 2014): the standard deviation of the gradient-magnitude
  similarity map; 0 for identical images, larger when edges are lost or displaced.
- Edge F1: Canny edges of SR against those of HR, a pixel matched when the other image has an
  edge within ``tolerance`` pixels (chessboard distance); 1 for identical images.
- Particle analysis: segment (Otsu threshold + connected components, or given labels such as
  sem_synthetic's stored masks) and compare SR's particles with HR's: count error and the 1-D
  Wasserstein distance between the particle-area distributions (pixels).

Per-image functions on 2-D arrays in [0, data_range]; images are scored one at a time because
Canny and labelling are sequential algorithms (skimage/scipy), and GMSD is cheap.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats
from skimage import feature, filters

_PREWITT = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0  # d/dx as the GMSD paper's MATLAB code
GMSD_T = 170.0  # the paper's stability constant, for images in [0, 255]


def gmsd(sr: np.ndarray, hr: np.ndarray, data_range: float = 1.0) -> float:
  """GMSD as the authors' MATLAB code: [0, 255] scale, 2x2 mean filter and 2x downsampling,
  Prewitt gradient magnitudes, similarity (2 m1 m2 + T) / (m1^2 + m2^2 + T), its std."""
  def magnitude(image):
    image = np.asarray(image, np.float64) * (255.0 / data_range)
    # MATLAB conv2(Y, ones(2)/4, 'same') then Y(1:2:end, 1:2:end).
    smoothed = ndimage.correlate(image, np.full((2, 2), 0.25), mode="constant", origin=(-1, -1))
    small = smoothed[::2, ::2]
    # conv2(..., 'same') flips the kernel: correlate with the flipped Prewitt kernels.
    gx = ndimage.correlate(small, _PREWITT[::-1, ::-1], mode="constant")
    gy = ndimage.correlate(small, _PREWITT.T[::-1, ::-1], mode="constant")
    return np.sqrt(gx * gx + gy * gy)

  m1, m2 = magnitude(sr), magnitude(hr)
  similarity = (2 * m1 * m2 + GMSD_T) / (m1 * m1 + m2 * m2 + GMSD_T)
  return float(np.std(similarity, ddof=1))  # MATLAB std2


def edge_f1(sr: np.ndarray, hr: np.ndarray, *, sigma: float = 1.5, tolerance: int = 1) -> float:
  """F1 of SR's Canny edges against HR's, matched within ``tolerance`` pixels.

  Two images without edges score 1 (nothing to lose); one without, 0.
  """
  sr_edges = feature.canny(np.asarray(sr, np.float64), sigma=sigma)
  hr_edges = feature.canny(np.asarray(hr, np.float64), sigma=sigma)
  if not sr_edges.any() and not hr_edges.any():
    return 1.0
  if not sr_edges.any() or not hr_edges.any():
    return 0.0
  near = np.ones((2 * tolerance + 1,) * 2, bool)
  precision = np.mean(ndimage.binary_dilation(hr_edges, near)[sr_edges])
  recall = np.mean(ndimage.binary_dilation(sr_edges, near)[hr_edges])
  return float(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))


def segment_particles(image: np.ndarray) -> np.ndarray:
  """Labels of bright particles: Otsu threshold, then 8-connected components (0 = background)."""
  image = np.asarray(image, np.float64)
  if image.max() == image.min():
    return np.zeros(image.shape, np.int32)
  labels, _ = ndimage.label(image > filters.threshold_otsu(image), structure=np.ones((3, 3)))
  return labels


def particle_areas(labels: np.ndarray) -> np.ndarray:
  return np.bincount(labels.ravel())[1:].astype(np.float64)  # label 0 is background


def particle_agreement(sr: np.ndarray, hr: np.ndarray,
                       hr_labels: np.ndarray | None = None) -> dict[str, float]:
  """SR's particles against HR's (or ``hr_labels``, e.g. stored instance masks).

  Returns ``count_sr``, ``count_hr``, ``count_error`` (|difference| / max(count_hr, 1)) and
  ``area_wasserstein`` (pixels; 0 when both have no particles, the other's mean area when one
  has none).
  """
  sr_areas = particle_areas(segment_particles(sr))
  labels = segment_particles(hr) if hr_labels is None else np.asarray(hr_labels)
  hr_areas = particle_areas(labels)
  hr_areas = hr_areas[hr_areas > 0]  # instance ids need not be contiguous
  if len(sr_areas) and len(hr_areas):
    distance = float(stats.wasserstein_distance(sr_areas, hr_areas))
  else:
    distance = float(np.mean(sr_areas) if len(sr_areas) else
                     np.mean(hr_areas) if len(hr_areas) else 0.0)
  return {"count_sr": float(len(sr_areas)), "count_hr": float(len(hr_areas)),
          "count_error": abs(len(sr_areas) - len(hr_areas)) / max(len(hr_areas), 1),
          "area_wasserstein": distance}
