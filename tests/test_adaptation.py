"""Adaptation at upscale time: determinism, the source run untouched, the too-small case."""

import hashlib
import os

import jax
import numpy as np
import pytest
from test_micrograph_files import _content
from test_upscale import _errors, _upscale

from sinsr_jax import adaptation, micrographs, runs


def _digest(folder) -> dict[str, str]:
  """sha256 of every file under ``folder``: what a read-only user must leave as it was."""
  found = {}
  for root, _, names in os.walk(folder):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        found[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
  return found


def _frames(seed=0):
  rng = np.random.default_rng(seed)
  return [(_content(rng, 72, 96) / 255.0).astype(np.float32)[..., None] for _ in range(2)]


def test_adaptation_is_deterministic_and_changes_the_weights(trained_tiny_run):
  run = runs.load(str(trained_tiny_run))
  settings = adaptation.Settings(steps=3, batch=2, learning_rate=1e-3, seed=1)
  first, again = (adaptation.adapt(run, _frames(), settings) for _ in range(2))
  other = adaptation.adapt(run, _frames(), adaptation.Settings(steps=3, batch=2,
                                                               learning_rate=1e-3, seed=2))
  leaves = lambda r: jax.tree.leaves(r.params)  # noqa: E731
  for a, b in zip(leaves(first), leaves(again), strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(leaves(first), leaves(run), strict=True))
  assert any(not np.array_equal(a, b) for a, b in zip(leaves(first), leaves(other), strict=True))


def test_frames_too_small_to_cut_pairs_from_are_one_message(trained_tiny_run):
  run = runs.load(str(trained_tiny_run))
  patch = adaptation.patch_size(run)
  with pytest.raises(adaptation.AdaptError, match=f"at least {patch}x{patch} px above its "
                     "databar to cut x4 training pairs from; the input is 20x16 px"):
    adaptation.adapt(run, [np.zeros((16, 20, 1), np.float32)], adaptation.Settings(steps=2))


def test_cli_adapt_save_leaves_the_source_run_untouched(trained_tiny_run, tmp_path, ledger):
  ledger.tried("upscale --adapt: bicubic, --adapt-save alone, existing run", 3)
  before = _digest(trained_tiny_run)
  rng = np.random.default_rng(3)
  micrographs.write_atomic(str(tmp_path / "a.tif"), lambda f: micrographs.encode(
      _content(rng, 96, 120)[..., None], "tiff", f))
  args = (f"--run={trained_tiny_run}", "--quiet", "--seed=5", "a.tif")
  adapted = _upscale("--adapt=3", "--adapt-save=mine", "--out=o1", *args, cwd=tmp_path)
  assert adapted.returncode == 0, adapted.stderr
  assert "Adapted weights saved as the run mine" in adapted.stdout
  assert _digest(trained_tiny_run) == before  # nothing of the source run changed
  again = _upscale("--run=mine", "--out=o2", "--quiet", "a.tif", cwd=tmp_path)
  plain = _upscale("--out=o3", *args, cwd=tmp_path)
  assert again.returncode == 0 and plain.returncode == 0, again.stderr + plain.stderr
  read = lambda d: micrographs.read(str(tmp_path / d / "a_x4.tif")).pixels  # noqa: E731
  np.testing.assert_array_equal(read("o1"), read("o2"))  # the saved run is the adapted one
  assert not np.array_equal(read("o1"), read("o3"))
  saved = runs.load(str(tmp_path / "mine"))
  assert saved.step == runs.load(str(trained_tiny_run)).step

  for bad, message, status in (  # refused before any work (the too-small case: the unit test)
      (("--adapt=3", "--run=bicubic", "--scale=4", "a.tif"), "bicubic has none", 2),
      (("--adapt-save=x", f"--run={trained_tiny_run}", "a.tif"), "give both", 2),
      (("--adapt=2", "--adapt-save=mine", f"--run={trained_tiny_run}", "a.tif"),
       "already holds a run", 1)):
    refused = _upscale(*bad, "--out=o4", "--quiet", cwd=tmp_path)
    assert refused.returncode == status, refused.stderr
    assert len(_errors(refused)) == 1 and message in _errors(refused)[0], refused.stderr
