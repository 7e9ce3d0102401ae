"""multiprocessing's resource tracker, started with its output on the run's log file."""

from __future__ import annotations

import os


def start(path: str) -> None:
  """Starts multiprocessing's resource tracker with its stderr on ``path``, unless it runs
  already. It outlives the process to unlink what data workers shared; when a prompt stop kills
  a worker that was still starting, it warns of that worker's semaphores as it unlinks them,
  after the stop's last line: the log keeps that, the console does not."""
  from multiprocessing import resource_tracker

  saved = os.dup(2)
  target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
  try:
    os.dup2(target, 2)
    resource_tracker.ensure_running()
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(target)
