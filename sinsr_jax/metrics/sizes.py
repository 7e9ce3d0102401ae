"""Downstream measurements: the feature sizes a microscopist measures after upscaling, in nm.

The same standard analysis of every image, at its own pixel size (LR at LR's, SR and bicubic at
HR's), so that each image's sizes can be compared with HR's:

- ``particles``: bright objects (8-connected components, those touching the border left
  out: their size is unknown); size = equivalent circular diameter.
- ``pores``: the same for dark objects (pores, voids, the gaps between islands).
- ``width``: the width of the bright phase (ligaments, fibres, lamellae) by the linear-intercept
  method: the lengths of its runs along every row and column.

Every image is analysed the same way at its own resolution: a one-pixel Gaussian, the IsoData
threshold (ImageJ's default), and specks and pinholes smaller than one LR pixel's area removed
(``min_area_px``), so that noise is never measured as features. The smoothing widens features
of 1-3 pixels; it does so in HR and SR alike.

Agreement with HR (``agreement``): the relative error of the mean size, with a 95% bootstrap
interval over the objects of both images, and the 1-D Wasserstein distance between the two size
distributions divided by HR's mean size (0 = the same distribution).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats
from skimage import filters

KINDS = ("particles", "pores", "width")
BOOTSTRAP = 1000


def _phase(image: np.ndarray, bright: bool, min_area_px: float) -> np.ndarray:
  """The bright (or dark) phase: Gaussian smoothing of one pixel (the light denoising any
  analysis starts with), the IsoData threshold, then specks and pinholes below ``min_area_px``
  removed (the same physical area at every pixel size, so noise does not count as features)."""
  image = ndimage.gaussian_filter(np.asarray(image, np.float64), 1.0)
  if image.max() == image.min():
    return np.zeros(image.shape, bool)
  phase = image > filters.threshold_isodata(image)
  phase = phase if bright else ~phase
  phase = _without_small(phase, min_area_px)
  return ~_without_small(~phase, min_area_px)


def _without_small(mask: np.ndarray, min_area_px: float) -> np.ndarray:
  labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
  areas = np.bincount(labels.ravel())
  return mask & (areas >= min_area_px)[labels]


def object_diameters(image: np.ndarray, pixel_nm: float, *, bright: bool = True,
                     min_area_px: float = 4.0) -> np.ndarray:
  """Equivalent circular diameters (nm) of the objects of one phase not touching the border."""
  labels, count = ndimage.label(_phase(image, bright, min_area_px), structure=np.ones((3, 3)))
  if not count:
    return np.zeros(0)
  border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
  areas = np.bincount(labels.ravel(), minlength=count + 1).astype(np.float64)
  keep = np.ones(count + 1, bool)
  keep[0], keep[border] = False, False
  return 2.0 * np.sqrt(areas[keep] / np.pi) * pixel_nm


def phase_widths(image: np.ndarray, pixel_nm: float, min_area_px: float = 4.0) -> np.ndarray:
  """Intercept lengths (nm) of the bright phase: the runs of phase pixels along every row and
  column, those cut by the frame left out (the linear-intercept method of metallography, here
  for ligaments, fibres and lamellae)."""
  phase = _phase(image, True, min_area_px)
  lengths = []
  for lines in (phase, phase.T):
    steps = np.diff(np.pad(lines.astype(np.int8), ((0, 0), (1, 1))), axis=1)
    for line in steps:
      starts, ends = np.flatnonzero(line == 1), np.flatnonzero(line == -1)
      inside = (starts > 0) & (ends < lines.shape[1])
      lengths.append(ends[inside] - starts[inside])
  return np.concatenate(lengths).astype(np.float64) * pixel_nm


def sizes(image: np.ndarray, pixel_nm: float, kind: str, min_area_px: float = 4.0) -> np.ndarray:
  """The sizes (nm) of ``kind`` in a 2-D image in [0, 1] whose pixels are ``pixel_nm`` wide;
  features below ``min_area_px`` pixels are noise."""
  if kind == "particles":
    return object_diameters(image, pixel_nm, bright=True, min_area_px=min_area_px)
  if kind == "pores":
    return object_diameters(image, pixel_nm, bright=False, min_area_px=min_area_px)
  if kind == "width":
    return phase_widths(image, pixel_nm, min_area_px)
  raise ValueError(f"unknown size kind {kind!r}; valid: {', '.join(KINDS)}")


def agreement(measured: np.ndarray, reference: np.ndarray, seed: int = 0) -> dict[str, float]:
  """``measured`` sizes against ``reference`` (HR's): relative error of the mean with its 95%
  bootstrap interval (``rel_error_lo``, ``rel_error_hi``), and ``w1_rel``; NaN where either set
  is empty."""
  measured, reference = np.asarray(measured, float), np.asarray(reference, float)
  out = {"count": float(len(measured)), "mean_nm": float(np.mean(measured)) if len(measured)
         else float("nan")}
  if not len(measured) or not len(reference):
    return {**out, "rel_error": float("nan"), "rel_error_lo": float("nan"),
            "rel_error_hi": float("nan"), "w1_rel": float("nan")}
  ref_mean = float(np.mean(reference))
  rng = np.random.default_rng(seed)
  boot = (rng.choice(measured, (BOOTSTRAP, len(measured))).mean(axis=1)
          / rng.choice(reference, (BOOTSTRAP, len(reference))).mean(axis=1) - 1.0)
  lo, hi = np.percentile(boot, [2.5, 97.5])
  return {**out, "rel_error": float(np.mean(measured) / ref_mean - 1.0),
          "rel_error_lo": float(lo), "rel_error_hi": float(hi),
          "w1_rel": float(stats.wasserstein_distance(measured, reference) / ref_mean)}
