"""TESCAN, Hitachi and JEOL files as the instruments write them, built here: the pixel size and
databar rows read, fields kept, and malformed or contradicting metadata warned about and left
to the image detector (as FEI's is)."""

import json
import struct
import tarfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
import tifffile
from PIL import Image
from test_databar_detector import tescan_table
from test_micrograph_files import _fei_tiff, fei_frame

from sinsr_jax.data import degradations
from sinsr_jax.inference import micrographs, upscaling
from tfds_sem.sem_folder.sem_folder import SemFolder
from tfds_sem.vendors import sidecars

TESCAN_INI = ("[MAIN]\r\nDate=2026-11-30\r\nTime=09:08:07\r\nDevice=MIRA3\r\n"
              "ImageStripSize={strip}\r\nMagnification=25000\r\nPixelSizeX={px}\r\n"
              "PixelSizeY=1.6e-08\r\nSerialNumber=123-0456\r\n[SEM]\r\nHV=15000\r\n"
              "WD=0.0101\r\nDetector=SE\r\n")


def _tescan_tiff(path, frame, *, strip=64, px="1.5e-08") -> None:
  header = struct.pack("<4sI16s", b"TCAN", 7, bytes(range(16))) + b"\x00" * 8  # binary part
  ini = TESCAN_INI.format(strip=strip, px=px).encode()
  payload = header + ini + b"\x00"
  tifffile.imwrite(path, frame, extratags=[(50431, "B", len(payload), payload, True)])


def test_tescan_tag_gives_pixel_size_strip_and_fields(tmp_path):
  frame = tescan_table(np.random.default_rng(1))
  _tescan_tiff(tmp_path / "t.tif", frame)
  micrograph = micrographs.read(str(tmp_path / "t.tif"))
  meta = micrograph.instrument
  assert meta.source == "TESCAN" and meta.warnings == ()
  assert meta.pixel_size_nm == pytest.approx((15.0, 16.0))
  assert meta.databar_row == 440 - 64
  assert meta.fields == {"high_voltage_kV": 15.0, "working_distance_mm": pytest.approx(10.1),
                         "magnification": 25000.0, "detector": "SE",
                         "instrument": "TESCAN MIRA3", "date": "2026-11-30",
                         "time": "09:08:07"}
  assert upscaling.find_databar_row(micrograph, "crop") == (376, "TESCAN metadata")
  model = upscaling.Model(lambda v: degradations.bicubic_upscale(v, 4), 4, 1, label="bicubic")
  done = upscaling.upscale_file(str(tmp_path / "t.tif"), str(tmp_path / "o.tif"), model,
                                upscaling.Settings(databar="crop"))
  assert done.shape == (376 * 4, 512 * 4)
  side = json.loads((tmp_path / "o.tif.json").read_text())
  assert side["pixel_size_nm"] == pytest.approx({"x": 3.75, "y": 4.0})
  assert side["instrument"]["instrument"] == "TESCAN MIRA3"


@pytest.mark.parametrize("strip,px,warning,row", [
    (900, "1.5e-08", "does not fit the image's 440 rows", 376),  # the detector finds the table
    ("6x4", "1.5e-08", "ImageStripSize unreadable", 376),
    (64, "banana", "metadata unreadable", None),  # a bad number: the whole tag is ignored
    (0, "1.5e-08", None, 376),  # 0 while a strip is drawn: the pixels decide
])
def test_bad_tescan_metadata_warns_and_falls_back(tmp_path, strip, px, warning, row, ledger):
  ledger.tried("vendor metadata")
  _tescan_tiff(tmp_path / "bad.tif", tescan_table(np.random.default_rng(2)), strip=strip, px=px)
  micrograph = micrographs.read(str(tmp_path / "bad.tif"))
  if warning is None:
    assert micrograph.instrument.warnings == ()
  else:
    assert any(warning in w for w in micrograph.instrument.warnings), micrograph.instrument
  found, by = upscaling.find_databar_row(micrograph, "keep")
  if row is not None:
    assert (found, by) == (row, "image detector")


HITACHI_TXT = ("[SemImageFile]\r\nInstructName=S-4800\r\nSerialNumber=123189-06\r\n"
               "Date=11/30/2026\r\nTime=10:11:12\r\nDataSize={size}\r\nPixelSize=4.961\r\n"
               "SignalName=SE(U)\r\nAcceleratingVoltage=5000 Volt\r\nMagnification=25000\r\n"
               "WorkingDistance=8100 um\r\nComment=Probe 5\u00b0 tilt \u00b5-pillars\r\n")


@pytest.mark.parametrize("encoding", ["utf-16", "cp1252"])  # utf-16 writes its BOM
def test_hitachi_sidecar_in_both_encodings(tmp_path, encoding):
  frame = fei_frame(np.random.default_rng(3))  # a burned-in strip from row 400
  tifffile.imwrite(tmp_path / "h.tif", frame)
  (tmp_path / "h.txt").write_bytes(HITACHI_TXT.format(size="512x440").encode(encoding))
  micrograph = micrographs.read(str(tmp_path / "h.tif"))
  meta = micrograph.instrument
  assert meta.source == "Hitachi" and meta.warnings == ()
  assert meta.pixel_size_nm == pytest.approx((4.961, 4.961))
  assert meta.fields == {"high_voltage_kV": 5.0, "working_distance_mm": pytest.approx(8.1),
                         "magnification": 25000.0, "detector": "SE(U)",
                         "instrument": "Hitachi S-4800", "date": "11/30/2026",
                         "time": "10:11:12"}
  # DataSize counts the strip: it states no strip height, so the pixels decide
  assert upscaling.find_databar_row(micrograph, "crop") == (400, "image detector")


def test_hitachi_xp_comment_and_contradicting_data_size(tmp_path, ledger):
  ledger.tried("vendor metadata")
  frame = fei_frame(np.random.default_rng(4))
  comment = HITACHI_TXT.format(size="512x440").encode("utf-16-le")
  tifffile.imwrite(tmp_path / "x.tif", frame, extratags=[(40092, "B", len(comment), comment,
                                                          True)])
  meta = micrographs.read(str(tmp_path / "x.tif")).instrument
  assert meta.source == "Hitachi" and meta.pixel_size_nm == pytest.approx((4.961, 4.961))
  Image.fromarray(frame).save(tmp_path / "resized.bmp")  # a frame whose size differs
  (tmp_path / "resized.txt").write_bytes(HITACHI_TXT.format(size="1280x960").encode("utf-16"))
  meta = micrographs.read(str(tmp_path / "resized.bmp")).instrument
  assert meta.pixel_size_nm is None
  assert any("1280x960 frame (DataSize) but the image is 512x440" in w for w in meta.warnings)


JEOL_TXT = ("$CM_FORMAT JEOL/SEM\n$CM_VERSION 1.0\n$CM_INSTRUMENT JSM-7800F\n$CM_SIGNAL SEI\n"
            "$CM_MAG 10000\n$CM_ACCEL_VOLT 15.00\n$CM_DATE 2026/11/30\n$CM_TIME 10:21:55\n"
            "$CM_FULL_SIZE {area}\n$$SM_MICRON_BAR 180\n$$SM_MICRON_MARKER 5um\n$$SM_WD 8.5\n")


def test_jeol_sidecar_gives_pixel_size_and_databar(tmp_path):
  frame = fei_frame(np.random.default_rng(5))
  frame[400:] = 0  # a band without text: only the metadata can find it
  tifffile.imwrite(tmp_path / "j.tif", frame)
  (tmp_path / "j.txt").write_text(JEOL_TXT.format(area="512 400").replace("\n", "\r\n"))
  micrograph = micrographs.read(str(tmp_path / "j.tif"))
  meta = micrograph.instrument
  assert meta.source == "JEOL" and meta.warnings == ()
  assert meta.pixel_size_nm == pytest.approx((5000 / 180, 5000 / 180))
  assert meta.fields == {"high_voltage_kV": 15.0, "working_distance_mm": 8.5,
                         "magnification": 10000.0, "detector": "SEI",
                         "instrument": "JEOL JSM-7800F", "date": "2026/11/30",
                         "time": "10:21:55"}
  assert upscaling.find_databar_row(micrograph, "crop") == (400, "JEOL metadata")


def test_jeol_contradicting_size_warns_and_the_detector_decides(tmp_path, ledger):
  ledger.tried("vendor metadata")
  tifffile.imwrite(tmp_path / "j.tif", fei_frame(np.random.default_rng(6)))
  (tmp_path / "j.txt").write_text(JEOL_TXT.format(area="1280 960"))
  micrograph = micrographs.read(str(tmp_path / "j.tif"))
  assert micrograph.instrument.pixel_size_nm is None
  assert any("CM_FULL_SIZE 1280x960 does not fit" in w for w in micrograph.instrument.warnings)
  assert upscaling.find_databar_row(micrograph, "crop") == (400, "image detector")


def test_sidecar_decoding_and_names():
  text = "[SemImageFile]\r\nPixelSize=1.5\r\n"
  for data in (text.encode("utf-16"), text.encode("utf-16-le"), text.encode("utf-8-sig"),
               "PixelSize=1,5 \u00b5\r\n".encode("cp1252")):
    assert "PixelSize=1" in sidecars.decode(data)
  assert sidecars.decode("Comment=5\u00b0\r\n".encode("cp1252")) == "Comment=5\u00b0\r\n"
  assert sidecars.candidates("a/b.c/img.tif")[:2] == ["a/b.c/img.txt", "a/b.c/img.TXT"]


def test_sem_folder_reads_sidecars_and_tescan_tags(tmp_path):
  root = tmp_path / "lab"
  root.mkdir()
  rng = np.random.default_rng(7)
  tifffile.imwrite(root / "h.tif", fei_frame(rng))
  (root / "h.txt").write_bytes(HITACHI_TXT.format(size="512x440").encode("utf-16"))
  jeol = fei_frame(rng)
  jeol[400:] = 0
  tifffile.imwrite(root / "j.tif", jeol)
  (root / "j.txt").write_text(JEOL_TXT.format(area="512 400"))
  _tescan_tiff(root / "t.tif", tescan_table(rng))
  (root / "notes.txt").write_text("not a sidecar\n")
  builder = tfds.builder("sem_folder", config=SemFolder.config_for(str(root)),
                         data_dir=str(tmp_path / "data"), file_format="array_record")
  builder.download_and_prepare()
  examples = {e["filename"].decode(): e for split in builder.info.splits
              for e in builder.as_data_source(split=split)}
  assert sorted(examples) == ["h.tif", "j.tif", "t.tif"]
  assert examples["h.tif"]["pixel_size_nm"] == pytest.approx([4.961, 4.961])
  assert examples["j.tif"]["pixel_size_nm"] == pytest.approx([5000 / 180] * 2)
  assert examples["t.tif"]["pixel_size_nm"] == pytest.approx([15.0, 16.0])
  assert {n: int(e["databar_row"]) for n, e in examples.items()} == {
      "h.tif": 400, "j.tif": 400, "t.tif": 376}
  stats = builder.info.metadata
  assert (stats["images_with_pixel_size"], stats["sidecars_read"]) == (3, 2)
  assert stats["skipped_files"] == ["notes.txt (not an image)"]


def test_nffa_archive_sidecar_after_its_image(tmp_path):
  """A streamed tar lists ``x.jpg`` before ``x.txt``: the sidecar still reaches its image."""
  from sem_archives import _add, jpeg_bytes, make_archive

  from tfds_sem.nffa_sem.nffa_sem import NffaSem  # noqa: F401 (registers the builder)

  manual = tmp_path / "manual"
  make_archive(manual, per_class=1)
  frame = fei_frame(np.random.default_rng(8))
  frame[400:] = 0  # a band without text: only the sidecar states it
  with tarfile.open(manual / "Tips.tar", "a") as tar:
    _add(tar, "Tips/jeol_frame.jpg", jpeg_bytes(np.repeat(frame[..., None], 3, -1)))
    _add(tar, "Tips/jeol_frame.txt", JEOL_TXT.format(area="512 400").encode())
  builder = tfds.builder("nffa_sem", data_dir=str(tmp_path / "data"),
                         config="sem", file_format="array_record")
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
      manual_dir=str(manual)))
  rows = {e["filename"].decode(): int(e["databar_row"]) for split in builder.info.splits
          for e in builder.as_data_source(split=split)}
  assert rows["Tips.tar/Tips/jeol_frame.jpg"] == 400


def test_fei_databar_height_0_lets_the_pixels_decide(tmp_path):
  """FEI writes DatabarHeight=0 for frames whose databar is drawn into the image."""
  _fei_tiff(tmp_path / "fei0.tif", fei_frame(np.random.default_rng(9)), rows=440, bar=0)
  micrograph = micrographs.read(str(tmp_path / "fei0.tif"))
  assert micrograph.instrument.databar_row is None and micrograph.instrument.warnings == ()
  assert upscaling.find_databar_row(micrograph, "crop") == (400, "image detector")
