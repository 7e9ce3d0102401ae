"""Downstream measurements: the feature sizes a microscopist measures after upscaling, in nm.

The same standard analysis of every image, at its own pixel size (LR at LR's, SR and bicubic at
HR's), so that each image's sizes can be compared with HR's:

- ``particles``: bright objects (Otsu threshold, 8-connected components, those touching the
  border left out: their size is unknown); size = equivalent circular diameter.
- ``pores``: the same for dark objects (pores, voids, the gaps between islands).
- ``width``: the local width of the bright phase (ligaments, fibres, struts): twice the
  Euclidean distance to the background, read on the phase's skeleton (medial axis), the
  quantity nanoporous-gold and fibre-diameter tools report.

Agreement with HR (``agreement``): the relative error of the mean size, with a 95% bootstrap
interval over the objects of both images, and the 1-D Wasserstein distance between the two size
distributions divided by HR's mean size (0 = the same distribution).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, stats
from skimage import filters, morphology

KINDS = ("particles", "pores", "width")
MIN_AREA_PX = 4  # objects smaller than this are noise at any pixel size
BOOTSTRAP = 1000


def _phase(image: np.ndarray, bright: bool) -> np.ndarray:
  image = np.asarray(image, np.float64)
  if image.max() == image.min():
    return np.zeros(image.shape, bool)
  above = image > filters.threshold_otsu(image)
  return above if bright else ~above


def object_diameters(image: np.ndarray, pixel_nm: float, *, bright: bool = True) -> np.ndarray:
  """Equivalent circular diameters (nm) of the objects of one phase not touching the border."""
  labels, count = ndimage.label(_phase(image, bright), structure=np.ones((3, 3)))
  if not count:
    return np.zeros(0)
  border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
  areas = np.bincount(labels.ravel(), minlength=count + 1).astype(np.float64)
  keep = np.ones(count + 1, bool)
  keep[0], keep[border] = False, False
  areas = areas[keep & (areas >= MIN_AREA_PX)]
  return 2.0 * np.sqrt(areas / np.pi) * pixel_nm


def phase_widths(image: np.ndarray, pixel_nm: float) -> np.ndarray:
  """Local widths (nm) of the bright phase, one per skeleton pixel away from the border.

  A skeleton pixel at Euclidean distance d (pixel centres) from the background lies d - 1/2
  from the phase's edge, so the width there is 2d - 1 pixels (1 for a one-pixel line)."""
  phase = _phase(image, True)
  if not phase.any() or phase.all():
    return np.zeros(0)
  # Pixels at the frame's edge continue outside it: no false boundary there.
  distance = ndimage.distance_transform_edt(np.pad(phase, 1, mode="edge"))[1:-1, 1:-1]
  skeleton = morphology.skeletonize(phase)
  skeleton[:2], skeleton[-2:], skeleton[:, :2], skeleton[:, -2:] = False, False, False, False
  return (2.0 * distance[skeleton] - 1.0) * pixel_nm


def sizes(image: np.ndarray, pixel_nm: float, kind: str) -> np.ndarray:
  """The sizes (nm) of ``kind`` in a 2-D image in [0, 1] whose pixels are ``pixel_nm`` wide."""
  if kind == "particles":
    return object_diameters(image, pixel_nm, bright=True)
  if kind == "pores":
    return object_diameters(image, pixel_nm, bright=False)
  if kind == "width":
    return phase_widths(image, pixel_nm)
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
