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
import xml.etree.ElementTree as ElementTree

import tifffile

from tfds_sem.vendors import hitachi, jeol, sidecars, tescan
from tfds_sem.vendors.base import (  # noqa: F401 (re-exported)
  UNKNOWN,
  Instrument,
  length_nm,
  parse_length_nm,  # noqa: F401 (re-exported)
)
from tfds_sem.vendors.base import calibration as _calibration

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
  if found.source in ("none", "ImageJ", "OME") and sidecar is not None:
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
  readers = ((tif.is_fei, "FEI/Thermo Fisher", lambda: fei(tif.fei_metadata, height)),
             (tif.is_sem, "Zeiss", lambda: zeiss(tif.sem_metadata, width)),
             (tescan_text is not None, tescan.SOURCE, lambda: tescan.read(tescan_text, height)),
             (hitachi_text is not None and hitachi.is_hitachi(hitachi_text), hitachi.SOURCE,
              lambda: hitachi.read(hitachi_text, height, width)),
             (tif.is_sis, "Olympus SIS", lambda: sis(tif.sis_metadata)),
             (tif.is_imagej, "ImageJ", lambda: imagej(tif.imagej_metadata, tif.pages[0])),
             (tif.is_ome, "OME", lambda: ome(tif.ome_metadata)))
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


def zeiss(meta: dict, width: int) -> Instrument:
  """Zeiss SmartSEM tag 34118: ``ap_image_pixel_size`` is the pixel size; files without it have
  ``ap_pixel_size`` for a 1024-px-wide frame, so their size is ``ap_width`` / image width."""
  def value(key):
    entry = meta.get(key)
    return entry[1:] if isinstance(entry, tuple) and len(entry) >= 2 else None

  size_field = value("ap_image_pixel_size")
  if size_field and len(size_field) == 2:
    size = length_nm(*size_field)
    kwargs, warnings = _calibration((size, size), "Zeiss ap_image_pixel_size")
  elif value("ap_width") and len(value("ap_width")) == 2:
    size = length_nm(*value("ap_width")) / width
    kwargs, warnings = _calibration((size, size), "Zeiss ap_width / image width")
  else:
    kwargs, warnings = {}, ("Zeiss metadata has no pixel size",)
  fields = {}
  for key, name, unit in (("ap_actualkv", "high_voltage", "kV"), ("ap_wd", "working_distance",
                          "mm"), ("ap_mag", "magnification", ""), ("dp_detector_channel",
                          "detector", ""), ("dp_sem", "instrument", ""),
                          ("dp_dwell_time", "dwell_time", "ns"), ("ap_date", "date", ""),
                          ("ap_time", "time", "")):
    found = value(key)
    if found:
      fields[f"{name}_{unit}" if unit else name] = _number_in(found[0], found[1:], unit)
  if "instrument" in fields:
    fields["instrument"] = f"Zeiss {fields['instrument']}"
  return Instrument(fields=fields, warnings=warnings, **kwargs)


def _number_in(number, units: tuple, wanted: str):
  """A Zeiss (value, unit) entry in ``wanted`` units where the unit is a length or kV."""
  if not wanted or not units or units[0] == wanted or not isinstance(number, (int, float)):
    return number
  if wanted == "mm":
    return length_nm(number, units[0]) / 1e6
  if wanted == "kV" and units[0] == "V":
    return number / 1e3
  return number


def fei(meta: dict, height: int) -> Instrument:
  """FEI / Thermo Fisher tag 34682: ``[Scan] PixelWidth/PixelHeight`` in metres; ``[Image]
  ResolutionY`` image rows above a databar of ``[PrivateFei] DatabarHeight`` rows."""
  scan, image = meta.get("Scan", {}), meta.get("Image", {})
  kwargs, warnings = {}, []
  if "PixelWidth" in scan:
    size_x = float(scan["PixelWidth"]) * 1e9
    size_y = float(scan.get("PixelHeight", scan["PixelWidth"])) * 1e9
    kwargs, found = _calibration((size_x, size_y), "FEI [Scan] PixelWidth/PixelHeight")
    warnings += found
  else:
    warnings.append("FEI metadata has no [Scan] PixelWidth")
  row, why = fei_databar_row(image.get("ResolutionY"), meta.get("PrivateFei", {}).get(
      "DatabarHeight"), height)
  if why:
    warnings.append(why)
  fields = {}
  hv = meta.get("Beam", {}).get("HV", meta.get("EBeam", {}).get("HV"))
  if isinstance(hv, (int, float)):
    fields["high_voltage_kV"] = hv / 1e3
  wd = meta.get("Stage", {}).get("WorkingDistance", meta.get("EBeam", {}).get("WD"))
  if isinstance(wd, (int, float)):
    fields["working_distance_mm"] = wd * 1e3
  hfw = meta.get("EBeam", {}).get("HFW")
  if isinstance(hfw, (int, float)):
    fields["horizontal_field_width_um"] = hfw * 1e6
  detector = meta.get("Detectors", {})
  if detector.get("Name"):
    fields["detector"] = " ".join(str(detector[k]) for k in ("Name", "Mode") if detector.get(k))
  if meta.get("System", {}).get("SystemType"):
    fields["instrument"] = str(meta["System"]["SystemType"])
  dwell = scan.get("Dwelltime")
  if isinstance(dwell, (int, float)):
    fields["dwell_time_ns"] = dwell * 1e9
  user = meta.get("User", {})
  for key in ("Date", "Time"):
    if user.get(key):
      fields[key.lower()] = str(user[key])
  return Instrument(databar_row=row, fields=fields, warnings=tuple(warnings), **kwargs)


def fei_databar_row(image_rows, databar_height, height: int) -> tuple[int | None, str]:
  """(first databar row, or None for the image detector to decide, and a warning or "") from
  FEI's ``ResolutionY`` and ``DatabarHeight`` for a frame of ``height`` rows."""
  def whole(value):
    return int(value) if isinstance(value, (int, float)) and float(value).is_integer() else None

  rows, bar = whole(image_rows), whole(databar_height)
  if image_rows is not None and rows is None or databar_height is not None and bar is None:
    return None, (f"FEI databar fields are not whole numbers (ResolutionY={image_rows!r}, "
                  f"DatabarHeight={databar_height!r}); the image detector decides")
  if rows is None and bar is None:
    return None, ""
  if rows is None:
    rows = height - bar
  if bar is None:
    bar = height - rows
  if rows + bar != height or not 0 < rows <= height or bar < 0:
    return None, (f"FEI metadata says {rows} image rows and a {bar}-row databar, but the image "
                  f"has {height} rows; the image detector decides")
  # A 0-row databar is what FEI writes for frames saved with their databar drawn into the
  # image too: no databar stated, the pixels decide.
  return (rows if bar else None), ""


def sis(meta: dict) -> Instrument:
  """Olympus Soft Imaging Solutions (analySIS, iTEM) tag 33560, the frame grabber of many older
  SEMs (Philips/FEI XL30, JEOL): ``pixelsizex/y`` in metres, the magnification and a date."""
  kwargs, warnings = {}, ()
  if meta.get("pixelsizex"):
    size_x = float(meta["pixelsizex"]) * 1e9
    size_y = float(meta.get("pixelsizey") or meta["pixelsizex"]) * 1e9
    kwargs, warnings = _calibration((size_x, size_y), "Olympus SIS pixelsizex/y")
  else:
    warnings = ("Olympus SIS metadata has no pixel size",)
  fields = {}
  if meta.get("magnification"):
    fields["magnification"] = float(meta["magnification"])
  if meta.get("datetime"):
    fields["date"] = meta["datetime"].strftime("%Y-%m-%d %H:%M")
  return Instrument(fields=fields, warnings=warnings, **kwargs)


def imagej(meta: dict, page: tifffile.TiffPage) -> Instrument:
  """ImageJ: pixels per ``unit`` in the X/YResolution tags."""
  unit = str(meta.get("unit", "")).strip()
  if not unit or unit.lower() in ("pixel", "pixels", "inch"):
    return Instrument(fields=_info(meta))
  sizes = []
  for tag in ("XResolution", "YResolution"):
    numerator, denominator = page.tags[tag].value
    sizes.append(length_nm(denominator / numerator, unit))
  kwargs, warnings = _calibration(tuple(sizes), "ImageJ resolution and unit")
  return Instrument(fields=_info(meta), warnings=warnings, **kwargs)


def _info(meta: dict) -> dict:
  """The instrument fields a file of ours keeps in ImageJ's Info, when it holds them."""
  import json

  try:
    info = json.loads(meta.get("Info", ""))
  except (TypeError, ValueError):
    return {}
  return dict(info.get("instrument", {})) if isinstance(info, dict) else {}


def ome(xml: str) -> Instrument:
  """OME-XML: the first Pixels element's PhysicalSizeX/Y (default unit µm)."""
  root = ElementTree.fromstring(xml)
  pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"),
                None)
  if pixels is None or "PhysicalSizeX" not in pixels.attrib:
    return Instrument()
  size_x = length_nm(float(pixels.attrib["PhysicalSizeX"]),
                     pixels.attrib.get("PhysicalSizeXUnit", "µm"))
  size_y = length_nm(float(pixels.attrib.get("PhysicalSizeY", pixels.attrib["PhysicalSizeX"])),
                     pixels.attrib.get("PhysicalSizeYUnit",
                                       pixels.attrib.get("PhysicalSizeXUnit", "µm")))
  kwargs, warnings = _calibration((size_x, size_y), "OME PhysicalSizeX/Y")
  return Instrument(warnings=warnings, **kwargs)
