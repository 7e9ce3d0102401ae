"""Faults: killed and preempted runs resume exactly; NaN updates are skipped and counted; a full
disk, a foreign workdir and a stuck GAN each get one clear answer. Counts feed the README."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from test_cli import _tiny_flags
from test_train import _final_state

from conftest import REPO, tiny_config
from sinsr_jax.errors import UserError
from sinsr_jax.training import checkpointing, monitoring, parallel, train

STEPS = 6


def _config(data_dir, **overrides):
  return tiny_config(data_dir, num_steps=STEPS, pretrain_steps=2, checkpoint_every=1,
                     eval_every=STEPS, log_every=1, **overrides)


@pytest.fixture
def straight_run(tiny_data_dir, tmp_path_factory):
  """(config, workdir) of an uninterrupted STEPS-step run, checkpoints 2..6 kept; trained once
  per session and shared by the pytest-xdist workers (tests copy it, never change it)."""
  from filelock import FileLock

  base = tmp_path_factory.getbasetemp()
  shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
  config = _config(tiny_data_dir, image_every=STEPS, keep_checkpoints=5)
  workdir = str(shared / "straight_run")
  with FileLock(str(shared / "straight_run.lock")):
    if not os.path.exists(os.path.join(workdir, "done")):
      shutil.rmtree(workdir, ignore_errors=True)
      train.train_and_evaluate(config, workdir)
      open(os.path.join(workdir, "done"), "w").close()
  return config, workdir


def _start(data_dir, workdir, *extra, env=None, program=("-m", "sinsr_jax.main")):
  flags = [*_tiny_flags(data_dir), f"--workdir={workdir}", f"--config.train.num_steps={STEPS}",
           "--config.train.pretrain_steps=2", "--config.train.checkpoint_every=1",
           f"--config.train.eval_every={STEPS}", "--config.train.log_every=1",
           f"--config.train.image_every={STEPS}", "--config.data.eval_max_images=2", *extra]
  env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
  return subprocess.Popen([sys.executable, *program, *flags], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_checkpoint(workdir, proc, at_least: int, timeout=600):
  """Waits until a checkpoint of step >= ``at_least`` has begun (finished or not)."""
  folder = os.path.join(workdir, "checkpoints")
  deadline = time.time() + timeout
  while time.time() < deadline:
    steps = [int(d.split(".")[0]) for d in (os.listdir(folder) if os.path.isdir(folder) else [])
             if d.split(".")[0].isdigit()]
    if steps and max(steps) >= at_least:
      return
    if proc.poll() is not None:
      raise AssertionError(f"run ended early: {proc.stdout.read()[-3000:]}")
    time.sleep(0.05)
  raise AssertionError("no checkpoint in time")


def _wait_for_lock(workdir, proc, timeout=300):
  """Waits until ``proc`` holds the workdir's lock."""
  deadline = time.time() + timeout
  while time.time() < deadline:
    try:
      with open(os.path.join(workdir, "lock")) as f:
        if json.load(f)["pid"] == proc.pid:
          return
    except (OSError, ValueError):
      pass
    if proc.poll() is not None:
      raise AssertionError(f"run ended early: {proc.stdout.read()[-3000:]}")
    time.sleep(0.05)
  raise AssertionError("no lock in time")


@pytest.mark.slow
def test_killed_and_preempted_run_resumes_to_the_uninterrupted_result(tiny_data_dir, tmp_path,
                                                                      straight_run, ledger):
  config, straight = straight_run

  faulty = str(tmp_path / "faulty")
  # SIGKILL as soon as step 2's checkpoint begins: its asynchronous write is likely cut short.
  proc = _start(tiny_data_dir, faulty)
  _wait_for_checkpoint(faulty, proc, 2)
  proc.kill()
  proc.wait(timeout=60)
  assert os.path.exists(os.path.join(faulty, "lock"))  # SIGKILL leaves the lock behind
  # SIGTERM later: the run ends its step, writes a checkpoint and exits 0 (75 for a launcher
  # that asks, to tell a stop from the end). Meanwhile a second launch on the same workdir (a
  # requeued job) is refused in one line and touches nothing.
  proc = _start(tiny_data_dir, faulty, "--exit_code_when_stopped=75")
  _wait_for_lock(faulty, proc)
  second = _start(tiny_data_dir, faulty)
  refused, _ = second.communicate(timeout=300)
  assert second.returncode == 1 and "Traceback" not in refused, refused[-3000:]
  assert refused.strip().splitlines()[-1].startswith(
      f"error: {faulty} is in use by another training (pid {proc.pid} on "), refused[-2000:]
  assert proc.poll() is None  # the first one goes on
  _wait_for_checkpoint(faulty, proc, 4)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 75, out[-3000:]
  assert "Taking over the lock of" in out and "no longer exists" in out  # the killed one's
  assert "stopped by SIGTERM at step" in out and "the same command resumes" in out
  stopped_at = int(out.split("stopped by SIGTERM at step ")[1].split(";")[0])
  assert stopped_at < STEPS
  manager = checkpointing.make_manager(faulty, 1)
  assert manager.latest_step() == stopped_at  # the stop's own checkpoint, complete
  manager.close()
  # And SIGKILL once more, at a random later moment.
  proc = _start(tiny_data_dir, faulty)
  time.sleep(np.random.default_rng().uniform(4, 16))
  proc.kill()
  proc.wait(timeout=60)
  final = _start(tiny_data_dir, faulty, "--exit_code_when_stopped=75")
  out, _ = final.communicate(timeout=600)
  assert final.returncode == 0, out[-3000:]  # finished: 0 whatever the stop code

  a, b = _final_state(config, straight), _final_state(config, faulty)
  assert int(a.step) == int(b.step) == STEPS
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)
  ledger.injected("SIGKILL", 2)
  ledger.injected("SIGTERM")
  ledger.injected("second launch on a workdir")
  ledger.injected("stale lock")

  # The same workdir with another model is refused, naming the difference.
  other = _config(tiny_data_dir)
  other.model.width = 16
  with pytest.raises(UserError, match=r"holds checkpoints of another run \(model.width: 8 "
                                      r"there, 16 here\)"):
    train.train_and_evaluate(other, straight)
  ledger.tried("foreign workdir")


def _nan_after(step: int, real_shard_batch):
  """Wraps parallel.shard_batch: the batches of ``step`` and later are NaN."""
  calls = []

  def shard_batch(batch, mesh):
    calls.append(1)
    if len(calls) >= step:
      batch = {k: np.full_like(v, np.nan) for k, v in batch.items()}
    return real_shard_batch(batch, mesh)
  return shard_batch


@pytest.mark.slow
def test_nonfinite_updates_are_skipped_then_stop_the_run(tiny_data_dir, tmp_path, monkeypatch,
                                                         ledger):
  config = _config(tiny_data_dir, max_nonfinite_steps=2)
  monkeypatch.setattr(parallel, "shard_batch", _nan_after(3, parallel.shard_batch))
  workdir = str(tmp_path / "nan")
  with pytest.raises(monitoring.NonFiniteError) as caught:
    train.train_and_evaluate(config, workdir)
  message = str(caught.value)
  assert "2 non-finite updates in a row, the last at step 4" in message
  # Checked at each log (every step here), before that step's checkpoint: step 3's is the last.
  assert "Last checkpoint: step 3" in message and "intact" in message
  # The skipped update left the parameters as step 2 made them.
  mesh = parallel.make_mesh()
  g_model, d_models = train.build_models(config)
  g_tx, d_tx = train.build_optimizers(config.optim)
  template = train.initial_state(config, g_model, d_models, g_tx, d_tx, mesh)
  manager = checkpointing.make_manager(workdir, 10)
  at = {s: jax.device_get(manager.restore(s, args=checkpointing.ocp.args.Composite(
      state=checkpointing.ocp.args.StandardRestore(
          jax.tree.map(checkpointing.ocp.utils.to_shape_dtype_struct, template))))["state"])
        for s in (2, 3)}
  assert int(at[3].step) == 3
  for x, y in zip(jax.tree.leaves(at[2].g_params), jax.tree.leaves(at[3].g_params), strict=True):
    np.testing.assert_array_equal(x, y)
    assert np.all(np.isfinite(y))
  ledger.injected("NaN batch", 2)


@pytest.mark.slow
def test_a_full_disk_ends_with_one_message_and_keeps_earlier_checkpoints(
    tiny_data_dir, tmp_path, monkeypatch, ledger):
  config = _config(tiny_data_dir)
  config.train.num_steps = 4
  real_save = checkpointing.save

  def save(manager, step, state, it):
    if step == 3:
      raise OSError(errno.ENOSPC, "No space left on device")
    real_save(manager, step, state, it)

  monkeypatch.setattr(checkpointing, "save", save)
  workdir = str(tmp_path / "full")
  with pytest.raises(UserError, match=r"cannot write the checkpoint of step 3 in .*: No space "
                                      r"left on device; the earlier checkpoints \[1, 2\] are "
                                      r"intact"):
    train.train_and_evaluate(config, workdir)
  manager = checkpointing.make_manager(workdir, 3)
  manager.wait_until_finished()
  assert manager.latest_step() == 2
  ledger.injected("disk full")


def test_health_counts_nonfinite_and_warns_of_collapse():
  health = monitoring.Health(max_nonfinite=3, collapse_steps=4)
  warnings = health.update([1, 2, 3], [{"nonfinite": 1.0}, {"nonfinite": 0.0},
                                       {"nonfinite": 1.0}])
  assert warnings == ["step 3: 2 non-finite update(s) skipped in the last 3 steps (2 in total)"]
  health.update([4], [{"nonfinite": 1.0}])  # 2 in a row
  with pytest.raises(monitoring.NonFiniteError, match="3 non-finite updates in a row, the last "
                                                      "at step 5"):
    health.update([5], [{"nonfinite": 1.0}])

  gan = monitoring.Health(max_nonfinite=0, collapse_steps=4)
  steps = list(range(10, 20))
  accuracy = [0.7, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0, 0.0]
  warnings = gan.update(steps, [{"d_accuracy": a} for a in accuracy])
  assert len(warnings) == 1 and warnings[0].startswith(
      "step 14: discriminator accuracy pinned at 1 for 4 steps")
  more = gan.update([20], [{"d_accuracy": 0.0}])
  assert len(more) == 1 and "pinned at 0" in more[0] and "given up" in more[0]
