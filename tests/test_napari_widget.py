"""The napari plugin in a real Qt viewer (pytest-qt, napari's make_napari_viewer), under Xvfb.

.ci/run installs the ``napari`` and ``export`` extras and runs these under ``xvfb-run``; they
skip without the extras or a display.
"""

import os
import pathlib
import shutil
import sys

import numpy as np
import pytest
from test_micrograph_files import REAL, needs_real
from test_upscale import _run

pytest.importorskip("napari", reason="needs the 'napari' extra (pip install -e '.[napari]')")
pytest.importorskip("pytestqt", reason="needs the 'napari' extra (pip install -e '.[napari]')")
pytest.importorskip("torch", reason="exports a model: needs the 'export' extra")
if "tensorflow" in sys.modules:  # a training or a run's loading in this process imported it
  pytest.skip("TensorFlow is loaded in this pytest process and crashes Mesa's OpenGL (napari's "
              "canvas): run these tests in a process of their own, as .ci/run does",
              allow_module_level=True)
if not os.environ.get("DISPLAY"):
  pytest.skip("needs a display: run under xvfb-run (napari's offscreen platform fails on "
              "vispy's OpenGL check)", allow_module_level=True)

from sinsr_jax.export import bioimageio_package  # noqa: E402
from sinsr_jax.napari import reader  # noqa: E402
from sinsr_jax.napari import upscaler as work  # noqa: E402
from sinsr_jax.napari.widget import UpscaleWidget  # noqa: E402

pytestmark = pytest.mark.slow
SCREENSHOT = pathlib.Path(__file__).resolve().parents[1] / "docs" / "assets" / "napari_upscale.png"
TILE = 128


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> str:
  """A tiny SINSR's package, made in this process without TensorFlow (see the skip above)."""
  path = tmp_path_factory.mktemp("package") / "sinsr.zip"
  run = _run("sinsr", stem_width=8, width=8, num_rrdb=1, growth=4, attention="cbam")
  bioimageio_package.write_package(run, str(path), TILE, str(REAL))
  return str(path)


def _viewer_with_real_frame(make_napari_viewer):
  viewer = make_napari_viewer(show=True)  # a hidden window's GL context crashes screenshots
  layers = viewer.open(str(REAL), plugin="sinsr_jax")
  assert [layer.name for layer in layers] == ["aquami_Sample", "aquami_Sample databar"]
  viewer.layers.selection.active = layers[0]
  return viewer, layers[0]


@needs_real
def test_upscale_widget_adds_a_calibrated_layer_and_saves_it(make_napari_viewer, qtbot, package,
                                                             tmp_path):
  viewer, image = _viewer_with_real_frame(make_napari_viewer)
  assert tuple(image.scale) == pytest.approx((0.543, 0.543))
  assert tuple(str(u) for u in image.units) == ("nanometer", "nanometer")
  widget = UpscaleWidget(viewer)
  viewer.window.add_dock_widget(widget, name="Upscale")
  # The docs' screenshot uses a trained run's package (the tiny random model draws a grid).
  model = os.environ.get("SINSR_SCREENSHOT_MODEL", package)
  widget.model_path.setText(model)
  widget.context.setValue(16)
  widget.blend.setValue(8)
  widget.save.setChecked(True)
  widget.save_path.setText(str(tmp_path / "upscaled.tif"))
  widget.run_button.click()
  qtbot.waitUntil(lambda: len(viewer.layers) == 3, timeout=1_800_000 if model != package else
                  120_000)
  result = viewer.layers[-1]
  assert result.name == "aquami_Sample x4" and result.data.shape == (691 * 4, 1024 * 4)
  assert tuple(result.scale) == pytest.approx((0.543 / 4, 0.543 / 4))
  assert result.metadata["upscaled"]["runtime"] == "onnxruntime"
  assert result.metadata["pixel_size_nm"] == pytest.approx([0.543 / 4] * 2)
  assert widget.progress.value() == widget.progress.maximum() > 1
  if model == package:  # the same pixels as the Qt-free path with the same model and tiles
    want = work.upscale(work.load(model), image.data, (0.0, 255.0), tile=TILE, context=16,
                        blend=8)
    np.testing.assert_array_equal(result.data, want)
  from sinsr_jax.inference import micrographs

  saved = micrographs.read(str(tmp_path / "upscaled.tif"))
  assert saved.instrument.pixel_size_nm == pytest.approx((0.543 / 4, 0.543 / 4), rel=1e-4)
  assert (tmp_path / "upscaled.tif.json").exists()
  viewer.layers.selection.active = result
  viewer.window._qt_window.resize(1280, 760)
  viewer.reset_view()
  viewer.camera.zoom *= 3  # a part of the frame, at a size where the detail shows
  for layer in list(viewer.layers)[:2]:
    layer.visible = False
  shot = viewer.screenshot(canvas_only=False, flash=False)
  assert shot.ndim == 3 and shot[..., :3].std() > 10  # the window drew something
  from PIL import Image

  target = tmp_path / "napari_upscale.png"
  Image.fromarray(shot[..., :3]).save(target, optimize=True)
  if os.environ.get("SINSR_UPDATE_SCREENSHOT"):  # how docs/assets/napari_upscale.png is made
    shutil.copy(target, SCREENSHOT)


@needs_real
def test_cancel_adds_nothing_and_writes_nothing(make_napari_viewer, qtbot, package, tmp_path):
  viewer, _ = _viewer_with_real_frame(make_napari_viewer)
  widget = UpscaleWidget(viewer)
  widget.model_path.setText(package)
  widget.context.setValue(16)
  widget.blend.setValue(8)
  widget.save.setChecked(True)
  widget.save_path.setText(str(tmp_path / "never.tif"))
  widget.run_button.click()
  qtbot.waitUntil(lambda: widget.progress.value() >= 1, timeout=60_000)
  widget.cancel_button.click()
  qtbot.waitUntil(lambda: widget.run_button.isEnabled(), timeout=60_000)
  assert "cancelled" in widget.status.text()
  assert len(viewer.layers) == 2 and list(tmp_path.iterdir()) == []


def test_a_layer_that_is_not_an_image_gets_one_message(make_napari_viewer):
  viewer = make_napari_viewer()
  viewer.add_points(np.zeros((3, 2)))
  widget = UpscaleWidget(viewer)
  widget.model_path.setText("anything.onnx")
  widget.run_button.click()
  assert widget.status.text().startswith("error: the current layer is Points, not an image")
  assert widget.run_button.isEnabled() and len(viewer.layers) == 1


@needs_real
def test_adapt_needs_a_run_folder(make_napari_viewer, package):
  viewer, _ = _viewer_with_real_frame(make_napari_viewer)
  widget = UpscaleWidget(viewer)
  assert widget.adapt.isEnabled()  # JAX is installed beside napari here
  widget.model_path.setText(package)
  widget.adapt.setChecked(True)
  widget.run_button.click()
  assert widget.status.text() == ("error: adaptation fine-tunes a run: choose a run folder, not "
                                  "an exported model")
  assert widget.run_button.isEnabled() and len(viewer.layers) == 2


def test_reader_is_napari_s_choice_for_a_micrograph(make_napari_viewer):
  viewer = make_napari_viewer()
  viewer.open_sample("sinsr_jax", "sem_synthetic")
  assert viewer.layers[0].data.dtype == np.uint8
  assert reader.napari_get_reader(str(REAL)) is reader.read_layers
