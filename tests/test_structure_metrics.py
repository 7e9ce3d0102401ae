"""Structure metrics: references, identities, and that they move the right way under blur."""

import numpy as np
import pytest
from scipy import ndimage, signal, stats

from sinsr_jax.metrics import structure


def _particles(seed=0, size=96, radius=5, count=12):
  """Bright discs on a dark, slightly noisy background, and their instance labels."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:size, :size]
  image, labels = np.full((size, size), 0.15), np.zeros((size, size), np.int32)
  placed = 0
  while placed < count:
    cy, cx = rng.integers(radius + 2, size - radius - 2, 2)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2
    if labels[ndimage.binary_dilation(disc, iterations=3)].any():
      continue
    placed += 1
    image[disc], labels[disc] = 0.85, placed
  return np.clip(image + 0.01 * rng.standard_normal(image.shape), 0, 1), labels


def _gmsd_reference(a, b):
  """The authors' MATLAB code, step by step with scipy.signal (conv2 semantics)."""
  def magnitude(y):
    y = y * 255.0
    full = signal.convolve2d(y, np.full((2, 2), 0.25), mode="full")
    y = full[1:, 1:][::2, ::2]  # MATLAB 'same' for an even kernel keeps rows/cols 2..end
    dx = np.array([[1, 0, -1]] * 3) / 3.0
    return np.hypot(signal.convolve2d(y, dx, mode="same"), signal.convolve2d(y, dx.T, mode="same"))

  m1, m2 = magnitude(a), magnitude(b)
  return np.std((2 * m1 * m2 + 170) / (m1 ** 2 + m2 ** 2 + 170), ddof=1)


def test_gmsd_matches_the_reference_and_grows_with_blur():
  hr, _ = _particles()
  blurred = [ndimage.gaussian_filter(hr, s) for s in (0.7, 1.5, 3.0)]
  for sr in blurred:
    assert structure.gmsd(sr, hr) == pytest.approx(_gmsd_reference(sr, hr), rel=1e-9)
  assert structure.gmsd(hr, hr) == 0.0
  scores = [structure.gmsd(sr, hr) for sr in blurred]
  assert 0 < scores[0] < scores[1] < scores[2]
  assert structure.gmsd(hr * 255, hr * 255, data_range=255) == 0.0
  assert structure.gmsd(blurred[0] * 255, hr * 255, data_range=255) == pytest.approx(scores[0])


def test_edge_f1_is_one_on_identical_images_and_falls_with_blur():
  rng = np.random.default_rng(1)
  texture = ndimage.gaussian_filter(rng.random((96, 96)), 1.5)  # fine, edge-rich structure
  texture = (texture - texture.min()) / (texture.max() - texture.min())
  assert structure.edge_f1(texture, texture) == 1.0
  scores = [structure.edge_f1(ndimage.gaussian_filter(texture, s), texture) for s in (1, 2, 3)]
  assert 1.0 > scores[0] > scores[1] > scores[2] >= 0.0
  hr, _ = _particles(1)
  # A one-pixel shift is within the tolerance; a three-pixel one is not.
  shifted = np.roll(hr, 1, axis=1)
  assert structure.edge_f1(shifted, hr) > 0.95
  assert structure.edge_f1(np.roll(hr, 3, axis=1), hr) < 0.5
  flat = np.full_like(hr, 0.5)
  assert structure.edge_f1(flat, flat) == 1.0 and structure.edge_f1(flat, hr) == 0.0


def test_particle_agreement_counts_and_compares_sizes():
  hr, labels = _particles(2)
  same = structure.particle_agreement(hr, hr)
  assert same == {"count_sr": 12.0, "count_hr": 12.0, "count_error": 0.0,
                  "area_wasserstein": 0.0}
  with_masks = structure.particle_agreement(hr, hr, hr_labels=labels)
  assert with_masks["count_hr"] == 12 and with_masks["count_error"] == 0.0
  # Heavy blur merges nothing here but grows or shrinks the thresholded discs.
  blurred = structure.particle_agreement(ndimage.gaussian_filter(hr, 3.0), hr, hr_labels=labels)
  assert blurred["area_wasserstein"] > 1.0
  # Two particles lost: a count error of 2/12, sizes compared by scipy's Wasserstein.
  erased = hr.copy()
  erased[np.isin(labels, (1, 2))] = 0.15
  result = structure.particle_agreement(erased, hr, hr_labels=labels)
  assert result["count_sr"] == 10 and result["count_error"] == pytest.approx(2 / 12)
  sr_areas = np.bincount(labels[~np.isin(labels, (1, 2))].ravel())[3:]
  expected = stats.wasserstein_distance(sr_areas, np.bincount(labels.ravel())[1:])
  assert result["area_wasserstein"] == pytest.approx(expected)
  empty = np.zeros_like(hr)
  assert structure.particle_agreement(empty, empty)["area_wasserstein"] == 0.0
