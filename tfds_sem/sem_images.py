"""Reading SEM micrographs for the TFDS builders: decode, grayscale, palettes, content hash.

Pure functions on bytes and arrays; the builders own the file walking.
"""

from __future__ import annotations

import hashlib
import io
import pathlib

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from tfds_sem.databar import find_databar  # noqa: F401  (the builders' and upscale's entry)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
_TIFF_SUFFIXES = (".tif", ".tiff")

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601
_GRAY_RAMP_SHARE = 0.75  # of a palette's entries gray (r = g = b) makes it a gray ramp


class ImageDecodeError(ValueError):
  """Raised for bytes that are not a readable image (corrupt, truncated, unsupported)."""


def is_image_name(name: str) -> bool:
  return pathlib.PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def decode_image(data: bytes, name: str) -> np.ndarray:
  """Bytes of a JPEG/PNG/TIFF/BMP file -> HxWxC uint8 or uint16 array (first page of a TIFF)."""
  try:
    if name.lower().endswith(_TIFF_SUFFIXES):
      with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        array = page.asarray()
        if page.photometric == tifffile.PHOTOMETRIC.PALETTE and page.colormap is not None:
          array = palette_to_gray(array, page.colormap.T, 65535)
    else:
      with Image.open(io.BytesIO(data)) as image:
        image.load()  # raises on truncated data instead of returning a partly grey image
        if image.mode == "P" and "transparency" not in image.info:
          palette = np.asarray(image.getpalette("RGB"), np.uint8).reshape(-1, 3)
          array = palette_to_gray(np.asarray(image), palette, 255)
        else:
          array = np.asarray(image.convert("RGB") if image.mode in ("P", "CMYK", "YCbCr")
                             else image)
  except UnidentifiedImageError:
    raise ImageDecodeError("not a readable image (unknown format or corrupt header)") from None
  except Exception as e:  # PIL and tifffile raise many types for bad bytes
    raise ImageDecodeError(f"{type(e).__name__}: {e}") from None
  if array.ndim == 2:
    array = array[..., None]
  if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4) or min(array.shape[:2]) < 1:
    raise ImageDecodeError(f"unsupported image layout {array.shape}")
  if array.dtype == np.bool_:
    array = array.astype(np.uint8) * 255
  elif array.dtype not in (np.uint8, np.uint16):
    if np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 65535:
      array = array.astype(np.uint16)  # PIL's 32-bit mode "I" for 16-bit PNGs
    else:
      raise ImageDecodeError(f"unsupported pixel type {array.dtype}")
  return array


def palette_to_gray(indices: np.ndarray, palette: np.ndarray, top: int) -> np.ndarray:
  """Palette indices -> HxW(x1) uint8 gray levels through ``palette`` (N x 3, values 0..top).

  SEM software (Zeiss SmartSEM) stores 8-bit frames as palette images whose palette is a gray
  ramp except a few overlay entries (coloured annotation text): there the gray entries are the
  levels, and an overlay entry takes the level its gray neighbours give it, not its colour's.
  Any other palette is mapped to the BT.601 luma of its colours.
  """
  rgb = palette.astype(np.float64) * (255.0 / top)
  is_gray = np.ptp(rgb, axis=1) <= 1.0
  entries = np.arange(len(rgb))
  gray_levels = rgb[is_gray, 0]
  if is_gray.mean() >= _GRAY_RAMP_SHARE and np.all(np.diff(gray_levels) >= 0):
    lut = np.interp(entries, entries[is_gray], gray_levels)
  else:
    lut = rgb @ _LUMA.astype(np.float64)
  lut = np.clip(np.floor(lut + 0.5), 0, 255).astype(np.uint8)
  return lut[np.clip(indices, 0, len(lut) - 1)]


def to_gray(image: np.ndarray) -> np.ndarray:
  """HxWxC -> HxWx1 of the same dtype: ITU-R BT.601 luma of RGB(A), gray(+alpha) kept.

  The archive stores grayscale SEM frames as (often tinted) RGB; luma maps an untinted frame
  back to its exact gray levels.
  """
  if image.shape[-1] in (1, 2):
    return image[..., :1]
  luma = image[..., :3].astype(np.float32) @ _LUMA
  top = np.iinfo(image.dtype).max
  return np.clip(np.floor(luma + 0.5), 0, top).astype(image.dtype)[..., None]


def image_value_range(pixels: np.ndarray, image_rows: int | None = None,
                      bit_depth: int | None = None) -> tuple[float, float]:
  """The [lo, hi] that maps a frame's levels to [0, 1], the same in training and in use.

  8-bit: the type's range. 16-bit: [0, 2^bits - 1] where the metadata states the detector's
  ``bit_depth``, else the image area's own minimum and maximum (rows above ``image_rows``, the
  databar's first row: a black band or white text would otherwise set the range). Float: the
  image area's minimum and maximum.
  """
  if pixels.dtype == np.uint8:
    return 0.0, 255.0
  if bit_depth and pixels.dtype.kind == "u" and 2 ** bit_depth - 1 <= np.iinfo(pixels.dtype).max:
    return 0.0, float(2 ** bit_depth - 1)
  area = pixels[:image_rows] if image_rows and image_rows > 0 else pixels
  return float(area.min()), float(area.max())


def to_stored_levels(gray: np.ndarray, bits: int, value_range: tuple[float, float]) -> np.ndarray:
  """Gray levels -> the dataset's ``bits`` (8 or 16): 8-bit frames by the exact level maps
  (to_bit_depth), 16-bit ones stretched from ``value_range`` (image_value_range) to the whole
  stored type and clipped, so training's division by the type's maximum is upscale's mapping."""
  if gray.dtype == np.uint8:
    return to_bit_depth(gray, bits)
  lo, hi = value_range
  unit = np.clip((gray.astype(np.float64) - lo) / ((hi - lo) or 1.0), 0.0, 1.0)
  top = 65535 if bits == 16 else 255
  return np.floor(unit * top + 0.5).astype(np.uint16 if bits == 16 else np.uint8)


def to_bit_depth(gray: np.ndarray, bits: int) -> np.ndarray:
  """uint8 <-> uint16 by the exact level maps (x * 257, x >> 8)."""
  if bits == 8:
    return gray if gray.dtype == np.uint8 else (gray >> 8).astype(np.uint8)
  return gray if gray.dtype == np.uint16 else gray.astype(np.uint16) * 257


def content_hash(image: np.ndarray) -> str:
  """sha256 of the decoded pixels (shape, dtype and values): equal for exact duplicates."""
  digest = hashlib.sha256(f"{image.shape}{image.dtype}".encode())
  digest.update(np.ascontiguousarray(image).tobytes())
  return digest.hexdigest()


def split_counts(total: int, percent: tuple[float, ...]) -> list[int]:
  """Integer split sizes for ``total`` items, rounding the cumulative boundaries."""
  bounds = np.floor(np.cumsum(percent) / np.sum(percent) * total + 0.5).astype(int)
  return list(np.diff(np.concatenate([[0], bounds])))


def stratified_splits(hashes_by_class: dict[str, list[str]], names: tuple[str, ...],
                      percent: tuple[float, ...]) -> dict[str, str]:
  """Content hash -> split name, stratified by class.

  Split sizes are the rounded shares of the whole set; each class gets its share within one
  image (largest remainders first). Within a class, images are ordered by content hash before
  they are cut: the assignment depends on the pixels only, not on file names or archive order.
  An evaluation split that rounding leaves empty gets one image from the largest class.
  """
  if len(names) != len(percent) or any(p < 0 for p in percent) or not sum(percent):
    raise ValueError(f"split percentages {percent} for {names} must be non-negative, not all 0")
  classes = sorted(hashes_by_class)
  share = np.asarray(percent, np.float64) / np.sum(percent)
  quota = np.array([[len(hashes_by_class[c]) * p for p in share] for c in classes])
  counts = np.floor(quota).astype(int)
  column_left = np.array(split_counts(int(quota.sum().round()), percent)) - counts.sum(axis=0)
  row_left = np.array([len(hashes_by_class[c]) for c in classes]) - counts.sum(axis=1)
  remainders = sorted(((quota[i, j] - counts[i, j], -i, -j) for i in range(len(classes))
                       for j in range(len(names))), reverse=True)
  for strict in (True, False):  # by remainder within the split sizes, then anywhere left
    for _, i, j in remainders:
      i, j = -i, -j
      if row_left[i] > 0 and (column_left[j] > 0 or not strict):
        counts[i, j] += 1
        row_left[i] -= 1
        column_left[j] -= 1
  for j in range(1, len(names)):
    donor = int(np.argmax(counts[:, 0]))
    if percent[j] > 0 and counts[:, j].sum() == 0 and counts[:, 0].sum() > 1:
      counts[donor, 0] -= 1
      counts[donor, j] += 1
  assignment = {}
  for i, c in enumerate(classes):
    ordered, start = sorted(hashes_by_class[c]), 0
    for j, name in enumerate(names):
      assignment.update(dict.fromkeys(ordered[start:start + counts[i, j]], name))
      start += counts[i, j]
  return assignment
