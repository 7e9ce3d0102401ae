"""What an upscaled micrograph says about itself: its pixel size, its instrument, its making.

The output's pixel size is the input's divided by the scale: a microscopist measures in nm on
the output as on the input. Vendor tags are never copied verbatim (Fiji would read the input's
pixel size, ``scale`` times too large); the instrument's fields are kept as JSON, with the pixel
size corrected and the provenance of the output (model, run, checkpoint step, tiles, databar
handling, package version and commit), in the TIFF's ImageJ Info and in a sidecar file
``<output>.json`` written beside every output.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json

from sinsr_jax.runtime import paths
from tfds_sem import instrument as instrument_metadata


@dataclasses.dataclass(frozen=True)
class Calibration:
  """The output's pixel size (x, y) in nm, or None when unknown, and where it came from."""

  pixel_size_nm: tuple[float, float] | None
  source: str  # e.g. "Zeiss ap_image_pixel_size / 4", "--pixel-size / 4", "unknown"

  def describe(self) -> str:
    if self.pixel_size_nm is None:
      return "pixel size unknown (give --pixel-size for files without calibration)"
    x, y = self.pixel_size_nm
    size = f"{x:.6g} nm" if abs(x - y) <= 1e-9 * x else f"{x:.6g} x {y:.6g} nm"
    return f"pixel size {size} ({self.source})"


def output_calibration(instrument: instrument_metadata.Instrument, scale: int,
                       fallback_nm: float | None = None) -> Calibration:
  """The input's pixel size (its metadata, else ``fallback_nm``) divided by ``scale``."""
  if instrument.pixel_size_nm is not None:
    size, source = instrument.pixel_size_nm, instrument.pixel_size_from
  elif fallback_nm is not None:
    size, source = (fallback_nm, fallback_nm), "--pixel-size"
  else:
    return Calibration(None, "unknown")
  return Calibration((size[0] / scale, size[1] / scale), f"{source} / {scale}")


def package_provenance() -> dict:
  """The package version and the code's commit (git is asked once per call: call it once)."""
  from sinsr_jax.runtime import provenance

  try:
    version = importlib.metadata.version("sinsr_jax")
  except importlib.metadata.PackageNotFoundError:
    version = "not installed"
  return {"sinsr_jax": version, "git_commit": provenance.git_commit()}


def record(*, source: str, output: str, shape: tuple[int, int], dtype: str,
           calibration: Calibration, input_instrument: instrument_metadata.Instrument,
           input_shape: tuple[int, int], databar: dict, making: dict) -> dict:
  """The JSON-ready description of one output: what it is, what it came from, how it was made.

  ``databar``: mode, first row, how it was found. ``making``: model, run, checkpoint step,
  scale, tile settings, package version and commit.
  """
  return {
      "output": paths.absolute(output),
      "shape": list(shape),
      "dtype": dtype,
      "pixel_size_nm": (None if calibration.pixel_size_nm is None else
                        {"x": calibration.pixel_size_nm[0], "y": calibration.pixel_size_nm[1]}),
      "pixel_size_source": calibration.source,
      "input": {
          "file": paths.absolute(source),
          "shape": list(input_shape),
          "metadata": input_instrument.source,
          "pixel_size_nm": (None if input_instrument.pixel_size_nm is None else
                            {"x": input_instrument.pixel_size_nm[0],
                             "y": input_instrument.pixel_size_nm[1]}),
      },
      "instrument": input_instrument.fields,
      "databar": databar,
      "provenance": {**making, "created": datetime.datetime.now(datetime.UTC).isoformat(
          timespec="seconds")},
  }


def sidecar_path(output: str) -> str:
  return output + ".json"


def to_json(description: dict) -> str:
  return json.dumps(description, indent=1, ensure_ascii=False, default=str)
