"""Stopping when the platform asks: SIGTERM (TPU VM and SLURM preemption, `kill`) or Ctrl-C.

Before the first step of a launch has finished (data preparation, restore, compilation) there is
nothing to save: the process stops within seconds, the newest checkpoint on disk being the state
to resume from. During training the current step ends, a checkpoint is written and the process
exits 0; a second signal stops at once. The same command resumes in every case.

A Python signal handler runs only when the main thread returns to the interpreter, which a
15-minute XLA compilation does not do; so a watcher thread, woken through ``signal``'s wakeup
file descriptor, ends the process itself (cleanups first, then ``os._exit``) when the main thread
has not started stopping within ``grace_s``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable

import jax
from absl import logging


class StopNow(BaseException):  # noqa: N818  (like KeyboardInterrupt: not caught as an error)
  """A prompt stop: the message to print and the exit status (128 + the signal number)."""

  def __init__(self, message: str, status: int):
    super().__init__(message)
    self.message, self.status = message, status


def newest_checkpoint_on_disk(workdir: str | None) -> int | None:
  """The newest finalized checkpoint's step (orbax writes into ``<step>.orbax-checkpoint-tmp``
  folders and renames them when complete)."""
  folder = os.path.join(workdir, "checkpoints") if workdir else None
  try:
    steps = [int(d) for d in os.listdir(folder) if d.isdigit()] if folder else []
  except OSError:
    steps = []
  return max(steps, default=None)


class StopRequest:
  """Installs SIGTERM/SIGINT handlers for the life of a ``with`` block.

  One process: a flag the handler sets once ``arm()`` was called (the first step is done). Several:
  JAX's preemption sync point, which every process reaches at the same step (a stop at
  different steps would hang the collectives).
  """

  def __init__(self, workdir: str | None = None, grace_s: float = 3.0):
    self._workdir = workdir
    self._grace_s = grace_s
    self._event = threading.Event()  # a deferred stop was asked for
    self._stopping = threading.Event()  # the main thread is unwinding a StopNow
    self._armed = False
    self._seen = 0
    self._previous = {}
    self._cleanups: list[Callable[[], None]] = []
    self._pipe = None
    self._previous_fd = -1
    self._watcher = None
    self.signal_name = ""

  def arm(self) -> None:
    """From now on a first signal ends the current step and checkpoints."""
    self._armed = True

  def on_hard_stop(self, cleanup: Callable[[], None]) -> None:
    """Runs ``cleanup`` (newest first) before the watcher ends a process stuck in native code."""
    self._cleanups.append(cleanup)

  def _message(self, name: str) -> str:
    step = newest_checkpoint_on_disk(self._workdir)
    resume = f"resumes from step {step}" if step is not None else "starts from step 0"
    if self._armed:
      return (f"stopped at once by a second signal ({name}), without a checkpoint: the same "
              f"command {resume}")
    return (f"stopped by {name} before the first step of this launch finished; nothing to save:"
            f" the same command {resume}")

  def _prompt(self) -> bool:
    return not self._armed or self._event.is_set()

  def _handle(self, signum, frame):
    del frame
    name = signal.Signals(signum).name
    if self._stopping.is_set():
      return  # already unwinding; the watcher ends the process if it is asked again
    if self._prompt():
      self._stopping.set()
      raise StopNow(self._message(name), 128 + signum)
    self.signal_name = name
    logging.warning("%s received: stopping after this step with a checkpoint.", name)
    self._event.set()

  def _watch(self, read_fd: int) -> None:
    prompt_signals = 0
    while True:
      try:
        data = os.read(read_fd, 64)
      except OSError:
        return
      for signum in data:
        if signum == 0:  # the block ended
          return
        self._seen += 1
        if self._armed and self._seen < 2:
          continue  # the handler defers this one
        prompt_signals += 1
        if prompt_signals > 1 or not self._stopping.wait(self._grace_s):
          self._hard_stop(signum)

  def _hard_stop(self, signum: int) -> None:
    """The main thread is inside native code: clean up here and end the process."""
    message = self._message(signal.Signals(signum).name)
    for cleanup in reversed(self._cleanups):
      try:
        cleanup()
      except Exception as e:  # the process ends anyway; say why a cleanup did not finish
        logging.warning("Cleanup before stopping failed: %s", e)
    sys.stderr.flush()
    print(message, flush=True)
    os._exit(128 + signum)

  def __enter__(self) -> StopRequest:
    # Several processes: JAX's distributed runtime owns SIGTERM (its preemption notifier).
    signals = (signal.SIGINT,) if jax.process_count() > 1 else (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():  # handlers only work there
      return self
    for signum in signals:
      self._previous[signum] = signal.signal(signum, self._handle)
    self._pipe = os.pipe()
    os.set_blocking(self._pipe[1], False)
    self._previous_fd = signal.set_wakeup_fd(self._pipe[1], warn_on_full_buffer=False)
    self._watcher = threading.Thread(target=self._watch, args=(self._pipe[0],), daemon=True,
                                     name="stop-request-watcher")
    self._watcher.start()
    return self

  def __exit__(self, *exc) -> None:
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    self._previous = {}
    if self._pipe is not None:
      signal.set_wakeup_fd(self._previous_fd)
      os.write(self._pipe[1], b"\0")
      self._watcher.join(timeout=5)
      for fd in self._pipe:
        os.close(fd)
      self._pipe = None

  def should_stop(self, step: int) -> bool:
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils

      try:
        return bool(multihost_utils.reached_preemption_sync_point(step))
      except RuntimeError:  # no preemption service in this runtime
        return False
    return self._event.is_set()
