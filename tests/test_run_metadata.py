"""The run's metadata (config.json, degradation.json, run_info.json) is replaced atomically: a
kill in the middle of writing it at start leaves a folder that resumes."""

import json
import os
import shutil
import signal

import pytest
from test_reliability import _start, straight_run  # noqa: F401  (a fixture)

from sinsr_jax.runtime.files import write_atomic

# Runs sinsr_jax.main with every write to a file named KILL_DURING_WRITE_OF (or its temporary)
# cut in half and the process SIGKILLed right there: the worst moment for the file.
_KILLER = r"""
import builtins, os, runpy, signal, sys
target, real_open = os.environ["KILL_DURING_WRITE_OF"], builtins.open

class Cut:
  def __init__(self, f):
    self.f = f
  def write(self, text):
    self.f.write(text[:len(text) // 2]); self.f.flush(); os.fsync(self.f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)
  def __getattr__(self, name):
    return getattr(self.f, name)
  def __enter__(self):
    return self
  def __exit__(self, *exc):
    self.f.close()

def cut_open(file, mode="r", *args, **kwargs):
  f = real_open(file, mode, *args, **kwargs)
  return Cut(f) if "w" in mode and target in os.path.basename(str(file)) else f

builtins.open = cut_open
sys.argv = ["sinsr_jax.main", *sys.argv[1:]]
runpy.run_module("sinsr_jax.main", run_name="__main__", alter_sys=True)
"""


def test_write_atomic_replaces_whole_and_leaves_an_unchanged_file_alone(tmp_path):
  path = str(tmp_path / "config.json")
  write_atomic(path, "{}")
  os.utime(path, (1, 1))
  write_atomic(path, "{}")
  assert os.stat(path).st_mtime == 1  # unchanged: not rewritten
  write_atomic(path, '{"a": 1}')
  assert open(path).read() == '{"a": 1}' and os.listdir(tmp_path) == ["config.json"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["config.json", "run_info.json"])
def test_a_kill_while_writing_the_metadata_at_start_leaves_a_folder_that_resumes(
    straight_run, tmp_path, name):  # noqa: F811
  config, straight = straight_run
  workdir = str(tmp_path / "run")
  shutil.copytree(straight, workdir)
  before = open(os.path.join(workdir, name)).read()
  changed = "--config.train.keep_checkpoints=7"  # a resume with another flag rewrites config.json
  killed = _start(config.data.data_dir, workdir, changed, env={"KILL_DURING_WRITE_OF": name},
                  program=("-c", _KILLER))
  out, _ = killed.communicate(timeout=600)
  assert killed.returncode == -signal.SIGKILL, out[-3000:]
  assert open(os.path.join(workdir, name)).read() == before  # the old file, whole

  resumed = _start(config.data.data_dir, workdir, changed)
  out, _ = resumed.communicate(timeout=600)
  assert resumed.returncode == 0, out[-3000:]
  assert f"Resumed from the checkpoint at step {config.train.num_steps}" in out
  assert json.load(open(os.path.join(workdir, "config.json")))["train"]["keep_checkpoints"] == 7
  starts = json.load(open(os.path.join(workdir, "run_info.json")))["starts"]
  assert len(starts) == len(json.load(open(os.path.join(straight, "run_info.json")))["starts"]) + 1
  assert not [f for f in os.listdir(workdir) if f.endswith(".tmp")]
