"""One micrograph file through a model: channels, databar, tiles, the output file.

The image above the instrument's databar goes through the model tile by tile; the databar is
MATLAB-bicubic upscaled and stacked below it (``keep``, its text stays legible), dropped
(``crop``), or not looked for (``none``: the whole frame goes through the model).
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Callable

import numpy as np

from sinsr_jax import degradations, micrographs, tiling
from sinsr_jax.micrographs import MicrographError
from tfds_sem.sem_images import find_databar

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


@dataclasses.dataclass(frozen=True)
class Model:
  """What upscaling needs of a run: its jitted SR function, scale and input channels, and the
  multiple the model needs LR sides to be (2 for RRDBNet x2, which folds pixels; else 1)."""

  sr_fn: Callable
  scale: int
  channels: int
  multiple: int = 1


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
  return os.path.join(out_dir, f"{pathlib.Path(source).stem}_x{scale}{suffix}")


def databar_row(micrograph: micrographs.Micrograph, mode: str) -> int:
  """First row of the databar (the image height when there is none or ``mode`` is none)."""
  height = micrograph.pixels.shape[0]
  top = -1 if mode == "none" else find_databar(micrographs.gray_levels(micrograph))
  return height if top < 0 else top


def upscale_pixels(micrograph: micrographs.Micrograph, model: Model, settings: Settings,
                   dtype: np.dtype, progress=None) -> np.ndarray:
  """The upscaled micrograph as stored pixels (H', W', 1 or 3) of ``dtype``.

  ``progress``: a tqdm-like bar, reset to the number of model tiles and updated per tile.
  """
  height, width = micrograph.pixels.shape[:2]
  top = databar_row(micrograph, settings.databar)
  if min(top, width) < MIN_SIDE:
    where = " above its databar" if top < height else ""
    raise MicrographError(f"image is {width}x{top} px{where}; too small for the model: the "
                          f"minimum is {MIN_SIDE}x{MIN_SIDE} px")
  lr = micrographs.model_input(micrograph, model.channels)
  scale, channels = model.scale, micrographs.output_channels(micrograph, model.channels)
  out_height = (height if settings.databar == "keep" else top) * scale
  out = np.empty((out_height, width * scale, channels), dtype)

  def sink(offset: int) -> Callable[[int, np.ndarray], None]:
    def write(row: int, values: np.ndarray) -> None:
      out[offset + row:offset + row + len(values)] = micrographs.from_unit(
          values, dtype, micrograph.value_range, channels)
    return write

  if progress is not None:
    progress.reset(total=tiling.count_tiles(top, width, settings.tile, settings.context,
                                            settings.blend))
  tiling.upscale_tiled(model.sr_fn, lr[:top], scale, tile=settings.tile,
                       context=settings.context, blend=settings.blend, batch=settings.batch,
                       multiple=model.multiple, sink=sink(0),
                       progress=progress.update if progress is not None else None)
  if out_height > top * scale:  # the databar, kept: bicubic, so its text stays legible
    tiling.upscale_tiled(lambda x: degradations.bicubic_upscale(x, scale), lr[top:], scale,
                         tile=_BICUBIC_TILE, context=_BICUBIC_CONTEXT, blend=0,
                         sink=sink(top * scale))
  return out


def upscale_file(source: str, dest: str, model: Model, settings: Settings,
                 progress=None) -> tuple[int, int]:
  """Reads ``source``, upscales it and writes ``dest`` atomically; returns its (height, width).

  Raises MicrographError (or OSError from writing) with the reason; nothing is left at
  ``dest`` then.
  """
  micrograph = micrographs.read(source)
  fmt, _ = micrographs.output_format(source, settings.format)
  pixels = upscale_pixels(micrograph, model, settings, micrographs.stored_dtype(micrograph, fmt),
                          progress)
  micrographs.write_atomic(dest, lambda f: micrographs.encode(pixels, fmt, f))
  return pixels.shape[:2]
