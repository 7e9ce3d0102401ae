"""A run's generator as an ONNX model at opset 18 (the highest Fiji's deepImageJ runtime takes).

The graph has one input ``lr`` (N, C, tile, tile) float32 in [0, 1] and one output ``sr``
(N, C, tile*s, tile*s); how stored pixels map to [0, 1] and back, the scale and the tile are
in the model's metadata (key ``sinsr_jax``, JSON), so a reader needs nothing else.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from sinsr_jax.errors import UserError
from sinsr_jax.inference import micrographs

OPSET = 18
METADATA_KEY = "sinsr_jax"
# What upscale does to a micrograph before and after the model (sinsr_jax.inference.micrographs).
NORMALISATION = {
    "input": "lr = (pixels - lo) / (hi - lo): lo, hi = 0, 255 for 8-bit frames, else the "
             "frame's own min and max; RGB to BT.601 luma for 1-channel models",
    "output": "pixels = clip(sr, 0, 1) * (hi - lo) + lo, rounded for integer types",
}


class ExportError(UserError):
  """A run that cannot be exported, or an output that cannot be written."""


def check_exportable(name: str) -> None:
  """Raises ExportError naming the layer the ONNX twin lacks for generator ``name``."""
  from sinsr_jax.export import twin

  if name in twin.UNSUPPORTED:
    raise ExportError(f"model {name!r} cannot be exported to ONNX: no ONNX mapping for its "
                      f"{twin.UNSUPPORTED[name]}; exportable: {', '.join(twin.SUPPORTED)}")
  if name not in twin.SUPPORTED:
    raise ExportError(f"model {name!r} is unknown to the exporter; exportable: "
                      f"{', '.join(twin.SUPPORTED)}")


def unrolled(run, tile: int) -> tuple[dict, dict]:
  """(the generator's fields, its params in the unrolled layout) of ``run``."""
  from sinsr_jax.models import layout

  g = run.g_model
  fields = {f.name: getattr(g, f.name) for f in dataclasses.fields(g)
            if f.name not in ("parent", "name")}
  if "scan" in fields:
    g = g.clone(scan=False)
  lr = jax.ShapeDtypeStruct((1, tile, tile, run.channels), jnp.float32)
  template = jax.eval_shape(lambda x: g.init(jax.random.PRNGKey(0), x), lr).get("params", {})
  return fields, jax.device_get(layout.to_layout(run.params, template)) if template else {}


def describe(run, tile: int) -> dict:
  """The metadata recorded in the model: what a reader needs to use it as upscale does."""
  from sinsr_jax.inference import calibration

  return {"model": run.config.model.name, "scale": run.scale, "channels": run.channels,
          "tile": tile, "input_range": [0.0, 1.0], **NORMALISATION,
          "run": os.path.abspath(run.workdir) if run.workdir else None,
          "checkpoint_step": int(run.step), "opset": OPSET,
          **calibration.package_provenance()}


def torch_generator(run, tile: int):
  """The run's generator as a torch module (sinsr_jax.export.twin), in eval mode."""
  from sinsr_jax.export import twin

  name = run.config.model.name
  check_exportable(name)
  if tile % 2:
    raise ExportError(f"--tile={tile}: the tile must be even (SINSR's half-resolution path)")
  fields, params = unrolled(run, tile)
  return twin.Generator(name, fields, params, tile).eval()


def onnx_bytes(run, tile: int) -> bytes:
  """The serialised ONNX model of ``run``'s generator, checked by onnx.checker."""
  import onnx
  import torch

  module = torch_generator(run, tile)
  example = torch.zeros(1, run.channels, tile, tile)
  buffer = io.BytesIO()
  with warnings.catch_warnings(), torch.no_grad():
    warnings.simplefilter("ignore")  # the exporter's deprecation notes, not the user's concern
    torch.onnx.export(module, (example,), buffer, opset_version=OPSET, input_names=["lr"],
                      output_names=["sr"], dynamic_axes={"lr": {0: "batch"}, "sr": {0: "batch"}},
                      dynamo=False)
  model = onnx.load_from_string(buffer.getvalue())
  model.doc_string = f"sinsr_jax {run.config.model.name} x{run.scale}, LR tile {tile}"
  entry = model.metadata_props.add()
  entry.key, entry.value = METADATA_KEY, json.dumps(describe(run, tile))
  onnx.checker.check_model(model, full_check=True)
  return model.SerializeToString()


def metadata(path: str) -> dict:
  """The ``sinsr_jax`` metadata of the ONNX model at ``path``."""
  import onnx

  model = onnx.load(path, load_external_data=False)
  props = {p.key: p.value for p in model.metadata_props}
  if METADATA_KEY not in props:
    raise ExportError(f"{path} is not a sinsr_jax ONNX model (no {METADATA_KEY!r} metadata)")
  return json.loads(props[METADATA_KEY])


def write_onnx(run, path: str, tile: int) -> dict:
  """Writes ``run``'s ONNX model to ``path`` atomically; returns its metadata."""
  data = onnx_bytes(run, tile)
  micrographs.write_atomic(path, lambda f: f.write(data))
  return describe(run, tile)


def session(path: str, threads: int = 0):
  """An ONNX Runtime CPU session (``threads`` 0: its default)."""
  import onnxruntime as ort

  options = ort.SessionOptions()
  options.intra_op_num_threads = threads
  return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def sr_fn(path: str, threads: int = 0):
  """NHWC LR batch in [0, 1] -> NHWC SR batch through the ONNX model at ``path`` (the
  interface of sinsr_jax.inference.tiling: tiles must be the model's tile size)."""
  sess = session(path, threads)

  def run(lr):
    lr = np.ascontiguousarray(np.asarray(lr, np.float32).transpose(0, 3, 1, 2))
    return sess.run(["sr"], {"lr": lr})[0].transpose(0, 2, 3, 1)
  return run
