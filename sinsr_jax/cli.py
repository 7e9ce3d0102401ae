"""What the project's command lines share: one-line errors and a console kept to progress."""

from __future__ import annotations

import logging as std_logging
import sys

_CHATTY_LIBRARIES = ("/orbax/", "/tensorflow_datasets/", "/jax/_src/")


def fail(message: str, status: int = 1):
  """Ends the program with one ``error:`` line: 2 for bad flags, 1 for everything else."""
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


def _quiet_library_info(record) -> bool:
  """Libraries' INFO lines go, their warnings stay."""
  return record.levelno >= std_logging.WARNING or not any(
      part in record.pathname for part in _CHATTY_LIBRARIES)


def quiet_library_logs() -> None:
  from absl import logging

  logging.get_absl_handler().addFilter(_quiet_library_info)


def prepare_process() -> None:
  """What every command line does first: quiet library logs, and keep compiled programs so a
  rerun, resume or evaluation reads them back (compile_cache)."""
  quiet_library_logs()
  from sinsr_jax import compile_cache  # deferred: imports JAX (keeps `--help` fast)

  compile_cache.enable()
