"""JEOL: a ``<stem>.txt`` sidecar of ``$KEY value`` lines (``$$`` for scan keys).

The keys public readers rely on (Fiji's JEOL macros, pynxtools-em): ``$CM_FULL_SIZE W H`` is
the image area (the databar below it is not counted: its first row is H when the frame has
more rows), ``$$SM_MICRON_BAR`` the scale bar's length in pixels and ``$$SM_MICRON_MARKER`` its
length with a unit ('1um'), so the pixel size is their ratio; ``$CM_MAG``, ``$CM_ACCEL_VOLT``
(kV), ``$$SM_WD`` (mm), ``$CM_SIGNAL`` and ``$CM_INSTRUMENT`` describe the acquisition.
"""

from __future__ import annotations

import re

from tfds_sem.vendors import base

SOURCE = "JEOL"


def keys(text: str) -> dict[str, str]:
  """{'CM_MAG': '10000', 'SM_MICRON_BAR': '138', ...}: the ``$`` prefix dropped, first wins."""
  found = {}
  for line in text.splitlines():
    match = re.match(r"\s*\$+(\w+)\s*(.*?)\s*$", line)
    if match:
      found.setdefault(match.group(1), match.group(2))
  return found


def is_jeol(text: str) -> bool:
  found = keys(text)
  return "CM_FULL_SIZE" in found or "SM_MICRON_BAR" in found or "CM_MAG" in found


def read(text: str, height: int, width: int) -> base.Instrument:
  """The facts the sidecar ``text`` states of a height x width frame."""
  found = keys(text)
  warnings, row = [], None
  area = re.fullmatch(r"(\d+)\s+(\d+)", found.get("CM_FULL_SIZE", ""))
  area_fits = True
  if area:
    area_width, area_height = int(area.group(1)), int(area.group(2))
    if area_width != width or not 0 < area_height <= height:
      area_fits = False
      warnings.append(f"JEOL CM_FULL_SIZE {area_width}x{area_height} does not fit the "
                      f"{width}x{height} image; its scale and databar are not used")
    elif area_height < height:
      row = area_height
  kwargs = {}
  bar, marker = found.get("SM_MICRON_BAR"), found.get("SM_MICRON_MARKER")
  if bar is None or marker is None:
    warnings.append("JEOL metadata has no SM_MICRON_BAR / SM_MICRON_MARKER scale")
  elif area_fits:
    try:
      length = base.parse_length_nm(marker)
      pixels = base.number(bar)
      if pixels <= 0:
        raise ValueError(f"SM_MICRON_BAR={bar} px")
      size = length / pixels
      kwargs, calibrated = base.calibration((size, size),
                                            "JEOL SM_MICRON_MARKER / SM_MICRON_BAR")
      warnings += calibrated
    except ValueError as e:
      warnings.append(f"JEOL scale unreadable ({e}); pixel size not used")
  fields = base.converted_fields(found, (
      ("CM_ACCEL_VOLT", "high_voltage_kV", lambda v: base.kilovolts(base.number(v))),
      ("SM_WD", "working_distance_mm", base.number),
      ("CM_MAG", "magnification", base.number)), "JEOL", warnings)
  fields.update(base.text_fields(found, {"CM_SIGNAL": "detector", "CM_DATE": "date",
                                          "CM_TIME": "time"}, "CM_INSTRUMENT", "JEOL"))
  return base.Instrument(databar_row=row, fields=fields, warnings=tuple(warnings), **kwargs)
