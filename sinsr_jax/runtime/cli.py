"""What the project's command lines share: one-line errors and a console kept to progress."""

from __future__ import annotations

import datetime
import logging as std_logging
import os
import sys
import tempfile
import traceback

from sinsr_jax.runtime import console, paths

_CHATTY_LIBRARIES = ("/orbax/", "/tensorflow_datasets/", "/jax/_src/")


def fail(message: str, status: int = 1):
  """Ends the program with one ``error:`` line: 2 for bad flags, 1 for everything else."""
  console.close()  # a progress line on the terminal ends first: the error gets a line of its own
  print(f"error: {message}", file=sys.stderr)
  sys.exit(status)


_failure_log_folder: str | None = None


def log_failures_to(folder: str | None) -> None:
  """Where an unexpected failure's traceback goes: ``folder/log.txt`` (the workdir, --out)."""
  global _failure_log_folder
  _failure_log_folder = folder


def one_line(error: BaseException) -> str:
  """The error's type and first line."""
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _write_traceback(error: BaseException) -> str:
  """Appends the traceback to log.txt in the registered folder (else a temporary file)."""
  text = "".join(traceback.format_exception(error))
  entry = f"--- {datetime.datetime.now().isoformat(timespec='seconds')} {' '.join(sys.argv)}\n"
  for folder in (_failure_log_folder, tempfile.gettempdir()):
    if not folder:
      continue
    local = paths.staging_dir(folder)  # a bucket's log: its local copy, uploaded next
    path = os.path.join(local, "log.txt" if folder == _failure_log_folder else
                        f"sinsr_jax-{os.getpid()}.log")
    try:
      os.makedirs(local, exist_ok=True)
      with open(path, "a") as f:
        f.write(entry + text)
      paths.upload(local, folder)
      return paths.join(folder, os.path.basename(path))
    except Exception:  # OSError, or the cloud client's: the next place then
      continue
  return ""


def fail_unexpected(error: BaseException, status: int = 1):
  """An error no check foresaw: one ``error:`` line naming where its traceback went (on the
  console too with --verbosity=1 or more)."""
  from absl import flags

  verbose = flags.FLAGS.is_parsed() and flags.FLAGS["verbosity"].value >= 1
  if verbose:
    traceback.print_exception(error, file=sys.stderr)
  path = _write_traceback(error)
  where = f" (traceback in {path})" if path else ""
  fail(f"{one_line(error)}{where}", status)


def _excepthook(kind, error, tb) -> None:
  """What escapes a command line's own handling still ends in one line."""
  if issubclass(kind, KeyboardInterrupt):
    print("interrupted", file=sys.stderr)
    return
  try:
    fail_unexpected(error.with_traceback(tb))
  except SystemExit:
    pass


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
  sys.excepthook = _excepthook
  from sinsr_jax.runtime import compile_cache  # deferred: imports JAX (keeps `--help` fast)

  compile_cache.enable()
