"""OME-TIFF: the first Pixels element's PhysicalSizeX/Y."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from tfds_sem.vendors import base

SOURCE = "OME"


def read(xml: str) -> base.Instrument:
  """OME-XML: the first Pixels element's PhysicalSizeX/Y (default unit µm)."""
  root = ElementTree.fromstring(xml)
  pixels = next((e for e in root.iter() if e.tag.endswith("}Pixels") or e.tag == "Pixels"),
                None)
  if pixels is None or "PhysicalSizeX" not in pixels.attrib:
    return base.Instrument()
  size_x = base.length_nm(float(pixels.attrib["PhysicalSizeX"]),
                     pixels.attrib.get("PhysicalSizeXUnit", "µm"))
  size_y = base.length_nm(float(pixels.attrib.get("PhysicalSizeY", pixels.attrib["PhysicalSizeX"])),
                     pixels.attrib.get("PhysicalSizeYUnit",
                                       pixels.attrib.get("PhysicalSizeXUnit", "µm")))
  kwargs, warnings = base.calibration((size_x, size_y), "OME PhysicalSizeX/Y")
  return base.Instrument(warnings=warnings, **kwargs)
