"""One run scored image by image: every metric of each SR image against its HR, and the time."""

from __future__ import annotations

import time


def score(sr, pair: dict, scale: int, lpips=None) -> dict[str, float]:
  """Every metric of one SR image (1, H, W, C) against its HR, the conventions of the header."""
  from sinsr_jax import metrics
  from sinsr_jax.evaluation import downstream
  from sinsr_jax.training import validation

  hr = pair["hr"][None]
  record = {"psnr_db": float(metrics.psnr_db(sr, hr, crop_border=scale)[0]),
            "ssim": float(metrics.ssim(sr, hr, crop_border=scale)[0])}
  sr_view, hr_view = (validation.structure_view(x, scale) for x in (sr, hr))
  if lpips is not None:
    record["lpips"] = float(lpips(sr_view[None, ..., None], hr_view[None, ..., None])[0])
  record["gmsd"] = metrics.gmsd(sr_view, hr_view)
  record["edge_f1"] = metrics.edge_f1(sr_view, hr_view)
  # The same analysis of SR and HR isolates what SR changes; against the stored masks (the JSON
  # only) the segmentation's own error dominates and every model scores alike.
  particles = metrics.particle_agreement(sr_view, hr_view)
  record["count_error"] = particles["count_error"]
  record["area_wasserstein"] = particles["area_wasserstein"]
  if "pixel_nm" in pair:  # a micrograph: the sizes a microscopist measures (nm, else HR px)
    record.update(downstream.size_scores(sr_view, hr_view, pair["pixel_nm"] or 1.0,
                                           scale))
  if pair.get("mask") is not None:
    mask = pair["mask"][scale:-scale, scale:-scale] if scale else pair["mask"]
    against_masks = metrics.particle_agreement(sr_view, hr_view, mask)
    record["mask_count_error"] = against_masks["count_error"]
    record["mask_area_wasserstein"] = against_masks["area_wasserstein"]
  return record


def score_run(run, pairs: list[dict], lpips, keep: set[int], classes, adapt=None,
              refinements=None, degradation=None) -> tuple[list, dict, float]:
  """(per-image records, {index: SR image} for ``keep``, seconds spent compiling).

  ``adapt``: adaptation.Settings to fine-tune the run on each LR image before upscaling it (the
  upscale tool's --adapt); the time then includes the adaptation. ``refinements``:
  test_time.Settings (self-ensemble, LR consistency with ``degradation``, the pairs' own).
  """
  import jax
  import numpy as np
  from tqdm import tqdm

  from sinsr_jax.inference import adaptation, test_time

  refine = lambda fn: fn if refinements is None else test_time.refine(  # noqa: E731
      fn, run.scale, refinements, degradation)
  sr_fn = refine(run.sr_fn())
  compiled, compile_s, records, kept = set(), 0.0, [], {}
  for i, pair in enumerate(tqdm(pairs, desc=run.label, unit="image", disable=None)):
    lr = pair["lr"][None]
    decision = {}
    if adapt is not None:
      adapted = adaptation.adapt(run, [pair["lr"]], adapt)
      sr_fn, decision = refine(adapted.run.sr_fn()), {"adaptation": adapted.describe()}
      compiled.discard(lr.shape)
    if lr.shape not in compiled:  # the first call of a shape compiles: keep it out of the timing
      start = time.perf_counter()
      jax.block_until_ready(sr_fn(lr))
      compile_s += time.perf_counter() - start
      compiled.add(lr.shape)
    start = time.perf_counter()
    sr = np.asarray(jax.block_until_ready(sr_fn(lr)))
    elapsed = time.perf_counter() - start
    record = {"image": i, "filename": text(pair.get("filename", f"{i}")),
              "class": classes(pair), **score(sr, pair, run.scale, lpips),
              "time_ms": 1000.0 * elapsed, **decision}
    records.append(record)
    if i in keep:
      kept[i] = sr
  return records, kept, compile_s


def text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)
