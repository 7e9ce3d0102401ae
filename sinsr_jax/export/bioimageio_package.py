"""A run as a bioimage.io model package (model spec 0.5): what Fiji's deepImageJ and the
bioimage.io zoo run.

The package (a zip) holds rdf.yaml, the ONNX weights (opset 18) and TorchScript weights of the
PyTorch twin, a test input tile cut from a real frame and the test output that JAX, the
reference, computes from it (``bioimageio test`` checks each weight format against it), a cover
(the tile beside its upscale), and a README. Pixel sizes are the sample frame's, in nanometres,
the output's divided by the scale.
"""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np

from sinsr_jax.export import onnx_model
from sinsr_jax.export.onnx_model import ExportError
from sinsr_jax.inference import micrographs, upscaling

FORMAT_VERSION = "0.5.4"  # bioimage.io model spec; deepImageJ 3.1 reads 0.5.x packages
CITATION = {"text": "SINSR: structure-informed super-resolution GANs for scanning electron "
                    "microscopy (the original TensorFlow code, aaivu/CSM-SR)",
            "url": "https://github.com/aaivu/CSM-SR"}


def _sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


def _npy(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  np.save(buffer, array)
  return buffer.getvalue()


def test_tile(sample: str, tile: int, channels: int) -> tuple[np.ndarray, dict]:
  """The middle ``tile`` x ``tile`` of the sample's image area (above its databar) as stored
  levels (1, C, tile, tile) float32, and what the package states of it."""
  micrograph = micrographs.read(sample)
  top = upscaling.databar_row(micrograph, "crop")
  height, width = top, micrograph.pixels.shape[1]
  if min(height, width) < tile:
    raise ExportError(f"--sample {sample}: its image area {width}x{height} px is smaller than "
                      f"the tile {tile}")
  r, c = (height - tile) // 2, (width - tile) // 2
  pixels = micrographs.model_input(micrograph, channels)  # [0, 1] by the frame's own range
  lo, hi = micrograph.value_range
  levels = pixels[r:r + tile, c:c + tile] * (hi - lo) + lo
  nm = micrograph.instrument.pixel_size_nm
  return (levels.transpose(2, 0, 1)[None].astype(np.float32),
          {"eight_bit": micrograph.pixels.dtype == np.uint8, "pixel_size_nm": nm,
           "value_range": (lo, hi)})


def _space_axes(tile: int, scale: int, pixel_size_nm) -> tuple[list, list]:
  x_nm, y_nm = pixel_size_nm or (1.0, 1.0)  # the instrument's (x, y)
  unit = {"unit": "nanometer"} if pixel_size_nm else {}
  sizes = (("y", y_nm), ("x", x_nm))
  inputs = [{"type": "space", "id": a, "size": tile, "scale": float(s), **unit}
            for a, s in sizes]
  outputs = [{"type": "space", "id": a, "size": {"tensor_id": "lr", "axis_id": a},
              "scale": float(s) / scale, **unit} for a, s in sizes]
  return inputs, outputs


def rdf(run, tile: int, files: dict[str, bytes], about: dict) -> dict:
  """The model description (rdf.yaml's content)."""
  name, scale, channels = run.config.model.name, run.scale, run.channels
  in_axes, out_axes = _space_axes(tile, scale, about["pixel_size_nm"])
  channel = {"type": "channel", "channel_names": ["gray"] if channels == 1 else list("rgb")}
  if about["eight_bit"]:  # as upscale: 8-bit levels / 255, and back
    pre = [{"id": "scale_linear", "kwargs": {"gain": 1 / 255, "offset": 0.0}}]
    post = [{"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}},
            {"id": "scale_linear", "kwargs": {"gain": 255.0, "offset": 0.0}}]
  else:  # deeper frames: each tile's own min..max (upscale takes the whole frame's)
    pre = [{"id": "scale_range", "kwargs": {"min_percentile": 0.0, "max_percentile": 100.0,
                                            "axes": ["y", "x"]}}]
    post = [{"id": "clip", "kwargs": {"min": 0.0, "max": 1.0}}]
  file = lambda n: {"source": n, "sha256": _sha256(files[n])}  # noqa: E731
  import torch

  return {
      "format_version": FORMAT_VERSION, "type": "model",
      "name": f"SINSR-JAX {name} x{scale} SEM super-resolution",
      "description": f"x{scale} super-resolution of scanning electron micrographs by a "
                     f"sinsr_jax {name} generator (trained run, step {run.step}).",
      "authors": [{"name": "sinsr_jax contributors"}],
      "cite": [CITATION], "license": "Apache-2.0",
      "documentation": "README.md", "covers": ["cover.png"],
      "tags": ["super-resolution", "electron-microscopy", "sem", "2d", "onnx", "torchscript"],
      "inputs": [{"id": "lr", "description": "the low-resolution micrograph tile",
                  "axes": [{"type": "batch"}, channel, *in_axes],
                  "test_tensor": file("test_input.npy"), "sample_tensor": file("sample_input.tif"),
                  "data": {"type": "float32"}, "preprocessing": pre}],
      "outputs": [{"id": "sr", "description": f"the x{scale} super-resolved tile",
                   "axes": [{"type": "batch"}, channel, *out_axes],
                   "test_tensor": file("test_output.npy"),
                   "sample_tensor": file("sample_output.tif"),
                   "data": {"type": "float32"}, "postprocessing": post}],
      "weights": {"onnx": {**file("model.onnx"), "opset_version": onnx_model.OPSET},
                  "torchscript": {**file("model.pt"), "parent": "onnx",
                                  "pytorch_version": torch.__version__.split("+")[0]}},
      "config": {"sinsr_jax": onnx_model.describe(run, tile)},
  }


def _readme(run, tile: int, about: dict) -> str:
  name, scale = run.config.model.name, run.scale
  size = about["pixel_size_nm"]
  pixel = f"{size[0]:.4g} x {size[1]:.4g} nm (x, y)" if size else "not stated by the sample"
  norm = ("8-bit levels / 255 (as sinsr_jax's upscale); the output is clipped to [0, 1] and "
          "mapped back to 0..255" if about["eight_bit"] else
          "each tile's own min..max to [0, 1] (sinsr_jax's upscale maps the whole frame's); the "
          "output is clipped to [0, 1]")
  return f"""# SINSR-JAX {name} x{scale}

x{scale} super-resolution of scanning electron micrographs (SEM), exported from a sinsr_jax
training run (generator `{name}`, checkpoint step {run.step}) by
`python -m sinsr_jax.export --format=bioimageio`.

## Input and output

- Input `lr`: one gray channel, a fixed tile of {tile} x {tile} pixels (deepImageJ tiles larger
  images). Normalisation: {norm}.
- Output `sr`: {tile * scale} x {tile * scale} pixels; the pixel size is the input's divided by
  {scale}. The test tile's pixel size: {pixel}.
- Weights: ONNX (opset {onnx_model.OPSET}) and TorchScript, both from the PyTorch twin of the
  JAX generator (`sinsr_jax/export/twin.py`); they match JAX to within 1e-4 on [0, 1] images.

## Validation

The test input is a tile cut from a real micrograph; the test output is what the JAX model
computes from it. `bioimageio test` reproduces it with each weight format. Quality on held-out
data (PSNR, SSIM, LPIPS, structure metrics) is measured by `python -m sinsr_jax.evaluate`; see
the project's documentation (docs/evaluation). Super-resolution invents plausible detail: do not
measure features smaller than the input's own pixel size on the output.

## Citation

{CITATION['text']}: {CITATION['url']}

## Licence

Apache-2.0 (the code and these weights).
"""


def _cover(test_input: np.ndarray, test_output: np.ndarray, scale: int) -> bytes:
  """PNG, 2:1: the input tile (nearest-upsampled to the output's size) beside the output."""
  from PIL import Image

  def gray(a):
    a = a[0, 0].astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    return np.round((a - lo) / ((hi - lo) or 1.0) * 255).astype(np.uint8)

  left = np.kron(gray(test_input), np.ones((scale, scale), np.uint8))
  buffer = io.BytesIO()
  Image.fromarray(np.concatenate([left, gray(test_output)], 1)).save(buffer, format="PNG")
  return buffer.getvalue()


def _reference_output(run, test_input: np.ndarray, eight_bit: bool) -> np.ndarray:
  """JAX's output for the test input, with the package's pre- and postprocessing."""
  x = test_input.astype(np.float64)
  if eight_bit:
    x = x / 255
  else:
    x = (x - x.min()) / (x.max() - x.min() + 1e-6)
  sr = run.sr_fn()(x.transpose(0, 2, 3, 1).astype(np.float32))
  sr = np.clip(np.asarray(sr["sr"] if isinstance(sr, dict) else sr), 0.0, 1.0)
  return (sr * 255 if eight_bit else sr).transpose(0, 3, 1, 2).astype(np.float32)


def _tif(tensor: np.ndarray) -> bytes:
  """A (1, C, H, W) tensor as a float32 TIFF of its image (what a viewer opens)."""
  import tifffile

  buffer = io.BytesIO()
  tifffile.imwrite(buffer, tensor[0, 0])
  return buffer.getvalue()


def _torchscript(run, tile: int) -> bytes:
  import torch

  module = onnx_model.torch_generator(run, tile)
  with torch.no_grad():
    traced = torch.jit.trace(module, torch.zeros(1, run.channels, tile, tile))
  buffer = io.BytesIO()
  torch.jit.save(traced, buffer)
  return buffer.getvalue()


def package_files(run, tile: int, sample: str) -> dict[str, bytes]:
  """Every file of the package, by name."""
  import yaml

  test_input, about = test_tile(sample, tile, run.channels)
  test_output = _reference_output(run, test_input, about["eight_bit"])
  files = {"model.onnx": onnx_model.onnx_bytes(run, tile), "model.pt": _torchscript(run, tile),
           "test_input.npy": _npy(test_input), "test_output.npy": _npy(test_output),
           "sample_input.tif": _tif(test_input), "sample_output.tif": _tif(test_output),
           "cover.png": _cover(test_input, test_output, run.scale),
           "README.md": _readme(run, tile, about).encode()}
  description = rdf(run, tile, files, about)
  files["rdf.yaml"] = yaml.safe_dump(description, sort_keys=False).encode()
  return files


def write_package(run, path: str, tile: int, sample: str) -> None:
  """Writes the package zip to ``path`` atomically."""
  files = package_files(run, tile, sample)

  def write(f):
    with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
      for name, data in files.items():
        z.writestr(name, data)
  micrographs.write_atomic(path, write)

