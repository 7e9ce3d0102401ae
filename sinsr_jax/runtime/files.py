"""Checks on the folders a command writes to, made before any work starts."""

from __future__ import annotations

import os

from sinsr_jax.errors import UserError
from sinsr_jax.runtime import paths
from sinsr_jax.runtime.paths import write_atomic  # noqa: F401  (the sidecars' writer)


def ensure_writable_dir(path: str, what: str = "workdir") -> None:
  """Creates ``path`` if needed and proves it writable with a probe file; a ``gs://`` path is
  probed in its bucket (never as a local folder named ``gs:``)."""
  probe = paths.join(path, f".write_probe_{os.getpid()}")
  try:
    paths.makedirs(path)
    paths.write_atomic(probe, "")
    paths.remove(probe)
  except ImportError as e:  # gs:// without its client library
    raise UserError(f"{what} {path}: {e.msg or e}; install the cloud extra: pip install -e "
                    f"\".[gcs]\"") from None
  except Exception as e:  # OSError locally; the cloud client's own errors in a bucket
    if not isinstance(e, OSError) and not paths.is_remote(path):
      raise
    reason = getattr(e, "strerror", None) or str(e).split("\n", 1)[0]
    raise UserError(f"{what} {path} is not writable ({reason})") from None
