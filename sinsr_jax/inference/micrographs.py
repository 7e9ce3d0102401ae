"""Micrograph files in and out: read, map to the model's [0, 1] channels and back, write atomically.

Reads 8/16-bit TIFF, PNG, JPEG, BMP and float TIFF, with the instrument's metadata
(tfds_sem.instrument, and a Hitachi/JEOL/TESCAN sidecar found beside the file by its stem).
Levels map to [0, 1] as the dataset builders map them (tfds_sem.sem_images.image_value_range):
8 bits by the type's range; 16 bits by the bit depth the metadata states, else by the image
area's own minimum and maximum (never the databar's), as float frames; and back to the same
range. Palette TIFFs read as gray levels
(tfds_sem.sem_images.palette_to_gray). Output keeps the input's pixel type and format family:
TIFF -> TIFF, PNG -> PNG, JPEG -> JPEG (quality 95), BMP -> PNG; or PNG / TIFF on request. A TIFF
output states its pixel size as ImageJ does (resolution tags + unit), which Fiji and tifffile
read back.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pathlib
import posixpath
import tempfile
from collections.abc import Callable

import numpy as np
import tifffile

from sinsr_jax.errors import UserError
from sinsr_jax.runtime import paths
from tfds_sem import instrument as instrument_metadata
from tfds_sem import sem_images
from tfds_sem.sem_images import ImageDecodeError, decode_image, to_gray
from tfds_sem.vendors import sidecars

_FORMAT_OF_SUFFIX = {".tif": "tiff", ".tiff": "tiff", ".png": "png", ".jpg": "jpeg",
                     ".jpeg": "jpeg", ".bmp": "bmp"}
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R BT.601, as tfds_sem's to_gray
JPEG_QUALITY = 95


class MicrographError(UserError):
  """A file that cannot be read as a micrograph, or written."""


@dataclasses.dataclass(frozen=True)
class Micrograph:
  """Pixels as stored (H, W, C: uint8, uint16 or finite float), the file's format, the
  [lo, hi] that maps to [0, 1] (sem_images.image_value_range: the whole frame's until
  ``for_image_area`` names the databar's row), and what the file's metadata says of its
  acquisition."""

  pixels: np.ndarray
  format: str
  value_range: tuple[float, float]
  instrument: instrument_metadata.Instrument = instrument_metadata.UNKNOWN

  @classmethod
  def of(cls, pixels: np.ndarray, fmt: str,
         instrument: instrument_metadata.Instrument = instrument_metadata.UNKNOWN
         ) -> Micrograph:
    return cls(pixels, fmt, sem_images.image_value_range(pixels, None, instrument.bit_depth),
               instrument)

  def for_image_area(self, top: int) -> Micrograph:
    """The same frame with the range of its image area, the rows above ``top`` (the
    databar's first row, or the height)."""
    return dataclasses.replace(self, value_range=sem_images.image_value_range(
        self.pixels, top, self.instrument.bit_depth))


def _read_float_tiff(tif: tifffile.TiffFile) -> np.ndarray:
  pixels = tif.pages[0].asarray()
  pixels = pixels[..., None] if pixels.ndim == 2 else pixels
  if pixels.ndim != 3 or pixels.shape[-1] not in (1, 2, 3, 4):
    raise MicrographError(f"unsupported float TIFF layout {pixels.shape}")
  bad = ~np.isfinite(pixels)
  if bad.any():
    nan = int(np.isnan(pixels).sum())
    counts = [f"{n} {kind}" for n, kind in ((nan, "NaN"), (int(bad.sum()) - nan, "infinite"))
              if n]
    raise MicrographError(f"float TIFF has non-finite pixels ({', '.join(counts)}); the "
                          f"model needs finite values")
  return pixels


def read(path: str) -> Micrograph:
  """Reads the micrograph at ``path``; MicrographError says why a file cannot be used."""
  suffix = pathlib.Path(path).suffix.lower()
  if suffix not in _FORMAT_OF_SUFFIX:
    raise MicrographError(f"not a supported image type ({suffix or 'no suffix'}); supported: "
                          f"{', '.join(sorted(_FORMAT_OF_SUFFIX))}")
  try:
    data = paths.read_bytes(path)
  except OSError as e:
    raise MicrographError(f"cannot read: {e.strerror or e}") from None
  if not data:
    raise MicrographError("empty file (0 bytes)")
  fmt = _FORMAT_OF_SUFFIX[suffix]
  pixels = None
  if fmt == "tiff":
    try:
      with tifffile.TiffFile(io.BytesIO(data)) as tif:
        if len(tif.pages) > 1:
          raise MicrographError(f"multi-page TIFF ({len(tif.pages)} pages); upscale takes one "
                                f"image per file: save the pages as separate files")
        if tif.pages[0].dtype is not None and tif.pages[0].dtype.kind == "f":
          pixels = _read_float_tiff(tif)
    except MicrographError:
      raise
    except Exception as e:  # tifffile raises many types for bad bytes
      raise MicrographError(f"not a readable TIFF file ({type(e).__name__}: {e})") from None
  if pixels is None:
    try:
      pixels = decode_image(data, path)
    except ImageDecodeError as e:
      raise MicrographError(f"not a readable {fmt.upper()} image ({e})") from None
  return Micrograph.of(pixels, fmt, instrument_metadata.read(data, path, *pixels.shape[:2],
                                                             sidecar=_sidecar(path)))


def _gray(pixels: np.ndarray) -> np.ndarray:
  """HxWx1 BT.601 luma of RGB(A), gray(+alpha) kept; integer levels rounded as in training."""
  if np.issubdtype(pixels.dtype, np.integer):
    return to_gray(pixels)
  return pixels[..., :1] if pixels.shape[-1] < 3 else pixels[..., :3].astype(np.float32) @ _LUMA[
      :, None]


def gray_levels(micrograph: Micrograph) -> np.ndarray:
  """HxWx1 integer gray levels for databar detection (a float image min-max mapped to 8 bits)."""
  gray = _gray(micrograph.pixels)
  if np.issubdtype(gray.dtype, np.integer):
    return gray
  return np.round(to_unit(gray, micrograph.value_range) * 255).astype(np.uint8)


def model_input(micrograph: Micrograph, channels: int) -> np.ndarray:
  """(H, W, channels) float32 in [0, 1]: RGB(A) to BT.601 luma for 1 channel, gray replicated
  for 3; alpha dropped."""
  pixels = micrograph.pixels
  pixels = _gray(pixels) if channels == 1 or pixels.shape[-1] < 3 else pixels[..., :3]
  unit = to_unit(pixels, micrograph.value_range)
  return np.repeat(unit, channels, axis=-1) if unit.shape[-1] != channels else unit


def to_unit(pixels: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
  """Stored pixels -> float32 in [0, 1] (float images in float64 first: offsets can be large)."""
  lo, hi = value_range
  work = np.float64 if pixels.dtype.kind == "f" else np.float32
  return ((pixels.astype(work) - lo) / ((hi - lo) or 1.0)).astype(np.float32)


def output_channels(micrograph: Micrograph, channels: int) -> int:
  """1 for a gray input or a 1-channel model, else 3."""
  return 1 if channels == 1 or micrograph.pixels.shape[-1] < 3 else 3


def from_unit(values: np.ndarray, dtype: np.dtype, value_range: tuple[float, float],
              out_channels: int) -> np.ndarray:
  """Model output in [0, 1] (n, w, C) -> stored pixels in ``value_range``: clipped, gray by luma
  if 3 -> 1."""
  values = np.clip(values, 0.0, 1.0)
  if values.shape[-1] != out_channels:
    values = values[..., :3] @ _LUMA[:, None]
  lo, hi = value_range
  stored = values.astype(np.float64) * (hi - lo) + lo
  if np.issubdtype(dtype, np.integer):
    return np.floor(stored + 0.5).astype(dtype)
  return stored.astype(dtype)


def output_range(micrograph: Micrograph, dtype: np.dtype) -> tuple[float, float]:
  """The stored range [0, 1] maps back to: the input's own, or the whole integer type when a
  float frame is written as integers (16-bit PNG)."""
  if np.issubdtype(dtype, np.integer) and micrograph.pixels.dtype.kind == "f":
    return 0.0, float(np.iinfo(dtype).max)
  return micrograph.value_range


def output_format(source: str, forced: str = "auto") -> tuple[str, str]:
  """(format, suffix) of the output for input file ``source``: its family with its suffix
  (BMP -> PNG), or ``forced`` png | tif."""
  if forced in ("png", "tif"):
    return ("png", ".png") if forced == "png" else ("tiff", ".tif")
  suffix = pathlib.Path(source).suffix.lower()
  fmt = _FORMAT_OF_SUFFIX.get(suffix, "png")
  return ("png", ".png") if fmt == "bmp" else (fmt, suffix)


def stored_dtype(micrograph: Micrograph, fmt: str) -> np.dtype:
  """The output's pixel type: the input's, except 8-bit JPEG and float -> 16-bit PNG."""
  dtype = micrograph.pixels.dtype
  if fmt == "jpeg":
    return np.dtype(np.uint8)
  if fmt == "png" and dtype.kind == "f":
    return np.dtype(np.uint16)
  return dtype


_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)  # what ImageJ's TIFF reader takes


def encode(pixels: np.ndarray, fmt: str, file,
           pixel_size_nm: tuple[float, float] | None = None, info: str = "") -> None:
  """Writes (H, W, 1 or 3) ``pixels`` to the open binary ``file`` as ``fmt``.

  TIFF: ImageJ's layout, with ``pixel_size_nm`` (x, y) as its resolution tags and unit nm and
  ``info`` as its Info property (Image > Show Info in Fiji); pixel types ImageJ cannot read get
  plain TIFF resolution tags in centimetres and ``info`` as the image description.
  """
  image = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
  if fmt == "tiff":
    photometric = "minisblack" if image.ndim == 2 else "rgb"
    if image.dtype in _IMAGEJ_DTYPES and (image.ndim == 2 or image.dtype == np.uint8):
      metadata = {"Info": info} if info else {}
      kwargs = {}
      if pixel_size_nm is not None:
        metadata["unit"] = "nm"
        kwargs["resolution"] = (1.0 / pixel_size_nm[0], 1.0 / pixel_size_nm[1])
      tifffile.imwrite(file, image, imagej=True, photometric=photometric, metadata=metadata,
                       **kwargs)
    else:
      kwargs = {}
      if pixel_size_nm is not None:
        kwargs = {"resolution": (1e7 / pixel_size_nm[0], 1e7 / pixel_size_nm[1]),
                  "resolutionunit": "CENTIMETER"}
      tifffile.imwrite(file, image, photometric=photometric, description=info or None,
                       metadata=None, **kwargs)
  elif fmt == "png":
    import cv2  # writes 16-bit RGB PNGs, which Pillow cannot

    ok, data = cv2.imencode(".png", image if image.ndim == 2 else image[..., ::-1])
    if not ok:
      raise MicrographError("PNG encoding failed")
    file.write(data.tobytes())
  elif fmt == "jpeg":
    from PIL import Image

    Image.fromarray(image).save(file, "JPEG", quality=JPEG_QUALITY)
  else:
    raise ValueError(f"cannot write format {fmt!r}")


def write_atomic(path: str, write: Callable) -> None:
  """Calls ``write(file)`` on a temporary file beside ``path``, then renames it to ``path``;
  on any failure the temporary file is removed, so no partial output remains. In a bucket
  (``gs://``) the file is written locally, then uploaded as one object (whole or absent)."""
  if paths.is_remote(path):
    with tempfile.TemporaryDirectory(prefix="sinsr_jax-out.") as folder:
      local = os.path.join(folder, posixpath.basename(path))
      write_atomic(local, write)
      paths.put(local, path)
    return
  folder, name = os.path.split(os.path.abspath(path))
  fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
  os.close(fd)
  try:
    with open(tmp, "wb") as f:  # a named file object: tifffile needs a real name
      write(f)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 -> what open() would have given
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def _sidecar(path: str) -> bytes | None:
  """The instrument's text file beside the image (Hitachi, JEOL, TESCAN), in a bucket too."""
  if not paths.is_remote(path):
    return sidecars.find(path)
  scheme, key = path.split("://", 1)  # a PurePath of "gs://b/k" would lose a slash
  for name in (f"{scheme}://{c}" for c in sidecars.candidates(key)):
    try:
      if paths.isfile(name):
        data = paths.read_bytes(name)
        if len(data) <= sidecars.MAX_BYTES:
          return data
    except OSError:
      continue
  return None


def _is_image(path: str) -> bool:
  return sem_images.is_image_name(path) and paths.isfile(path)


def _folder_images(folder: str, recursive: bool) -> list[str]:
  return [p for p in paths.walk_files(folder, recursive) if sem_images.is_image_name(p)]


def expand_inputs(args: list[str], recursive: bool) -> tuple[list[str], list[str]]:
  """(image files in order without repeats, one ``<input>: <reason>`` per unusable INPUT)."""
  files, problems = [], []
  where = " or its subfolders" if recursive else ""
  for arg in args:
    if paths.isdir(arg):
      found = _folder_images(arg, recursive)
      if not found:
        problems.append(f"{arg}: no image files ({', '.join(sem_images.IMAGE_SUFFIXES)}) in this "
                        f"folder{where}")
    elif paths.isfile(arg):
      found = [arg]  # named explicitly: read whatever it is and say why it does not work
    elif any(c in arg for c in "*?["):
      try:
        matches = paths.glob(arg, recursive=recursive)
      except ValueError as e:
        problems.append(f"{arg}: {e}")
        continue
      found = [p for m in matches for p in (_folder_images(m, recursive) if paths.isdir(m)
                                             else [m] if _is_image(m) else [])]
      if not found:
        problems.append(f"{arg}: no image file matches" if not matches else
                        f"{arg}: matches {len(matches)} paths but no image files")
    else:
      found = []
      problems.append(f"{arg}: no such file or folder")
    files += found
  seen, unique = set(), []
  for path in files:
    key = path if paths.is_remote(path) else os.path.realpath(path)
    if key not in seen:
      seen.add(key)
      unique.append(path)
  return unique, problems
