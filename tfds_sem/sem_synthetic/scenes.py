"""Procedural SEM-like scenes: pure functions of a numpy Generator, no I/O.

Each scene kind draws labelled objects (an instance mask) and renders them as a secondary-
electron (SE) image: material contrast, topographic shading, the SE edge effect (edges and tilted
surfaces emit more electrons, so rims are bright), a finite probe (Gaussian blur), a slowly
varying detector background, Poisson shot noise at a dose and Gaussian read noise.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import draw, measure

SCENE_KINDS = ("particles", "fibres", "porous", "patterned")


def _particles(rng: np.random.Generator, size: int) -> np.ndarray:
  mask = np.zeros((size, size), np.int32)
  count = int(rng.integers(size // 16, size // 6))
  r_mean = rng.uniform(0.02, 0.06) * size
  for label in range(1, count + 1):
    r = max(2.0, rng.normal(r_mean, 0.3 * r_mean))
    rr, cc = draw.ellipse(rng.uniform(0, size), rng.uniform(0, size), r * rng.uniform(0.7, 1.0),
                          r, shape=mask.shape, rotation=rng.uniform(0, np.pi))
    mask[rr, cc] = label
  return mask


def _fibres(rng: np.random.Generator, size: int) -> np.ndarray:
  mask = np.zeros((size, size), np.int32)
  count = int(rng.integers(3, 9))
  for label in range(1, count + 1):
    width = rng.uniform(1.5, 0.025 * size + 2)
    pos = rng.uniform(0, size, 2)
    angle = rng.uniform(0, 2 * np.pi)
    curvature = rng.normal(0, 0.02)
    for _ in range(int(2.5 * size)):
      rr, cc = draw.disk(tuple(pos), width, shape=mask.shape)
      mask[rr, cc] = label
      angle += curvature + rng.normal(0, 0.03)
      pos = pos + np.array([np.sin(angle), np.cos(angle)])
  return mask


def _porous(rng: np.random.Generator, size: int) -> np.ndarray:
  field = ndimage.gaussian_filter(rng.standard_normal((size, size)), rng.uniform(2.0, 5.0))
  pores = field > np.quantile(field, rng.uniform(0.65, 0.85))
  return measure.label(pores, connectivity=1).astype(np.int32)


def _patterned(rng: np.random.Generator, size: int) -> np.ndarray:
  mask = np.zeros((size, size), np.int32)
  pitch = rng.uniform(0.06, 0.14) * size
  feature = pitch * rng.uniform(0.25, 0.4)
  theta = rng.uniform(-0.2, 0.2)
  offset = rng.uniform(0, pitch, 2)
  rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
  squares = rng.random() < 0.5
  n = int(np.ceil(1.5 * size / pitch))
  label = 0
  for i in range(-n, n):
    for j in range(-n, n):
      centre = rot @ (np.array([i, j]) * pitch) + offset + size / 2
      if not (-feature <= centre[0] < size + feature and -feature <= centre[1] < size + feature):
        continue
      label += 1
      if squares:
        corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * feature
        corners = corners @ rot.T + centre
        rr, cc = draw.polygon(corners[:, 0], corners[:, 1], shape=mask.shape)
      else:
        rr, cc = draw.disk(tuple(centre), feature, shape=mask.shape)
      mask[rr, cc] = label
  return measure.label(mask > 0, connectivity=1).astype(np.int32) if label else mask


_DRAW = {"particles": _particles, "fibres": _fibres, "porous": _porous, "patterned": _patterned}


def render_se_image(rng: np.random.Generator, mask: np.ndarray, kind: str) -> np.ndarray:
  """Renders an instance mask as a noisy SE micrograph in [0, 1] (float32, HxW)."""
  size = mask.shape[0]
  objects = (mask > 0).astype(np.float64)
  # Pores are holes: dark, with bright rims around them on the surrounding matrix.
  background, material = (0.55, 0.12) if kind == "porous" else (0.18, rng.uniform(0.45, 0.65))
  # Topography: a dome over each object from its distance transform, shaded by its slope.
  height = ndimage.distance_transform_edt(objects)
  height = np.sqrt(height / (height.max() + 1e-6))
  slope = np.hypot(*np.gradient(ndimage.gaussian_filter(height, 1.0)))
  rim = np.hypot(*np.gradient(ndimage.gaussian_filter(objects, rng.uniform(0.8, 1.5))))
  image = background + (material - background) * objects
  image += rng.uniform(0.6, 1.2) * slope + rng.uniform(0.8, 1.6) * rim  # SE edge brightening
  image += 0.05 * ndimage.gaussian_filter(rng.standard_normal((size, size)), size / 8) * size / 8
  image = ndimage.gaussian_filter(image, rng.uniform(0.5, 0.9))  # probe size
  image = np.clip(image, 0.0, 1.0)
  dose = rng.uniform(800.0, 3000.0)  # electrons per pixel at full brightness
  image = rng.poisson(image * dose) / dose + rng.normal(0, 0.004, image.shape)
  return np.clip(image, 0.0, 1.0).astype(np.float32)


def render_scene(rng: np.random.Generator, size: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
  """Draws one scene: (uint8 image HxWx1, uint16 instance mask HxWx1, 0 = background)."""
  if kind not in _DRAW:
    raise ValueError(f"unknown scene kind {kind!r}; valid: {', '.join(SCENE_KINDS)}")
  mask = _DRAW[kind](rng, size)
  image = render_se_image(rng, mask, kind)
  image_u8 = np.round(image * 255.0).astype(np.uint8)
  return image_u8[..., None], np.minimum(mask, 65535).astype(np.uint16)[..., None]
