"""The user's own images: the sem_folder builder, and training on it and on nffa_sem."""

import io
import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
import tifffile
from PIL import Image
from sem_archives import jpeg_bytes, make_archive, micrograph
from test_cli import _assert_one_clear_error, _main, _tiny_flags

import tfds_sem  # noqa: F401
from conftest import tiny_config
from sinsr_jax.data import input_pipeline
from sinsr_jax.errors import DataError
from sinsr_jax.training import train
from tfds_sem import prepare
from tfds_sem.sem_folder.sem_folder import SemFolder


def _png(array) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG")
  return buffer.getvalue()


def _tiff(array) -> bytes:
  buffer = io.BytesIO()
  tifffile.imwrite(buffer, array)
  return buffer.getvalue()


@pytest.fixture
def lab_folder(tmp_path):
  """Mixed formats and depths, class sub-folders, a hidden file and two bad files."""
  rng = np.random.default_rng(0)
  root = tmp_path / "lab images"
  (root / "Particles" / "deep").mkdir(parents=True)
  (root / "Fibres").mkdir()
  files = {
      "overview.png": rng.integers(0, 256, (80, 96), dtype=np.uint8),
      "Particles/p16.tif": rng.integers(0, 65536, (96, 112), dtype=np.uint16),
      "Particles/deep/p16_rgb.tiff": rng.integers(0, 65536, (64, 72, 3), dtype=np.uint16),
      "Fibres/f8.tif": rng.integers(0, 256, (72, 64), dtype=np.uint8),
  }
  for name, array in files.items():
    (root / name).write_bytes(_tiff(array) if name.endswith((".tif", ".tiff")) else _png(array))
  (root / "Fibres" / "with_bar.jpg").write_bytes(
      jpeg_bytes(micrograph(rng, 384, 512, databar="dark", bar_row=330)))
  (root / "Fibres" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
  (root / "notes.txt").write_text("stage tilt 30 degrees\n")
  (root / ".DS_Store").write_bytes(b"\0\1")
  return root, files


def _all(builder):
  return {e["filename"].decode(): e for split in builder.info.splits
          for e in builder.as_data_source(split=split)}


def test_folder_keeps_16_bits_classes_and_databars(lab_folder, tmp_path):
  root, files = lab_folder
  config = SemFolder.config_for(str(root))
  assert config.bits == 16
  builder = tfds.builder("sem_folder", config=config, data_dir=str(tmp_path / "data"),
                         file_format="array_record")
  builder.download_and_prepare()
  examples = _all(builder)
  assert set(examples) == {*files, "Fibres/with_bar.jpg"}
  labels = {name: e["label"].decode() for name, e in examples.items()}
  assert labels == {"overview.png": "", "Particles/p16.tif": "Particles",
                    "Particles/deep/p16_rgb.tiff": "Particles", "Fibres/f8.tif": "Fibres",
                    "Fibres/with_bar.jpg": "Fibres"}
  assert all(e["image"].dtype == np.uint16 for e in examples.values())
  p16 = files["Particles/p16.tif"].astype(np.float64)  # 16 bits: stretched from its own range
  stretched = np.floor((p16 - p16.min()) / (p16.max() - p16.min()) * 65535 + 0.5)
  np.testing.assert_array_equal(examples["Particles/p16.tif"]["image"][..., 0], stretched)
  np.testing.assert_array_equal(examples["Fibres/f8.tif"]["image"][..., 0],
                                files["Fibres/f8.tif"].astype(np.uint16) * 257)
  rgb = files["Particles/deep/p16_rgb.tiff"].astype(np.float64)
  luma = np.floor(rgb @ [0.299, 0.587, 0.114] + 0.5)
  luma = (luma - luma.min()) / (luma.max() - luma.min()) * 65535
  assert np.abs(examples["Particles/deep/p16_rgb.tiff"]["image"][..., 0] - luma).max() <= 2.0
  bar = examples["Fibres/with_bar.jpg"]
  assert bar["databar_row"] == 330 and bar["image"].shape == (330, 512, 1)
  stats = builder.info.metadata
  assert (stats["skipped_not_image"], stats["skipped_unreadable"]) == (1, 1)
  assert stats["files_found"] == 7  # .DS_Store is not counted: hidden files are not data


def test_8bit_folder_stays_8bit(tmp_path):
  root = tmp_path / "imgs"
  root.mkdir()
  for i in range(3):
    (root / f"{i}.png").write_bytes(_png(np.full((40, 40), 60 * i, np.uint8)))
  config = SemFolder.config_for(str(root))
  assert config.bits == 8
  builder = tfds.builder("sem_folder", config=config, data_dir=str(tmp_path / "data"),
                         file_format="array_record")
  builder.download_and_prepare()
  assert {e["image"].dtype for e in _all(builder).values()} == {np.dtype(np.uint8)}
  assert sorted(builder.info.splits[s].num_examples for s in builder.info.splits) == [1, 1, 1]


def test_missing_or_empty_folder_is_refused(tmp_path, ledger):
  ledger.tried("image folder")
  with pytest.raises(prepare.SourceError, match="does not exist"):
    SemFolder.config_for(str(tmp_path / "nowhere"))
  (tmp_path / "empty").mkdir()
  builder = tfds.builder("sem_folder", config=SemFolder.config_for(str(tmp_path / "empty")),
                         data_dir=str(tmp_path / "data"),
                         file_format="array_record")
  with pytest.raises(prepare.SourceError, match="missing or empty"):
    builder.download_and_prepare()


def test_changed_folder_is_not_used_stale(lab_folder, tmp_path):
  root, _ = lab_folder
  data_cfg = tiny_config(str(tmp_path / "data")).data
  data_cfg.name, data_cfg.builder_config, data_cfg.path = "sem_folder", "", str(root)
  input_pipeline.prepare_builder(data_cfg)
  input_pipeline.prepare_builder(data_cfg)  # unchanged: reused
  (root / "new.png").write_bytes(_png(np.zeros((40, 40), np.uint8)))
  with pytest.raises(DataError, match="changed since it was prepared"):
    input_pipeline.prepare_builder(data_cfg)


@pytest.mark.slow
def test_cli_trains_on_a_folder(tmp_path):
  rng = np.random.default_rng(1)
  root = tmp_path / "my_images"
  (root / "a").mkdir(parents=True)
  for i in range(8):
    (root / "a" / f"{i}.tif").write_bytes(_tiff(micrograph(rng, 96, 128)[..., 0]))
  flags = _tiny_flags(tmp_path / "data")
  flags[0] = f"--config=configs/sinsr.py:quick,data=folder,path={root}"
  flags.remove("--config.data.builder_config=tiny")
  result = _main(*flags, "--config.data.eval_crop=64", f"--workdir={tmp_path / 'work'}")
  assert result.returncode == 0, result.stderr[-3000:]
  metrics = json.loads((tmp_path / "work" / "metrics.json").read_text())
  assert metrics["step"] == 2 and np.isfinite(metrics["psnr_db"])


def test_cli_data_errors(tmp_path, ledger):
  ledger.tried("image folder")
  _assert_one_clear_error(_main("--config=configs/sinsr.py:quick,data=folder",
                                f"--workdir={tmp_path}"), 1, "data=folder needs the image folder")
  _assert_one_clear_error(_main("--config=configs/sinsr.py:quick,data=imagenet",
                                f"--workdir={tmp_path}"), 2, "nffa_sem", "folder")
  result = _main("--config=configs/sinsr.py:quick,data=nffa_sem",
                 f"--config.data.data_dir={tmp_path / 'd'}",
                 f"--config.data.manual_dir={tmp_path / 'nothing'}", f"--workdir={tmp_path}")
  assert result.returncode == 1 and "Traceback" not in result.stderr
  message = result.stderr[result.stderr.index("error: "):]
  assert message.startswith("error: cannot prepare nffa_sem/sem") and "B2SHARE" in message


@pytest.mark.slow
def test_training_on_the_nffa_archive(tmp_path):
  make_archive(tmp_path / "manual", per_class=2)
  config = tiny_config(str(tmp_path / "data"), num_steps=2, pretrain_steps=1)
  config.data.update(name="nffa_sem", builder_config="", manual_dir=str(tmp_path / "manual"),
                     eval_crop=64, eval_max_images=2)
  train.train_and_evaluate(config, str(tmp_path / "work"))
  metrics = json.loads((tmp_path / "work" / "metrics.json").read_text())
  assert metrics["step"] == 2 and np.isfinite(metrics["psnr_db"])
  assert metrics["bicubic_psnr_db"] > 20  # real 64x64 crops of the stored images
