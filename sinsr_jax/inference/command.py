"""Command line: apply a trained model to micrographs.

    python -m sinsr_jax.upscale --run=runs/sinsr --out=upscaled micrographs/ extra.tif
    python -m sinsr_jax.upscale --run=bicubic --scale=4 --out=upscaled 'micrographs/*.png'

INPUTs are files, globs or folders (their image files; subfolders with --recursive). Each
output is ``OUT/<stem>_x<scale>.<ext>``, in the input's pixel type and format family, with its
pixel size (the input's divided by the scale; TIFF: ImageJ resolution + unit, as Fiji reads it)
and a sidecar ``OUT/<stem>_x<scale>.<ext>.json`` holding the instrument's fields and the
output's provenance. A file that fails gets one ``error: <file>: <reason>`` line and the others
are still processed. Exit status: 0 all upscaled, 1 any failed (or the run / output folder
unusable), 2 bad flags.
"""

from __future__ import annotations

import os
import posixpath
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Loading a run imports TensorFlow (through clu), which announces oneDNN on stderr even so; no
# TensorFlow op runs here.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import flags  # noqa: E402

from sinsr_jax.errors import UserError  # noqa: E402
from sinsr_jax.inference.tiling import DEFAULT_TILE  # noqa: E402  (numpy only)
from sinsr_jax.runtime import paths  # noqa: E402
from sinsr_jax.runtime.cli import fail as _fail  # noqa: E402
from sinsr_jax.runtime.cli import prepare_process  # noqa: E402
from sinsr_jax.runtime.files import ensure_writable_dir  # noqa: E402

_RUN = flags.DEFINE_string("run", None, "Training run folder (the newest checkpoint's EMA "
                           "weights), or bicubic for the MATLAB-bicubic baseline (with --scale).")
_SCALE = flags.DEFINE_integer("scale", None, "Factor for --run=bicubic: 2, 3 or 4 (a run has "
                              "its own).")
_OUT = flags.DEFINE_string("out", None, "Output folder (created if missing).")
_TILE = flags.DEFINE_integer("tile", DEFAULT_TILE,
                             "Tile side, LR pixels (one compile per image size).")
_CONTEXT = flags.DEFINE_integer("context", 32, "Context LR pixels at interior tile edges, "
                                "discarded (cover the model's receptive radius).")
_BLEND = flags.DEFINE_integer("blend", 16, "LR pixels over which neighbouring tiles cross-fade.")
_BATCH = flags.DEFINE_integer("batch", 1, "Tiles per model call (more: faster on accelerators, "
                              "more memory).")
_DATABAR = flags.DEFINE_enum("databar", "keep", ["keep", "crop", "none"],
                             "The instrument's bottom databar: keep (bicubic-upscaled below the "
                             "super-resolved image), crop (dropped), none (not detected: the "
                             "whole frame goes through the model).")
_FORMAT = flags.DEFINE_enum("format", "auto", ["auto", "png", "tif"],
                            "Output format: auto (the input's family: TIFF, PNG, JPEG; BMP -> "
                            "PNG), png or tif.")
_RECURSIVE = flags.DEFINE_bool("recursive", False, "Folders: include their subfolders' images.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace existing output files.")
_QUIET = flags.DEFINE_bool("quiet", False, "No progress bars (they show only on a terminal) "
                           "and no line per file.")
_ADAPT = flags.DEFINE_integer("adapt", 0, "Fine-tune the run's generator for this many steps on "
                              "pairs cut from the inputs themselves before upscaling them "
                              "(zero-shot adaptation; 0 = off; 20 is the measured choice). The "
                              "adapted weights are kept only where they gain on pairs held out "
                              "of the fine-tuning.")
_ADAPT_LR = flags.DEFINE_float("adapt-lr", None, "--adapt's learning rate (default: the "
                               "measured one, see sinsr_jax.inference.adaptation.Settings).")
_ADAPT_LAYERS = flags.DEFINE_enum("adapt-layers", None, ["all", "head"], "--adapt fine-tunes "
                                  "all layers or only the head (upsampler and output convs; "
                                  "the default).")
_ADAPT_SAVE = flags.DEFINE_string("adapt-save", None, "Keep the adapted weights as a run folder "
                                  "that --run accepts later.")
_ENSEMBLE = flags.DEFINE_bool("ensemble", None, "Geometric self-ensemble: the mean of the "
                               "model's outputs for the 8 flips/rotations of each tile (8x the "
                               "time). Default: on with --adapt (ZSSR's recipe), else off.")
_CONSISTENCY = flags.DEFINE_bool("consistency", None, "Project each output onto the images whose "
                                 "downscale (the run's degradation) is the input: removes errors "
                                 "at the input's own frequencies. Default: on with --adapt, "
                                 "else off.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of --adapt's crops and degradations.")
_PIXEL_SIZE = flags.DEFINE_string("pixel-size", None, "Pixel size of inputs whose metadata has "
                                  "none, e.g. 5nm, 0.8um, 543pm (files with their own keep it).")



def parse_flags(argv: list[str]) -> list[str]:
  """Parses flags; a bad flag is one ``error:`` line and exit status 2."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    _fail(str(e), 2)


def _reason(error: Exception) -> str:
  """One line: a UserError's message, an OSError's cause and path, else the exception."""
  if isinstance(error, UserError):
    return str(error)
  if isinstance(error, OSError) and error.strerror:
    return f"{error.strerror}" + (f": {error.filename}" if error.filename else "")
  return f"{type(error).__name__}: {error}"  # a bug or an exhausted resource


def _check_out_dir(out: str) -> None:
  """Creates ``out`` and proves it writable, or ends the batch before any work."""
  if paths.is_remote(out):  # a bucket: a probe object
    try:
      ensure_writable_dir(out, "output folder")
    except UserError as e:
      _fail(str(e))
    return
  try:
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryFile(dir=out):
      pass
  except OSError as e:
    _fail(f"output folder {out} is not writable: {e.strerror or e}")


def _load_run(run_arg: str, scale: int | None):
  """The run of --run (bicubic with --scale), or a one-line error."""
  import ml_collections

  from sinsr_jax.training import runs

  if run_arg == "bicubic":
    config = ml_collections.ConfigDict({"data": {"scale": scale}, "model": {"channels": 1}})
    return runs.bicubic(config)
  run = runs.load(os.path.expanduser(run_arg))
  if scale is not None and scale != run.scale:
    _fail(f"--scale={scale} differs from the run's scale x{run.scale}; --scale is for "
          f"--run=bicubic only", 2)
  return run


def _model(run, adaptation=None):
  from sinsr_jax.data import input_pipeline
  from sinsr_jax.inference import test_time, upscaling

  sr_fn = run.sr_fn()
  multiple = upscaling.size_multiple(sr_fn, run.channels)
  refinements = test_time.chosen(bool(_ADAPT.value), _ENSEMBLE.value, _CONSISTENCY.value)
  degradation = (input_pipeline.degradation_from_config(run.config.data)
                 if run.workdir else None)  # bicubic: plain MATLAB resize
  sr_fn = test_time.refine(sr_fn, run.scale, refinements, degradation)
  kept = adaptation is not None and adaptation.kept
  return upscaling.Model(sr_fn, run.scale, run.channels, multiple,
                         label=run.label + (" adapted" if kept else "") + refinements.suffix(),
                         run_dir=run.workdir or "", step=run.step if run.workdir else None,
                         adaptation=None if adaptation is None else adaptation.describe(),
                         test_time=refinements.describe())


def _adapt_settings():
  from sinsr_jax.inference import adaptation

  chosen = {"learning_rate": _ADAPT_LR.value, "layers": _ADAPT_LAYERS.value}
  return adaptation.Settings(steps=_ADAPT.value, seed=_SEED.value,
                             **{k: v for k, v in chosen.items() if v is not None})


def _adapt(run, files: list[str], settings, show: bool):
  """The run fine-tuned on the inputs' image areas (--adapt), saved with --adapt-save."""
  from tqdm import tqdm

  from sinsr_jax.inference import adaptation, micrographs, upscaling

  frames = []
  for path in files:
    try:
      micrograph = micrographs.read(path)
    except micrographs.MicrographError:
      continue  # the upscale loop reports it
    top, _ = upscaling.find_databar_row(micrograph, settings.databar)
    frames.append(micrographs.model_input(micrograph.for_image_area(top), run.channels)[:top])
  if not frames:
    return run, None
  bar = tqdm(unit="step", desc="adapting", disable=not show, dynamic_ncols=True)
  adapted = adaptation.adapt(run, frames, _adapt_settings(), progress=bar)
  bar.close()
  print(adapted.summary())
  if _ADAPT_SAVE.value:
    dest = os.path.expanduser(_ADAPT_SAVE.value)
    adaptation.save_run(adapted.run, dest, {"from_run": paths.absolute(run.workdir),
                                            "from_step": run.step, **adapted.describe(),
                                            "inputs": [paths.absolute(f) for f in files]})
    print(f"Adapted weights saved as the run {dest} (use --run={dest}).")
  return adapted.run, adapted


def _pixel_size() -> float | None:
  from tfds_sem.instrument import parse_length_nm

  if _PIXEL_SIZE.value is None:
    return None
  try:
    return parse_length_nm(_PIXEL_SIZE.value)
  except ValueError as e:
    _fail(f"--pixel-size: {e}", 2)


def _settings():
  from sinsr_jax.inference import tiling, upscaling

  settings = upscaling.Settings(tile=_TILE.value, context=_CONTEXT.value, blend=_BLEND.value,
                                batch=_BATCH.value, databar=_DATABAR.value,
                                format=_FORMAT.value, pixel_size_nm=_pixel_size())
  try:
    tiling.check_settings(settings.tile, settings.context, settings.blend)
  except ValueError as e:
    _fail(f"--tile/--context/--blend: {e}", 2)
  if settings.batch < 1:
    _fail(f"--batch must be >= 1, got {settings.batch}", 2)
  return settings


def _file_line(source: str, dest: str, done, scale: int, databar_mode: str) -> str:
  """``source -> dest: W x H px, pixel size ..., databar ...``: what a microscopist checks."""
  height, width = done.shape
  line = f"{source} -> {dest}: {width}x{height} px, {done.calibration.describe()}"
  if done.databar_found_by.startswith(("not looked", "image detector: none")):
    return line + ", no databar" + (" looked for" if databar_mode == "none" else " found")
  action = "cropped" if databar_mode == "crop" else "kept below, bicubic"
  return line + (f", databar from row {done.databar_row} ({done.databar_found_by}) {action}")


def _calibration_summary(done: list) -> str:
  """The pixel sizes written, for the summary line."""
  sizes = {d.calibration.pixel_size_nm for d in done}
  known = [d for d in done if d.calibration.pixel_size_nm is not None]
  if not done:
    return ""
  if not known:
    return "; pixel size unknown (--pixel-size sets it)"
  if len(sizes) == 1:
    return "; " + done[0].calibration.describe().split(" (")[0]
  return f"; pixel size written for {len(known)} of {len(done)}"


def _upscale_all(files: list[str], model, settings, out_dir: str, show: bool,
                 quiet: bool) -> tuple[int, list]:
  """Upscales every file, one ``error:`` line per failure, one line per output unless
  ``quiet``; returns the number that failed and what was written."""
  from tqdm import tqdm

  from sinsr_jax.inference import calibration, upscaling

  package = calibration.package_provenance()
  files_bar = tqdm(total=len(files), unit="file", disable=not show, dynamic_ncols=True)
  tiles_bar = tqdm(unit="tile", position=1, leave=False, disable=not show, dynamic_ncols=True)
  claimed: dict[str, str] = {}  # output path -> the input it is for
  failed, done = 0, []
  for source in files:
    dest = upscaling.output_path(source, out_dir, model.scale, settings.format)
    try:
      if claimed.setdefault(dest, source) != source:
        raise UserError(f"its output {dest} is {claimed[dest]}'s too; upscale one of them into "
                        f"another --out folder")
      for existing in (dest, calibration.sidecar_path(dest)):
        if paths.exists(existing) and not _OVERWRITE.value:
          raise UserError(f"{existing} exists; pass --overwrite to replace it")
      files_bar.set_postfix_str(posixpath.basename(source))
      result = upscaling.upscale_file(source, dest, model, settings, progress=tiles_bar,
                                      package=package)
      for warning in result.warnings:
        tqdm.write(f"warning: {source}: {warning}", file=sys.stderr)
      if not quiet:
        tqdm.write(_file_line(source, dest, result, model.scale, settings.databar),
                   file=sys.stdout)
      done.append(result)
    except Exception as e:  # each file's failure is its line; the rest go on
      failed += 1
      tqdm.write(f"error: {source}: {_reason(e)}", file=sys.stderr)
    files_bar.update(1)
  tiles_bar.close()
  files_bar.close()
  return failed, done


def main(argv: list[str]) -> None:
  prepare_process()
  inputs = [os.path.expanduser(arg) for arg in argv[1:]]
  if _RUN.value is None:
    _fail("--run is required: a training run folder, or bicubic with --scale", 2)
  if _OUT.value is None:
    _fail("--out is required: the folder for the upscaled images", 2)
  if not inputs:
    _fail("no INPUT given: name image files, globs or folders", 2)
  if _RUN.value == "bicubic" and _SCALE.value not in (2, 3, 4):
    _fail(f"--run=bicubic needs --scale=2, 3 or 4 (got {_SCALE.value})", 2)
  if _ADAPT.value < 0 or _ADAPT.value and _RUN.value == "bicubic":
    _fail("--adapt=N (N >= 1 steps) fine-tunes a trained run's generator; bicubic has none", 2)
  if _ADAPT_SAVE.value and not _ADAPT.value:
    _fail("--adapt-save keeps the weights of --adapt=N: give both", 2)
  if _ADAPT_SAVE.value and paths.exists(paths.join(os.path.expanduser(_ADAPT_SAVE.value),
                                                  "config.json")):
    _fail(f"--adapt-save: {_ADAPT_SAVE.value} already holds a run; name a new folder")
  settings = _settings()
  start = time.perf_counter()
  out_dir = os.path.expanduser(_OUT.value)
  from sinsr_jax.inference.micrographs import expand_inputs

  files, problems = expand_inputs(inputs, _RECURSIVE.value)
  for problem in problems:
    print(f"error: {problem}", file=sys.stderr)
  failed, target = len(problems), ""
  if files:
    _check_out_dir(out_dir)
    show = not _QUIET.value and sys.stderr.isatty()
    try:
      run, adapted = _load_run(_RUN.value, _SCALE.value), None
      if _ADAPT.value:
        run, adapted = _adapt(run, files, settings, show)
      model = _model(run, adapted)
    except UserError as e:
      _fail(str(e))
    label = model.label
    if settings.tile % model.multiple:
      _fail(f"--tile={settings.tile} must be a multiple of {model.multiple} for {label} "
            f"x{model.scale}", 2)
    failed_files, done = _upscale_all(files, model, settings, out_dir, show=show,
                                      quiet=_QUIET.value)
    failed += failed_files
    target = f" ({label} x{model.scale} -> {out_dir}){_calibration_summary(done)}"
  upscaled = len(files) - (failed - len(problems))
  print(f"{upscaled} upscaled, {failed} failed in {time.perf_counter() - start:.1f} s{target}")
  sys.exit(1 if failed else 0)

