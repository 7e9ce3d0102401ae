"""Hitachi: an ``[SemImageFile]`` INI section, in the ``<stem>.txt`` sidecar (UTF-16 with a BOM,
or ANSI; CRLF) and, on newer models, in the TIFF's XPComment tag too.

``PixelSize`` is in nm; ``DataSize=WxH`` is the whole frame, the text strip burned into its
bottom included (so it states no strip height: the image detector finds the strip);
``AcceleratingVoltage`` (V), ``WorkingDistance`` (a length with its unit), ``Magnification``,
``InstructName`` (the model) and ``SignalName`` describe the acquisition.
"""

from __future__ import annotations

import re

from tfds_sem.vendors import base

XP_COMMENT_TAG = 40092  # Windows' XPComment: UTF-16LE bytes
SECTION = "SemImageFile"
SOURCE = "Hitachi"


def is_hitachi(text: str) -> bool:
  return f"[{SECTION}]" in text


def text_of_xp_comment(value) -> str:
  data = value if isinstance(value, bytes) else bytes(value)
  return data.decode("utf-16-le", errors="replace").replace("\x00", "")


def _length_nm(text: str) -> float:
  """'8100 um', '8.1mm', '8.1' (mm, Hitachi's unit where none is written) -> nm."""
  match = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([^\s0-9]*)\s*", text)
  if not match:
    raise ValueError(f"{text!r} is not a length")
  return base.length_nm(base.number(match.group(1)), match.group(2) or "mm")


def read(text: str, height: int, width: int) -> base.Instrument:
  """The facts the ``[SemImageFile]`` section of ``text`` states of a height x width frame."""
  info = base.ini_sections(text).get(SECTION, {})
  kwargs, warnings = {}, []
  size = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", info.get("DataSize", ""))
  if "PixelSize" not in info:
    warnings.append("Hitachi metadata has no PixelSize")
  elif size and (int(size.group(1)), int(size.group(2))) != (width, height):
    warnings.append(f"Hitachi PixelSize is for a {size.group(1)}x{size.group(2)} frame "
                    f"(DataSize) but the image is {width}x{height}; pixel size not used")
  else:
    pixel = base.number(info["PixelSize"])
    kwargs, found = base.calibration((pixel, pixel), "Hitachi PixelSize")
    warnings += found
  fields = base.converted_fields(info, (
      ("AcceleratingVoltage", "high_voltage_kV",
       lambda v: base.kilovolts(base.number(v.split()[0]))),
      ("WorkingDistance", "working_distance_mm", lambda v: _length_nm(v) / 1e6),
      ("Magnification", "magnification", base.number)), "Hitachi", warnings)
  fields.update(base.text_fields(info, {"SignalName": "detector", "Date": "date",
                                         "Time": "time"}, "InstructName", "Hitachi"))
  return base.Instrument(fields=fields, warnings=tuple(warnings), **kwargs)
