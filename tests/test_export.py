"""ONNX export: ONNX Runtime's outputs against JAX's on tiles of a real micrograph, per family."""

import json
import os
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
from test_micrograph_files import REAL, needs_real
from test_upscale import _run

pytest.importorskip("onnxruntime", reason="needs the 'export' extra (pip install -e '.[export]')")
pytest.importorskip("torch", reason="needs the 'export' extra (pip install -e '.[export]')")

from sinsr_jax.export import onnx_model  # noqa: E402
from sinsr_jax.inference import micrographs  # noqa: E402
from sinsr_jax.training import runs  # noqa: E402

TILE = 32
FAMILIES = {
    "sinsr": ("sinsr", 4, {"stem_width": 8, "width": 8, "num_rrdb": 2, "growth": 4,
                           "attention": "none"}),
    "sinsr_cbam_x2": ("sinsr", 2, {"stem_width": 8, "width": 16, "num_rrdb": 1, "growth": 4}),
    "sinsr_gradient": ("sinsr", 4, {"stem_width": 8, "width": 8, "num_rrdb": 3, "growth": 4,
                                    "attention": "cbam", "gradient_branch": True}),
    "esrgan": ("esrgan", 4, {"width": 8, "num_blocks": 2, "growth": 4}),
    "esrgan_x2": ("esrgan", 2, {"width": 8, "num_blocks": 1, "growth": 4}),
    "esrgan_x3": ("esrgan", 3, {"width": 8, "num_blocks": 1, "growth": 4}),
    "vdsr": ("vdsr", 4, {"width": 8, "depth": 5}),
    "bicubic": ("bicubic", 4, {}),
}


def real_tiles(count: int = 3, tile: int = TILE, channels: int = 1) -> np.ndarray:
  """(count, tile, tile, channels) tiles of the real frame's image area, in [0, 1]."""
  lr = micrographs.model_input(micrographs.read(str(REAL)), channels)[:690]
  corners = [(0, 0), (300, 500), (690 - tile, 1024 - tile), (100, 900)][:count]
  return np.stack([lr[r:r + tile, c:c + tile] for r, c in corners])


def _family_run(name: str, scale: int, options: dict):
  if name == "bicubic":
    return runs.bicubic(ml_collections.ConfigDict({"data": {"scale": scale},
                                                   "model": {"channels": 1}}))
  return _run(name, scale=scale, **options)


def _jax_sr(run, lr: np.ndarray) -> np.ndarray:
  out = run.sr_fn()(lr)
  return np.asarray(out["sr"] if isinstance(out, dict) else out)


@needs_real
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_onnx_runtime_matches_jax_on_real_tiles(family, tmp_path):
  name, scale, options = FAMILIES[family]
  run = _family_run(name, scale, options)
  path = str(tmp_path / "model.onnx")
  onnx_model.write_onnx(run, path, TILE)
  lr = real_tiles()
  got = onnx_model.sr_fn(path)(lr)
  want = _jax_sr(run, lr)
  assert got.shape == want.shape == (3, TILE * scale, TILE * scale, 1)
  assert float(np.abs(want).mean()) > 0.05  # a real image came out, not zeros
  diff = float(np.abs(got - want).max())
  print(f"{family}: max |ONNX Runtime - JAX| = {diff:.2e}")
  assert diff <= 1e-4
  meta = onnx_model.metadata(path)
  assert (meta["model"], meta["scale"], meta["tile"], meta["opset"]) == (name, scale, TILE, 18)
  import onnx

  model = onnx.load(path)
  assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [18]


def test_scanned_and_unrolled_runs_export_the_same_weights(tmp_path):
  options = {"stem_width": 8, "width": 8, "num_rrdb": 2, "growth": 4, "attention": "none"}
  scanned, unrolled = _run("sinsr", scan=True, **options), _run("sinsr", scan=False, **options)
  assert "RRDB_scan0" in scanned.params["full"]  # the layout conversion is really exercised
  _, from_scanned = onnx_model.unrolled(scanned, TILE)
  _, from_unrolled = onnx_model.unrolled(unrolled, TILE)
  np.testing.assert_array_equal(from_scanned["full"]["RRDB_1"]["ResidualDenseBlock_2"]["Conv_4"]
                                ["kernel"], scanned.params["full"]["RRDB_scan0"]
                                ["ResidualDenseBlock_2"]["Conv_4"]["kernel"][1])
  assert from_unrolled["full"].keys() == from_scanned["full"].keys()


@pytest.mark.parametrize("name,op", [("swinir", "self-attention"), ("srresnet", "BatchNorm"),
                                     ("spsr", "gradient-branch"), ("dsrvae", "strided")])
def test_unexportable_models_are_refused_in_one_line_naming_the_op(name, op, tmp_path):
  run = _run(name)
  path = tmp_path / "model.onnx"
  with pytest.raises(onnx_model.ExportError, match=op) as error:
    onnx_model.write_onnx(run, str(path), TILE)
  assert "\n" not in str(error.value)
  assert list(tmp_path.iterdir()) == []


def _export(*args) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "sinsr_jax.export", *map(str, args)],
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"})


@pytest.mark.slow
@needs_real
def test_export_command_writes_a_trained_run_that_matches_jax(trained_tiny_run, tmp_path):
  out = tmp_path / "sinsr.onnx"
  result = _export(f"--run={trained_tiny_run}", "--format=onnx", f"--out={out}", "--tile=32")
  assert result.returncode == 0, result.stderr
  assert json.loads(json.dumps(onnx_model.metadata(str(out))))["checkpoint_step"] == 3
  run = runs.load(str(trained_tiny_run))
  lr = real_tiles()
  diff = float(np.abs(onnx_model.sr_fn(str(out))(lr) - _jax_sr(run, lr)).max())
  assert diff <= 1e-4
  assert sorted(p.name for p in tmp_path.iterdir()) == ["sinsr.onnx"]  # no temporary left


@pytest.mark.slow
def test_export_command_refuses_a_folder_that_is_not_a_run(tmp_path):
  (tmp_path / "notes").mkdir()
  out = tmp_path / "model.onnx"
  result = _export(f"--run={tmp_path / 'notes'}", "--format=onnx", f"--out={out}")
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error:") and "not a training run" in lines[0]
  assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]
