"""Zeiss SmartSEM: TIFF tag 34118 (tifffile's ``sem_metadata``): the pixel size, the acquisition
fields, with their units converted (kV, mm, ns)."""

from __future__ import annotations

from tfds_sem.vendors import base

SOURCE = "Zeiss"


def read(meta: dict, width: int) -> base.Instrument:
  """Zeiss SmartSEM tag 34118: ``ap_image_pixel_size`` is the pixel size; files without it have
  ``ap_pixel_size`` for a 1024-px-wide frame, so their size is ``ap_width`` / image width."""
  def value(key):
    entry = meta.get(key)
    return entry[1:] if isinstance(entry, tuple) and len(entry) >= 2 else None

  size_field = value("ap_image_pixel_size")
  if size_field and len(size_field) == 2:
    size = base.length_nm(*size_field)
    kwargs, warnings = base.calibration((size, size), "Zeiss ap_image_pixel_size")
  elif value("ap_width") and len(value("ap_width")) == 2:
    size = base.length_nm(*value("ap_width")) / width
    kwargs, warnings = base.calibration((size, size), "Zeiss ap_width / image width")
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
  return base.Instrument(fields=fields, warnings=warnings, **kwargs)


def _number_in(number, units: tuple, wanted: str):
  """A Zeiss (value, unit) entry in ``wanted`` units where the unit is a length or kV."""
  if not wanted or not units or units[0] == wanted or not isinstance(number, (int, float)):
    return number
  if wanted == "mm":
    return base.length_nm(number, units[0]) / 1e6
  if wanted == "kV" and units[0] == "V":
    return number / 1e3
  return number
