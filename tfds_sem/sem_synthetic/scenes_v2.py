"""sem_synthetic v2 scenes: closer to real SEM micrographs. Pure functions of a numpy Generator.

Each kind draws a surface (height map in px, material SE yield) and its instance mask; the
feature size of each image is drawn log-uniformly over about two decades (2 px to 200+ px),
because real frames span four decades of magnification: some images are fine-textured, some
coarse. `acquisition` turns the surface into a noisy 8-bit micrograph.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage import measure

from tfds_sem.sem_synthetic.acquisition import (
  acquire,
  fractal_field,
  gaussian_field,
  log_uniform,
  se_signal,
)

SCENE_KINDS_V2 = ("grains", "nanoporous", "cracked_film", "particles", "fibres", "patterned",
                  "texture", "photo")

# scikit-image sample photographs that ship with the package (no download) and are public
# domain or CC0 by their docstrings; `photo` scenes are crops of these.
PHOTOS = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass",
          "gravel", "hubble_deep_field", "immunohistochemistry", "retina", "rocket", "text")


def _substrate(rng: np.random.Generator, size: int) -> np.ndarray:
  """A rough substrate height: power-law texture of random roughness (px)."""
  return log_uniform(rng, 0.05, 1.5) * fractal_field(rng, size, rng.uniform(2.0, 3.5),
                                                     cutoff=rng.uniform(0.5, 2.0))


def _voronoi(rng: np.random.Generator, size: int, cell: float, warp: float):
  """Warped Voronoi cells of mean diameter `cell`: (label HxW, boundary distance HxW px)."""
  n = int(np.clip((size / cell) ** 2 * 1.3, 3, 4000))
  margin = cell
  seeds = rng.uniform(-margin, size + margin, (n, 2))
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
  if warp > 0:  # grain boundaries are not straight lines
    sigma = max(cell / 2, 2.0)
    yy += warp * cell * gaussian_field(rng, size, sigma)
    xx += warp * cell * gaussian_field(rng, size, sigma)
  dist, idx = cKDTree(seeds).query(np.stack([yy.ravel(), xx.ravel()], 1), k=2)
  labels = idx[:, 0].reshape(size, size)
  # Distance to the bisector of the two nearest seeds.
  gap = np.linalg.norm(seeds[idx[:, 0]] - seeds[idx[:, 1]], axis=1)
  boundary = ((dist[:, 1] ** 2 - dist[:, 0] ** 2) / (2 * gap + 1e-9)).reshape(size, size)
  return labels, boundary


def _relabel(labels: np.ndarray) -> np.ndarray:
  return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int32) + 1


def _stamp(mask, height, material, label, centre, radii, angle, power, dome, yield_):
  """Paints one convex particle (superellipse: power 2 ellipse, >2 cube-like, <2 faceted) on
  top of what is there, with a dome of height dome * radius."""
  size = mask.shape[0]
  r = max(radii)
  y0, y1 = int(max(0, centre[0] - r - 1)), int(min(size, centre[0] + r + 2))
  x0, x1 = int(max(0, centre[1] - r - 1)), int(min(size, centre[1] + r + 2))
  if y0 >= y1 or x0 >= x1:
    return
  yy, xx = np.mgrid[y0:y1, x0:x1]
  dy, dx = yy - centre[0], xx - centre[1]
  u = (np.cos(angle) * dy + np.sin(angle) * dx) / radii[0]
  v = (-np.sin(angle) * dy + np.cos(angle) * dx) / radii[1]
  q = (np.abs(u) ** power + np.abs(v) ** power) ** (2.0 / power)
  inside = q < 1.0
  top = height[y0:y1, x0:x1].max() if inside.any() else 0.0
  h = np.where(inside, top + dome * min(radii) * np.sqrt(np.clip(1.0 - q, 0, 1)), -np.inf)
  over = h > height[y0:y1, x0:x1]
  mask[y0:y1, x0:x1][over] = label
  height[y0:y1, x0:x1][over] = h[over]
  material[y0:y1, x0:x1][over] = yield_


def _scatter_particles(rng, mask, height, material, median_r, count, first_label):
  size = mask.shape[0]
  spread = rng.uniform(0.2, 0.9)  # log-normal width of the size distribution
  radii = np.clip(median_r * np.exp(spread * rng.standard_normal(count)), 0.8, 0.45 * size)
  if rng.random() < 0.4:  # agglomerates around a few parents
    parents = rng.uniform(0, size, (int(rng.integers(1, 8)), 2))
    centres = parents[rng.integers(0, len(parents), count)]
    centres = centres + rng.normal(0, rng.uniform(0.03, 0.15) * size, (count, 2))
  else:
    centres = rng.uniform(0, size, (count, 2))
  power = float(rng.choice([2.0, 2.0, 1.3, 4.0, 8.0]))
  base = rng.uniform(0.35, 0.9)
  for i in range(count):
    aspect = rng.uniform(0.6, 1.0)
    _stamp(mask, height, material, first_label + i, centres[i], (radii[i], radii[i] * aspect),
           rng.uniform(0, np.pi), power, rng.uniform(0.4, 1.0),
           float(np.clip(base + rng.normal(0, 0.08), 0.05, 1.2)))


def _grains(rng, size):
  cell = log_uniform(rng, 6.0, 220.0)
  labels, boundary = _voronoi(rng, size, cell, rng.uniform(0.0, 0.25))
  n = labels.max() + 1
  tone = rng.uniform(0.2, 0.9, n)  # channelling contrast: one level per crystal orientation
  material = tone[labels]
  # Annealing twins: parallel bands of another orientation crossing a grain.
  phi, period = rng.uniform(0, np.pi, n), cell * rng.uniform(0.08, 0.5, n)
  twinned = rng.random(n) < (rng.uniform(0.2, 0.7) if cell > 12 else 0.0)
  yy, xx = np.mgrid[0:size, 0:size]
  t = (np.cos(phi)[labels] * yy + np.sin(phi)[labels] * xx) / period[labels]
  band = (np.floor(t + 0.35 * np.sin(1.7 * t + phi[labels] * 5)) % 2 == 1) & twinned[labels]
  material = np.where(band, rng.uniform(0.2, 0.9, n)[labels], material)
  material = material + 0.05 * gaussian_field(rng, size, max(cell / 3, 2))
  groove = rng.uniform(0.3, 1.5)
  height = -rng.uniform(0.5, 3.0) * np.exp(-(boundary / groove) ** 2) + 0.2 * _substrate(rng, size)
  mask = _relabel(labels)
  # Pores (dark holes) and inclusions (second-phase particles).
  extra = mask.max() + 1
  for i in range(int(rng.poisson(rng.choice([0.0, 5.0, 30.0])))):
    r = max(0.8, log_uniform(rng, 0.6, 0.2 * cell + 1.0))
    c = rng.uniform(0, size, 2)
    d2 = (yy - c[0]) ** 2 + (xx - c[1]) ** 2
    inside = d2 < r * r
    if rng.random() < 0.5:  # pore
      height = np.where(inside, height - 2.0 * r, height)
    else:  # inclusion
      material = np.where(inside, rng.uniform(0.05, 1.0), material)
      height = np.where(inside, height + 0.5 * np.sqrt(np.maximum(r * r - d2, 0)), height)
    mask[inside] = extra + i
  return mask, height, np.clip(material, 0.02, 1.2)


def _nanoporous(rng, size):
  sigma = log_uniform(rng, 1.0, 30.0)  # ligament/pore size ~ 3 sigma
  field = gaussian_field(rng, size, sigma)
  level = rng.uniform(-0.4, 0.4)
  ligament = field > level
  height = np.clip(field - level, -1.0, 1.0) * sigma * rng.uniform(0.8, 2.0)
  # The next layer down shows through the pores, dimmer.
  deeper = gaussian_field(rng, size, sigma) > level
  height = np.where(ligament, height, np.where(deeper, -1.2, -3.0) * sigma)
  material = np.where(ligament, rng.uniform(0.5, 0.9), rng.uniform(0.2, 0.5))
  material = material * (1.0 + 0.1 * gaussian_field(rng, size, 3 * sigma))
  mask = measure.label(~ligament, connectivity=1).astype(np.int32)
  return mask, height, material


def _cracked_film(rng, size):
  cell = log_uniform(rng, 15.0, 300.0)
  labels, boundary = _voronoi(rng, size, cell, rng.uniform(0.05, 0.3))
  width = log_uniform(rng, 0.4, 4.0)
  # Cracks that stop and branch: a boundary cracks where a smooth field allows it.
  allowed = gaussian_field(rng, size, cell / 2) > rng.uniform(-1.5, 0.3)
  crack = (boundary < width) & allowed
  film = _substrate(rng, size) + rng.uniform(0.0, 0.3) * gaussian_field(rng, size, 1.0)
  curl = rng.uniform(0.0, 3.0) * np.exp(-boundary / (0.1 * cell)) * allowed  # edges lift off
  height = np.where(crack, -3.0 * width - 2.0, film + curl)
  material = np.where(crack, 0.1, rng.uniform(0.3, 0.7))
  mask = measure.label(~crack, connectivity=1).astype(np.int32)
  count = int(rng.poisson(rng.choice([0.0, 10.0, 60.0])))
  if count:
    _scatter_particles(rng, mask, height, material, log_uniform(rng, 1.0, 12.0), count,
                       mask.max() + 1)
  return mask, height, material


def _particles(rng, size):
  median_r = log_uniform(rng, 1.0, 60.0)
  coverage = rng.uniform(0.05, 0.5)
  count = int(np.clip(coverage * size * size / (np.pi * median_r ** 2), 1, 1500))
  mask = np.zeros((size, size), np.int32)
  height = _substrate(rng, size)
  material = np.full((size, size), rng.uniform(0.1, 0.5))
  _scatter_particles(rng, mask, height, material, median_r, count, 1)
  return mask, height, material


def _fibres(rng, size):
  mask = np.zeros((size, size), np.int32)
  height = _substrate(rng, size)
  material = np.full((size, size), rng.uniform(0.1, 0.45))
  width = log_uniform(rng, 0.7, 30.0)
  count = int(np.clip(rng.poisson(size / (4 * width) + 2), 1, 40))
  stiffness = log_uniform(rng, 0.003, 0.1)  # wires are straight, fibres wander
  for label in range(1, count + 1):
    w = max(0.6, width * rng.uniform(0.6, 1.4))
    steps = int(3 * size)
    angle = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, stiffness, steps))
    path = rng.uniform(0, size, 2) + np.cumsum(np.stack([np.sin(angle), np.cos(angle)], 1), 0)
    path = path - path[steps // 2] + rng.uniform(0, size, 2)  # centre the fibre in the frame
    pad = int(w) + 2
    lo = np.maximum(np.floor(path.min(0)).astype(int) - pad, 0)
    hi = np.minimum(np.ceil(path.max(0)).astype(int) + pad, size)
    if np.any(hi <= lo):
      continue
    line = np.ones(hi - lo, bool)
    ij = np.round(path).astype(int) - lo
    ok = np.all((ij >= 0) & (ij < hi - lo), 1)
    line[ij[ok, 0], ij[ok, 1]] = False
    d = ndimage.distance_transform_edt(line)
    cyl = np.where(d < w, np.sqrt(np.maximum(w * w - d * d, 0)), -np.inf)
    region = (slice(lo[0], hi[0]), slice(lo[1], hi[1]))
    top = cyl + np.where(d < w, height[region].max() * rng.uniform(0.5, 1.0), 0)
    over = top > height[region]
    mask[region][over] = label
    height[region][over] = top[over]
    material[region][over] = rng.uniform(0.3, 0.9)
  return mask, height, material


def _patterned(rng, size):
  pitch = log_uniform(rng, 5.0, 150.0)
  theta = rng.uniform(-0.3, 0.3) if rng.random() < 0.5 else 0.0
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
  u = (np.cos(theta) * yy + np.sin(theta) * xx) / pitch + rng.uniform(0, 1)
  v = (-np.sin(theta) * yy + np.cos(theta) * xx) / pitch + rng.uniform(0, 1)
  kind = rng.choice(["pillars", "holes", "lines", "hex"])
  if kind == "hex":  # offset every other row by half a pitch
    v = v + 0.5 * (np.floor(u) % 2)
  iu, iv = np.floor(u), np.floor(v)
  du, dv = u - iu - 0.5, v - iv - 0.5
  n = int(np.ceil(2 * size / pitch)) + 4
  jitter = 1.0 + rng.uniform(0.0, 0.1) * rng.standard_normal((n, n))  # fabrication scatter
  cell_id = (iu.astype(int) % n) * n + (iv.astype(int) % n)
  fill = rng.uniform(0.25, 0.45) * jitter.ravel()[cell_id]
  if kind == "lines":
    inside = np.abs(du) < fill
  else:
    p = float(rng.choice([2.0, 2.0, 6.0]))
    inside = (np.abs(du) ** p + np.abs(dv) ** p) ** (1 / p) < fill
  inside &= rng.random(n * n)[cell_id] > rng.choice([0.0, 0.03])  # missing features
  step = rng.uniform(2.0, 8.0) * (-1 if kind == "holes" else 1)
  height = ndimage.gaussian_filter(inside * step, rng.uniform(0.3, 1.5)) + 0.3 * _substrate(rng,
                                                                                          size)
  material = np.where(inside, rng.uniform(0.3, 0.9), rng.uniform(0.1, 0.6))
  labels = np.where(inside, cell_id + 1 if kind != "lines" else iu.astype(int) % n + 1, 0)
  mask = measure.label(labels, background=0, connectivity=1).astype(np.int32)
  return mask, height, material


def _texture(rng, size):
  beta = rng.uniform(1.6, 3.4)
  field = fractal_field(rng, size, beta, cutoff=log_uniform(rng, 0.3, 3.0))
  if rng.random() < 0.5:  # ridges and folds (biological and polymer surfaces)
    field = -np.abs(field) + np.abs(field).mean()
  amp = log_uniform(rng, 1.0, 25.0)
  height = amp * field
  material = 0.45 + 0.15 * fractal_field(rng, size, beta)
  mask = measure.label(field > np.quantile(field, rng.uniform(0.7, 0.95)),
                       connectivity=1).astype(np.int32)
  return mask, height, np.clip(material, 0.05, 1.0)


@functools.cache
def _photo_gray(name: str) -> np.ndarray:
  import skimage.data
  from skimage import color

  image = np.asarray(getattr(skimage.data, name)(), np.float64)
  if image.ndim == 3:
    image = color.rgb2gray(image[..., :3] / 255.0) * 255.0
  return image / 255.0


def _photo(rng, size):
  name = PHOTOS[int(rng.integers(len(PHOTOS)))]
  gray = _photo_gray(name)
  zoom = log_uniform(rng, 0.4, 2.5)
  crop = int(min(np.ceil(size / zoom), *gray.shape))
  y = int(rng.integers(0, gray.shape[0] - crop + 1))
  x = int(rng.integers(0, gray.shape[1] - crop + 1))
  patch = np.rot90(gray[y:y + crop, x:x + crop], int(rng.integers(4)))
  patch = ndimage.zoom(patch, size / crop, order=1)[:size, :size]
  if patch.shape != (size, size):
    patch = np.pad(patch, [(0, size - patch.shape[0]), (0, size - patch.shape[1])], "reflect")
  # Brightness as both material and relief, so edges brighten as in SE images.
  height = rng.uniform(2.0, 15.0) * patch
  material = 0.2 + 0.6 * patch
  smooth = ndimage.gaussian_filter(patch, 2.0)
  mask = measure.label(smooth > np.quantile(smooth, rng.uniform(0.7, 0.95)),
                       connectivity=1).astype(np.int32)
  return mask, height, material


_DRAW = {"grains": _grains, "nanoporous": _nanoporous, "cracked_film": _cracked_film,
         "particles": _particles, "fibres": _fibres, "patterned": _patterned,
         "texture": _texture, "photo": _photo}


def render_scene_v2(rng: np.random.Generator, size: int,
                    kind: str) -> tuple[np.ndarray, np.ndarray]:
  """Draws one v2 scene: (uint8 image HxWx1, uint16 instance mask HxWx1, 0 = background)."""
  if kind not in _DRAW:
    raise ValueError(f"unknown scene kind {kind!r}; valid: {', '.join(SCENE_KINDS_V2)}")
  mask, height, material = _DRAW[kind](rng, size)
  image = acquire(rng, se_signal(rng, height, material), objects=mask > 0)
  return image[..., None], np.minimum(mask, 65535).astype(np.uint16)[..., None]
