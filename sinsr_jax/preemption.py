"""Stopping cleanly when the platform asks: SIGTERM (TPU VM and SLURM preemption, `kill`) or
Ctrl-C ends the current step, writes a checkpoint and exits 0; the same command resumes."""

from __future__ import annotations

import signal
import threading

import jax
from absl import logging


class StopRequest:
  """Installs SIGTERM/SIGINT handlers for the life of a ``with`` block.

  One process: a flag the handler sets. Several: JAX's preemption sync point, which every
  process reaches at the same step (a stop at different steps would hang the collectives).
  """

  def __init__(self):
    self._event = threading.Event()
    self._previous = {}
    self.signal_name = ""

  def _handle(self, signum, frame):
    del frame
    if self._event.is_set() and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: stop now, without the checkpoint
    self.signal_name = signal.Signals(signum).name
    logging.warning("%s received: stopping after this step with a checkpoint.", self.signal_name)
    self._event.set()

  def __enter__(self) -> StopRequest:
    # Several processes: JAX's distributed runtime owns SIGTERM (its preemption notifier).
    signals = (signal.SIGINT,) if jax.process_count() > 1 else (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is threading.main_thread():  # handlers only work there
      for signum in signals:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)

  def should_stop(self, step: int) -> bool:
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils

      try:
        return bool(multihost_utils.reached_preemption_sync_point(step))
      except RuntimeError:  # no preemption service in this runtime
        return False
    return self._event.is_set()
