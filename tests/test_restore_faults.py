"""Restores tell a storage hiccup from damage: transient errors are retried and move nothing;
a checkpoint failing its integrity checks is quarantined, the message naming the check."""

import errno
import glob
import logging
import os

import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from sinsr_jax.runtime import storage_errors
from sinsr_jax.training import checkpointing

TEMPLATE = {"g_params": {"stem": {"kernel": jnp.zeros((10, 100))}}, "step": jnp.int32(0)}


@pytest.fixture
def two_steps(tmp_path, monkeypatch):
  """A workdir with checkpoints 1 and 2 of a small state (kernel filled with the step)."""
  monkeypatch.setattr(storage_errors, "RETRY_DELAYS", (0.0, 0.0, 0.0))
  workdir = str(tmp_path / "run")
  manager = checkpointing.make_manager(workdir, None)
  for step in (1, 2):
    state = {"g_params": {"stem": {"kernel": jnp.full((10, 100), float(step))}},
             "step": jnp.int32(step)}
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))
  manager.wait_until_finished()
  manager.close()
  manager = checkpointing.make_manager(workdir, None)
  yield workdir, manager
  manager.close()


def _flaky(manager, monkeypatch, errors: list):
  """Makes the manager's restores raise ``errors`` one by one, then read for real."""
  real, calls = manager.restore, []

  def restore(*args, **kwargs):
    calls.append(args[0])
    if errors:
      raise errors.pop(0)
    return real(*args, **kwargs)
  monkeypatch.setattr(manager, "restore", restore)
  return calls


@pytest.mark.parametrize("error", [
    TimeoutError("read timed out"),
    ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
    PermissionError(errno.EACCES, "Permission denied"),
    ValueError("UNAVAILABLE: GCS returned 503 Service Unavailable"),
])
def test_a_transient_error_is_retried_and_quarantines_nothing(two_steps, monkeypatch, caplog,
                                                              error):
  workdir, manager = two_steps
  try:  # the second failure wraps the first, as orbax's asynchronous reads do
    raise RuntimeError("restore failed") from error
  except RuntimeError as e:
    wrapped = e
  calls = _flaky(manager, monkeypatch, [error, wrapped])
  caplog.set_level(logging.WARNING)
  state = checkpointing.restore_latest(manager, TEMPLATE)
  assert int(state["step"]) == 2 and float(state["g_params"]["stem"]["kernel"][0, 0]) == 2.0
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  retries = [r.getMessage() for r in caplog.records if "trying again" in r.getMessage()]
  assert len(retries) == 2 and "the checkpoint of step 2" in retries[0]
  assert not any("damaged" in r.getMessage() for r in caplog.records)
  assert calls == [2, 2, 2]


def test_a_persisting_storage_error_stops_in_one_line_and_moves_nothing(two_steps, monkeypatch):
  workdir, manager = two_steps
  calls = _flaky(manager, monkeypatch, [OSError(errno.ETIMEDOUT, "Connection timed out")] * 9)
  with pytest.raises(checkpointing.StorageUnavailable, match=r"cannot read the checkpoint of "
                     r"step 2 in .*: storage error \(TimeoutError: .*tried 4 times\); nothing "
                     r"was moved: the same command tries again"):
    checkpointing.restore_latest(manager, TEMPLATE)
  assert calls == [2, 2, 2, 2]  # never fell back to step 1 on a hiccup
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  # Readers (evaluate, upscale) the same: one line, no fallback to an older checkpoint.
  monkeypatch.setattr(manager, "item_metadata", lambda step: (_ for _ in ()).throw(
      ValueError("UNAVAILABLE: connection refused")))
  with pytest.raises(checkpointing.StorageUnavailable, match="UNAVAILABLE"):
    checkpointing.restore_generator(manager, {"g_params": TEMPLATE["g_params"]})
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]


def test_a_truncated_checkpoint_is_still_quarantined_naming_the_check(two_steps, caplog):
  workdir, manager = two_steps
  for path in glob.glob(os.path.join(workdir, "checkpoints", "2", "state", "**", "d", "*"),
                        recursive=True):
    os.truncate(path, os.path.getsize(path) // 2)
  caplog.set_level(logging.WARNING)
  state = checkpointing.restore_latest(manager, TEMPLATE)
  assert int(state["step"]) == 1
  np.testing.assert_array_equal(state["g_params"]["stem"]["kernel"], 1.0)
  assert os.listdir(os.path.join(workdir, "checkpoints", "quarantine")) == ["2"]
  [warning] = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
  assert "step 2 is damaged (truncated or corrupt array data: " in warning
  assert "resuming from step 1" in warning


def test_a_missing_metadata_file_is_named_as_such(two_steps, caplog):
  workdir, manager = two_steps
  os.remove(os.path.join(workdir, "checkpoints", "2", "state", "_METADATA"))
  caplog.set_level(logging.WARNING)
  assert int(checkpointing.restore_latest(manager, TEMPLATE)["step"]) == 1
  [warning] = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
  assert "(missing file: CheckpointDamaged: its state/_METADATA is missing)" in warning


def test_transient_errors_are_told_from_damage():
  transient = [TimeoutError(), ConnectionAbortedError(), OSError(errno.EIO, "I/O error"),
               ValueError("DEADLINE_EXCEEDED: read"), type("ServiceUnavailable", (Exception,),
                                                           {})("503")]
  damage = [FileNotFoundError(errno.ENOENT, "gone"), ValueError("OUT_OF_RANGE: short read"),
            ValueError("DATA_LOSS: checksum"), checkpointing.CheckpointDamaged("no _METADATA"),
            ValueError("Expecting value: line 1 column 1")]
  assert all(storage_errors.is_transient(e) for e in transient)
  assert not any(storage_errors.is_transient(e) for e in damage)
  try:
    raise RuntimeError("restore failed") from ConnectionResetError()
  except RuntimeError as e:
    assert storage_errors.is_transient(e)  # found through orbax's wrappers
