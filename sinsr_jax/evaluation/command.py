"""Command line: score trained runs and bicubic on a dataset split -> tables and figures.

    python -m sinsr_jax.evaluate --run=runs/sinsr --run=runs/esrgan --split=test --out=results
    python -m sinsr_jax.evaluate --run=runs/quick --images=my_micrographs/ --out=results

``--images`` scores on the user's own HR micrographs (files, globs, folders) instead of a
dataset split: each file's image area above its databar, whole, LR made by the first run's
degradation (sinsr_jax.evaluation.image_folder).

Every run folder (or glob, or a folder of run folders: a sweep) is read back from its
config.json and newest checkpoint; all are scored on the same LR images (the first run's data
and degradation, the same seed), beside MATLAB bicubic. Writes ``results.md``, ``results.csv``,
``results.json`` (mean and 95% confidence interval per metric, per class, per image in the JSON)
and ``figures/*.png`` (LR | bicubic | each model | HR, zoomed inset, edge overlay).
"""

from __future__ import annotations

import dataclasses
import datetime
import glob
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow 2.21 announces its oneDNN ops through absl's C++ log, which that level does not
# silence; no TensorFlow op computes anything here.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import flags, logging  # noqa: E402

from sinsr_jax.runtime.cli import fail as _fail  # noqa: E402
from sinsr_jax.runtime.cli import fail_unexpected, log_failures_to, prepare_process  # noqa: E402

_RUN = flags.DEFINE_multi_string("run", [], "Run folder, glob, or folder of run folders.")
_LABEL = flags.DEFINE_multi_string(
    "label", [], "Table names of the runs, in --run order (default: the model name, or the "
    "folder name where two runs share one).")
_SPLIT = flags.DEFINE_string("split", "test", "Dataset split to score.")
_OUT = flags.DEFINE_string("out", "evaluation", "Output folder for tables and figures.")
_MAX_IMAGES = flags.DEFINE_integer("max_images", 0, "Score the first N images (0 = all).")
_CROP = flags.DEFINE_integer("crop", -1, "Centre crop of the images, HR px (0 = whole images, "
                             "-1 = the first run's data.eval_crop).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data dir (default: the first run's).")
_SEED = flags.DEFINE_integer("seed", None, "Seed of the LR degradation (default: the first "
                             "run's seed).")
_LPIPS = flags.DEFINE_enum("lpips", "auto", ["auto", "alex", "vgg", "none"],
                           "LPIPS backbone; auto = alex when its weights are in the cache, "
                           "else no LPIPS column (the table says so).")
_FIGURES = flags.DEFINE_integer("figures", 3, "Number of comparison figures (0 = none).")
_BICUBIC = flags.DEFINE_bool("bicubic", True, "Score MATLAB bicubic beside the runs.")
_ADAPT = flags.DEFINE_integer("adapt", 0, "Also score each run adapted to each LR image for "
                              "this many steps, as upscale --adapt does (0 = off).")
_ENSEMBLE = flags.DEFINE_bool("ensemble", None, "Score the runs with geometric self-ensemble "
                               "(as upscale --ensemble). Default: on for the +adapt rows only.")
_CONSISTENCY = flags.DEFINE_bool("consistency", None, "Score the runs with LR consistency (as "
                                 "upscale --consistency). Default: on for the +adapt rows only.")
_IMAGES = flags.DEFINE_multi_string(
    "images", [], "Your own HR micrographs (files, globs, folders) to score on instead of "
    "--split: the image area above each databar, whole unless --crop.")


def expand_runs(patterns: list[str]) -> list[str]:
  """Run folders named by folders, globs, or parents of run folders (a sweep), in order."""
  from sinsr_jax.errors import UserError
  from sinsr_jax.runtime import paths

  folders = []
  for pattern in patterns:
    matches = [pattern] if paths.is_remote(pattern) else (
        sorted(glob.glob(os.path.expanduser(pattern))) or [os.path.expanduser(pattern)])
    for path in matches:
      if paths.isfile(paths.join(path, "config.json")) or not paths.isdir(path):
        folders.append(path)  # not a folder: runs.load names the problem
        continue
      children = sorted(paths.join(path, d) for d in paths.listdir(path)
                        if paths.isfile(paths.join(path, d, "config.json")))
      if not children:
        raise UserError(f"{path} is neither a training run (no config.json) nor a folder of runs")
      folders += children
  return list(dict.fromkeys(folders))


def _labels(runs_, given: list[str]) -> list[str]:
  from sinsr_jax.errors import UserError

  if given:
    if len(given) != len(runs_):
      raise UserError(f"{len(given)} --label for {len(runs_)} runs")
    return given
  names = [r.config.model.name + (f" {r.config.get('ablation')}" if r.config.get("ablation")
                                  else "") for r in runs_]
  return [n if names.count(n) == 1 else os.path.basename(os.path.normpath(r.workdir))
          for n, r in zip(names, runs_, strict=True)]


def check_comparable(runs_) -> None:
  """All runs must super-resolve the same thing: scale, channels, dataset and LR degradation
  (every row is scored on the first run's LR images)."""
  from sinsr_jax.errors import UserError

  first = runs_[0]
  for run in runs_[1:]:
    for what, get in (("scale", lambda r: r.config.data.scale),
                      ("model.channels", lambda r: r.config.model.channels),
                      ("dataset", lambda r: (r.config.data.name, r.config.data.builder_config)),
                      ("LR degradation", _degradation)):
      if get(run) != get(first):
        raise UserError(f"runs are not comparable: {run.workdir} has {what} {get(run)}, "
                        f"{first.workdir} has {get(first)}")


def _degradation(run) -> dict:
  """What makes a run's LR images: the scored LR is the first run's, so all must share it."""
  from sinsr_jax.data import input_pipeline

  return {**input_pipeline.degradation_from_config(run.config.data).describe(),
          "quantize_lr": bool(run.config.data.get("quantize_lr", True))}


def data_config(config, *, split: str, max_images: int, crop: int, data_dir: str | None):
  data = config.data.copy_and_resolve_references()
  data.eval_split, data.eval_max_images = split, max_images
  if crop >= 0:
    data.eval_crop = crop
  if data_dir is not None:
    data.data_dir = data_dir
  return data


def class_namer(features):
  """element -> its class name (nffa_sem/sem_folder "label", sem_synthetic "scene"), or ""."""
  import tensorflow_datasets as tfds

  for key in ("label", "scene"):
    if key in features:
      feature = features[key]
      if isinstance(feature, tfds.features.ClassLabel):
        return lambda pair, k=key, f=feature: f.int2str(int(pair[k])) if k in pair else ""
      return lambda pair, k=key: (pair[k].decode() if isinstance(pair.get(k), bytes)
                                  else str(pair.get(k, "")))
  return lambda pair: ""


def load_lpips(choice: str):
  """(LPIPS or None, a line for the header)."""
  from sinsr_jax import metrics, weights

  if choice == "none":
    return None, "LPIPS: not computed (--lpips=none)."
  net = "alex" if choice == "auto" else choice
  try:
    lpips = metrics.LPIPS.load(net, download=choice != "auto")
  except weights.WeightsNotFound as e:
    if choice != "auto":
      raise
    logging.warning("No LPIPS column: %s", e)
    return None, ("LPIPS: not computed (no AlexNet/LPIPS weights in the cache; "
                  "python -m sinsr_jax.evaluate --lpips=alex downloads them).")
  return lpips, (f"LPIPS v0.1 ({net}) on the same crop, [0, 1] images (LPIPS' [-1, 1] input), "
                 f"gray replicated to RGB.")


def figure_indices(pairs: list[dict], classes, count: int) -> list[int]:
  """``count`` images, one class after another (round robin), in stored order."""
  by_class: dict[str, list[int]] = {}
  for i, pair in enumerate(pairs):
    by_class.setdefault(classes(pair), []).append(i)
  picked, queues = [], [list(v) for v in by_class.values()]
  while len(picked) < min(count, len(pairs)):
    for queue in queues:
      if queue and len(picked) < count:
        picked.append(queue.pop(0))
  return sorted(picked)


def header_lines(data, pairs, runs_, lpips_line: str, seed: int,
                 images: list[str] | None = None) -> list[str]:
  import jax

  from sinsr_jax import metrics
  from sinsr_jax.data import input_pipeline
  from sinsr_jax.runtime import provenance
  from sinsr_jax.training import validation

  degradation = input_pipeline.degradation_from_config(data).describe()
  builder = f"{data.name}/{data.builder_config}" if data.builder_config else data.name
  crop = f", centre crop {data.eval_crop} px" if data.eval_crop else ""
  source = (f"{', '.join(images)} (image areas above the databars)" if images else
            f"{builder}, split {data.eval_split}")
  runs_line = "; ".join(f"{r.label} = {r.workdir} (step {r.step})" for r in runs_ if r.workdir)
  return [
      f"# Super-resolution x{data.scale} on {source}: {len(pairs)} images{crop}",
      "",
      f"- Convention: PSNR/SSIM {metrics.CONVENTION}{validation.STRUCTURE_CONVENTION}.",
      f"- {lpips_line}",
      "- Particles: the same analysis of SR and of HR (Otsu threshold, 8-connected components); "
      "count error = |n_SR - n_HR| / max(n_HR, 1); size W1 = 1-D Wasserstein distance between "
      "the particle-area distributions, HR pixels (results.json also scores SR against the "
      "dataset's stored instance masks where it has them).",
      "- Values: mean ± half-width of the 95% confidence interval of the mean (Student t) over "
      "images; best mean in bold.",
      f"- LR: {degradation['order']}; "
      f"{', '.join(f'{k} {v}' for k, v in degradation.items() if k != 'order')}; seed {seed}.",
      f"- Runs: {runs_line or 'none (bicubic only)'}.",
      f"- Inference time: per image, batch 1, on {jax.devices()[0].platform.upper()} "
      f"({jax.device_count()} device(s)), compilation excluded.",
      f"- Commit {provenance.git_commit(short=True)}, "
      f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}.",
  ]


def evaluate(run_patterns: list[str], *, labels: list[str], split: str, out_dir: str,
             max_images: int = 0, crop: int = -1, data_dir: str | None = None,
             seed: int | None = None, lpips: str = "auto", figures: int = 3,
             bicubic: bool = True, images: list[str] | None = None, adapt: int = 0,
             ensemble: bool | None = None, consistency: bool | None = None) -> dict:
  """Scores the runs (and bicubic) and writes the tables and figures; returns results.json.

  ``images``: the user's own micrographs to score on instead of the dataset's ``split``.
  ``adapt``: also score each trained run adapted to each LR image for this many steps.
  ``ensemble``, ``consistency``: the trained runs' test-time refinements (None: on for the
  +adapt rows only, as upscale --adapt has them).
  """
  import numpy as np

  from sinsr_jax.data import input_pipeline
  from sinsr_jax.errors import UserError
  from sinsr_jax.evaluation import downstream, image_folder, report, scoring
  from sinsr_jax.evaluation import figures as figs
  from sinsr_jax.inference import test_time
  from sinsr_jax.runtime import paths
  from sinsr_jax.runtime.files import ensure_writable_dir
  from sinsr_jax.training import runs

  folders = expand_runs(run_patterns)
  if not folders and not bicubic:
    raise UserError("nothing to evaluate: give --run=DIR (or keep --bicubic)")
  if not folders:
    raise UserError("give at least one --run=DIR: its config names the data and scale")
  loaded = [runs.load(f) for f in folders]
  check_comparable(loaded)
  loaded = [dataclasses.replace(run, label=label)
            for run, label in zip(loaded, _labels(loaded, labels), strict=True)]
  ensure_writable_dir(out_dir, "output folder")
  lpips_model, lpips_line = load_lpips(lpips)  # before the data: a missing file fails fast

  config = loaded[0].config
  seed = config.seed if seed is None else seed
  if images:  # whole image areas unless --crop: real frames vary in size
    data = data_config(config, split="images", max_images=max_images, crop=max(crop, 0),
                       data_dir=data_dir)
    source, skipped = image_folder.load(images, channels=loaded[0].channels,
                                        scale=config.data.scale)
    for reason in skipped:
      logging.warning("Not scored: %s", reason)
    classes = lambda pair: scoring.text(pair.get("label", ""))  # noqa: E731
  else:
    data = data_config(config, split=split, max_images=max_images, crop=crop, data_dir=data_dir)
    builder = input_pipeline.prepare_builder(data)
    if split not in builder.info.splits:
      raise UserError(f"{builder.name} has no split {split!r}; it has "
                      f"{', '.join(sorted(builder.info.splits))}")
    source = builder.as_data_source(split=split)
    classes = class_namer(builder.info.features)
  pairs = input_pipeline.eval_images(source, data, channels=loaded[0].channels, seed=seed)
  entries = ([runs.bicubic(config)] if bicubic and all(
      r.config.model.name != "bicubic" for r in loaded) else []) + loaded
  keep = set(figure_indices(pairs, classes, figures))

  plain, adapting = (test_time.chosen(on, ensemble, consistency) for on in (False, True))
  trained = lambda run: run.config.model.name != "bicubic"  # noqa: E731
  scored = [(dataclasses.replace(run, label=run.label + plain.suffix()) if trained(run) else run,
             None, plain if trained(run) else None) for run in entries]
  if adapt:
    from sinsr_jax.inference import adaptation

    settings = adaptation.Settings(steps=adapt, seed=seed)
    scored += [(dataclasses.replace(run, label=f"{run.label} +adapt {adapt}{adapting.suffix()}"),
                settings, adapting) for run in loaded if trained(run)]
  degradation = input_pipeline.degradation_from_config(data)
  per_image, srs, compile_s = {}, {}, {}
  for run, settings, refinements in scored:
    per_image[run.label], srs[run.label], compile_s[run.label] = scoring.score_run(
        run, pairs, lpips_model, keep, classes, settings, refinements, degradation)
  rows = report.summarise(per_image)
  params = {r.label: r.num_params for r, _, _ in scored}
  header = header_lines(data, pairs, entries, lpips_line, seed, images)
  if adapt:
    header.append(f"- +adapt {adapt}: the run fine-tuned for {adapt} steps on pairs cut from "
                  f"each LR image itself before upscaling it (upscale --adapt={adapt}); the "
                  f"adapted weights are kept only where they gain on held-out pairs of the "
                  f"image: " + "; ".join(
                      f"{label} on {sum(r['adaptation']['kept'] for r in records)} of "
                      f"{len(records)} images" for label, records in per_image.items()
                      if records and "adaptation" in records[0]) + ".")
  if plain.suffix() or (adapt and adapting.suffix()):
    header.append("- +ens: geometric self-ensemble (the mean over the LR image's 8 flips and "
                  "rotations); +cons: LR consistency (the SR image projected onto those whose "
                  "degradation is the LR image), as upscale --ensemble / --consistency.")
  # A bucket's --out: written in a local folder, then uploaded (figures are files matplotlib
  # writes by name; an object appears whole).
  local_out = paths.staging_dir(out_dir)
  written = report.write_all(local_out, rows, header, params, {
      "compile_s": compile_s, "per_image": per_image,
      "lr_sizes": downstream.lr_reference(pairs, config.data.scale),
      "runs": {r.label: {"workdir": r.workdir, "step": r.step, "model": r.config.model.name}
               for r, _, _ in scored}})

  if keep:
    figure_dir = os.path.join(local_out, "figures")
    os.makedirs(figure_dir, exist_ok=True)
    for i in sorted(keep):
      pair, view = pairs[i], lambda x: np.asarray(x)[0].mean(axis=-1)
      lr = pair["lr"][None]
      nearest = np.repeat(np.repeat(lr, config.data.scale, 1), config.data.scale, 2)
      panels = [("LR (nearest)", view(nearest)),
                *[(label, view(srs[label][i])) for label in per_image],
                ("HR", view(pair["hr"][None]))]
      captions = {label: f"{recs[i]['psnr_db']:.2f} dB / {recs[i]['ssim']:.3f}"
                  for label, recs in per_image.items()}
      name = os.path.splitext(os.path.basename(scoring.text(pair.get("filename", f"{i}"))))[0]
      path = os.path.join(figure_dir, f"{i:03d}_{name}.png")
      figs.comparison(path, panels, captions=captions,
                      title=f"{name} ({classes(pair) or data.eval_split}) x{config.data.scale}")
      written.setdefault("figures", []).append(path)
  if local_out != out_dir:
    paths.upload(local_out, out_dir)
    def named(local: str) -> str:
      return paths.join(out_dir, os.path.relpath(local, local_out).replace(os.sep, "/"))

    written = {k: [named(p) for p in v] if isinstance(v, list) else named(v)
               for k, v in written.items()}
    shutil.rmtree(local_out, ignore_errors=True)
  return {"rows": rows, "paths": written, "per_image": per_image}


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
  prepare_process()
  log_failures_to(_OUT.value)
  from sinsr_jax.errors import UserError

  try:
    result = evaluate(_RUN.value, labels=_LABEL.value, split=_SPLIT.value, out_dir=_OUT.value,
                      max_images=_MAX_IMAGES.value, crop=_CROP.value, data_dir=_DATA_DIR.value,
                      seed=_SEED.value, lpips=_LPIPS.value, figures=_FIGURES.value,
                      bicubic=_BICUBIC.value, images=_IMAGES.value, adapt=_ADAPT.value,
                      ensemble=_ENSEMBLE.value, consistency=_CONSISTENCY.value)
  except UserError as e:
    _fail(str(e))
  except Exception as e:  # a failure no check foresaw: one line, the traceback in OUT/log.txt
    fail_unexpected(e)
  from sinsr_jax.runtime import paths

  print(paths.read_text(result["paths"]["md"]))
  print(f"Wrote {', '.join(v for k, v in result['paths'].items() if k != 'figures')}"
        f" and {len(result['paths'].get('figures', []))} figure(s).")

