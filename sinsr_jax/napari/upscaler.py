"""What the Upscale widget runs, Qt-free: a model from a run folder or an exported package, the
tiled upscale of one layer's pixels with progress and cancellation, and the save.

Every model runs on ONNX Runtime: on this CPU it is near parity with JAX (0.8x to 2x its speed,
docs/napari.md), and napari's process then never loads JAX or TensorFlow. A run folder is
exported to ONNX first, in a child process.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable

import numpy as np

from sinsr_jax.errors import UserError
from sinsr_jax.inference import calibration, micrographs, tiling


class Cancelled(UserError):
  """The user cancelled an upscale: nothing was added or written."""


@dataclasses.dataclass(frozen=True)
class Upscaler:
  """An SR function on NHWC batches in [0, 1], with what the widget shows and records."""

  sr_fn: Callable
  scale: int
  channels: int
  label: str
  source: str
  runtime: str  # "onnxruntime", or "jax" (tests)
  tile: int | None = None  # a fixed LR tile (exported models), else any
  step: int | None = None


def _fixed_tile(run_tile: Callable, tile: int, scale: int) -> Callable:
  """An SR function of fixed-tile models for any smaller tile: mirror-padded, then cropped."""
  def sr(lr):
    h, w = lr.shape[1:3]
    if (h, w) == (tile, tile):
      return run_tile(lr)
    padded = np.pad(lr, [(0, 0), (0, tile - h), (0, tile - w), (0, 0)], mode="symmetric")
    return run_tile(padded)[:, :h * scale, :w * scale]
  return sr


def _onnx(path: str, source: str) -> Upscaler:
  from sinsr_jax.export import onnx_model

  meta = onnx_model.metadata(path)
  tile, scale = int(meta["tile"]), int(meta["scale"])
  return Upscaler(_fixed_tile(onnx_model.sr_fn(path), tile, scale), scale,
                  int(meta["channels"]), f"{meta['model']} x{scale}", source, "onnxruntime",
                  tile, meta.get("checkpoint_step"))


def _package(path: str) -> Upscaler:
  """A bioimage.io package written by sinsr_jax.export (its ONNX weights)."""
  import yaml

  try:
    with zipfile.ZipFile(path) as z:
      rdf = yaml.safe_load(z.read("rdf.yaml"))
      ours = "sinsr_jax" in (rdf.get("config") or {})
      version = str(rdf.get("format_version", "?"))
      if rdf.get("type") != "model" or not version.startswith("0.5.") or not ours:
        raise UserError(f"{path} is not a sinsr_jax model package of bioimage.io spec 0.5 "
                        f"(type {rdf.get('type')!r}, format_version {version})")
      data = z.read(rdf["weights"]["onnx"]["source"])
  except (zipfile.BadZipFile, KeyError, yaml.YAMLError) as e:
    raise UserError(f"{path} is not a bioimage.io model package ({e})") from None
  folder = tempfile.mkdtemp(prefix="sinsr_napari_")
  onnx_path = os.path.join(folder, "model.onnx")
  with open(onnx_path, "wb") as f:
    f.write(data)
  return _onnx(onnx_path, path)


def _run(path: str, tile: int) -> Upscaler:
  """A run folder, exported to ONNX by ``python -m sinsr_jax.export`` in a child process: JAX
  and TensorFlow never load into napari's process (TensorFlow there crashes Mesa's OpenGL,
  which draws napari's canvas on machines without a GPU driver: tests/test_napari_widget.py)."""
  folder = tempfile.mkdtemp(prefix="sinsr_napari_")
  out = os.path.join(folder, "model.onnx")
  result = subprocess.run(
      [sys.executable, "-m", "sinsr_jax.export", f"--run={path}", "--format=onnx",
       f"--out={out}", f"--tile={tile}"], capture_output=True, text=True)
  if result.returncode:
    lines = result.stderr.strip().splitlines() or ["the export failed"]
    raise UserError(lines[-1].removeprefix("error: "))
  return _onnx(out, path)


def load(path: str, tile: int = tiling.DEFAULT_TILE) -> Upscaler:
  """A run folder (exported at ``tile`` first), a bioimage.io package .zip or an .onnx file;
  all run on ONNX Runtime."""
  path = os.path.expanduser(str(path))
  if not os.path.exists(path):
    raise UserError(f"{path} not found")
  if os.path.isdir(path):
    return _run(path, tile)
  if path.lower().endswith(".zip"):
    return _package(path)
  if path.lower().endswith(".onnx"):
    return _onnx(path, path)
  raise UserError(f"{path}: not a run folder, a bioimage.io package (.zip) or an .onnx model")


def model_input(data: np.ndarray, value_range: tuple[float, float], channels: int) -> np.ndarray:
  """A layer's pixels (H, W) or (H, W, 3) -> (H, W, channels) in [0, 1], as upscale maps them."""
  pixels = data[..., None] if data.ndim == 2 else data
  micrograph = micrographs.Micrograph(np.asarray(pixels), "tiff", tuple(value_range))
  return micrographs.model_input(micrograph, channels)


def upscale(upscaler: Upscaler, data: np.ndarray, value_range: tuple[float, float], *,
            tile: int, context: int, blend: int,
            progress: Callable[[int, int], None] | None = None,
            cancelled: Callable[[], bool] = lambda: False) -> np.ndarray:
  """A layer's pixels (H, W) or (H, W, 3) upscaled, in their dtype and range (H*s, W*s[, 3]).

  ``progress(done, total)`` is told after each tile; ``cancelled()`` is asked then, and True
  raises Cancelled (so a cancel takes effect within one tile).
  """
  if data.ndim not in (2, 3) or min(data.shape[:2]) < 8:
    raise UserError(f"a layer of shape {data.shape} is not a 2-D image of at least 8x8 px")
  tile = upscaler.tile or tile
  lr = model_input(np.asarray(data), value_range, upscaler.channels)
  total = tiling.count_tiles(*lr.shape[:2], tile, context, blend)
  done = 0

  def tiles_done(n: int) -> None:
    nonlocal done
    done += n
    if progress is not None:
      progress(done, total)
    if cancelled():
      raise Cancelled("upscale cancelled: nothing was added")

  if cancelled():
    raise Cancelled("upscale cancelled: nothing was added")
  sr = tiling.upscale_tiled(upscaler.sr_fn, lr, upscaler.scale, tile=tile, context=context,
                            blend=blend, progress=tiles_done)
  channels = 1 if data.ndim == 2 else 3
  dtype = data.dtype if data.dtype.kind in "uif" else np.dtype(np.float32)
  pixels = micrographs.from_unit(sr, dtype, tuple(value_range), channels)
  return pixels[..., 0] if data.ndim == 2 else pixels


def adapt(run_folder: str, data: np.ndarray, metadata: dict, steps: int, *,
          cancelled: Callable[[], bool] = lambda: False,
          poll_s: float = 0.2) -> tuple[np.ndarray, dict]:
  """A layer's pixels upscaled by ``upscale --adapt=steps`` (the run fine-tuned on the layer
  itself, then self-ensemble and LR consistency), in a child process: JAX and TensorFlow stay out
  of napari's process. Returns (pixels in the layer's dtype and shape x s, the output's sidecar
  record). ``cancelled()`` is asked every ``poll_s``: True kills the child and raises Cancelled;
  its files are in a temporary folder, removed either way."""
  import importlib.util
  import json
  import shutil
  import time

  if data.ndim not in (2, 3) or min(data.shape[:2]) < 8:
    raise UserError(f"a layer of shape {data.shape} is not a 2-D image of at least 8x8 px")
  if not os.path.isdir(os.path.expanduser(run_folder)):
    raise UserError(f"adaptation fine-tunes a run's weights: {run_folder} is not a run folder "
                    "(an exported model cannot be adapted)")
  if importlib.util.find_spec("jax") is None:
    raise UserError("adaptation needs JAX in this environment: pip install sinsr_jax")
  folder = tempfile.mkdtemp(prefix="sinsr_napari_adapt_")
  try:
    source, out = os.path.join(folder, "layer.tif"), os.path.join(folder, "out")
    size = metadata.get("pixel_size_nm")
    with open(source, "wb") as f:
      micrographs.encode(data[..., None] if data.ndim == 2 else data, "tiff", f,
                         tuple(size) if size else None)
    with open(os.path.join(folder, "stderr.txt"), "w") as log:
      child = subprocess.Popen(
          [sys.executable, "-m", "sinsr_jax.upscale", f"--run={os.path.expanduser(run_folder)}",
           f"--adapt={steps}", "--databar=none", "--quiet", f"--out={out}", source],
          stdout=subprocess.DEVNULL, stderr=log)
      while child.poll() is None:
        if cancelled():
          child.kill()
          child.wait()
          raise Cancelled("adaptation cancelled: nothing was added")
        time.sleep(poll_s)
    if child.returncode:
      with open(os.path.join(folder, "stderr.txt")) as f:
        lines = [x for x in f.read().strip().splitlines() if x.strip()] or ["upscale failed"]
      raise UserError(lines[-1].removeprefix("error: "))
    result = next(os.path.join(out, f) for f in sorted(os.listdir(out)) if f.endswith(".tif"))
    pixels = micrographs.read(result).pixels
    with open(calibration.sidecar_path(result)) as f:
      record = json.load(f)
    return (pixels[..., 0] if data.ndim == 2 else pixels), record
  finally:
    shutil.rmtree(folder, ignore_errors=True)


def provenance(upscaler: Upscaler, metadata: dict, tile: int, context: int, blend: int) -> dict:
  """The result layer's metadata: the source layer's, the scale and how it was made."""
  size = metadata.get("pixel_size_nm")
  return {**metadata, "pixel_size_nm": [s / upscaler.scale for s in size] if size else None,
          "upscaled": {"model": upscaler.label, "from": os.path.abspath(upscaler.source),
                       "runtime": upscaler.runtime, "checkpoint_step": upscaler.step,
                       "scale": upscaler.scale, "tile": upscaler.tile or tile,
                       "context": context, "blend": blend, **calibration.package_provenance()}}


def save(pixels: np.ndarray, path: str, metadata: dict) -> str:
  """Writes an upscaled layer as upscale does: a calibrated TIFF (ImageJ resolution in nm) and
  its sidecar ``path.json``, each atomically. Returns the sidecar's path."""
  from tfds_sem import instrument as instrument_metadata

  size = metadata.get("pixel_size_nm")
  calib = calibration.Calibration(tuple(size) if size else None,
                                  "layer metadata" if size else "unknown")
  height, width = pixels.shape[:2]
  source = metadata.get("source") or "napari layer"
  making = {**metadata.get("upscaled", {})}
  description = calibration.record(
      source=source, output=path, shape=(height, width), dtype=str(pixels.dtype),
      calibration=calib, input_instrument=instrument_metadata.UNKNOWN,
      input_shape=(height // max(1, making.get("scale", 1)), width // max(1, making.get(
          "scale", 1))), databar={"mode": "crop"}, making=making)
  text = calibration.to_json(description)
  stored = pixels[..., None] if pixels.ndim == 2 else pixels
  micrographs.write_atomic(path, lambda f: micrographs.encode(
      stored, "tiff", f, calib.pixel_size_nm, info=text))
  sidecar = calibration.sidecar_path(path)
  micrographs.write_atomic(sidecar, lambda f: f.write(text.encode()))
  return sidecar
