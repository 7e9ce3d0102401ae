"""Validation during training: PSNR/SSIM of the EMA generator and of bicubic on whole images."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import jax.numpy as jnp
import numpy as np

from sinsr_jax import degradations, metrics


def evaluate_pairs(sr_fn: Callable, pairs: list[dict], scale: int) -> dict[str, float]:
  """Mean PSNR/SSIM of ``sr_fn`` (LR batch -> SR batch) and of bicubic, BasicSR conventions."""
  scores = {k: [] for k in ("psnr_db", "ssim", "bicubic_psnr_db", "bicubic_ssim")}
  for pair in pairs:
    lr, hr = pair["lr"][None], pair["hr"][None]
    candidates = {"": np.asarray(sr_fn(jnp.asarray(lr))),
                  "bicubic_": degradations.bicubic_upscale(lr, scale)}
    for prefix, sr in candidates.items():
      scores[prefix + "psnr_db"].append(float(metrics.psnr_db(sr, hr, crop_border=scale)[0]))
      scores[prefix + "ssim"].append(float(metrics.ssim(sr, hr, crop_border=scale)[0]))
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
  tmp = f"{path}.tmp"
  with open(tmp, "w") as f:
    json.dump({**record, "convention": metrics.CONVENTION, "history": history}, f, indent=2)
  os.replace(tmp, path)
