"""The study's files under its root: a local folder or a bucket (``gs://``), through one set of
calls, so that ``--root=gs://BUCKET/study`` keeps every run, log and evaluation in the bucket.

A local root is a ``pathlib.Path`` as before; a bucket's is an ``etils.epath.Path`` (the layer
sinsr_jax.runtime.paths, orbax and TFDS use), which has the same methods. What objects cannot
do is done another way: an append rewrites the object; a rename copies then deletes; a run's
log is written to a local file while it runs and uploaded when it ends.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile

from sinsr_jax.runtime import paths


def root_path(text: str):
  """``text`` as a path object: pathlib locally, etils.epath in a bucket."""
  if paths.is_remote(text):
    from etils import epath

    return epath.Path(text)
  return pathlib.Path(text)


def remote(path) -> bool:
  return paths.is_remote(str(path))


def append(path, text: str) -> None:
  if not remote(path):
    with open(path, "a") as f:
      f.write(text)
    return
  paths.refresh(str(path))
  path.write_text((path.read_text() if path.exists() else "") + text)


def copy_tree(source, target) -> None:
  """Copies the folder ``source`` to ``target`` (which must not exist)."""
  paths.copy_tree(str(source), str(target))


def remove_tree(path) -> None:
  if not remote(path):
    shutil.rmtree(path, ignore_errors=True)
  elif paths.isdir(str(path)):
    path.rmtree()


def replace(source, target) -> None:
  """Moves ``source`` to ``target``: a rename locally; in a bucket a copy, then a delete."""
  if remote(source):
    paths.rename(str(source), str(target))
  else:
    os.replace(source, target)


def sha256(path) -> str:
  digest = hashlib.sha256()
  with path.open("rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def run_logged(argv: list[str], log, header: str, mode: str = "a", cwd=None) -> int:
  """Runs ``argv`` with its output in the file ``log`` after ``header``; its exit code."""
  if not remote(log):
    with open(log, mode) as f:
      f.write(header)
      f.flush()
      return subprocess.run(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
  with tempfile.TemporaryDirectory(prefix="study-log.") as folder:
    local = os.path.join(folder, "log.txt")
    with open(local, "w") as f:
      f.write(log.read_text() if mode == "a" and log.exists() else "")
      f.write(header)
      f.flush()
      try:
        return subprocess.run(argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT).returncode
      finally:
        f.flush()
        paths.put(local, str(log))
