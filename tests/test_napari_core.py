"""The napari plugin's logic without Qt: the reader's layers, the upscale behind the widget
(against the command line's own upscale), cancellation, the save, and what it refuses."""

import io
import zipfile

import numpy as np
import pytest
import yaml
from test_micrograph_files import REAL, needs_real
from test_upscale import _run

from sinsr_jax.errors import UserError
from sinsr_jax.inference import micrographs, upscaling
from sinsr_jax.napari import reader, sample
from sinsr_jax.napari import upscaler as work

SMALL_VDSR = {"width": 8, "depth": 3}


def _jax_upscaler(run) -> work.Upscaler:
  return work.Upscaler(lambda lr: np.asarray(run.sr_fn()(lr)), run.scale, run.channels,
                       "vdsr x4", "in memory", "jax")


@needs_real
def test_reader_keeps_calibration_bit_depth_and_puts_the_databar_in_its_own_layer():
  image, databar = reader.read_layers(str(REAL))
  data, kwargs, kind = image
  assert kind == "image" and data.dtype == np.uint8 and data.shape == (691, 1024)
  assert kwargs["scale"] == pytest.approx((0.543, 0.543)) and kwargs["units"] == ("nm", "nm")
  assert kwargs["metadata"]["bit_depth"] == 8 and kwargs["metadata"]["databar_row"] == 691
  np.testing.assert_array_equal(data, micrographs.read(str(REAL)).pixels[:691, :, 0])
  bar, bar_kwargs, _ = databar
  assert bar.shape == (77, 1024) and bar_kwargs["translate"] == pytest.approx((691 * 0.543, 0))
  assert len(reader.read_layers(str(REAL), databar="drop")) == 1


def test_reader_hook_takes_one_micrograph_and_nothing_else(tmp_path):
  assert reader.napari_get_reader("frame.tif") is reader.read_layers
  assert reader.napari_get_reader(["a.png"]) is reader.read_layers
  assert reader.napari_get_reader(["a.png", "b.png"]) is None
  assert reader.napari_get_reader("notes.txt") is None


def test_sample_is_a_synthetic_8_bit_frame():
  (data, kwargs, kind), = sample.make_sample(size=96)
  assert kind == "image" and data.dtype == np.uint8 and data.shape == (96, 96)
  assert data.std() > 5  # a scene, not a flat field


@needs_real
def test_widget_upscale_equals_the_command_lines_upscale_and_reports_every_tile():
  run = _run("vdsr", **SMALL_VDSR)
  micrograph = micrographs.read(str(REAL))
  crop = micrograph.pixels[100:300, 200:460, 0]
  events = []
  got = work.upscale(_jax_upscaler(run), crop, (0.0, 255.0), tile=96, context=16, blend=8,
                     progress=lambda done, total: events.append((done, total)))
  model = upscaling.Model(run.sr_fn(), run.scale, run.channels)
  want = upscaling.upscale_pixels(micrographs.Micrograph.of(crop[..., None], "tiff"), model,
                                  upscaling.Settings(tile=96, context=16, blend=8,
                                                     databar="none"), np.dtype(np.uint8))
  np.testing.assert_array_equal(got, want[..., 0])
  total = events[-1][1]
  assert total > 1 and events == [(i, total) for i in range(1, total + 1)]


def test_cancel_stops_after_the_current_tile():
  run = _run("vdsr", **SMALL_VDSR)
  calls = []
  upscaler = _jax_upscaler(run)
  counting = work.Upscaler(lambda lr: calls.append(1) or upscaler.sr_fn(lr), 4, 1, "v", "m",
                           "jax")
  with pytest.raises(work.Cancelled):
    work.upscale(counting, np.zeros((200, 200), np.uint8), (0, 255), tile=64, context=8,
                 blend=8, cancelled=lambda: len(calls) >= 2)
  assert len(calls) == 2


def test_a_layer_that_is_not_a_2d_image_is_refused():
  run = _run("vdsr", **SMALL_VDSR)
  with pytest.raises(UserError, match="not a 2-D image"):
    work.upscale(_jax_upscaler(run), np.zeros((4, 4), np.uint8), (0, 255), tile=64, context=8,
                 blend=8)


def test_a_package_of_another_spec_is_refused_in_one_line(tmp_path):
  path = tmp_path / "old.zip"
  with zipfile.ZipFile(path, "w") as z:
    z.writestr("rdf.yaml", yaml.safe_dump({"type": "model", "format_version": "0.4.10"}))
  with pytest.raises(UserError, match="spec 0.5") as error:
    work.load(str(path))
  assert "\n" not in str(error.value)
  (tmp_path / "x.h5").write_bytes(b"")
  with pytest.raises(UserError, match="not a run folder"):
    work.load(str(tmp_path / "x.h5"))


def test_save_writes_a_calibrated_tiff_and_its_sidecar(tmp_path):
  pixels = (np.arange(64 * 80) % 251).astype(np.uint8).reshape(64, 80)
  meta = {"source": "in.tif", "pixel_size_nm": [0.543 / 4, 0.543 / 4],
          "upscaled": {"model": "vdsr x4", "scale": 4}}
  sidecar = work.save(pixels, str(tmp_path / "out.tif"), meta)
  back = micrographs.read(str(tmp_path / "out.tif"))
  np.testing.assert_array_equal(back.pixels[..., 0], pixels)
  assert back.instrument.pixel_size_nm == pytest.approx((0.543 / 4, 0.543 / 4), rel=1e-4)
  assert yaml.safe_load(io.StringIO(open(sidecar).read()))["provenance"]["model"] == "vdsr x4"


@pytest.mark.slow
@needs_real
def test_a_run_folder_is_exported_in_a_child_process_and_matches_jax(trained_tiny_run):
  pytest.importorskip("onnxruntime", reason="needs the 'export' extra")
  pytest.importorskip("torch", reason="needs the 'export' extra")
  from sinsr_jax.training import runs

  upscaler = work.load(str(trained_tiny_run), tile=64)
  assert upscaler.runtime == "onnxruntime" and upscaler.tile == 64 and upscaler.step == 3
  crop = micrographs.read(str(REAL)).pixels[:150, :200, 0]
  got = work.upscale(upscaler, crop, (0.0, 255.0), tile=64, context=16, blend=8)
  run = runs.load(str(trained_tiny_run))
  jax_upscaler = work.Upscaler(lambda lr: np.asarray(run.sr_fn()(lr)), 4, 1, "sinsr", "run",
                               "jax")
  want = work.upscale(jax_upscaler, crop, (0.0, 255.0), tile=64, context=16, blend=8)
  assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # 1e-4 of the range, rounded


def test_a_folder_that_is_not_a_run_is_one_line(tmp_path):
  with pytest.raises(UserError, match="not a training run") as error:
    work.load(str(tmp_path))
  assert "\n" not in str(error.value)


@pytest.mark.slow
def test_adapt_is_the_command_lines_upscale_adapt_in_a_child_process(trained_tiny_run, tmp_path):
  # The plugin's extra: in the core install the command line's own --adapt tests cover this.
  pytest.importorskip("onnxruntime", reason="needs the 'export' extra")
  import glob
  import json
  import subprocess
  import sys
  import tempfile

  from conftest import REPO

  rng = np.random.default_rng(0)
  data = (rng.random((80, 96)) * 60 + np.add.outer(np.arange(80), np.arange(96))
          ).astype(np.uint8)
  leftovers = lambda: set(glob.glob(f"{tempfile.gettempdir()}/sinsr_napari_adapt_*"))  # noqa: E731
  before = leftovers()
  pixels, record = work.adapt(str(trained_tiny_run), data, {"pixel_size_nm": [2.0, 2.0]}, 2)
  assert pixels.shape == (320, 384) and pixels.dtype == np.uint8
  assert "adapt" in json.dumps(record)
  # The same file through the command line itself gives the same pixels.
  source = tmp_path / "layer.tif"
  with open(source, "wb") as f:
    micrographs.encode(data[..., None], "tiff", f, (2.0, 2.0))
  done = subprocess.run([sys.executable, "-m", "sinsr_jax.upscale", f"--run={trained_tiny_run}",
                         "--adapt=2", "--databar=none", "--quiet", f"--out={tmp_path / 'cli'}",
                         str(source)], cwd=REPO, capture_output=True, text=True, timeout=600)
  assert done.returncode == 0, done.stderr[-2000:]
  cli = micrographs.read(str(tmp_path / "cli" / "layer_x4.tif")).pixels[..., 0]
  np.testing.assert_array_equal(pixels, cli)
  # Cancelled: the child is killed, nothing is returned and no temporary folder is left.
  with pytest.raises(work.Cancelled, match="adaptation cancelled"):
    work.adapt(str(trained_tiny_run), data, {}, 2, cancelled=lambda: True)
  with pytest.raises(UserError, match="not a run folder"):
    work.adapt(str(tmp_path / "layer.tif"), data, {}, 2)
  assert leftovers() == before
