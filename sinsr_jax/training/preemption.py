"""Stopping when the platform asks: SIGTERM (TPU VM and SLURM preemption, `kill`) or Ctrl-C.

Before the first step of a launch has finished (data preparation, restore, compilation) there is
nothing to save: the process stops within seconds, the newest checkpoint on disk being the state
to resume from. During training the current step ends, a checkpoint is written and the process
exits 0; a second signal stops at once. The same command resumes in every case.

A Python signal handler runs only when the main thread returns to the interpreter, which a
15-minute XLA compilation does not do; so a prompt stop is the work of a watcher thread, woken
through ``signal``'s wakeup file descriptor: it runs the registered cleanups (grain's worker
processes, the workdir lock), prints one line and ends the process with ``os._exit`` (status
128 + the signal number). Unwinding the main thread instead could interrupt a library at any
line (a worker process half started) and leave its exit handlers to fail noisily. A cleanup
that hangs (a data worker caught half started, which a join then waits on forever) does not
hold the stop: after ``HARD_STOP_S`` the child processes are killed, the essential cleanups
(the workdir lock) run, and the process ends all the same.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import signal
import sys
import threading
from collections.abc import Callable

import jax
from absl import logging

from sinsr_jax.runtime import console, paths

HARD_STOP_S = 10.0  # a prompt stop's graceful cleanups get this long before the forced end


def newest_checkpoint_on_disk(workdir: str | None) -> int | None:
  """The newest finalized checkpoint's step (orbax writes into ``<step>.orbax-checkpoint-tmp``
  folders and renames them when complete)."""
  folder = paths.join(workdir, "checkpoints") if workdir else None
  try:
    steps = [int(d) for d in paths.listdir(folder) if d.isdigit()] if folder else []
  except OSError:
    steps = []
  return max(steps, default=None)


def _kill_children_left() -> None:
  """Kills the child processes the cleanups left (a data worker still importing would print a
  traceback once this process is gone). multiprocessing's resource tracker is spared: it
  outlives this process to unlink what the workers shared. Linux only (/proc)."""
  from multiprocessing import resource_tracker

  tracker = getattr(getattr(resource_tracker, "_resource_tracker", None), "_pid", None)
  children = set()
  for listing in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
    try:
      with open(listing) as f:
        children.update(int(pid) for pid in f.read().split())
    except (OSError, ValueError):  # a thread that just ended
      pass
  for pid in children - {tracker}:
    try:
      os.kill(pid, signal.SIGKILL)
    except OSError:  # already gone
      pass


# Held while a child process is being started. A spawned child reads its start-up data from a
# pipe the parent writes right after creating it; a prompt stop between the two made the child
# print "EOFError: Ran out of input". The stop takes this lock and keeps it: a start under way
# finishes (milliseconds), the next one waits until the process is gone.
_STARTING_CHILD = threading.Lock()


@contextlib.contextmanager
def _child_starts_guarded():
  """Wraps multiprocessing's spawn start-up (what grain's workers use) in ``_STARTING_CHILD``."""
  from multiprocessing import popen_spawn_posix

  original = popen_spawn_posix.Popen._launch

  def launch(self, process_obj):
    with _STARTING_CHILD:
      return original(self, process_obj)

  popen_spawn_posix.Popen._launch = launch
  try:
    yield
  finally:
    popen_spawn_posix.Popen._launch = original


class StopRequest:
  """Installs SIGTERM/SIGINT handlers for the life of a ``with`` block.

  One process: a flag the handler sets once ``arm()`` was called (the first step is done). Several:
  JAX's preemption sync point, which every process reaches at the same step (a stop at
  different steps would hang the collectives).
  """

  def __init__(self, workdir: str | None = None):
    self._workdir = workdir
    self._event = threading.Event()  # a deferred stop was asked for
    self._armed = False
    self._seen = 0
    self._previous = {}
    self._cleanups: list[Callable[[], None]] = []
    self._essential: list[Callable[[], None]] = []
    self._done: list[Callable[[], None]] = []  # the cleanups that have run
    self._ending = threading.Lock()  # the graceful path or the deadline: one of them ends it
    self._pipe = None
    self._previous_fd = -1
    self._watcher = None
    self._guard = contextlib.ExitStack()
    self.signal_name = ""

  def arm(self) -> None:
    """From now on a first signal ends the current step and checkpoints."""
    self._armed = True

  def on_hard_stop(self, cleanup: Callable[[], None], essential: bool = False) -> None:
    """Runs ``cleanup`` (newest first) before a prompt stop ends the process. ``essential``: also
    when the stop is forced past its deadline (quick, and never blocks: the workdir lock)."""
    self._cleanups.append(cleanup)
    if essential:
      self._essential.append(cleanup)

  def _message(self, name: str) -> str:
    step = newest_checkpoint_on_disk(self._workdir)
    resume = f"resumes from step {step}" if step is not None else "starts from step 0"
    if self._armed:
      return (f"stopped at once by a second signal ({name}), without a checkpoint: the same "
              f"command {resume}")
    return (f"stopped by {name} before the first step of this launch finished; nothing to save:"
            f" the same command {resume}")

  def _handle(self, signum, frame):
    """The main thread's side: a first signal during training asks for a stop after the step;
    prompt stops are the watcher's. No I/O here: the signal may have interrupted the main thread
    inside a write to the same log stream ("reentrant call"); the watcher says it."""
    del frame
    if self._armed and not self._event.is_set():
      self.signal_name = signal.Signals(signum).name
      self._event.set()

  def _watch(self, read_fd: int) -> None:
    while True:
      try:
        data = os.read(read_fd, 64)
      except OSError:
        return
      for signum in data:
        if signum == 0:  # the block ended
          return
        if signum not in self._previous:  # another library's handler: not a stop
          continue
        self._seen += 1
        if not self._armed or self._seen > 1:
          self._hard_stop(signum)
        else:  # a thread of its own: waits for the log's lock instead of re-entering its stream
          logging.warning("%s received: stopping after this step with a checkpoint.",
                          signal.Signals(signum).name)

  def _hard_stop(self, signum: int) -> None:
    message = self._message(signal.Signals(signum).name)
    deadline = threading.Timer(HARD_STOP_S, self._forced_stop, (signum, message))
    deadline.daemon = True
    deadline.start()
    _STARTING_CHILD.acquire(timeout=HARD_STOP_S / 2)  # kept: a start under way ends, no other
    for cleanup in reversed(self._cleanups):
      try:
        cleanup()
      except Exception as e:  # the process ends anyway; say why a cleanup did not finish
        logging.warning("Cleanup before stopping failed: %s", e)
      self._done.append(cleanup)
    # What atexit would do for multiprocessing: its finalizers unlink the semaphores of the
    # queues (else the resource tracker reports them as leaked) and stop child processes.
    # Anything they print (a finalizer of a worker that failed to start) goes to log.txt.
    from multiprocessing import util as mp_util

    with contextlib.redirect_stderr(io.StringIO()) as finalizers:
      mp_util._exit_function()
    if finalizers.getvalue():
      logging.info("Exit handlers before stopping: %s", finalizers.getvalue())
    self._end(signum, message)

  def _forced_stop(self, signum: int, message: str) -> None:
    """The deadline's side: a graceful cleanup hangs. The children go first (what a join waits
    on), then the essential cleanups that have not run, then the same one line."""
    if not self._ending.acquire(blocking=False):
      return
    logging.warning("Cleanups did not finish in %.0f s: ending the process anyway.", HARD_STOP_S)
    _kill_children_left()
    for cleanup in [c for c in reversed(self._essential) if c not in self._done]:
      try:
        cleanup()
      except Exception as e:
        logging.warning("Cleanup before stopping failed: %s", e)
    self._end(signum, message, held=True)

  def _end(self, signum: int, message: str, held: bool = False) -> None:
    if not held and not self._ending.acquire(blocking=False):
      threading.Event().wait()  # the deadline's thread is ending the process
    console.close()  # a progress line on the terminal ends first
    sys.stderr.flush()
    print(message, flush=True)
    _kill_children_left()
    os._exit(128 + signum)

  def __enter__(self) -> StopRequest:
    # Several processes: JAX's distributed runtime owns SIGTERM (its preemption notifier).
    signals = (signal.SIGINT,) if jax.process_count() > 1 else (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():  # handlers only work there
      return self
    self._guard.enter_context(_child_starts_guarded())
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
    self._guard.close()

  def should_stop(self, step: int) -> bool:
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils

      try:
        return bool(multihost_utils.reached_preemption_sync_point(step))
      except RuntimeError:  # no preemption service in this runtime
        return False
    return self._event.is_set()
