"""The downstream measurements of an evaluation on calibrated micrographs (metrics.sizes): each
SR image's feature sizes against HR's, and LR's (at LR's own pixel size) as the reference for
what upscaling is for. Per-image records, flat keys ``<kind>_<field>``."""

from __future__ import annotations

import numpy as np

from sinsr_jax.metrics import sizes

FIELDS = ("rel_error", "rel_error_lo", "rel_error_hi", "w1_rel", "mean_nm", "count")


def size_scores(view: np.ndarray, hr_view: np.ndarray, pixel_nm: float,
                hr_pixel_nm: float | None = None) -> dict[str, float]:
  """Every kind's agreement of ``view`` (pixels ``pixel_nm`` wide) with ``hr_view``."""
  record = {}
  for kind in sizes.KINDS:
    got = sizes.agreement(sizes.sizes(view, pixel_nm, kind),
                          sizes.sizes(hr_view, hr_pixel_nm or pixel_nm, kind))
    record.update({f"{kind}_{k}": got[k] for k in FIELDS})
  return record


def lr_reference(pairs: list[dict], scale: int) -> dict[str, dict[str, float]]:
  """{filename: size scores of the LR image itself, at LR's pixel size} for calibrated pairs."""
  out = {}
  for pair in pairs:
    if not pair.get("pixel_nm"):
      continue
    lr = np.asarray(pair["lr"]).mean(axis=-1)[1:-1, 1:-1]  # the metrics' border, in LR pixels
    hr = np.asarray(pair["hr"]).mean(axis=-1)[scale:-scale, scale:-scale]
    out[str(pair.get("filename", len(out)))] = size_scores(lr, hr, pair["pixel_nm"] * scale,
                                                           pair["pixel_nm"])
  return out
