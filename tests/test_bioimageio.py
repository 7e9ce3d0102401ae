"""bioimage.io model packages: their content, and ``bioimageio test`` (bioimageio.core) on them."""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml
from test_export import _export
from test_micrograph_files import REAL, needs_real
from test_upscale import _run

pytest.importorskip("onnxruntime", reason="needs the 'export' extra (pip install -e '.[export]')")
pytest.importorskip("bioimageio.core",
                    reason="needs the 'bioimageio' extra (pip install -e '.[bioimageio]')")

from sinsr_jax.export import bioimageio_package  # noqa: E402
from sinsr_jax.export.onnx_model import ExportError  # noqa: E402
from sinsr_jax.inference import micrographs  # noqa: E402

TILE = 64
SMALL_SINSR = {"stem_width": 8, "width": 8, "num_rrdb": 1, "growth": 4, "attention": "cbam"}


def _bioimageio_test(package) -> subprocess.CompletedProcess:
  """``bioimageio test`` as a user runs it (offline: the package holds everything)."""
  command = shutil.which("bioimageio", path=os.path.dirname(sys.executable)) or "bioimageio"
  return subprocess.run([command, "test", str(package)], capture_output=True, text=True,
                        timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})


@needs_real
def test_package_holds_a_real_tile_calibrated_axes_and_the_spec_sections(tmp_path):
  run = _run("sinsr", **SMALL_SINSR)
  path = tmp_path / "sinsr.zip"
  bioimageio_package.write_package(run, str(path), TILE, str(REAL))
  z = zipfile.ZipFile(path)
  assert sorted(z.namelist()) == sorted(
      ["rdf.yaml", "README.md", "cover.png", "model.onnx", "model.pt", "test_input.npy",
       "test_output.npy", "sample_input.tif", "sample_output.tif"])
  rdf = yaml.safe_load(z.read("rdf.yaml"))
  assert rdf["format_version"].startswith("0.5.") and rdf["license"] == "Apache-2.0"
  assert rdf["weights"]["onnx"]["opset_version"] == 18
  assert "CSM-SR" in rdf["cite"][0]["url"]
  space_in = [a for a in rdf["inputs"][0]["axes"] if a["type"] == "space"]
  space_out = [a for a in rdf["outputs"][0]["axes"] if a["type"] == "space"]
  assert [(a["unit"], a["scale"]) for a in space_in] == [("nanometer", 0.543)] * 2  # Zeiss tag
  assert [(a["unit"], a["scale"]) for a in space_out] == [("nanometer", 0.543 / 4)] * 2
  # The test input is the frame's own levels: the middle tile of its image area (rows 0-690).
  test_input = np.load(io.BytesIO(z.read("test_input.npy")))
  frame = micrographs.read(str(REAL)).pixels[..., 0]
  r, c = (691 - TILE) // 2, (1024 - TILE) // 2
  np.testing.assert_array_equal(test_input[0, 0], frame[r:r + TILE, c:c + TILE])
  test_output = np.load(io.BytesIO(z.read("test_output.npy")))
  assert test_output.shape == (1, 1, 4 * TILE, 4 * TILE)
  readme = z.read("README.md").decode()
  assert "## Validation" in readme and "CSM-SR" in readme
  from PIL import Image

  cover = Image.open(io.BytesIO(z.read("cover.png")))
  assert cover.size == (2 * 4 * TILE, 4 * TILE)


def test_a_sample_smaller_than_the_tile_is_refused_and_nothing_is_written(tmp_path):
  small = tmp_path / "small.png"
  from PIL import Image

  Image.fromarray(np.full((40, 40), 128, np.uint8)).save(small)
  out = tmp_path / "package.zip"
  with pytest.raises(ExportError, match="smaller than the tile"):
    bioimageio_package.write_package(_run("vdsr", width=8, depth=3), str(out), TILE, str(small))
  assert sorted(p.name for p in tmp_path.iterdir()) == ["small.png"]


@pytest.mark.slow
@needs_real
def test_exported_quickstart_run_passes_bioimageio_test(trained_tiny_run, tmp_path):
  """The Quickstart's config (shrunk: trained_tiny_run) through the command line, then the
  spec's own checker running the ONNX and TorchScript weights against JAX's test output."""
  out = tmp_path / "sinsr.zip"
  result = _export(f"--run={trained_tiny_run}", "--format=bioimageio", f"--out={out}",
                   f"--tile={TILE}", f"--sample={REAL}")
  assert result.returncode == 0, result.stderr
  checked = _bioimageio_test(out)
  assert checked.returncode == 0, checked.stdout[-3000:]
  assert "Reproduce test outputs from test inputs (onnx)" in checked.stdout
  assert "Reproduce test outputs from test inputs (torchscript)" in checked.stdout


@pytest.mark.slow
@needs_real
def test_bioimageio_test_fails_a_package_whose_test_output_is_wrong(tmp_path):
  """The checker is a real check: a package whose test output is off by 1% of the range fails."""
  good = tmp_path / "good.zip"
  bioimageio_package.write_package(_run("vdsr", width=8, depth=3), str(good), TILE, str(REAL))
  bad = tmp_path / "bad.zip"
  with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
    buffer = io.BytesIO()
    np.save(buffer, np.load(io.BytesIO(src.read("test_output.npy"))) + 2.55)
    rdf = yaml.safe_load(src.read("rdf.yaml"))
    rdf["outputs"][0]["test_tensor"]["sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    for name in src.namelist():
      data = {"test_output.npy": buffer.getvalue(),
              "rdf.yaml": yaml.safe_dump(rdf, sort_keys=False).encode()}.get(name)
      dst.writestr(name, data if data is not None else src.read(name))
  assert _bioimageio_test(bad).returncode != 0
