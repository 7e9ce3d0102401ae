"""The downstream measurements of an evaluation on micrographs (metrics.sizes): each SR image's
feature sizes against HR's, and LR's (at LR's own pixel size) as the reference for what
upscaling is for. Per-image records, flat keys ``<kind>_<field>``; sizes in nm where the file is
calibrated, else in HR pixels (the relative errors need no unit)."""

from __future__ import annotations

import numpy as np

from sinsr_jax.metrics import sizes

FIELDS = ("rel_error", "rel_error_lo", "rel_error_hi", "w1_rel", "mean_nm", "count")


def size_scores(view: np.ndarray, hr_view: np.ndarray, pixel_nm: float, scale: int,
                hr_pixel_nm: float | None = None) -> dict[str, float]:
  """Every kind's agreement of ``view`` (pixels ``pixel_nm`` wide) with ``hr_view``; features
  below one LR pixel's area (``scale`` x ``scale`` HR pixels) are not counted in either."""
  hr_pixel = hr_pixel_nm or pixel_nm
  lr_area = (scale * hr_pixel / pixel_nm) ** 2  # one LR pixel, in ``view``'s pixels
  record = {}
  for kind in sizes.KINDS:
    got = sizes.agreement(sizes.sizes(view, pixel_nm, kind, lr_area),
                          sizes.sizes(hr_view, hr_pixel, kind, scale * scale))
    record.update({f"{kind}_{k}": got[k] for k in FIELDS})
  return record


def lr_reference(pairs: list[dict], scale: int) -> dict[str, dict[str, float]]:
  """{filename: size scores of the LR image itself, at LR's pixel size, and ``unit``} for the
  user's micrographs (pairs with ``pixel_nm``; 0 = uncalibrated: sizes in HR pixels)."""
  out = {}
  for pair in pairs:
    if "pixel_nm" not in pair:
      continue
    pixel = float(pair["pixel_nm"]) or 1.0
    lr = np.asarray(pair["lr"]).mean(axis=-1)[1:-1, 1:-1]  # the metrics' border, in LR pixels
    hr = np.asarray(pair["hr"]).mean(axis=-1)[scale:-scale, scale:-scale]
    name = pair.get("filename", len(out))
    name = name.decode() if isinstance(name, bytes) else str(name)
    out[name] = {**size_scores(np.clip(lr, 0, 1), np.clip(hr, 0, 1), pixel * scale, scale, pixel),
                 "unit": "nm" if pair["pixel_nm"] else "HR px"}
  return out
