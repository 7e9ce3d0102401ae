"""FEI / Thermo Fisher: TIFF tag 34682 (INI text; tifffile's ``fei_metadata``): the pixel size in
metres, the image rows above the databar, the acquisition fields."""

from __future__ import annotations

from tfds_sem.vendors import base

SOURCE = "FEI/Thermo Fisher"


def read(meta: dict, height: int) -> base.Instrument:
  """FEI / Thermo Fisher tag 34682: ``[Scan] PixelWidth/PixelHeight`` in metres; ``[Image]
  ResolutionY`` image rows above a databar of ``[PrivateFei] DatabarHeight`` rows."""
  scan, image = meta.get("Scan", {}), meta.get("Image", {})
  kwargs, warnings = {}, []
  if "PixelWidth" in scan:
    size_x = float(scan["PixelWidth"]) * 1e9
    size_y = float(scan.get("PixelHeight", scan["PixelWidth"])) * 1e9
    kwargs, found = base.calibration((size_x, size_y), "FEI [Scan] PixelWidth/PixelHeight")
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
  return base.Instrument(databar_row=row, fields=fields, warnings=tuple(warnings), **kwargs)


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
