"""TESCAN: TIFF tag 50431, a binary header followed by INI text.

``[MAIN] PixelSizeX/PixelSizeY`` are in metres, ``ImageStripSize`` is the height in rows of the
info strip at the frame's bottom (0 when none is drawn, or not stated), ``Magnification`` and
``Device`` describe the acquisition; ``[SEM] HV`` (V) and ``WD`` (m) the column.
"""

from __future__ import annotations

from tfds_sem.vendors import base

TAG = 50431
SOURCE = "TESCAN"


def text_of_tag(value) -> str:
  """The INI text inside the tag's bytes (the binary header before ``[MAIN]`` dropped)."""
  data = value if isinstance(value, bytes) else bytes(value) if not isinstance(value, str) else (
      value.encode("latin-1", errors="replace"))
  start = data.find(b"[MAIN]")
  if start < 0:
    raise ValueError("no [MAIN] section in tag 50431")
  return data[start:].split(b"\x00", 1)[0].decode("utf-8", errors="replace")


def read(text: str, height: int) -> base.Instrument:
  """The facts the INI ``text`` states of a frame of ``height`` rows."""
  sections = base.ini_sections(text)
  main, sem = sections.get("MAIN", {}), sections.get("SEM", {})
  kwargs, warnings = {}, []
  if "PixelSizeX" in main:
    size_x = base.number(main["PixelSizeX"]) * 1e9
    size_y = base.number(main.get("PixelSizeY", main["PixelSizeX"])) * 1e9
    kwargs, found = base.calibration((size_x, size_y), "TESCAN [MAIN] PixelSizeX/PixelSizeY")
    warnings += found
  else:
    warnings.append("TESCAN metadata has no [MAIN] PixelSizeX")
  row = None
  if "ImageStripSize" in main:
    try:
      row, found = base.strip_rows(base.whole(main["ImageStripSize"]), height,
                                   "TESCAN ImageStripSize")
      warnings += found
    except ValueError as e:
      warnings.append(f"TESCAN ImageStripSize unreadable ({e}); the image detector decides")
  fields = base.converted_fields(sem, (
      ("HV", "high_voltage_kV", lambda v: base.kilovolts(base.number(v))),
      ("WD", "working_distance_mm", lambda v: base.number(v) * 1e3)), "TESCAN [SEM]", warnings)
  fields.update(base.converted_fields(main, (("Magnification", "magnification", base.number),),
                                      "TESCAN", warnings))
  for key, name in (("Detector", "detector"),):
    if sem.get(key):
      fields[name] = sem[key]
  if main.get("Device"):
    fields["instrument"] = f"TESCAN {main['Device']}"
  for key in ("Date", "Time"):
    if main.get(key):
      fields[key.lower()] = main[key]
  return base.Instrument(databar_row=row, fields=fields, warnings=tuple(warnings), **kwargs)
