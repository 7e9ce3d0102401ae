"""The napari reader: a micrograph as layers that keep what ``upscale`` keeps.

The instrument's pixel size becomes the layer's ``scale`` in nm (napari's own TIFF reader
ignores ImageJ and vendor calibration), the stored pixels keep their bit depth, and the databar
goes into a layer of its own placed below the image (``separate``) or is dropped (``drop``).
No Qt here: napari calls these functions, and tests call them without a viewer.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from sinsr_jax.inference import micrographs, upscaling

SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
DATABAR_CHOICES = ("separate", "drop")


def napari_get_reader(path) -> Callable | None:
  """npe2 reader hook: a function reading ``path``, or None when it is not one micrograph."""
  if isinstance(path, list | tuple):
    if len(path) != 1:
      return None
    path = path[0]
  if not isinstance(path, str | os.PathLike) or not str(path).lower().endswith(SUFFIXES):
    return None
  return read_layers


def layer_scale(micrograph: micrographs.Micrograph) -> tuple[tuple[float, float], str]:
  """((y, x) pixel size, unit): nm from the instrument's metadata, else 1 pixel."""
  size = micrograph.instrument.pixel_size_nm  # (x, y)
  return ((float(size[1]), float(size[0])), "nm") if size else ((1.0, 1.0), "pixel")


def _plane(pixels: np.ndarray) -> tuple[np.ndarray, bool]:
  """(H, W) for gray, (H, W, 3|4) for colour, and whether it is RGB."""
  if pixels.shape[-1] in (3, 4):
    return pixels, True
  return pixels[..., 0], False


def read_layers(path, databar: str = "separate") -> list[tuple]:
  """[(data, layer kwargs, "image"), ...]: the image area, and its databar when ``separate``.

  Metadata of each layer: the source, dtype, bit depth, the [lo, hi] that upscale maps to
  [0, 1], and the instrument's fields; what the Upscale widget and the writer read back.
  """
  if databar not in DATABAR_CHOICES:
    raise ValueError(f"databar={databar!r}; valid: {', '.join(DATABAR_CHOICES)}")
  path = os.fspath(path[0] if isinstance(path, list | tuple) else path)
  micrograph = micrographs.read(path)
  top, found_by = upscaling.find_databar_row(micrograph, "crop")
  scale, unit = layer_scale(micrograph)
  data, rgb = _plane(micrograph.pixels)
  name = os.path.splitext(os.path.basename(path))[0]
  metadata = {"source": os.path.abspath(path), "dtype": str(micrograph.pixels.dtype),
              "bit_depth": micrograph.pixels.dtype.itemsize * 8,
              "value_range": list(micrograph.value_range), "databar_row": top,
              "databar_found_by": found_by,
              "pixel_size_nm": micrograph.instrument.pixel_size_nm,  # (x, y) or None
              "pixel_size_from": micrograph.instrument.pixel_size_from,
              "instrument": micrograph.instrument.source,
              "instrument_fields": dict(micrograph.instrument.fields)}
  common = {"scale": scale, "units": (unit, unit), "rgb": rgb}
  contrast = list(micrograph.value_range)
  layers = [(data[:top], {**common, "name": name, "metadata": metadata,
                          "contrast_limits": contrast}, "image")]
  if databar == "separate" and top < data.shape[0]:
    layers.append((data[top:], {**common, "name": f"{name} databar",
                                "translate": (top * scale[0], 0.0), "contrast_limits": contrast,
                                "metadata": {**metadata, "databar": True}}, "image"))
  return layers
