"""One micrograph file through a model: channels, databar, tiles, the calibrated output file.

The image above the instrument's databar goes through the model tile by tile; the databar is
MATLAB-bicubic upscaled and stacked below it (``keep``, its text stays legible), dropped
(``crop``), or not looked for (``none``: the whole frame goes through the model). The databar's
first row comes from the file's metadata where it states one (FEI / Thermo Fisher), else from
the image detector (tfds_sem.databar). The output states its pixel size and how it was made
(sinsr_jax.inference.calibration).
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Callable

import numpy as np

from sinsr_jax.data import degradations
from sinsr_jax.inference import calibration, micrographs, tiling
from sinsr_jax.inference.micrographs import MicrographError
from sinsr_jax.runtime import paths
from tfds_sem.databar import find_databar

MIN_SIDE = 8  # LR pixels: smaller images hold too little for a model to work on
DATABAR_MODES = ("keep", "crop", "none")
# The databar's bicubic upscale runs tiled too (bounded memory); its kernel reaches 2 LR pixels.
_BICUBIC_TILE, _BICUBIC_CONTEXT = 256, 4


@dataclasses.dataclass(frozen=True)
class Settings:
  tile: int = tiling.DEFAULT_TILE
  context: int = 32
  blend: int = 16
  batch: int = 1
  databar: str = "keep"
  format: str = "auto"  # auto (the input's family) | png | tif
  pixel_size_nm: float | None = None  # for files whose metadata has none


@dataclasses.dataclass(frozen=True)
class Upscaled:
  """What upscale_file wrote: the output's shape, its calibration, and where the databar was."""

  shape: tuple[int, int]
  calibration: calibration.Calibration
  databar_row: int  # the input's first databar row; its height when there is none
  databar_found_by: str
  warnings: tuple[str, ...] = ()  # metadata the file has but that could not be used


@dataclasses.dataclass(frozen=True)
class Model:
  """What upscaling needs of a run: its jitted SR function, scale and input channels, and the
  multiple the model needs LR sides to be (2 for RRDBNet x2, which folds pixels; else 1)."""

  sr_fn: Callable
  scale: int
  channels: int
  multiple: int = 1
  label: str = ""
  run_dir: str = ""  # the training run's folder; "" for bicubic
  step: int | None = None  # the checkpoint's step
  adaptation: dict | None = None  # upscale --adapt: its settings, decision and held-out PSNRs
  test_time: dict | None = None  # self-ensemble and LR consistency (inference.test_time)


def size_multiple(sr_fn: Callable, channels: int) -> int:
  """The smallest LR side multiple (1, 2, 4, 8) the model accepts, found by tracing only."""
  import jax
  import jax.numpy as jnp

  for multiple in (1, 2, 4, 8):
    try:
      jax.eval_shape(sr_fn, jax.ShapeDtypeStruct((1, 3 * multiple, 3 * multiple, channels),
                                                 jnp.float32))
      return multiple
    except Exception:  # a model rejecting a size raises while tracing (ValueError, TypeError)
      continue
  return 1


def output_path(source: str, out_dir: str, scale: int, forced_format: str = "auto") -> str:
  """``OUT/<stem>_x<scale>.<ext>``, ext of the output's format."""
  _, suffix = micrographs.output_format(source, forced_format)
  return paths.join(out_dir, f"{pathlib.PurePosixPath(source).stem}_x{scale}{suffix}")


def find_databar_row(micrograph: micrographs.Micrograph, mode: str) -> tuple[int, str]:
  """(first row of the databar, or the image height when there is none; how it was found)."""
  height = micrograph.pixels.shape[0]
  if mode == "none":
    return height, "not looked for (--databar=none)"
  stated = micrograph.instrument.databar_row
  if stated is not None:
    return (height if stated < 0 else stated), f"{micrograph.instrument.source} metadata"
  top = find_databar(micrographs.gray_levels(micrograph))
  return (height, "image detector: none") if top < 0 else (top, "image detector")


def databar_row(micrograph: micrographs.Micrograph, mode: str) -> int:
  """First row of the databar (the image height when there is none or ``mode`` is none)."""
  return find_databar_row(micrograph, mode)[0]


def upscale_pixels(micrograph: micrographs.Micrograph, model: Model, settings: Settings,
                   dtype: np.dtype, progress=None, top: int | None = None) -> np.ndarray:
  """The upscaled micrograph as stored pixels (H', W', 1 or 3) of ``dtype``.

  ``progress``: a tqdm-like bar, reset to the number of model tiles and updated per tile.
  ``top``: the databar's first row when already known.
  """
  height, width = micrograph.pixels.shape[:2]
  top = databar_row(micrograph, settings.databar) if top is None else top
  if min(top, width) < MIN_SIDE:
    where = " above its databar" if top < height else ""
    raise MicrographError(f"image is {width}x{top} px{where}; too small for the model: the "
                          f"minimum is {MIN_SIDE}x{MIN_SIDE} px")
  # The model sees the image area's range (as in training); a kept databar keeps the frame's.
  area = micrograph.for_image_area(top)
  lr = micrographs.model_input(area, model.channels)
  scale, channels = model.scale, micrographs.output_channels(micrograph, model.channels)
  out_height = (height if settings.databar == "keep" else top) * scale
  out = np.empty((out_height, width * scale, channels), dtype)

  def sink(offset: int, of: micrographs.Micrograph) -> Callable[[int, np.ndarray], None]:
    value_range = micrographs.output_range(of, dtype)

    def write(row: int, values: np.ndarray) -> None:
      out[offset + row:offset + row + len(values)] = micrographs.from_unit(
          values, dtype, value_range, channels)
    return write

  if progress is not None:
    progress.reset(total=tiling.count_tiles(top, width, settings.tile, settings.context,
                                            settings.blend))
  tiling.upscale_tiled(model.sr_fn, lr[:top], scale, tile=settings.tile,
                       context=settings.context, blend=settings.blend, batch=settings.batch,
                       multiple=model.multiple, sink=sink(0, area),
                       progress=progress.update if progress is not None else None)
  if out_height > top * scale:  # the databar, kept: bicubic, so its text stays legible
    databar = micrographs.model_input(micrograph, model.channels)[top:]
    tiling.upscale_tiled(lambda x: degradations.bicubic_upscale(x, scale), databar, scale,
                         tile=_BICUBIC_TILE, context=_BICUBIC_CONTEXT, blend=0,
                         sink=sink(top * scale, micrograph))
  return out


def upscale_file(source: str, dest: str, model: Model, settings: Settings,
                 progress=None, package: dict | None = None) -> Upscaled:
  """Reads ``source``, upscales it and writes ``dest`` and its sidecar ``dest.json`` atomically.

  ``package``: version and commit for the provenance (calibration.package_provenance(), asked
  once per batch). Raises MicrographError (or OSError from writing) with the reason; nothing is
  left at ``dest`` then.
  """
  micrograph = micrographs.read(source)
  fmt, _ = micrographs.output_format(source, settings.format)
  top, found_by = find_databar_row(micrograph, settings.databar)
  pixels = upscale_pixels(micrograph, model, settings, micrographs.stored_dtype(micrograph, fmt),
                          progress, top=top)
  calib = calibration.output_calibration(micrograph.instrument, model.scale,
                                         settings.pixel_size_nm)
  height = micrograph.pixels.shape[0]
  databar = {"mode": settings.databar, "first_row": top if top < height else None,
             "found_by": found_by}
  making = {"model": model.label or "unnamed", "run": paths.absolute(model.run_dir) if
            model.run_dir else None, "checkpoint_step": model.step, "scale": model.scale,
            "tile": settings.tile, "context": settings.context, "blend": settings.blend,
            **({"adaptation": model.adaptation} if model.adaptation is not None else {}),
            **({"test_time": model.test_time} if model.test_time is not None else {}),
            **(package if package is not None else calibration.package_provenance())}
  description = calibration.record(
      source=source, output=dest, shape=pixels.shape[:2], dtype=str(pixels.dtype),
      calibration=calib, input_instrument=micrograph.instrument,
      input_shape=micrograph.pixels.shape[:2], databar=databar, making=making)
  text = calibration.to_json(description)
  micrographs.write_atomic(dest, lambda f: micrographs.encode(
      pixels, fmt, f, calib.pixel_size_nm, info=text if fmt == "tiff" else ""))
  micrographs.write_atomic(calibration.sidecar_path(dest), lambda f: f.write(text.encode()))
  return Upscaled(pixels.shape[:2], calib, top, found_by, micrograph.instrument.warnings)
