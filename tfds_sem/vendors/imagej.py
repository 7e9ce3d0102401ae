"""ImageJ / Fiji: pixels per unit in the X/YResolution tags, and the instrument fields that this
package's own outputs keep in ImageJ's Info property."""

from __future__ import annotations

import tifffile

from tfds_sem.vendors import base

SOURCE = "ImageJ"


def read(meta: dict, page: tifffile.TiffPage) -> base.Instrument:
  """ImageJ: pixels per ``unit`` in the X/YResolution tags."""
  unit = str(meta.get("unit", "")).strip()
  if not unit or unit.lower() in ("pixel", "pixels", "inch"):
    return base.Instrument(fields=_info(meta))
  sizes = []
  for tag in ("XResolution", "YResolution"):
    numerator, denominator = page.tags[tag].value
    sizes.append(base.length_nm(denominator / numerator, unit))
  kwargs, warnings = base.calibration(tuple(sizes), "ImageJ resolution and unit")
  return base.Instrument(fields=_info(meta), warnings=warnings, **kwargs)


def _info(meta: dict) -> dict:
  """The instrument fields a file of ours keeps in ImageJ's Info, when it holds them."""
  import json

  try:
    info = json.loads(meta.get("Info", ""))
  except (TypeError, ValueError):
    return {}
  return dict(info.get("instrument", {})) if isinstance(info, dict) else {}
