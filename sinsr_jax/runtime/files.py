"""Checks on the folders a command writes to, made before any work starts."""

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
