"""Run folders in a bucket, against a local GCS emulator (tests/gcs_emulator.py, a child process
on 127.0.0.1, stopped after the module): a training on gs:// writes its checkpoints, metrics
and sidecars there, is killed and resumes from the bucket to the uninterrupted result; a second
launch is refused by the lock object; evaluate and upscale read the run from gs://."""

import json
import os
import signal
import time

import gcs_emulator
import jax
import numpy as np
import pytest
from test_reliability import STEPS, _start, straight_run  # noqa: F401  (a fixture)
from test_train import _final_state

from sinsr_jax.errors import UserError
from sinsr_jax.runtime import paths, workdir_lock
from sinsr_jax.runtime.files import ensure_writable_dir
from sinsr_jax.training import runs

pytestmark = pytest.mark.skipif(bool(gcs_emulator.missing()), reason=gcs_emulator.missing() or
                                "ok")


@pytest.fixture(scope="module")
def gcs():
  """The emulator's client environment, set in os.environ for the module (and its children)."""
  from etils.epath import gpath

  proc, url = gcs_emulator.start("bucket")
  env = gcs_emulator.client_env(url)
  saved = {k: os.environ.get(k) for k in env}
  os.environ.update(env)
  gpath._is_tf_installed.cache_clear()  # epath decides once per process whether to use TF
  try:
    yield env
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v
    gpath._is_tf_installed.cache_clear()
    proc.kill()
    proc.wait(timeout=30)
    os.unlink(proc.log_path)


def test_a_gs_workdir_is_the_bucket_never_a_local_gs_folder(gcs, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  ensure_writable_dir("gs://bucket/runs/probe")
  assert os.listdir(tmp_path) == []  # no ./gs:/bucket/... folder
  assert not any(n.startswith(".write_probe") for n in paths.listdir("gs://bucket/runs/probe")
                 ) if paths.isdir("gs://bucket/runs/probe") else True
  paths.write_atomic("gs://bucket/runs/probe/config.json", '{"a": 1}')
  assert json.loads(paths.read_text("gs://bucket/runs/probe/config.json")) == {"a": 1}
  with pytest.raises(UserError, match=r"^workdir gs://no-such-bucket/r is not writable \("):
    ensure_writable_dir("gs://no-such-bucket/r")
  assert os.listdir(tmp_path) == []


def test_the_lock_object_admits_one_holder_and_takes_over_a_dead_one(gcs, caplog):
  workdir = "gs://bucket/locks/a"
  with workdir_lock.WorkdirLock(workdir, "training"):
    holder = json.loads(paths.read_text(f"{workdir}/lock"))
    assert holder["pid"] == os.getpid()
    with pytest.raises(workdir_lock.WorkdirBusy, match=rf"{workdir} is in use by another "
                       rf"training \(pid {os.getpid()} on "):
      workdir_lock.WorkdirLock(workdir).acquire()  # the emulator refused the create (412)
  assert not paths.exists(f"{workdir}/lock")  # released: deleted
  # A holder on this host whose process is gone: taken over, as on a local disk.
  dead = {**holder, "pid": 2 ** 22 + 1, "token": "theirs"}
  paths.write_atomic(f"{workdir}/lock", json.dumps(dead))
  with workdir_lock.WorkdirLock(workdir, "training"):
    assert json.loads(paths.read_text(f"{workdir}/lock"))["token"] != "theirs"
  assert any("Taking over the lock" in r.getMessage() for r in caplog.records)


def _bucket_steps(workdir):
  """Steps whose checkpoint has begun (as the local test waits for a step's folder)."""
  folder = f"{workdir}/checkpoints"
  return [int(d.split(".")[0]) for d in (paths.listdir(folder) if paths.isdir(folder) else [])
          if d.split(".")[0].isdigit()]


def _wait(predicate, proc, what, timeout=600, poll=0.5):
  deadline = time.time() + timeout
  while time.time() < deadline:
    if predicate():
      return
    if proc.poll() is not None:
      raise AssertionError(f"run ended early: {proc.stdout.read()[-3000:]}")
    time.sleep(poll)
  raise AssertionError(f"no {what} in time")


def _holds_lock(workdir, proc):
  try:
    return json.loads(paths.read_text(f"{workdir}/lock"))["pid"] == proc.pid
  except (OSError, ValueError, KeyError):
    return False


@pytest.mark.slow
def test_a_training_in_the_bucket_is_killed_and_resumes_to_the_uninterrupted_result(
    gcs, straight_run, tmp_path):  # noqa: F811
  config, straight = straight_run
  workdir = "gs://bucket/runs/tiny"
  data_dir = config.data.data_dir
  proc = _start(data_dir, workdir, env=gcs)
  _wait(lambda: _holds_lock(workdir, proc), proc, "lock")
  second = _start(data_dir, workdir, env=gcs)
  refused, _ = second.communicate(timeout=300)
  assert second.returncode == 1 and "Traceback" not in refused, refused[-3000:]
  assert refused.strip().splitlines()[-1].startswith(
      f"error: {workdir} is in use by another training (pid {proc.pid} on "), refused[-2000:]
  _wait(lambda: max(_bucket_steps(workdir), default=0) >= 3, proc, "checkpoint", poll=0.1)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  assert not os.path.exists("gs:")  # nothing local named after the bucket

  final = _start(data_dir, workdir, env=gcs)
  out, _ = final.communicate(timeout=600)
  assert final.returncode == 0, out[-3000:]
  assert "Resumed from the checkpoint at step" in out and "Taking over the lock" in out
  a, b = _final_state(config, straight), _final_state(config, workdir)
  assert int(a.step) == int(b.step) == STEPS
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)

  names = set(paths.listdir(workdir))
  assert {"config.json", "degradation.json", "run_info.json", "metrics.json", "log.txt",
          "checkpoints"} <= names, names
  assert "lock" not in names  # released at the end
  assert any(n.startswith("events.out.tfevents") for n in names), names  # TensorBoard's
  assert json.loads(paths.read_text(f"{workdir}/metrics.json"))["step"] == STEPS
  assert len(json.loads(paths.read_text(f"{workdir}/run_info.json"))["starts"]) == 2
  assert "Resumed from the checkpoint" in paths.read_text(f"{workdir}/log.txt")

  # What evaluate and upscale load: the run's config and EMA weights, from the bucket.
  run = runs.load(workdir)
  assert run.step == STEPS and run.workdir == workdir
  local = runs.load(straight)
  for x, y in zip(jax.tree.leaves(local.params), jax.tree.leaves(run.params), strict=True):
    np.testing.assert_array_equal(x, y)
