"""What a micrograph file says about its acquisition: pixel size, databar rows, instrument.

One reader for the metadata microscopes and imaging software write: Zeiss SmartSEM (tag
34118), FEI / Thermo Fisher (tag 34682, INI text) and Olympus SIS through tifffile's parsers;
TESCAN (tag 50431), Hitachi (``[SemImageFile]`` in the XPComment tag or a ``.txt`` sidecar) and
JEOL (a ``$``-key ``.txt`` sidecar) through tfds_sem.vendors; then ImageJ (resolution tags +
unit) and OME-TIFF (PhysicalSizeX/Y). Vendor files' standard TIFF resolution tags are (1, 1)
without a unit and are ignored; JPEG, PNG and BMP carry calibration only in a sidecar.

A tag that is malformed or contradicts the image gives a warning (in ``Instrument.warnings``)
and is not used; reading metadata never raises.
"""

from __future__ import annotations

import dataclasses
import io

import tifffile

from tfds_sem.vendors import fei, hitachi, imagej, jeol, ome, sidecars, sis, tescan, zeiss
from tfds_sem.vendors.base import (
  UNKNOWN,
  Instrument,
  parse_length_nm,  # noqa: F401 (re-exported)
)

_MAX_SAMPLE_VALUE = 281  # TIFF's MaxSampleValue: 4095 states 12-bit data in 16-bit pixels


def read(data: bytes, name: str, height: int, width: int,
         sidecar: bytes | None = None) -> Instrument:
  """The metadata of the file ``name`` (its bytes ``data``), whose image is height x width,
  with the bytes of its ``sidecar`` text file where it has one (tfds_sem.vendors.sidecars);
  UNKNOWN for files without metadata."""
  found = UNKNOWN
  if name.lower().endswith((".tif", ".tiff")):
    try:
      with tifffile.TiffFile(io.BytesIO(data)) as tif:
        found = from_tiff(tif, height, width)
    except Exception as e:  # a file the image reader accepted but whose tags tifffile rejects
      found = Instrument(warnings=(f"unreadable TIFF metadata ({type(e).__name__}: {e})",))
  if found.source in ("none", imagej.SOURCE, ome.SOURCE) and sidecar is not None:
    beside = from_sidecar(sidecar, height, width)
    if beside.source != "none":  # the instrument's own record before a viewer's calibration
      return dataclasses.replace(beside, bit_depth=found.bit_depth,
                                 warnings=found.warnings + beside.warnings)
  return found


def from_sidecar(data: bytes, height: int, width: int) -> Instrument:
  """Hitachi or JEOL facts from a sidecar's bytes; UNKNOWN for other text."""
  text = sidecars.decode(data)
  for present, source, parse in (
      (hitachi.is_hitachi, hitachi.SOURCE, lambda: hitachi.read(text, height, width)),
      (jeol.is_jeol, jeol.SOURCE, lambda: jeol.read(text, height, width)),
      (lambda t: "[MAIN]" in t, tescan.SOURCE, lambda: tescan.read(text, height))):
    if present(text):
      return _parsed(source, parse, ())
  return UNKNOWN


def _parsed(source: str, parse, warnings: tuple[str, ...]) -> Instrument:
  """``parse()``'s facts under ``source``; a reader's failure is a warning (in an Instrument
  without facts, source "none"), never a raise."""
  try:
    found = parse()
  except Exception as e:  # malformed text or values of the wrong type
    return Instrument(warnings=warnings + (f"{source} metadata unreadable "
                                           f"({type(e).__name__}: {e}); ignored",))
  return dataclasses.replace(found, source=source, warnings=warnings + found.warnings)


def _tag_text(tif: tifffile.TiffFile, code: int, decode) -> str | None:
  tag = tif.pages[0].tags.get(code)
  if tag is None:
    return None
  try:
    return decode(tag.value)
  except (ValueError, TypeError):
    return None


def _bit_depth(tif: tifffile.TiffFile) -> int | None:
  """The bits MaxSampleValue states (4095 -> 12), where it is below the pixel type's maximum."""
  page = tif.pages[0]
  tag = page.tags.get(_MAX_SAMPLE_VALUE)
  if tag is None or page.dtype is None or page.dtype.kind != "u":
    return None
  top = tag.value[0] if isinstance(tag.value, tuple) else tag.value
  bits = int(top).bit_length() if isinstance(top, int) and top > 0 else 0
  return bits if 0 < bits < page.dtype.itemsize * 8 and top == 2 ** bits - 1 else None


def from_tiff(tif: tifffile.TiffFile, height: int, width: int) -> Instrument:
  """Vendor metadata first (FEI, Zeiss, TESCAN, Hitachi, Olympus SIS), then ImageJ, then OME."""
  tescan_text = _tag_text(tif, tescan.TAG, tescan.text_of_tag)
  hitachi_text = _tag_text(tif, hitachi.XP_COMMENT_TAG, hitachi.text_of_xp_comment)
  readers = ((tif.is_fei, fei.SOURCE, lambda: fei.read(tif.fei_metadata, height)),
             (tif.is_sem, zeiss.SOURCE, lambda: zeiss.read(tif.sem_metadata, width)),
             (tescan_text is not None, tescan.SOURCE, lambda: tescan.read(tescan_text, height)),
             (hitachi_text is not None and hitachi.is_hitachi(hitachi_text), hitachi.SOURCE,
              lambda: hitachi.read(hitachi_text, height, width)),
             (tif.is_sis, sis.SOURCE, lambda: sis.read(tif.sis_metadata)),
             (tif.is_imagej, imagej.SOURCE, lambda: imagej.read(tif.imagej_metadata, tif.pages[0])),
             (tif.is_ome, ome.SOURCE, lambda: ome.read(tif.ome_metadata)))
  if tif.pages[0].tags.get(tescan.TAG) is not None and tescan_text is None:
    warnings = ("TESCAN tag 50431 holds no [MAIN] section; ignored",)
  else:
    warnings = ()
  bit_depth = _bit_depth(tif)
  for present, source, parse in readers:
    if not present:
      continue
    found = _parsed(source, parse, warnings)
    if found.source != "none":
      return dataclasses.replace(found, bit_depth=bit_depth)
    warnings = found.warnings
  return Instrument(bit_depth=bit_depth, warnings=warnings)
