"""Faults around a workdir: its lock, damaged checkpoints, signals before the first step and
unforeseen errors. Each ends resumed from the newest intact checkpoint or in one clear line."""

import glob
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from test_reliability import _start, straight_run  # noqa: F401  (a fixture)
from test_train import _final_state

from sinsr_jax.errors import UserError
from sinsr_jax.runtime import cli, workdir_lock
from sinsr_jax.training import checkpointing, parallel, runs, train


def _holder(workdir, name="lock", **fields):
  holder = {"host": socket.gethostname(), "pid": os.getpid(), "boot_id": workdir_lock._boot_id(),
            "start_ticks": workdir_lock._start_ticks(os.getpid()), "started": 0.0,
            "purpose": "training", "command": "python -m sinsr_jax.main --workdir=x",
            "token": "theirs", **fields}
  with open(os.path.join(workdir, name), "w") as f:
    json.dump(holder, f)


def _dead_pid() -> int:
  proc = subprocess.Popen([sys.executable, "-c", "pass"])
  proc.wait()
  return proc.pid


def test_the_lock_admits_one_holder_and_takes_over_stale_ones(tmp_path, caplog, ledger):
  workdir = str(tmp_path)
  with workdir_lock.WorkdirLock(workdir, "training") as lock:
    assert json.load(open(tmp_path / "lock"))["pid"] == os.getpid()
    with pytest.raises(workdir_lock.WorkdirBusy, match=rf"{workdir} is in use by another "
                       rf"training \(pid {os.getpid()} on {socket.gethostname()}, started "):
      workdir_lock.WorkdirLock(workdir).acquire()
    with workdir_lock.WorkdirLock(workdir, process_index=1):  # another process of the run
      assert (tmp_path / "lock.1").exists()
  assert not (tmp_path / "lock").exists() and lock.holder["command"]
  ledger.tried("locked workdir")

  # A live process elsewhere (fresh heartbeat) holds it; one silent for long does not.
  _holder(workdir, host="other-host", pid=1)
  with pytest.raises(workdir_lock.WorkdirBusy, match="pid 1 on other-host"):
    workdir_lock.WorkdirLock(workdir).acquire()
  old = time.time() - workdir_lock.STALE_AFTER_S - 60
  os.utime(tmp_path / "lock", (old, old))
  stale = {"a dead process": {"pid": _dead_pid()},
           "a restarted machine": {"boot_id": "another-boot"},
           "a reused pid": {"start_ticks": -1},
           "a silent host": {"host": "other-host"}}
  caplog.set_level(logging.WARNING)
  for why, fields in stale.items():
    _holder(workdir, **fields)
    if why == "a silent host":
      os.utime(tmp_path / "lock", (old, old))
    with workdir_lock.WorkdirLock(workdir):
      assert json.load(open(tmp_path / "lock"))["token"] != "theirs", why
  takeovers = [r.getMessage() for r in caplog.records if "Taking over the lock" in r.getMessage()]
  assert len(takeovers) == 4
  assert "no longer exists" in takeovers[0] and "restarted" in takeovers[1]
  assert "pid was reused" in takeovers[2] and "no heartbeat from other-host" in takeovers[3]
  assert os.listdir(workdir) == []  # nothing left behind
  ledger.injected("stale lock", 4)


def _truncate_arrays(step_dir):
  """Cuts the array data files to half (OCDBT keeps the arrays of a one-process checkpoint in
  state/d or state/ocdbt.process_0/d, depending on when its asynchronous write merged them)."""
  for path in glob.glob(os.path.join(step_dir, "state", "**", "d", "*"), recursive=True):
    os.truncate(path, os.path.getsize(path) // 2)


def _damage(checkpoints):
  """Step 7: an empty folder; 6: array files cut to half; 5: no _METADATA; 4: a corrupt
  data-iterator state. 3 is intact."""
  os.makedirs(os.path.join(checkpoints, "7"))
  _truncate_arrays(os.path.join(checkpoints, "6"))
  os.remove(os.path.join(checkpoints, "5", "state", "_METADATA"))
  with open(os.path.join(checkpoints, "4", "data", "process_0-of-1.json"), "w") as f:
    f.write('{"next_ind')


@pytest.mark.slow
def test_damaged_checkpoints_are_quarantined_and_the_run_resumes_from_an_intact_one(
    straight_run, tmp_path, caplog, ledger):  # noqa: F811
  config, straight = straight_run
  workdir = str(tmp_path / "damaged")
  shutil.copytree(straight, workdir)
  checkpoints = os.path.join(workdir, "checkpoints")
  _damage(checkpoints)
  caplog.set_level(logging.WARNING)

  # Readers (evaluate, upscale) fall back too, and move nothing: a training may own the folder.
  # They need the weights only, so step 4's damaged data-iterator state does not stop them.
  run = runs.load(workdir)
  assert run.step == 4 and sorted(os.listdir(checkpoints)) == ["2", "3", "4", "5", "6", "7"]
  skipped = [r.getMessage() for r in caplog.records if "Cannot read the checkpoint" in
             r.getMessage()]
  assert [m.split(" (")[0] for m in skipped] == [
      f"Cannot read the checkpoint of step {s}" for s in (7, 6, 5)]
  caplog.clear()

  record = train.train_and_evaluate(config, workdir)
  assert record["step"] == config.train.num_steps
  warnings = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
  assert len(warnings) == 4 and all("resuming from step 3" in w for w in warnings)
  assert "OUT_OF_RANGE" in warnings[1] and "_METADATA is missing" in warnings[2]
  assert "JSONDecodeError" in warnings[3]
  assert sorted(os.listdir(os.path.join(checkpoints, "quarantine"))) == ["4", "5", "6", "7"]
  a, b = _final_state(config, straight), _final_state(config, workdir)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)
  for kind in ("empty checkpoint folder", "truncated array file", "deleted _METADATA",
               "corrupt data-iterator state"):
    ledger.injected(kind)


@pytest.mark.slow
def test_no_intact_checkpoint_is_one_line_and_the_next_launch_starts_over(
    straight_run, tmp_path, ledger):  # noqa: F811
  config, straight = straight_run
  workdir = str(tmp_path / "all_damaged")
  shutil.copytree(straight, workdir)
  for step_dir in glob.glob(os.path.join(workdir, "checkpoints", "[0-9]*")):
    _truncate_arrays(step_dir)
  # The readers' view: one line, nothing moved.
  with pytest.raises(checkpointing.NoIntactCheckpoint, match=r"no readable checkpoint in .* "
                                                             r"\(steps 6, 5, 4, 3, 2; step 6: "):
    runs.load(workdir)
  assert not os.path.exists(os.path.join(workdir, "checkpoints", "quarantine"))

  proc = _start(config.data.data_dir, workdir)
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 1 and "Traceback" not in out, out[-3000:]
  assert out.strip().splitlines()[-1].startswith(
      f"error: no intact checkpoint in {os.path.join(workdir, 'checkpoints')} (steps 6, 5, 4, "
      f"3, 2 moved to "), out[-2000:]
  assert "the same command now starts over from step 0" in out
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints", "quarantine"))) == [
      "2", "3", "4", "5", "6"]
  mesh = parallel.make_mesh()
  g_model, d_models = train.build_models(config)
  g_tx, d_tx = train.build_optimizers(config.optim)
  template = train.initial_state(config, g_model, d_models, g_tx, d_tx, mesh)
  manager = checkpointing.make_manager(workdir, 3)
  assert checkpointing.restore_latest(manager, template) is None  # starts over
  manager.close()
  assert not os.path.exists(os.path.join(workdir, "lock"))
  ledger.injected("truncated array file", 5)


def _lines_until(proc, fragment: str, timeout=600) -> list[str]:
  lines, deadline = [], time.time() + timeout
  while time.time() < deadline:
    line = proc.stdout.readline()
    if not line:
      raise AssertionError(f"run ended early: {''.join(lines)[-3000:]}")
    lines.append(line)
    if fragment in line:
      return lines
  raise AssertionError(f"no {fragment!r} in time")


@pytest.mark.slow
def test_signals_before_the_first_step_stop_at_once_and_a_second_signal_too(
    tiny_data_dir, tmp_path, ledger):
  workdir = str(tmp_path / "stops")
  # No compilation cache, and a grain worker process: the first step compiles for seconds
  # while the worker holds shared memory.
  proc = _start(tiny_data_dir, workdir, "--config.data.num_workers=1",
                env={"JAX_ENABLE_COMPILATION_CACHE": "false"})
  _lines_until(proc, "Training sinsr")  # logged right before the first step compiles
  signalled = time.time()
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=60)
  assert time.time() - signalled < 15, out[-3000:]
  assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
  assert out.strip().splitlines()[-1] == (
      "stopped by SIGTERM before the first step of this launch finished; nothing to save: the "
      "same command starts from step 0")
  for noise in ("Traceback", "leaked", "handle is closed"):
    assert noise not in out, out[-3000:]
  assert not os.path.exists(os.path.join(workdir, "lock"))

  # During training the first signal is deferred to the step's end; a second stops at once.
  proc = _start(tiny_data_dir, workdir, "--config.data.num_workers=1")
  _lines_until(proc, " step 1/")  # step 1's progress line: training is under way
  proc.send_signal(signal.SIGINT)
  time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=60)
  assert proc.returncode in (0, 128 + signal.SIGTERM), out[-3000:]
  if proc.returncode:  # else the step and its checkpoint ended within the 0.2 s
    assert out.strip().splitlines()[-1].startswith(
        "stopped at once by a second signal (SIGTERM), without a checkpoint: the same command "
        "resumes from step " if os.path.isdir(os.path.join(workdir, "checkpoints", "1")) else
        "stopped at once by a second signal (SIGTERM), without a checkpoint: the same command "
        "starts from step 0"), out[-2000:]
  for noise in ("Traceback", "leaked", "handle is closed"):
    assert noise not in out, out[-3000:]
  assert not os.path.exists(os.path.join(workdir, "lock"))
  ledger.injected("SIGTERM before the first step")
  ledger.injected("second signal")


def test_an_unforeseen_error_is_one_line_with_the_traceback_in_log_txt(tmp_path, capsys):
  cli.log_failures_to(str(tmp_path))
  try:
    raise ValueError("OUT_OF_RANGE: Error reading\nmore detail")
  except ValueError as e:
    with pytest.raises(SystemExit) as exited:
      cli.fail_unexpected(e)
  assert exited.value.code == 1
  err = capsys.readouterr().err
  assert err == (f"error: ValueError: OUT_OF_RANGE: Error reading (traceback in "
                 f"{tmp_path / 'log.txt'})\n")
  log = (tmp_path / "log.txt").read_text()
  assert "Traceback (most recent call last)" in log and "more detail" in log
  cli.log_failures_to(None)
  assert issubclass(workdir_lock.WorkdirBusy, UserError)
