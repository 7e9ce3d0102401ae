"""One mapping of 16-bit levels to [0, 1] in training, `evaluate --split`, `evaluate --images`
and `upscale`: from the image area (never the databar), by the bit depth the file states where
it states one. The same 12-bit frame reaches the model at the same range with and without a
databar."""

import dataclasses

import numpy as np
import pytest
import tensorflow_datasets as tfds
import tifffile
from test_micrograph_files import fei_frame

from sinsr_jax.data import input_pipeline
from sinsr_jax.evaluation import image_folder
from sinsr_jax.inference import micrographs, upscaling
from tfds_sem.sem_folder.sem_folder import SemFolder

ROWS = 400  # the image area's rows; the databar, where drawn, is below


def _twelve_bit_pair(folder, *, stated: bool):
  """The same 12-bit-in-16 frame without and with a black databar holding white text."""
  folder.mkdir(parents=True, exist_ok=True)
  frame = fei_frame(np.random.default_rng(21)).astype(np.uint16) * 12 + 700  # 700..3760
  bare = frame[:ROWS]
  barred = frame.copy()
  barred[ROWS:] = np.where(frame[ROWS:] > 1000, 4095, 0)  # white text at the detector's top
  extratags = [(281, "H", 1, 4095, True)] if stated else []  # MaxSampleValue: 12 bits
  tifffile.imwrite(folder / "bare.tif", bare, extratags=extratags)
  tifffile.imwrite(folder / "barred.tif", barred, extratags=extratags)
  tifffile.imwrite(folder / "other.tif", bare[::-1].copy(), extratags=extratags)
  return bare


def _upscale_input(path):
  micrograph = micrographs.read(str(path))
  top, _ = upscaling.find_databar_row(micrograph, "crop")
  return micrographs.model_input(micrograph.for_image_area(top), 1)[:top]


@pytest.mark.parametrize("stated", [False, True])
def test_same_frame_same_range_with_and_without_its_databar(tmp_path, stated):
  bare = _twelve_bit_pair(tmp_path / "in", stated=stated)
  with_bar, without = (_upscale_input(tmp_path / "in" / n) for n in ("barred.tif", "bare.tif"))
  assert with_bar.shape == without.shape == (ROWS, 512, 1)
  np.testing.assert_allclose(with_bar, without, atol=1e-7)
  lo, hi = (0.0, 4095.0) if stated else (float(bare.min()), float(bare.max()))
  np.testing.assert_allclose(without[..., 0], (bare - lo) / (hi - lo), atol=1e-6)
  if not stated:
    assert (without.min(), without.max()) == (0.0, 1.0)  # not [0.011, 0.057] of 65535
  images, _ = image_folder.load([str(tmp_path / "in")], channels=1, scale=4)
  for element in images[:2]:  # evaluate --images sees what upscale's model sees
    np.testing.assert_allclose(element["image"], without, atol=1e-7)


@pytest.mark.parametrize("stated", [False, True])
def test_training_sees_what_upscale_sees(tmp_path, stated):
  """The builders store the image area mapped as upscale maps it; training (and evaluate
  --split) divide by the stored type's maximum: the same values, to the stored precision."""
  _twelve_bit_pair(tmp_path / "in", stated=stated)
  expected = _upscale_input(tmp_path / "in" / "bare.tif")
  for bits in (16, 8):
    config = SemFolder.config_for(str(tmp_path / "in"), split_percent=(34, 33, 33))
    config = dataclasses.replace(config, name=f"{config.name}-{bits}", bits=bits)
    builder = tfds.builder("sem_folder", config=config, data_dir=str(tmp_path / f"d{bits}"),
                           file_format="array_record")
    builder.download_and_prepare()
    stored = [e for split in builder.info.splits for e in builder.as_data_source(split=split)
              if e["filename"] != b"other.tif"]
    assert sorted(e["filename"].decode() for e in stored) == ["bare.tif", "barred.tif"]
    for example in stored:
      assert int(example["databar_row"]) == (ROWS if example["filename"] == b"barred.tif"
                                             else -1)
      seen = input_pipeline._to_float(example["image"], 1)
      np.testing.assert_allclose(seen, expected, atol=0.5 / (2 ** bits - 1) + 1e-6)
