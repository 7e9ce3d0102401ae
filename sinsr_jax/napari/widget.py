"""The Upscale dock widget: the current image layer through a run or an exported model.

Loading the model and every tile run in a worker thread (the viewer stays responsive); the
progress bar moves per tile; Cancel stops within one tile and adds nothing. The result is a new
layer whose scale is the source's divided by the model's, with the provenance in its metadata,
and is saved on request through the product's writer (calibrated TIFF + JSON sidecar). The work
itself is sinsr_jax.napari.upscaler, testable without Qt.
"""

from __future__ import annotations

import importlib.util
import os
import threading

import napari
from napari.qt.threading import create_worker
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
  QCheckBox,
  QFileDialog,
  QFormLayout,
  QHBoxLayout,
  QLabel,
  QLineEdit,
  QProgressBar,
  QPushButton,
  QSpinBox,
  QWidget,
)

from sinsr_jax.errors import UserError
from sinsr_jax.napari import upscaler as work


def _spin(value: int, low: int, high: int) -> QSpinBox:
  box = QSpinBox()
  box.setRange(low, high)
  box.setValue(value)
  return box


class UpscaleWidget(QWidget):
  progressed = Signal(int, int)  # emitted from the worker thread, delivered on the GUI thread

  def __init__(self, napari_viewer: napari.viewer.Viewer):
    super().__init__()
    self.viewer = napari_viewer
    self.model_path = QLineEdit()
    self.model_path.setPlaceholderText("run folder, package .zip or .onnx")
    browse = QPushButton("Browse…")
    browse.clicked.connect(self._browse)
    self.tile, self.context, self.blend = _spin(256, 16, 4096), _spin(32, 0, 512), _spin(
        16, 0, 512)
    # upscale --adapt: the run fine-tuned on the layer itself (run folders, where JAX is).
    self.adapt = QCheckBox("adapt to this image (steps)")
    self.adapt_steps = _spin(20, 1, 1000)
    self.adapt.setEnabled(importlib.util.find_spec("jax") is not None)
    self.save = QCheckBox("save as calibrated TIFF")
    self.save_path = QLineEdit()
    self.run_button, self.cancel_button = QPushButton("Upscale"), QPushButton("Cancel")
    self.cancel_button.setEnabled(False)
    self.progress, self.status = QProgressBar(), QLabel("")
    self.status.setWordWrap(True)
    form = QFormLayout(self)
    row = QHBoxLayout()
    row.addWidget(self.model_path)
    row.addWidget(browse)
    form.addRow("Model", row)
    form.addRow("Tile (LR px)", self.tile)
    form.addRow("Context", self.context)
    form.addRow("Blend", self.blend)
    form.addRow(self.adapt, self.adapt_steps)
    form.addRow(self.save, self.save_path)
    buttons = QHBoxLayout()
    buttons.addWidget(self.run_button)
    buttons.addWidget(self.cancel_button)
    form.addRow(buttons)
    form.addRow(self.progress)
    form.addRow(self.status)
    self.run_button.clicked.connect(self.start)
    self.cancel_button.clicked.connect(self.cancel)
    self.progressed.connect(self._show_progress)
    self._cancel = threading.Event()
    self._models: dict[tuple[str, int], work.Upscaler] = {}
    self.worker = None

  def _browse(self) -> None:
    path, _ = QFileDialog.getOpenFileName(self, "Exported model", "", "Models (*.zip *.onnx)")
    if path:
      self.model_path.setText(path)

  def _show_progress(self, done: int, total: int) -> None:
    self.progress.setMaximum(total)  # 0 of 0: busy (adaptation runs in a child process)
    self.progress.setValue(done)
    self.status.setText(f"tile {done} of {total}" if total else "adapting and upscaling…")

  def _finish(self, message: str) -> None:
    self.status.setText(message)
    self.run_button.setEnabled(True)
    self.cancel_button.setEnabled(False)

  def cancel(self) -> None:
    self._cancel.set()
    self.status.setText("cancelling…")

  def start(self) -> None:
    """Checks the inputs on the GUI thread, then upscales in a worker."""
    layer = self.viewer.layers.selection.active
    if not isinstance(layer, napari.layers.Image):
      kind = type(layer).__name__ if layer is not None else "no layer"
      self.status.setText(f"error: the current layer is {kind}, not an image layer: select one")
      return
    if not self.model_path.text().strip():
      self.status.setText("error: choose a model (a run folder, a package .zip or an .onnx)")
      return
    if self.adapt.isChecked() and not os.path.isdir(os.path.expanduser(
        self.model_path.text().strip())):
      self.status.setText("error: adaptation fine-tunes a run: choose a run folder, not an "
                          "exported model")
      return
    save_to = self.save_path.text().strip() if self.save.isChecked() else None
    if self.save.isChecked() and not save_to:
      self.status.setText("error: give a file to save to, or untick saving")
      return
    self._cancel.clear()
    self.run_button.setEnabled(False)
    self.cancel_button.setEnabled(True)
    self.status.setText("loading the model…")
    self.worker = create_worker(self._work, layer, self.model_path.text().strip(), save_to,
                                (self.tile.value(), self.context.value(), self.blend.value(),
                                 self.adapt_steps.value() if self.adapt.isChecked() else 0))
    self.worker.returned.connect(self._add_result)
    self.worker.errored.connect(self._failed)
    self.worker.start()

  def _work(self, layer, model_path: str, save_to: str | None, settings: tuple[int, int, int]):
    """Runs in the worker thread: (pixels, layer kwargs, saved path or None), or the message of
    an error the user can act on (returned: a raised one would reach Qt's event loop)."""
    try:
      return self._upscale(layer, model_path, save_to, settings)
    except work.Cancelled as e:
      return str(e)
    except UserError as e:
      return f"error: {e}"

  def _upscale(self, layer, model_path, save_to, settings):
    tile, context, blend, adapt_steps = settings
    if adapt_steps:
      return self._adapted(layer, model_path, save_to, adapt_steps)
    if (model_path, tile) not in self._models:
      self._models[model_path, tile] = work.load(model_path, tile)
    model = self._models[model_path, tile]
    metadata = dict(layer.metadata)
    value_range = metadata.get("value_range") or [float(v) for v in layer.contrast_limits]
    pixels = work.upscale(model, layer.data, value_range, tile=tile, context=context,
                          blend=blend, progress=self.progressed.emit,
                          cancelled=self._cancel.is_set)
    meta = work.provenance(model, metadata, tile, context, blend)
    if save_to:
      work.save(pixels, save_to, meta)
    kwargs = {"name": f"{layer.name} x{model.scale}", "metadata": meta,
              "scale": tuple(s / model.scale for s in layer.scale),
              "translate": tuple(layer.translate), "units": tuple(layer.units),
              "contrast_limits": list(layer.contrast_limits), "rgb": layer.rgb}
    return pixels, kwargs, save_to

  def _adapted(self, layer, model_path, save_to, steps):
    """upscale --adapt in a child process (no per-tile progress: the bar runs busy)."""
    self.progressed.emit(0, 0)
    metadata = dict(layer.metadata)
    pixels, record = work.adapt(model_path, layer.data, metadata, steps,
                                cancelled=self._cancel.is_set)
    scale = pixels.shape[0] // layer.data.shape[0]
    size = metadata.get("pixel_size_nm")
    meta = {**metadata, "pixel_size_nm": [v / scale for v in size] if size else None,
            "upscaled": {"model": os.path.abspath(os.path.expanduser(model_path)),
                         "runtime": "jax (child process: upscale --adapt)", "scale": scale,
                         "adapt": steps, "upscale_record": record.get("provenance", record)}}
    if save_to:
      work.save(pixels, save_to, meta)
    kwargs = {"name": f"{layer.name} x{scale} +adapt {steps}", "metadata": meta,
              "scale": tuple(s / scale for s in layer.scale),
              "translate": tuple(layer.translate), "units": tuple(layer.units),
              "contrast_limits": list(layer.contrast_limits), "rgb": layer.rgb}
    return pixels, kwargs, save_to

  def _add_result(self, result) -> None:
    if isinstance(result, str):
      self._finish(result)
      return
    pixels, kwargs, saved = result
    self.viewer.add_image(pixels, **kwargs)
    self._finish(f"added {kwargs['name']}" + (f"; saved {saved}" if saved else ""))

  def _failed(self, error: Exception) -> None:  # a bug: said in one line, the widget usable again
    self._finish(f"error: {type(error).__name__}: {error}")
