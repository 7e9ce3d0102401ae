"""Reading SEM micrographs for the TFDS builders: decode, grayscale, databar, content hash.

Pure functions on bytes and arrays; the builders own the file walking.
"""

from __future__ import annotations

import hashlib
import io
import pathlib

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
_TIFF_SUFFIXES = (".tif", ".tiff")

# Databar detection (8-bit levels). A band pixel is near black or near white; a band row is
# mostly band pixels (text and the scale bar take the rest); the band's first row is a clean line.
_DARK_LEVEL, _BRIGHT_LEVEL = 40, 215
_BAND_ROW_FRACTION = 0.5
_BAND_EDGE_FRACTION = 0.9
_BAND_MIN_HEIGHT = 0.02  # of the image height
_BAND_MAX_HEIGHT = 0.5


class ImageDecodeError(ValueError):
  """Raised for bytes that are not a readable image (corrupt, truncated, unsupported)."""


def is_image_name(name: str) -> bool:
  return pathlib.PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def decode_image(data: bytes, name: str) -> np.ndarray:
  """Bytes of a JPEG/PNG/TIFF/BMP file -> HxWxC uint8 or uint16 array (first page of a TIFF)."""
  try:
    if name.lower().endswith(_TIFF_SUFFIXES):
      array = tifffile.imread(io.BytesIO(data), key=0)
    else:
      with Image.open(io.BytesIO(data)) as image:
        image.load()  # raises on truncated data instead of returning a partly grey image
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


def to_gray(image: np.ndarray) -> np.ndarray:
  """HxWxC -> HxWx1 of the same dtype: ITU-R BT.601 luma of RGB(A), gray(+alpha) kept.

  The archive stores grayscale SEM frames as (often tinted) RGB; luma maps an untinted frame
  back to its exact gray levels.
  """
  if image.shape[-1] in (1, 2):
    return image[..., :1]
  luma = image[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
  top = np.iinfo(image.dtype).max
  return np.clip(np.floor(luma + 0.5), 0, top).astype(image.dtype)[..., None]


def to_bit_depth(gray: np.ndarray, bits: int) -> np.ndarray:
  """uint8 <-> uint16 by the exact level maps (x * 257, x >> 8)."""
  if bits == 8:
    return gray if gray.dtype == np.uint8 else (gray >> 8).astype(np.uint8)
  return gray if gray.dtype == np.uint16 else gray.astype(np.uint16) * 257


def find_databar(gray: np.ndarray) -> int:
  """First row of the instrument's databar (a full-width bright or dark bottom band), or -1.

  Walks up from the bottom row while rows stay mostly band-coloured; the band must start with
  a clean edge row and be between 2% and 50% of the image high.
  """
  levels = to_bit_depth(gray, 8)[..., 0]
  height = levels.shape[0]
  for is_band in (levels <= _DARK_LEVEL, levels >= _BRIGHT_LEVEL):
    fraction = is_band.mean(axis=1)
    if fraction[-1] < _BAND_EDGE_FRACTION:
      continue
    top = height - 1
    while top > 0 and fraction[top - 1] >= _BAND_ROW_FRACTION:
      top -= 1
    while top < height - 1 and fraction[top] < _BAND_EDGE_FRACTION:
      top += 1  # the walk may stop on a text row; the band's edge is the first clean row
    band = height - top
    if _BAND_MIN_HEIGHT * height <= band <= _BAND_MAX_HEIGHT * height:
      return top
  return -1


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
