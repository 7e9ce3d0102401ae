"""The training console: one progress line on a terminal, plain periodic lines elsewhere, and
the whole log in ``<workdir>/log.txt``.

With ``route_logs`` (``python -m sinsr_jax.main`` calls it), by default:

- the console (stderr) shows the progress of process 0 (on a terminal one line redrawn in
  place; otherwise a short line per logged window, at most one every ``PLAIN_EVERY_S`` seconds),
  each validation's gain over bicubic, the few INFO lines meant for a person (``info``), and
  every warning and error on its own line, minus known library noise (``NOISE``);
- ``<workdir>/log.txt`` receives every record in absl's format: clu's metric lines, library
  INFO lines, the noise, Python warnings, and (cli) the traceback of an unforeseen failure.

``--verbosity=1`` puts absl's own console output back (every INFO record, no progress line);
``--verbosity=2`` adds DEBUG records (absl's ``-v 1``). log.txt is written all the same.
``train`` reports to ``current()``, which is silent until ``route_logs`` installs a console: the
library prints nothing of its own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import TextIO

PLAIN_EVERY_S = 30.0  # not a terminal: at most one progress line this often (plus first, last)
_REDRAW_EVERY_S = 0.2  # a terminal: the line is redrawn at most this often between events
_RATE_WINDOW = 4  # steps/s over the last this many timing points (3 logged windows)
_MARK = "sinsr_console"  # LogRecord attribute: an INFO line meant for the console too

# Library warnings that tell the person at the console nothing (they stay in log.txt):
# (file name of the logging call, fragment of the message).
NOISE = (
    ("file_utils.py", "has no dataset_info.json"),  # tfds, each time it prepares a dataset
)


def log_name(process_index: int = 0) -> str:
  """log.txt for process 0; log.process-N.txt for the others (a workdir may be shared)."""
  return "log.txt" if process_index == 0 else f"log.process-{process_index}.txt"


# ---- pure formatting ---------------------------------------------------------------------------

def format_duration(seconds: float) -> str:
  """'42s', '4m05s', '2h03m', '3d04h'."""
  s = max(0, int(round(seconds)))
  if s < 60:
    return f"{s}s"
  m, s = divmod(s, 60)
  if m < 60:
    return f"{m}m{s:02d}s"
  h, m = divmod(m, 60)
  if h < 48:
    return f"{h}h{m:02d}m"
  d, h = divmod(h, 24)
  return f"{d}d{h:02d}h"


def format_rate(steps_per_sec: float) -> str:
  """'2.31 steps/s', or seconds per step below one step a second ('7.4 s/step')."""
  if steps_per_sec >= 1:
    return f"{steps_per_sec:.2f} steps/s"
  return f"{1 / steps_per_sec:.1f} s/step"


def steps_per_second(samples: Sequence[tuple[int, float]]) -> float | None:
  """The rate over (step, time) samples, oldest first; None without two distinct ones."""
  if len(samples) < 2:
    return None
  (s0, t0), (s1, t1) = samples[0], samples[-1]
  return (s1 - s0) / (t1 - t0) if t1 > t0 and s1 > s0 else None


def eta_seconds(step: int, total_steps: int, steps_per_sec: float | None) -> float | None:
  """Seconds to ``total_steps`` at ``steps_per_sec``; None while the rate is unknown."""
  if not steps_per_sec or steps_per_sec <= 0:
    return None
  return max(0, total_steps - step) / steps_per_sec


def phase_of(step: int, pretrain_steps: int) -> str:
  """'pretrain' (pixel loss) up to ``pretrain_steps``, then 'GAN'."""
  return "pretrain" if step <= pretrain_steps else "GAN"


def main_losses(summary: Mapping[str, float]) -> str:
  """The losses a person follows: G and D in the GAN phase, the generator's in pretraining."""
  if "d_loss" in summary and "g_loss" in summary:
    return f"G {summary['g_loss']:.4g} D {summary['d_loss']:.4g}"
  if "g_loss" in summary:
    return f"loss {summary['g_loss']:.4g}"
  return ""


def validation_gain(step: int, record: Mapping[str, float]) -> str:
  """'val +1.32 dB vs bicubic @800': SR PSNR minus bicubic PSNR at a validation."""
  return f"val {record['psnr_db'] - record['bicubic_psnr_db']:+.2f} dB vs bicubic @{step}"


def validation_line(step: int, record: Mapping[str, float]) -> str:
  """The line a validation leaves on the console."""
  return (f"validation at step {step}: SR PSNR {record['psnr_db']:.2f} dB, bicubic "
          f"{record['bicubic_psnr_db']:.2f} dB, gain "
          f"{record['psnr_db'] - record['bicubic_psnr_db']:+.2f} dB")


@dataclasses.dataclass
class Snapshot:
  """What the progress line shows."""

  step: int
  total_steps: int
  phase: str
  steps_per_sec: float | None = None
  elapsed_s: float | None = None  # shown instead of the ETA once the last step is done
  losses: str = ""
  validation: str = ""
  status: str = ""  # e.g. "compiling the GAN step": shown instead of rate and ETA


def progress_text(s: Snapshot) -> str:
  """'GAN step 1050/1200 | 2.31 steps/s | ETA 1m05s | G 0.41 D 1.38 | val +1.21 dB ...'."""
  parts = [f"{s.phase} step {s.step}/{s.total_steps}"]
  if s.status:
    parts.append(s.status)
  else:
    if s.steps_per_sec:
      parts.append(format_rate(s.steps_per_sec))
    if s.step >= s.total_steps and s.elapsed_s is not None:
      parts.append(f"took {format_duration(s.elapsed_s)}")
    else:
      eta = eta_seconds(s.step, s.total_steps, s.steps_per_sec)
      if eta is not None:
        parts.append(f"ETA {format_duration(eta)}")
  parts += [p for p in (s.losses, s.validation) if p]
  return " | ".join(parts)


def fit_width(line: str, width: int) -> str:
  """``line`` cut to ``width`` characters: a wrapped line cannot be redrawn in place."""
  return line if len(line) <= width else line[:max(0, width - 3)] + "..."


def wants_live_line(isatty: bool, term: str | None) -> bool:
  """A line redrawn in place only on a real terminal (not a pipe, file or dumb terminal)."""
  return isatty and term not in ("dumb", "unknown")


def is_noise(record: logging.LogRecord) -> bool:
  """A library warning listed in ``NOISE``."""
  name = os.path.basename(record.pathname)
  return any(name == file and fragment in record.getMessage() for file, fragment in NOISE)


# ---- the console -------------------------------------------------------------------------------

class Progress:
  """The progress of one training launch on ``stream``: a line redrawn in place (``live``) or
  plain periodic lines. Disabled (other processes, the library), it shows no progress; its
  ``message`` still writes (warnings and errors of every process)."""

  def __init__(self, stream: TextIO | None = None, *, live: bool = False, enabled: bool = True,
               plain_every_s: float = PLAIN_EVERY_S, clock=time.monotonic, width=None):
    self.stream = stream or sys.stderr
    self.live, self.enabled, self.plain_every_s = live, enabled, plain_every_s
    self._clock, self._width = clock, width
    self._lock = threading.RLock()  # warnings arrive from other threads (checkpoint writers)
    self._drawn = False  # a live line is on the screen
    self._last_draw = self._last_plain = None
    self._snapshot: Snapshot | None = None
    self._status = ""
    self._pretrain_steps = 0
    # Timing points (step, time) where the device had finished every step dispatched so far:
    # a phase's first step (it waited for its compilation) or the first after a validation, and
    # each logged window (its metrics were fetched). Between them JAX dispatches steps ahead of
    # the device: timing those would measure dispatch, not training.
    self._samples: deque = deque(maxlen=_RATE_WINDOW)
    self._synced = False  # the next step_done is a timing point
    self._rate = None
    self._started = None

  def start(self, total_steps: int, pretrain_steps: int, start_step: int) -> None:
    """A launch begins (or resumes) at ``start_step``."""
    if not self.enabled:
      return
    self._pretrain_steps = pretrain_steps
    self._started = self._clock()
    self._snapshot = Snapshot(start_step, total_steps, phase_of(start_step + 1, pretrain_steps))
    self._status, self._synced = "", True
    self._redraw()

  def status(self, text: str) -> None:
    """Shown (live only) in place of rate and ETA until the next step ends: what it waits for."""
    if not self.enabled:
      return
    self._status = text
    self._redraw()

  def step_done(self, step: int) -> None:
    """Called after every step (dispatched)."""
    s = self._snapshot
    if s is None:
      return
    phase = phase_of(step, self._pretrain_steps)
    if phase != s.phase:  # another step function, another speed: measure it afresh
      self._samples.clear()
      self._rate, self._synced, s.losses = None, True, ""
    now = self._clock()
    if self._synced:
      self._samples.append((step, now))
      self._synced = False
    s.step, s.phase, s.steps_per_sec, self._status = step, phase, self._rate, ""
    s.elapsed_s = now - self._started
    if self._last_draw is None or now - self._last_draw >= _REDRAW_EVERY_S or \
        step >= s.total_steps:
      self._redraw()

  def losses(self, step: int, summary: Mapping[str, float]) -> None:
    """A logged window's mean metrics; not a terminal, this is when a plain line is written."""
    s = self._snapshot
    if s is None:
      return
    s.losses = main_losses(summary)
    self._samples.append((step, self._clock()))  # its metrics are on the host: a timing point
    self._rate = s.steps_per_sec = steps_per_second(self._samples) or self._rate
    if self.live:
      self._redraw()
      return
    now = self._clock()
    if self._last_plain is None or now - self._last_plain >= self.plain_every_s or \
        step >= s.total_steps:
      self._last_plain = now
      self._write(time.strftime("%H:%M:%S ") + progress_text(self._current()) + "\n")

  def validation(self, step: int, record: Mapping[str, float]) -> None:
    """A validation's result: kept on the line, and on a line of its own before the last step
    (the command's own summary line reports the last)."""
    if self._snapshot is None:
      return
    self._snapshot.validation = validation_gain(step, record)
    self._status = ""
    self._samples.clear()  # the validation's time is not training speed
    self._synced = True
    if step < self._snapshot.total_steps:
      self.message(validation_line(step, record))
    else:
      self._redraw()

  def message(self, text: str) -> None:
    """``text`` on lines of its own, above the live line (redrawn after); written by every
    process, whether or not it shows progress."""
    with self._lock:
      self._write(("\r\x1b[K" if self._drawn else "") + text.rstrip("\n") + "\n")
      self._drawn = False
      self._redraw()

  def close(self) -> None:
    """Leaves the last state of the live line on screen and ends it; later output starts on a
    line of its own."""
    with self._lock:
      if self._drawn:
        self._status = ""
        self._redraw()
        self._write("\n")
      self._drawn = False
      self.live = False

  def _current(self) -> Snapshot:
    return dataclasses.replace(self._snapshot, status=self._status)

  def _redraw(self) -> None:
    if not (self.enabled and self.live):
      return
    if self._snapshot is None and not self._status:
      return
    with self._lock:
      text = progress_text(self._current()) if self._snapshot else self._status
      self._write("\r" + fit_width(text, self._columns() - 1) + "\x1b[K")
      self._drawn = True
      self._last_draw = self._clock()

  def _columns(self) -> int:
    """The terminal's width (the one stderr is on, whatever stdout is), else $COLUMNS or 100."""
    if self._width:
      return self._width
    try:
      columns = os.get_terminal_size(self.stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
      columns = 0
    return columns or shutil.get_terminal_size((100, 24)).columns

  def _write(self, text: str) -> None:
    try:
      self.stream.write(text)
      self.stream.flush()
    except (OSError, ValueError):  # a closed or broken console must not stop the training
      pass


class _ConsoleHandler(logging.Handler):
  """Warnings and errors (and the INFO lines marked by ``info``) on the console, as lines."""

  def __init__(self, progress: Progress):
    super().__init__(logging.INFO)
    self.progress = progress

  def emit(self, record: logging.LogRecord) -> None:
    if record.levelno < logging.WARNING and not getattr(record, _MARK, False):
      return
    if record.levelno >= logging.WARNING and is_noise(record):
      return
    try:
      text = record.getMessage()
      if record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
      prefix = ("error: " if record.levelno >= logging.ERROR else
                "warning: " if record.levelno >= logging.WARNING else "")
      self.progress.message(prefix + text)
    except Exception:
      self.handleError(record)


_current = Progress(enabled=False)
_quiet = False  # route_logs in its default mode: library prints go to log.txt


def current() -> Progress:
  """The installed console; a silent one when none is (training called as a library)."""
  return _current


def info(message: str, *args) -> None:
  """An INFO record for log.txt that the console shows too (what runs, where, from when)."""
  from absl import logging as absl_logging

  absl_logging.info(message, *args, extra={_MARK: True})


def close() -> None:
  """Ends the live line, if any, before a command writes its last lines."""
  _current.close()


def route_logs(workdir: str, *, verbosity: int = 0, process_index: int = 0,
               stream: TextIO | None = None) -> Progress:
  """Sends every log record to ``workdir/log.txt`` and sets up the console (module docstring);
  returns the installed ``Progress``. A workdir that cannot be written gets no log file: the
  training's own check then names the problem."""
  global _current, _quiet
  from absl import logging as absl_logging

  from sinsr_jax.runtime import paths, resource_tracker_log

  stream = stream or sys.stderr
  root = logging.getLogger()
  try:
    folder = paths.appendable_folder(workdir, log_name(process_index))
    to_file = logging.FileHandler(os.path.join(folder, log_name(process_index)),
                                  encoding="utf-8")
    to_file.setFormatter(absl_logging.PythonFormatter())
    root.addHandler(to_file)
    resource_tracker_log.start(to_file.baseFilename)
  except OSError:
    pass
  logging.captureWarnings(True)  # Python warnings become records: log.txt and the console
  verbose = verbosity >= 1
  if verbosity == 1:  # today's console, INFO and up; absl's DEBUG (-v 1) is --verbosity=2
    root.setLevel(logging.INFO)
  isatty = hasattr(stream, "isatty") and stream.isatty()
  _current = Progress(stream, live=wants_live_line(isatty, os.environ.get("TERM")),
                      enabled=process_index == 0 and not verbose)
  _quiet = not verbose
  if not verbose:
    root.removeHandler(absl_logging.get_absl_handler())
    root.addHandler(_ConsoleHandler(_current))
  return _current


@contextlib.contextmanager
def quiet_dataset_preparation(logger_name: str = "prints") -> Iterator[None]:
  """While the console is in its default mode: tfds' progress bars off (they would tear the
  progress line) and what libraries print to stdout (tfds' preparation messages) to log.txt."""
  if not _quiet:
    yield
    return
  import tensorflow_datasets as tfds

  tfds.disable_progress_bar()
  buffer = io.StringIO()
  try:
    with contextlib.redirect_stdout(buffer):
      yield
  finally:
    for line in buffer.getvalue().splitlines():
      if line.strip():
        logging.getLogger(logger_name).info(line)
