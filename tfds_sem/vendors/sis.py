"""Olympus Soft Imaging Solutions: TIFF tag 33560 (tifffile's ``sis_metadata``)."""

from __future__ import annotations

from tfds_sem.vendors import base

SOURCE = "Olympus SIS"


def read(meta: dict) -> base.Instrument:
  """Olympus Soft Imaging Solutions (analySIS, iTEM) tag 33560, the frame grabber of many older
  SEMs (Philips/FEI XL30, JEOL): ``pixelsizex/y`` in metres, the magnification and a date."""
  kwargs, warnings = {}, ()
  if meta.get("pixelsizex"):
    size_x = float(meta["pixelsizex"]) * 1e9
    size_y = float(meta.get("pixelsizey") or meta["pixelsizex"]) * 1e9
    kwargs, warnings = base.calibration((size_x, size_y), "Olympus SIS pixelsizex/y")
  else:
    warnings = ("Olympus SIS metadata has no pixel size",)
  fields = {}
  if meta.get("magnification"):
    fields["magnification"] = float(meta["magnification"])
  if meta.get("datetime"):
    fields["date"] = meta["datetime"].strftime("%Y-%m-%d %H:%M")
  return base.Instrument(fields=fields, warnings=warnings, **kwargs)
