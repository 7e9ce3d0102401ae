"""Where a run came from: the code's git commit, library versions, seed, command and machine."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
import sys

PACKAGES = ("sinsr_jax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain",
            "tensorflow-datasets", "dm-pix", "clu", "numpy", "scipy", "scikit-image")


def git_commit(short: bool = False) -> str:
  """The commit of the checkout this package runs from, ``+dirty`` with uncommitted changes."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    run = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, cwd=here,
                                    timeout=10, check=True).stdout.strip()
    commit = run("rev-parse", *(["--short"] if short else []), "HEAD")
    return commit + ("+dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown (not a git checkout)"


def code_digest() -> str:
  """sha256 of the package's and the configs' Python sources (paths and contents): which code
  trained a run, whatever the checkout's git state (a ``+dirty`` commit names no code)."""
  import hashlib
  import pathlib

  package = pathlib.Path(__file__).resolve().parents[1]
  digest = hashlib.sha256()
  for folder in (package, package.parent / "configs"):
    for path in sorted(folder.rglob("*.py")):
      if "__pycache__" not in path.parts:
        digest.update(path.relative_to(package.parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
  return digest.hexdigest()[:16]


def versions() -> dict[str, str]:
  found = {}
  for name in PACKAGES:
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      found[name] = "not installed"
  return found


def describe(seed: int) -> dict:
  import jax

  return {"git_commit": git_commit(), "code_digest": code_digest(), "seed": seed,
          "command": sys.argv,
          "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
          "host": platform.node(), "python": platform.python_version(),
          "processes": jax.process_count(),
          "devices": [str(d.device_kind) for d in jax.devices()], "versions": versions()}
