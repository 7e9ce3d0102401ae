"""What every vendor reader shares: the facts of one file, lengths in nm, plausibility."""

from __future__ import annotations

import dataclasses
import math
import re

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
  detector decides then). ``bit_depth``: the detector's bits (12 for 12-bit data in a 16-bit
  file) where the metadata states them. ``fields``: instrument facts worth keeping (kV,
  magnification, working distance, detector, date...), as strings and numbers with units in
  their names.
  """

  source: str = "none"  # which metadata gave the facts: Zeiss, FEI/Thermo Fisher, TESCAN, ...
  pixel_size_nm: tuple[float, float] | None = None
  pixel_size_from: str = ""  # the field it was read from, for provenance
  databar_row: int | None = None
  bit_depth: int | None = None  # significant bits of integer pixels, where the file states them
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


def calibration(sizes: tuple[float, float], field: str) -> tuple[dict, tuple[str, ...]]:
  """Keyword arguments for Instrument from a pixel size, or a warning when it is implausible."""
  if _plausible(sizes):
    return {"pixel_size_nm": sizes, "pixel_size_from": field}, ()
  return {}, (f"{field} gives an implausible pixel size {sizes} nm; ignored",)


def number(text: str) -> float:
  """A vendor's number, ValueError with the text when it is not one (or not finite)."""
  value = float(str(text).strip().replace(",", "."))
  if not math.isfinite(value):
    raise ValueError(f"{text!r} is not a finite number")
  return value


def whole(text: str) -> int:
  """A vendor's whole number ('64', '64.0'); ValueError otherwise."""
  value = number(text)
  if not value.is_integer():
    raise ValueError(f"{text!r} is not a whole number")
  return int(value)


def strip_rows(rows: int, height: int, field: str) -> tuple[int | None, tuple[str, ...]]:
  """(first databar row, warnings) from a strip of ``rows`` rows stated by ``field`` at the
  bottom of a frame of ``height`` rows: 0 or a contradiction leave it to the image detector
  (instruments write 0 while drawing a strip)."""
  if rows == 0:
    return None, ()
  if not 0 < rows < height:
    return None, (f"{field}={rows} rows does not fit the image's {height} rows; the image "
                  f"detector decides",)
  return height - rows, ()


def ini_sections(text: str) -> dict[str, dict[str, str]]:
  """``[Section]`` / ``key=value`` text -> {section: {key: value}} ("" for keys before the first
  section); other lines are skipped and a repeated key keeps its first value."""
  sections: dict[str, dict[str, str]] = {"": {}}
  current = sections[""]
  for line in text.replace("\x00", "").splitlines():
    line = line.strip()
    if line.startswith("[") and line.endswith("]"):
      current = sections.setdefault(line[1:-1].strip(), {})
    elif "=" in line:
      key, value = line.split("=", 1)
      current.setdefault(key.strip(), value.strip())
  return sections


def kilovolts(volts: float) -> float:
  """An accelerating voltage in kV from volts (SEMs run at 0.02-30 kV: any value above 100 is
  in volts)."""
  return volts / 1e3 if abs(volts) > 100 else volts


def converted_fields(found: dict[str, str], converters, maker: str,
                     warnings: list[str]) -> dict[str, float]:
  """Instrument fields from ``(key, field name, convert)`` triples; a value that does not
  convert is left out with a warning naming the maker's key."""
  fields = {}
  for key, name, convert in converters:
    if found.get(key):
      try:
        fields[name] = convert(found[key])
      except (ValueError, IndexError):
        warnings.append(f"{maker} {key}={found[key]!r} unreadable; left out")
  return fields


def text_fields(found: dict[str, str], names: dict[str, str], instrument_key: str,
                maker: str) -> dict[str, str]:
  """Text fields as the file states them (detector, date, ...), and the instrument's model
  prefixed with its maker."""
  fields = {name: found[key] for key, name in names.items() if found.get(key)}
  if found.get(instrument_key):
    fields["instrument"] = f"{maker} {found[instrument_key]}"
  return fields
