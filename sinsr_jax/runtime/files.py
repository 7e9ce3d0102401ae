"""Checks on the folders a command writes to, made before any work starts, and the writes of
small files that a later run reads back."""

from __future__ import annotations

import os

from sinsr_jax.errors import UserError


def ensure_writable_dir(path: str, what: str = "workdir") -> None:
  try:
    os.makedirs(path, exist_ok=True)
    probe = os.path.join(path, f".write_probe_{os.getpid()}")
    with open(probe, "w"):
      pass
    os.remove(probe)
  except OSError as e:
    raise UserError(f"{what} {path} is not writable ({e.strerror or e})") from None


def write_atomic(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` so that a reader (or a resume after a kill at any moment) finds
  the old content or the new, never a part: a private temporary file, flushed, then renamed
  over. An unchanged file is left as it is (same bytes, same mtime)."""
  try:
    with open(path) as f:
      if f.read() == text:
        return
  except (OSError, UnicodeDecodeError):
    pass
  directory, name = os.path.split(path)
  # One name: the workdir has one writer (its lock), and a temporary cut by a kill is replaced
  # by the next write rather than left behind.
  tmp = os.path.join(directory, f".{name}.tmp")
  try:
    with open(tmp, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.unlink(tmp)
