"""Validation during training: PSNR/SSIM, GMSD and edge F1 of the EMA generator and of bicubic."""

from __future__ import annotations

import json
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from sinsr_jax import metrics
from sinsr_jax.data import degradations
from sinsr_jax.runtime import paths

METRICS = ("psnr_db", "ssim", "gmsd", "edge_f1")
STRUCTURE_CONVENTION = ("; GMSD and edge F1 (Canny sigma 1.5, 1-pixel tolerance) on [0,1] "
                        "images clipped, same border crop, channels averaged")


def structure_view(image: np.ndarray, crop_border: int) -> np.ndarray:
  """(1, H, W, C) in [0, 1] -> the 2-D image the structure metrics see: clipped, borders
  cropped as for PSNR, channels averaged."""
  image = np.clip(image[0], 0.0, 1.0)
  if crop_border:
    image = image[crop_border:-crop_border, crop_border:-crop_border]
  return image.mean(axis=-1)


def evaluate_pairs(sr_fn: Callable, pairs: list[dict], scale: int) -> dict[str, float]:
  """Mean PSNR/SSIM (BasicSR conventions), GMSD and edge F1 of ``sr_fn`` (LR batch -> SR
  batch) and of bicubic."""
  scores = {prefix + k: [] for prefix in ("", "bicubic_") for k in METRICS}
  for pair in pairs:
    lr, hr = pair["lr"][None], pair["hr"][None]
    candidates = {"": np.asarray(sr_fn(jnp.asarray(lr))),
                  "bicubic_": degradations.bicubic_upscale(lr, scale)}
    hr_view = structure_view(hr, scale)
    for prefix, sr in candidates.items():
      scores[prefix + "psnr_db"].append(float(metrics.psnr_db(sr, hr, crop_border=scale)[0]))
      scores[prefix + "ssim"].append(float(metrics.ssim(sr, hr, crop_border=scale)[0]))
      sr_view = structure_view(sr, scale)
      scores[prefix + "gmsd"].append(metrics.gmsd(sr_view, hr_view))
      scores[prefix + "edge_f1"].append(metrics.edge_f1(sr_view, hr_view))
  return {k: float(np.mean(v)) for k, v in scores.items()}


def sample_grid(sr_fn: Callable, pairs: list[dict], scale: int, count: int = 3) -> np.ndarray:
  """Rows of [LR (nearest) | bicubic | SR | HR] for the first ``count`` images, NHWC in [0, 1].

  Images of different sizes are shown by their common top-left part.
  """
  rows = []
  for pair in pairs[:count]:
    lr = pair["lr"][None]
    nearest = np.repeat(np.repeat(lr, scale, axis=1), scale, axis=2)
    sr = np.asarray(sr_fn(jnp.asarray(lr)))
    rows.append([nearest, degradations.bicubic_upscale(lr, scale), sr, pair["hr"][None]])
  height = min(row[0].shape[1] for row in rows)
  width = min(row[0].shape[2] for row in rows)
  grid = [np.concatenate([p[:, :height, :width] for p in row], axis=2) for row in rows]
  return np.clip(np.concatenate(grid, axis=0), 0, 1)


def write_metrics_json(path: str, record: dict, history: list[dict]) -> None:
  """Writes the latest record at top level plus the full history, atomically."""
  paths.write_atomic(path, json.dumps(
      {**record, "convention": metrics.CONVENTION + STRUCTURE_CONVENTION, "history": history},
      indent=2))
