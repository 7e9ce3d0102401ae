"""Adaptation at upscale time: determinism, the held-out safeguard and its report, head-only
fine-tuning, the source run untouched, the too-small case."""

import dataclasses
import hashlib
import json
import os

import jax
import numpy as np
import pytest
from test_micrograph_files import _content
from test_upscale import _errors, _upscale

from sinsr_jax.inference import adaptation, micrographs
from sinsr_jax.training import runs


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


def _leaves(run) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree.leaves(run.params)]


def test_adaptation_is_deterministic_and_changes_the_weights(trained_tiny_run):
  run = runs.load(str(trained_tiny_run))
  # min_gain_db=-inf keeps the adapted weights whatever the held-out check says.
  settings = adaptation.Settings(steps=3, batch=2, learning_rate=1e-3, seed=1, checks=3,
                                 layers="all", min_gain_db=-np.inf)
  first, again = (adaptation.adapt(run, _frames(), settings) for _ in range(2))
  other = adaptation.adapt(run, _frames(), dataclasses.replace(settings, seed=2))
  assert first.kept and first.step in (1, 2, 3) and sorted(first.heldout_db["checks"]) == [1, 2, 3]
  assert first.heldout_db == again.heldout_db and first.step == again.step
  for a, b in zip(_leaves(first.run), _leaves(again.run), strict=True):
    np.testing.assert_array_equal(a, b)
  assert any(not np.array_equal(a, b) for a, b in zip(_leaves(first.run), _leaves(run),
                                                      strict=True))
  assert any(not np.array_equal(a, b) for a, b in zip(_leaves(first.run), _leaves(other.run),
                                                      strict=True))


def test_weights_that_lose_on_the_held_out_pairs_are_discarded(trained_tiny_run):
  run = runs.load(str(trained_tiny_run))
  # A learning rate of 1 wrecks the generator within a step: every check loses.
  wrecked = adaptation.adapt(run, _frames(), adaptation.Settings(steps=2, batch=2,
                                                                 learning_rate=1.0, checks=2))
  db = wrecked.heldout_db
  assert max(db["checks"].values()) < db["unadapted"] - 1.0
  assert not wrecked.kept and wrecked.step == 0 and wrecked.run is run
  assert wrecked.summary().startswith("Adapted weights discarded, the run's own are used")
  described = wrecked.describe()
  assert described["kept"] is False and described["learning_rate"] == 1.0
  assert described["heldout_psnr_db"]["unadapted"] == db["unadapted"]
  assert set(described["heldout_psnr_db"]["checks"]) == {"1", "2"}
  # The held-out PSNR is the independent pooled PSNR of the unadapted SR of those pairs.
  pairs = adaptation.heldout_pairs(run, adaptation.training_frames(
      _frames(), 32, 4, 0)[1], 32, 0)
  assert len(pairs["hr"]) == wrecked.heldout_pairs
  sr = np.round(np.clip(np.asarray(run.sr_fn()(pairs["lr"])), 0, 1) * 255)[:, 4:-4, 4:-4]
  mse = np.mean((sr - pairs["hr"][:, 4:-4, 4:-4] * 255.0) ** 2)
  np.testing.assert_allclose(db["unadapted"], 10 * np.log10(255.0**2 / mse), atol=1e-3)


def test_head_only_adaptation_leaves_the_trunk_as_it_was(trained_tiny_run):
  run = runs.load(str(trained_tiny_run))
  head = adaptation.adapt(run, _frames(), adaptation.Settings(
      steps=2, batch=2, learning_rate=1e-3, layers="head", checks=1, min_gain_db=-np.inf))
  flat = lambda r: {"/".join(map(str, p)): np.asarray(x)  # noqa: E731
                    for p, x in jax.tree_util.tree_leaves_with_path(r.params)}
  changed = {k for k, v in flat(head.run).items() if not np.array_equal(v, flat(run)[k])}
  assert changed and all(any(f"'{layer}'" in k for layer in adaptation.HEAD_LAYERS["sinsr"])
                         for k in changed), changed


def test_held_out_strips_are_distinct_regions_of_each_frame():
  frame = np.arange(100 * 70, dtype=np.float32).reshape(100, 70, 1)
  parts, strips = adaptation.training_frames([frame, frame[:, :20]], 32, 4, seed=0)
  assert len(parts) == 1  # the 20 px wide frame cannot give a 32 px patch
  part, strip = parts[0], strips[0]
  assert part.shape[1] == strip.shape[1] == 70 and part.shape[0] + strip.shape[0] == 100
  assert strip.shape[0] == 32  # a quarter of the long side, at least the patch
  assert not set(part.ravel()) & set(strip.ravel())  # no pixel in both
  assert {part[0, 0, 0], strip[0, 0, 0]} & {0.0}  # one of them is the frame's first rows


def test_frames_too_small_to_cut_pairs_from_are_one_message(trained_tiny_run):
  run = runs.load(str(trained_tiny_run))
  with pytest.raises(adaptation.AdaptError, match="at least 64x32 px above its databar to cut "
                     "x4 training and held-out pairs from; the input is 20x16 px"):
    adaptation.adapt(run, [np.zeros((16, 20, 1), np.float32)], adaptation.Settings(steps=2))


@pytest.mark.slow
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
  decision = [line for line in adapted.stdout.splitlines() if line.startswith("Adapted weights ")]
  kept = decision[0].startswith("Adapted weights kept (step ")
  assert kept or decision[0].startswith("Adapted weights discarded"), adapted.stdout
  making = lambda d: json.loads((tmp_path / d / "a_x4.tif.json").read_text())["provenance"]  # noqa: E731
  recorded = making("o1")["adaptation"]
  assert recorded["kept"] is kept and recorded["steps"] == 3 and recorded["seed"] == 5
  assert set(recorded["heldout_psnr_db"]) == {"bicubic", "unadapted", "checks"}
  # ZSSR's test-time recipe comes with --adapt: self-ensemble and LR consistency.
  assert all(making("o1")["test_time"].values()), making("o1")["test_time"]
  assert _digest(trained_tiny_run) == before  # nothing of the source run changed
  refined = ("--ensemble", "--consistency")
  again = _upscale("--run=mine", "--out=o2", "--quiet", *refined, "a.tif", cwd=tmp_path)
  plain = _upscale("--out=o3", *refined, *args, cwd=tmp_path)
  assert again.returncode == 0 and plain.returncode == 0, again.stderr + plain.stderr
  read = lambda d: micrographs.read(str(tmp_path / d / "a_x4.tif")).pixels  # noqa: E731
  np.testing.assert_array_equal(read("o1"), read("o2"))  # the saved run is the adapted one
  assert np.array_equal(read("o1"), read("o3")) is not kept  # discarded: the run's own weights
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
