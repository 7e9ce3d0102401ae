"""Real micrographs in and out: instrument databars, vendor metadata, palettes, 12-bit frames,
and upscaled files that keep their calibration (read back as Fiji and tifffile read it)."""

import io
import json
import os
import pathlib
import struct

import numpy as np
import pytest
import tensorflow_datasets as tfds
import tifffile
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage
from test_upscale import _errors, _upscale

from sinsr_jax.data import degradations
from sinsr_jax.inference import calibration, micrographs, upscaling
from tfds_sem import instrument, sem_images
from tfds_sem.databar import find_databar
from tfds_sem.sem_folder.sem_folder import SemFolder
from tfds_sem.vendors import zeiss

REAL = pathlib.Path(__file__).resolve().parents[2] / "shared" / "real_sem" / "aquami_Sample.tif"
needs_real = pytest.mark.skipif(not REAL.exists(), reason=f"the real micrograph {REAL} is not "
                                "beside the repository (it lives in the project's shared/)")


# --- frames of each layout, drawn -----------------------------------------------------------

def _content(rng, height, width, lo=60, hi=190) -> np.ndarray:
  """SEM-like structure: smooth blobs with fine noise, in levels lo..hi."""
  field = ndimage.gaussian_filter(rng.standard_normal((height, width)), 4)
  field = (field - field.min()) / (np.ptp(field) + 1e-9)
  noisy = field + 0.05 * rng.standard_normal((height, width))
  return np.clip(lo + (hi - lo) * noisy, 0, 255).astype(np.uint8)


def _text(band: np.ndarray, ink: int, text: str) -> np.ndarray:
  """Draws instrument-like text and a scale bar into ``band`` (uint8, modified copy)."""
  image = Image.fromarray(band)
  draw = ImageDraw.Draw(image)
  draw.text((8, 4), text, fill=ink)
  width = band.shape[1]
  draw.rectangle((width - 120, band.shape[0] - 10, width - 40, band.shape[0] - 7), fill=ink)
  return np.array(image)


def zeiss_frame(rng, height=384, width=512, bar_row=350) -> np.ndarray:
  """Zeiss SmartSEM: black line, white band with black text and a gray logo, black line, and a
  last row of image-like values."""
  frame = _content(rng, height, width)
  frame[bar_row] = 0
  band = np.full((height - bar_row - 3, width), 255, np.uint8)
  band = _text(band, 0, "EHT = 5.00 kV   WD = 4.1 mm   Mag = 50.00 K X   Signal A = InLens")
  band[6:20, width - 30:width - 10] = 110  # the logo
  band[:, [0, -1]] = 0  # the frame's sides
  frame[bar_row + 1:height - 2] = band
  frame[height - 2] = 0
  frame[height - 1] = rng.integers(60, 190, width)
  return frame


def fei_frame(rng, height=440, width=512, bar_row=400) -> np.ndarray:
  """FEI / Thermo Fisher: a black band with white text from ``bar_row`` to the last row."""
  frame = _content(rng, height, width)
  frame[bar_row:] = _text(np.zeros((height - bar_row, width), np.uint8), 255,
                          "HV 5.00 kV  WD 4.1 mm  det TLD  mode SE  HFW 12.0 um  mag 10 000 x")
  return frame


@pytest.mark.parametrize("layout,expected", [("zeiss", 350), ("fei", 400), ("white", 350),
                                             ("none", -1)])
def test_databar_layouts(layout, expected):
  rng = np.random.default_rng(3)
  if layout == "zeiss":
    frame = zeiss_frame(rng)
  elif layout == "fei":
    frame = fei_frame(rng)
  else:
    frame = _content(rng, 384, 512)
    if layout == "white":  # a full-width white band to the last row
      frame[350:] = _text(np.full((34, 512), 255, np.uint8), 0, "10 um  x 2,000  15 kV")
  assert find_databar(frame) == expected
  assert find_databar(frame[..., None]) == expected


def test_black_band_under_dark_content():
  """Zeiss' black band with white text under a dark substrate (levels 30-75, as particles on
  carbon tape at 50 kX): the content next to the band is dark by the loose level too."""
  rng = np.random.default_rng(6)
  frame = _content(rng, 384, 512, lo=30, hi=75)
  frame[350:] = _text(np.zeros((34, 512), np.uint8), 255,
                      "EHT = 20.00 kV   WD = 2.8 mm   Mag = 50.00 K X   Signal A = InLens")
  assert find_databar(frame) == 350
  frame[350:] = rng.integers(0, 12, (34, 512))  # the same dark bottom without text: content
  assert find_databar(frame) == -1


def _overlay_frame(rng, height=384, width=512, ink=255) -> np.ndarray:
  """Hitachi-style: no band; scale-bar ticks from row 340 and a text line from row 356, drawn
  over the image at the full level."""
  frame = _content(rng, height, width)
  for x in range(300, 500, 20):
    frame[340:348, x:x + 2] = ink
  image = Image.fromarray(frame)
  ImageDraw.Draw(image).text((8, 356), "S-4700 3.0kV 11.9mm x1.50k SE(M) 4/27/2015  30.0um",
                             fill=ink, font=ImageFont.load_default(size=14))
  return np.array(image)


@pytest.mark.parametrize("ink", [255, 0])
def test_text_drawn_over_the_image(ink):
  rng = np.random.default_rng(8)
  assert find_databar(_overlay_frame(rng, ink=ink)) == 340
  assert find_databar(_overlay_frame(rng, ink=ink).astype(np.uint16) * 16 + 4000) == 340
  frame = _overlay_frame(rng, ink=ink)
  frame[330, 50] = ink  # a hot pixel above the ticks is not where the text starts
  assert find_databar(frame) == 340
  frame = _overlay_frame(rng, ink=ink)
  frame[40:60, 100:120] = ink  # a charging particle at the text's level: not judged
  assert find_databar(frame) == -1
  frame = _content(rng, 384, 512)  # saturated dust specks near the bottom, no text line
  for y, x in rng.integers([330, 0], [380, 500], (12, 2)):
    frame[y:y + 3, x:x + 3] = ink
  assert find_databar(frame) == -1


def test_databar_survives_jpeg_tint_and_16_bit_containers():
  rng = np.random.default_rng(4)
  frame = zeiss_frame(rng)
  tinted = np.stack([frame, np.round(frame * 0.93).astype(np.uint8),
                     np.round(frame * 0.8).astype(np.uint8)], -1)
  buffer = io.BytesIO()
  Image.fromarray(tinted).save(buffer, "JPEG", quality=70)  # NFFA-like: tinted RGB JPEG
  gray = sem_images.to_gray(sem_images.decode_image(buffer.getvalue(), "a.jpg"))
  assert find_databar(gray) == 350
  twelve_bit = frame.astype(np.uint16) * 16 + 15264  # a 12-bit detector's offset range
  assert find_databar(twelve_bit) == 350


@pytest.mark.parametrize("case", ["dark_bottom", "bright_bottom", "particles_fading_in",
                                  "pattern_everywhere"])
def test_no_databar_where_content_is_dark_or_bright_at_the_bottom(case):
  rng = np.random.default_rng(5)
  frame = _content(rng, 384, 512)
  if case == "dark_bottom":  # a shadow below a sample edge: dark, straight, no text
    frame[330:] = rng.integers(0, 25, (54, 512))
  elif case == "bright_bottom":  # charging: saturated white rows
    frame[320:] = 255
  elif case == "particles_fading_in":  # dark particles on a background that brightens downwards
    ramp = np.linspace(120, 255, 100)[:, None]
    frame[284:] = np.clip(ramp + rng.normal(0, 4, (100, 512)), 0, 255).astype(np.uint8)
    for y, x in rng.integers([300, 0], [384, 500], (40, 2)):
      frame[y:y + 6, x:x + 6] = 20
  else:  # a patterned array of dark holes on a white film over the whole frame
    frame[:] = 250
    for y in range(4, 384, 16):
      for x in range(4, 512, 16):
        frame[y:y + 8, x:x + 8] = 30
  assert find_databar(frame) == -1


@needs_real
def test_real_zeiss_micrograph_databar_and_metadata():
  micrograph = micrographs.read(str(REAL))
  assert micrograph.pixels.shape == (768, 1024, 1) and micrograph.pixels.dtype == np.uint8
  np.testing.assert_array_equal(micrograph.pixels[..., 0], tifffile.imread(REAL))  # the levels
  assert find_databar(micrograph.pixels) == 691
  assert upscaling.find_databar_row(micrograph, "keep") == (691, "image detector")
  meta = micrograph.instrument
  assert meta.source == "Zeiss" and meta.pixel_size_nm == pytest.approx((0.543, 0.543))
  assert meta.fields["high_voltage_kV"] == 20.0 and meta.fields["working_distance_mm"] == 6.2
  assert meta.fields["detector"] == "InLens" and meta.fields["magnification"] == "500.00 K X"
  assert meta.databar_row is None and not meta.warnings


# --- metadata readers -------------------------------------------------------------------------

FEI_INI = """[User]
Date=11/29/2026
Time=10:11:12 AM
[System]
SystemType=Helios G4 CX
[Beam]
HV=5000
[EBeam]
HFW=1.2e-05
[Scan]
PixelWidth={px}
PixelHeight={px}
Dwelltime=1e-06
[Image]
ResolutionX=512
ResolutionY={rows}
[Detectors]
Name=TLD
Mode=SE
[PrivateFei]
DatabarHeight={bar}
[Stage]
WorkingDistance=0.0041
"""


def _fei_tiff(path, frame, *, px="2.344e-08", rows=400, bar=40) -> None:
  ini = FEI_INI.format(px=px, rows=rows, bar=bar)
  tifffile.imwrite(path, frame, extratags=[(34682, "s", 0, ini, True)])


def test_fei_metadata_gives_databar_pixel_size_and_fields(tmp_path):
  rng = np.random.default_rng(6)
  frame = fei_frame(rng)
  frame[400:] = 0  # a bar without text: only the metadata can find it
  _fei_tiff(tmp_path / "fei.tif", frame)
  micrograph = micrographs.read(str(tmp_path / "fei.tif"))
  meta = micrograph.instrument
  assert meta.source == "FEI/Thermo Fisher" and meta.databar_row == 400
  assert meta.pixel_size_nm == pytest.approx((23.44, 23.44))
  assert meta.fields == {"high_voltage_kV": 5.0, "working_distance_mm": pytest.approx(4.1),
                         "horizontal_field_width_um": pytest.approx(12.0),
                         "detector": "TLD SE", "instrument": "Helios G4 CX",
                         "dwell_time_ns": pytest.approx(1000.0), "date": "11/29/2026",
                         "time": "10:11:12 AM"}
  assert find_databar(frame) == -1
  assert upscaling.find_databar_row(micrograph, "crop") == (400, "FEI/Thermo Fisher metadata")


def _sis_tiff(path, frame, px_m: float) -> None:
  """An analySIS frame (Philips XL30's grabber): tag 33560 holds a 60-byte header, one tag
  entry and a general-data block whose file offset the entry states (patched after writing)."""
  header = struct.pack("<4s6xhhhhh6x32sH", b"SIS0", 43, 19, 18, 9, 116, b"au_islands", 1)
  exponent = -9  # lengths in 10^-9 m
  general = struct.pack("<10xhdd8xd2x34s32s", exponent, px_m / 1e-9, px_m / 1e-9, 125000.0,
                        b"", b"Gray Value")
  blob = header + struct.pack("<hhI", 1, 1, 0) + general
  tifffile.imwrite(path, frame, extratags=[(33560, "B", len(blob), blob, True)])
  data = bytearray(path.read_bytes())
  start = data.index(b"SIS0")
  data[start + 64:start + 68] = struct.pack("<I", start + 68)
  path.write_bytes(bytes(data))


def test_olympus_sis_metadata_gives_pixel_size(tmp_path):
  frame = fei_frame(np.random.default_rng(9))
  _sis_tiff(tmp_path / "xl30.tif", frame, 1.5376e-9)
  micrograph = micrographs.read(str(tmp_path / "xl30.tif"))
  meta = micrograph.instrument
  assert meta.source == "Olympus SIS" and meta.pixel_size_nm == pytest.approx((1.5376, 1.5376))
  assert meta.fields == {"magnification": 125000.0, "date": "2016-10-18 19:43"}
  assert upscaling.find_databar_row(micrograph, "crop") == (400, "image detector")
  _sis_tiff(tmp_path / "zero.tif", frame, 0.0)  # an uncalibrated grab
  assert micrographs.read(str(tmp_path / "zero.tif")).instrument.pixel_size_nm is None


@pytest.mark.parametrize("px,rows,bar,warning", [
    ("2.344e-08", 430, 40, "image has 440 rows"),  # contradicts the image size
    ("banana", 400, 40, "unreadable"),  # not a number
    ("-1e-9", 400, 40, "implausible pixel size"),
    ("2.344e-08", "4x0", 40, "not whole numbers"),
])
def test_bad_fei_metadata_warns_and_falls_back_to_the_detector(tmp_path, px, rows, bar, warning,
                                                               ledger):
  ledger.tried("vendor metadata")
  _fei_tiff(tmp_path / "bad.tif", fei_frame(np.random.default_rng(7)), px=px, rows=rows, bar=bar)
  micrograph = micrographs.read(str(tmp_path / "bad.tif"))
  assert any(warning in w for w in micrograph.instrument.warnings), micrograph.instrument
  row, found_by = upscaling.find_databar_row(micrograph, "keep")
  if "image has" in warning or "whole numbers" in warning:
    assert (row, found_by) == (400, "image detector")  # the text band is still found


def test_zeiss_pixel_size_rules():
  """``ap_image_pixel_size`` when present; older files: ``ap_width`` over the image width
  (their ``ap_pixel_size`` refers to a 1024-px frame)."""
  modern = {"ap_image_pixel_size": ("Image Pixel Size", 543.0, "pm"),
            "ap_width": ("Width", 556.0, "nm"), "ap_actualkv": ("EHT", 20.0, "kV")}
  assert zeiss.read(modern, 1024).pixel_size_nm == pytest.approx((0.543, 0.543))
  old = {"ap_pixel_size": ("Pixel Size", 5.825, "nm"), "ap_width": ("Width", 5.965, "µm")}
  found = zeiss.read(old, 512)
  assert found.pixel_size_nm == pytest.approx((11.65, 11.65), rel=1e-3)
  assert found.pixel_size_from == "Zeiss ap_width / image width"
  assert zeiss.read({"ap_mag": ("Mag", "1.00 K X")}, 512).pixel_size_nm is None


def test_imagej_and_ome_calibrations_and_uncalibrated_formats(tmp_path):
  frame = np.zeros((20, 30), np.uint16)
  tifffile.imwrite(tmp_path / "ij.tif", frame, imagej=True, resolution=(1 / 0.0125, 1 / 0.0125),
                   metadata={"unit": "micron"})
  tifffile.imwrite(tmp_path / "ome.ome.tif", frame, ome=True,
                   metadata={"PhysicalSizeX": 2.5, "PhysicalSizeXUnit": "nm",
                             "PhysicalSizeY": 3.0, "PhysicalSizeYUnit": "nm"})
  tifffile.imwrite(tmp_path / "plain.tif", frame, resolution=(1, 1))  # as vendors write it
  Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "a.png", dpi=(300, 300))
  Image.fromarray(np.zeros((20, 30), np.uint8)).save(tmp_path / "a.jpg")
  sizes = {name: micrographs.read(str(tmp_path / name)).instrument.pixel_size_nm
           for name in ("ij.tif", "ome.ome.tif", "plain.tif", "a.png", "a.jpg")}
  assert sizes["ij.tif"] == pytest.approx((12.5, 12.5))
  assert sizes["ome.ome.tif"] == pytest.approx((2.5, 3.0))
  assert sizes["plain.tif"] is None and sizes["a.png"] is None and sizes["a.jpg"] is None


def test_length_parsing():
  assert instrument.parse_length_nm("5nm") == 5.0
  assert instrument.parse_length_nm("0.8 um") == pytest.approx(800.0)
  assert instrument.parse_length_nm("543pm") == pytest.approx(0.543)
  assert instrument.parse_length_nm("1.5µm") == pytest.approx(1500.0)
  for bad in ("5", "5 furlongs", "nm", "-3nm", "1e9m"):
    with pytest.raises(ValueError):
      instrument.parse_length_nm(bad)


# --- palettes and bit depths ------------------------------------------------------------------

def _zeiss_palette() -> np.ndarray:
  """A gray ramp (3 x 256, 16-bit) with coloured overlay entries, as SmartSEM writes them."""
  palette = np.tile(np.arange(256, dtype=np.uint16) * 257, (3, 1))
  overlay = np.arange(200, 227)  # 27 entries for annotation colours
  palette[:, overlay] = np.array([[65535], [0], [0]])  # red
  return palette


def test_gray_ramp_palette_reads_as_levels_with_overlay_entries_mapped_to_neighbours(tmp_path):
  rng = np.random.default_rng(8)
  indices = rng.integers(0, 256, (32, 40)).astype(np.uint8)
  tifffile.imwrite(tmp_path / "p.tif", indices, photometric="palette", colormap=_zeiss_palette())
  levels = micrographs.read(str(tmp_path / "p.tif")).pixels[..., 0]
  overlay = (indices >= 200) & (indices < 227)
  np.testing.assert_array_equal(levels[~overlay], indices[~overlay])  # raw indices = levels
  # An overlay entry between gray entries 199 and 227 takes the ramp's level there, not red's.
  assert np.abs(levels[overlay].astype(int) - indices[overlay]).max() <= 1


def test_colour_palette_reads_as_luma(tmp_path):
  rng = np.random.default_rng(9)
  colours = rng.integers(0, 256, (256, 3)).astype(np.uint8)
  indices = rng.integers(0, 256, (16, 24)).astype(np.uint8)
  tifffile.imwrite(tmp_path / "c.tif", indices, photometric="palette",
                   colormap=colours.T.astype(np.uint16) * 257)
  image = Image.fromarray(indices, "P")
  image.putpalette(colours.ravel().tolist())
  image.save(tmp_path / "c.png")
  luma = np.floor(colours.astype(np.float64) @ [0.299, 0.587, 0.114] + 0.5)[indices]
  for name in ("c.tif", "c.png"):
    levels = micrographs.read(str(tmp_path / name)).pixels[..., 0]
    assert np.abs(levels.astype(float) - luma).max() <= 1, name


def test_12_bit_frame_in_16_bit_container_keeps_its_range(tmp_path):
  y, x = np.mgrid[0:40, 0:48]
  frame = (15264 + 4832 * (0.5 + 0.5 * np.sin(x / 5) * np.cos(y / 6))).astype(np.uint16)
  tifffile.imwrite(tmp_path / "bruker.tif", frame)
  micrograph = micrographs.read(str(tmp_path / "bruker.tif"))
  assert micrograph.value_range == (float(frame.min()), float(frame.max()))
  unit = micrographs.model_input(micrograph, 1)
  assert unit.min() == 0.0 and unit.max() == 1.0  # the model sees the frame's full contrast
  model = upscaling.Model(lambda v: degradations.bicubic_upscale(v, 2), 2, 1, label="bicubic")
  upscaling.upscale_file(str(tmp_path / "bruker.tif"), str(tmp_path / "out.tif"), model,
                         upscaling.Settings(databar="none"))
  out = tifffile.imread(tmp_path / "out.tif")
  assert out.dtype == np.uint16 and out.shape == (80, 96)
  assert frame.min() <= out.min() and out.max() <= frame.max()  # not stretched to 0..65535
  assert abs(float(out.mean()) - float(frame.mean())) < 0.01 * (frame.max() - frame.min())


# --- calibrated outputs -----------------------------------------------------------------------

def _sidecar(path) -> dict:
  return json.loads(pathlib.Path(calibration.sidecar_path(str(path))).read_text())


@needs_real
def test_upscaled_real_micrograph_keeps_its_calibration(tmp_path):
  """The acceptance: x4 with --databar=crop gives 691 * 4 rows at 0.543 / 4 nm per pixel."""
  result = _upscale("--run=bicubic", "--scale=4", "--databar=crop", f"--out={tmp_path}", REAL,
                    cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  out = tmp_path / "aquami_Sample_x4.tif"
  with tifffile.TiffFile(out) as tif:
    page = tif.pages[0]
    assert page.shape == (691 * 4, 1024 * 4) and page.dtype == np.uint8
    assert tif.imagej_metadata["unit"] == "nm"
    for tag in ("XResolution", "YResolution"):
      numerator, denominator = page.tags[tag].value
      assert denominator / numerator == pytest.approx(0.13575, rel=1e-9)
    info = json.loads(tif.imagej_metadata["Info"])
  assert micrographs.read(str(out)).instrument.pixel_size_nm == pytest.approx((0.13575,) * 2)
  sidecar = _sidecar(out)
  assert sidecar == info
  assert sidecar["pixel_size_nm"] == pytest.approx({"x": 0.13575, "y": 0.13575})
  assert sidecar["input"]["pixel_size_nm"] == pytest.approx({"x": 0.543, "y": 0.543})
  assert sidecar["instrument"]["high_voltage_kV"] == 20.0
  assert sidecar["instrument"]["magnification"] == "500.00 K X"
  assert sidecar["databar"] == {"mode": "crop", "first_row": 691, "found_by": "image detector"}
  making = sidecar["provenance"]
  assert (making["model"], making["scale"], making["tile"]) == ("bicubic", 4, 256)
  assert making["git_commit"] and making["sinsr_jax"]
  lines = result.stdout.strip().splitlines()
  assert "pixel size 0.13575 nm" in lines[0] and "databar from row 691" in lines[0]
  assert lines[-1].startswith("1 upscaled, 0 failed") and lines[-1].endswith(
      "pixel size 0.13575 nm")


def test_pixel_size_flag_sidecars_for_png_and_the_vendor_tag_not_copied(tmp_path, ledger):
  ledger.tried("--pixel-size", 2)
  rng = np.random.default_rng(10)
  Image.fromarray(zeiss_frame(rng)).save(tmp_path / "a.png")
  _fei_tiff(tmp_path / "fei.tif", fei_frame(rng))
  result = _upscale("--run=bicubic", "--scale=2", "--pixel-size=5nm", "--out=out", "a.png",
                    "fei.tif", cwd=tmp_path)
  assert result.returncode == 0, result.stderr
  png = _sidecar(tmp_path / "out/a_x2.png")
  assert png["pixel_size_nm"] == {"x": 2.5, "y": 2.5}
  assert png["pixel_size_source"] == "--pixel-size / 2"
  assert png["databar"]["first_row"] == 350
  with tifffile.TiffFile(tmp_path / "out/fei_x2.tif") as tif:  # the file's own size wins
    assert not tif.is_fei  # no vendor tag: Fiji would read the input's pixel size from it
    assert tif.pages[0].shape == (880, 1024)  # databar kept, bicubic, below the image
  fei = _sidecar(tmp_path / "out/fei_x2.tif")
  assert fei["pixel_size_nm"] == pytest.approx({"x": 11.72, "y": 11.72})
  assert fei["databar"]["found_by"] == "FEI/Thermo Fisher metadata"
  assert fei["instrument"]["detector"] == "TLD SE"
  assert "pixel size written for 2 of 2" in result.stdout.splitlines()[-1]
  for bad in ("--pixel-size=5 furlongs", "--pixel-size=abc"):
    refused = _upscale("--run=bicubic", "--scale=2", bad, "--out=o2", "a.png", cwd=tmp_path)
    assert refused.returncode == 2
    assert len(_errors(refused)) == 1 and _errors(refused)[0].startswith("error: --pixel-size")
    assert not os.path.exists(tmp_path / "o2")


def test_sem_folder_stores_pixel_size_and_fei_databar(tmp_path, caplog):
  rng = np.random.default_rng(11)
  root = tmp_path / "mine"
  root.mkdir()
  frame = fei_frame(rng)
  _fei_tiff(root / "fei.tif", frame)
  Image.fromarray(zeiss_frame(rng)).save(root / "zeiss.png")
  for i in range(2):
    Image.fromarray(_content(rng, 64, 64)).save(root / f"plain{i}.png")
  config = SemFolder.config_for(str(root), split_percent=(50, 25, 25))
  builder = tfds.builder("sem_folder", config=config,
                         data_dir=str(tmp_path / "data"), file_format="array_record")
  with caplog.at_level("INFO"):
    builder.download_and_prepare()
  examples = {e["filename"].decode(): e for split in builder.info.splits
              for e in builder.as_data_source(split=split)}
  np.testing.assert_allclose(examples["fei.tif"]["pixel_size_nm"], [23.44, 23.44], rtol=1e-5)
  np.testing.assert_array_equal(examples["zeiss.png"]["pixel_size_nm"], [-1, -1])
  assert examples["fei.tif"]["databar_row"] == 400
  assert examples["fei.tif"]["image"].shape == (400, 512, 1)
  assert examples["zeiss.png"]["databar_row"] == 350
  assert builder.info.metadata["images_with_pixel_size"] == 1
  assert "4 images stored (1 with a pixel size in their metadata)" in caplog.text
