"""The real training loop on tiny data: outputs, and exact resume after a stop."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from conftest import tiny_config
from sinsr_jax.training import checkpointing, parallel, train

pytestmark = pytest.mark.slow  # Every test here runs the training loop.


def _final_state(config, workdir, step=None):
  mesh = parallel.make_mesh()
  g_model, d_models = train.build_models(config)
  g_tx, d_tx = train.build_optimizers(config.optim)
  template = train.initial_state(config, g_model, d_models, g_tx, d_tx, mesh)
  manager = checkpointing.make_manager(workdir, 3)
  return jax.device_get(checkpointing.restore_latest(manager, template, step=step))


def test_stopped_and_resumed_run_equals_uninterrupted_run(tiny_data_dir, tmp_path):
  # Worker processes too: their iterator state must round-trip through the checkpoint.
  config = tiny_config(tiny_data_dir, num_steps=5, pretrain_steps=2, checkpoint_every=2,
                       eval_every=2)
  config.data.num_workers = 1
  straight = str(tmp_path / "straight")
  record = train.train_and_evaluate(config, straight)

  resumed = str(tmp_path / "resumed")
  first = tiny_config(tiny_data_dir, num_steps=3, pretrain_steps=2, checkpoint_every=2,
                      eval_every=2)
  first.data.num_workers = 1
  train.train_and_evaluate(first, resumed)  # stops at step 3, inside the GAN phase
  resumed_record = train.train_and_evaluate(config, resumed)

  a, b = _final_state(config, straight), _final_state(config, resumed)
  assert int(a.step) == int(b.step) == 5
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)
  assert resumed_record == record

  with open(os.path.join(straight, "metrics.json")) as f:
    saved = json.load(f)
  for key in ("step", "psnr_db", "ssim", "bicubic_psnr_db", "bicubic_ssim", "gmsd", "edge_f1",
              "bicubic_gmsd", "bicubic_edge_f1"):
    assert key in saved
  assert 0 <= saved["edge_f1"] <= 1 and saved["gmsd"] >= 0
  assert saved["step"] == 5 and [r["step"] for r in saved["history"]] == [2, 4, 5]
  assert "border crop = scale" in saved["convention"]
  assert np.isfinite(saved["psnr_db"]) and 0 < saved["ssim"] <= 1
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(straight))
  assert json.load(open(os.path.join(straight, "config.json")))["data"]["scale"] == 4


def test_evaluate_mode_scores_the_newest_checkpoint(trained_tiny_run, tiny_data_dir, tmp_path):
  # The suite's shared run (conftest.trained_tiny_run: 3 steps), copied before writing into it.
  config = tiny_config(tiny_data_dir, num_steps=3, pretrain_steps=2, eval_every=3,
                       checkpoint_every=3)
  workdir = str(shutil.copytree(trained_tiny_run, tmp_path / "run"))
  with open(os.path.join(workdir, "metrics.json")) as f:
    record = json.load(f)
  config.data.eval_split = "test"
  scored = train.evaluate(config, workdir)
  assert scored["step"] == 3 and scored["split"] == "test"
  assert os.path.exists(os.path.join(workdir, "eval_test.json"))
  config.data.eval_split = "validation"
  again = train.evaluate(config, workdir)
  assert again["step"] == record["step"] == 3
  assert again["psnr_db"] == record["psnr_db"]
