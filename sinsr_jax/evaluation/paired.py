"""Paired comparisons of two methods scored on the same images at several seeds.

Each comparison is over differences d[image, seed] (method A minus method B, each image paired
by its id, each seed with the same seed of the other method). Image difficulty cancels in d;
what remains varies with the image and with the training seed, so the 95% interval comes from a
two-way bootstrap that resamples images and seeds independently. Several comparisons at once are
corrected by Holm's step-down method: a difference counts only where its Holm-adjusted p-value is
below 0.05; otherwise it is a tie.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

RESAMPLES = 10_000
ALPHA = 0.05


@dataclasses.dataclass(frozen=True)
class Difference:
  mean: float  # A - B, mean over images and seeds
  low: float  # 95% interval (unadjusted)
  high: float
  p: float  # two-sided bootstrap p-value of "no difference"
  images: int
  seeds: int
  p_holm: float = math.nan  # after Holm's correction over the family of comparisons

  def outcome(self, better: str) -> str:
    """'A' or 'B' (the better one, where the Holm-adjusted difference is significant), 'tie',
    or 'undecided' (too few pairs)."""
    if not math.isfinite(self.p_holm if math.isfinite(self.p_holm) else self.p):
      return "undecided"
    if (self.p_holm if math.isfinite(self.p_holm) else self.p) >= ALPHA:
      return "tie"
    return "A" if (self.mean > 0) == (better == "higher") else "B"


def pair_up(a: dict[int, dict[str, float]], b: dict[int, dict[str, float]],
            key: str) -> np.ndarray:
  """{seed: {image id: value}} of two methods -> d[image, seed] over the images and seeds both
  have (matched by id, never by position); NaN where either value is missing or not finite."""
  seeds = sorted(set(a) & set(b))
  images = sorted(set().union(*(set(a[s]) & set(b[s]) for s in seeds))) if seeds else []
  d = np.full((len(images), len(seeds)), np.nan)
  for j, s in enumerate(seeds):
    for i, image in enumerate(images):
      x, y = a[s].get(image, {}).get(key), b[s].get(image, {}).get(key)
      if x is not None and y is not None:
        d[i, j] = float(x) - float(y)
  return d


def compare(d: np.ndarray, seed: int = 0) -> Difference:
  """The mean of d[image, seed] with a two-way bootstrap interval and p-value."""
  d = np.asarray(d, np.float64)
  keep_images = np.isfinite(d).all(axis=1)  # an image lacking a seed's value is left out whole
  d = d[keep_images]
  n_images, n_seeds = d.shape if d.ndim == 2 else (0, 0)
  if n_images * n_seeds < 2:
    return Difference(float(np.mean(d)) if d.size else math.nan, math.nan, math.nan, math.nan,
                      n_images, n_seeds)
  rng = np.random.default_rng(seed)
  rows = rng.integers(0, n_images, (RESAMPLES, n_images))
  cols = rng.integers(0, n_seeds, (RESAMPLES, n_seeds))
  # mean over a resampled grid = mean over rows of (mean over the resampled columns)
  by_seed = d[:, cols]  # (images, resamples, seeds)
  per_image = by_seed.mean(axis=2)  # (images, resamples)
  means = np.take_along_axis(per_image.T, rows, axis=1).mean(axis=1)
  low, high = np.percentile(means, [2.5, 97.5])
  p = min(1.0, 2.0 * min(np.mean(means <= 0), np.mean(means >= 0)))
  if np.all(d == 0):
    p = 1.0
  return Difference(float(d.mean()), float(low), float(high), float(p), n_images, n_seeds)


def holm(differences: list[Difference]) -> list[Difference]:
  """The same comparisons with Holm-adjusted p-values (family = the list)."""
  finite = [i for i, x in enumerate(differences) if math.isfinite(x.p)]
  order = sorted(finite, key=lambda i: differences[i].p)
  adjusted, running = {}, 0.0
  for rank, i in enumerate(order):
    running = max(running, min(1.0, (len(order) - rank) * differences[i].p))
    adjusted[i] = running
  return [dataclasses.replace(x, p_holm=adjusted.get(i, math.nan))
          for i, x in enumerate(differences)]
