"""The user's own HR micrographs as an evaluation set: each file's image area, in [0, 1].

Files, globs and folders as ``upscale`` takes them. Each image is read with its metadata and
cut above its databar (the metadata's row, else the image detector's), and mapped to [0, 1] as
``upscale`` and the dataset builders map it (8 bits by the type's range; 16 bits by the bit
depth the metadata states, else, as float, by the image area's own range), in the run's
channels. Its class is its folder's name. An unreadable file, or one whose image area is
too small for the scale, is skipped with a reason.
"""

from __future__ import annotations

import os

from sinsr_jax.errors import UserError
from sinsr_jax.inference import micrographs, upscaling
from sinsr_jax.runtime import paths

MIN_LR_SIDE = 16  # LR pixels: smaller images leave too little after the metrics' border crop


def load(patterns: list[str], *, channels: int, scale: int,
         recursive: bool = False) -> tuple[list[dict], list[str]]:
  """(elements {"image", "filename", "label", "databar_row", "pixel_nm" (0: unknown)}, one
  ``file: reason`` per file skipped). Raises UserError when no file is usable."""
  files, skipped = micrographs.expand_inputs(patterns, recursive)
  elements = []
  for path in files:
    try:
      micrograph = micrographs.read(path)
    except micrographs.MicrographError as e:
      skipped.append(f"{path}: {e}")
      continue
    top, _ = upscaling.find_databar_row(micrograph, "crop")
    width = micrograph.pixels.shape[1]
    if min(top, width) < MIN_LR_SIDE * scale:
      skipped.append(f"{path}: image area {width}x{top} px is smaller than "
                     f"{MIN_LR_SIDE * scale} px, too small to score at x{scale}")
      continue
    image = micrographs.model_input(micrograph.for_image_area(top), channels)[:top]
    size = micrograph.instrument.pixel_size_nm  # (x, y) nm, or None
    elements.append({"image": image, "filename": path, "databar_row": top,
                     "label": os.path.basename(os.path.dirname(paths.absolute(path))),
                     "pixel_nm": float(size[0]) if size else 0.0})
  if not elements:
    reasons = "; ".join(skipped) or "no image files"
    raise UserError(f"no usable micrograph in {', '.join(patterns)}: {reasons}")
  return elements, skipped

