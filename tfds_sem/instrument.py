"""What a micrograph file says about its acquisition: pixel size, databar rows, instrument.

One reader for the metadata microscopes and imaging software write, through tifffile's own
parsers: Zeiss SmartSEM (tag 34118), FEI / Thermo Fisher (tag 34682, INI text), ImageJ
(resolution tags + unit) and OME-TIFF (PhysicalSizeX/Y). Vendor files' standard TIFF resolution
tags are (1, 1) without a unit and are ignored; JPEG, PNG and BMP carry no calibration.

A tag that is malformed or contradicts the image gives a warning (in ``Instrument.warnings``)
and is not used; reading metadata never raises.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
import xml.etree.ElementTree as ElementTree

import tifffile

# Lengths in nm per unit, with the spellings vendors, ImageJ and OME use.
_NM_PER_UNIT = {"pm": 1e-3, "å": 0.1, "a": 0.1, "angstrom": 0.1, "nm": 1.0, "µm": 1e3,
                "μm": 1e3, "um": 1e3, "micron": 1e3, "microns": 1e3, "mm": 1e6, "cm": 1e7,
                "m": 1e9}
_PLAUSIBLE_NM = (1e-4, 1e7)  # 0.1 pm .. 1 cm per pixel: anything else is a broken tag


@dataclasses.dataclass(frozen=True)
class Instrument:
  """The calibration and acquisition facts of one file.

  ``pixel_size_nm``: (x, y) in nm, or None when unknown. ``databar_row``: the first databar row
  the metadata states, -1 when it states there is none, None when it says nothing (the image
  detector decides then). ``fields``: instrument facts worth keeping (kV, magnification, working
  distance, detector, date...), as strings and numbers with units in their names.
  """

  source: str = "none"  # which metadata gave the facts: Zeiss, FEI/Thermo Fisher, ImageJ, OME
  pixel_size_nm: tuple[float, float] | None = None
  pixel_size_from: str = ""  # the field it was read from, for provenance
  databar_row: int | None = None
  fields: dict = dataclasses.field(default_factory=dict)
  warnings: tuple[str, ...] = ()


UNKNOWN = Instrument()


def length_nm(value: float, unit: str) -> float:
  """``value`` in ``unit`` (pm, Å, nm, µm/um/micron, mm, cm, m) -> nm; ValueError otherwise."""
  key = unit.strip().replace("\\u00B5", "µ").replace("\\u00b5", "µ").lower()
  if key not in _NM_PER_UNIT:
    raise ValueError(f"unknown length unit {unit!r} (use pm, nm, um, µm or mm)")
  return float(value) * _NM_PER_UNIT[key]


def parse_length_nm(text: str) -> float:
  """'5nm', '0.543 nm', '1.2um', '543 pm' -> nm; ValueError with the reason otherwise."""
  match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9.]+)\s*", text)
  if not match:
    raise ValueError(f"{text!r} is not a length: write a number and a unit, e.g. 5nm or 0.8um")
  value = length_nm(float(match.group(1)), match.group(2))
  if not _PLAUSIBLE_NM[0] <= value <= _PLAUSIBLE_NM[1]:
    raise ValueError(f"{text} is not a plausible pixel size (0.1 pm to 1 cm)")
  return value


def _plausible(sizes: tuple[float, float]) -> bool:
  return all(math.isfinite(s) and _PLAUSIBLE_NM[0] <= s <= _PLAUSIBLE_NM[1] for s in sizes)


def read(data: bytes, name: str, height: int, width: int) -> Instrument:
  """The metadata of the file ``name`` (its bytes ``data``), whose image is height x width;
  UNKNOWN for formats without calibration or files without metadata."""
  if not name.lower().endswith((".tif", ".tiff")):
    return UNKNOWN
  try:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
      return from_tiff(tif, height, width)
  except Exception as e:  # a file the image reader accepted but whose tags tifffile rejects
    return Instrument(warnings=(f"unreadable TIFF metadata ({type(e).__name__}: {e})",))


def from_tiff(tif: tifffile.TiffFile, height: int, width: int) -> Instrument:
  """Vendor metadata first (FEI, Zeiss, Olympus SIS), then ImageJ, then OME."""
  readers = ((tif.is_fei, "FEI/Thermo Fisher", lambda: fei(tif.fei_metadata, height)),
             (tif.is_sem, "Zeiss", lambda: zeiss(tif.sem_metadata, width)),
             (tif.is_sis, "Olympus SIS", lambda: sis(tif.sis_metadata)),
             (tif.is_imagej, "ImageJ", lambda: imagej(tif.imagej_metadata, tif.pages[0])),
             (tif.is_ome, "OME", lambda: ome(tif.ome_metadata)))
  warnings = []
  for present, source, parse in readers:
    if not present:
      continue
    try:
      found = parse()
    except Exception as e:  # malformed text or values of the wrong type
      warnings.append(f"{source} metadata unreadable ({type(e).__name__}: {e}); ignored")
      continue
    return dataclasses.replace(found, source=source,
                               warnings=tuple(warnings) + found.warnings)
  return Instrument(warnings=tuple(warnings))


def _calibration(sizes: tuple[float, float], field: str) -> tuple[dict, tuple[str, ...]]:
  """Keyword arguments for Instrument from a pixel size, or a warning when it is implausible."""
  if _plausible(sizes):
    return {"pixel_size_nm": sizes, "pixel_size_from": field}, ()
  return {}, (f"{field} gives an implausible pixel size {sizes} nm; ignored",)


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
  """(first databar row or -1 for none or None for unknown, a warning or "") from FEI's
  ``ResolutionY`` and ``DatabarHeight`` for a frame of ``height`` rows."""
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
  return (rows if bar else -1), ""


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
