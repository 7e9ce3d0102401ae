"""The training console: line formats, ETA arithmetic, terminal vs plain output, where log
records go, and a real run's console (few lines, the metrics in log.txt, no leak warning)."""

import io
import logging
import os
import pty
import re
import subprocess
import sys

import pytest
from absl import logging as absl_logging

from sinsr_jax.runtime import console


def test_durations_rates_and_eta():
  assert [console.format_duration(s) for s in (0, 59.4, 65, 3599, 3600, 7380, 49 * 3600)] == [
      "0s", "59s", "1m05s", "59m59s", "1h00m", "2h03m", "2d01h"]
  assert console.format_rate(2.314) == "2.31 steps/s"
  assert console.format_rate(0.25) == "4.0 s/step"
  assert console.steps_per_second([(10, 100.0), (15, 102.0), (20, 105.0)]) == 2.0
  assert console.steps_per_second([(10, 100.0)]) is None
  assert console.steps_per_second([(10, 100.0), (12, 100.0)]) is None
  assert console.eta_seconds(200, 1200, 2.0) == 500.0
  assert console.eta_seconds(1200, 1200, 2.0) == 0.0
  assert console.eta_seconds(200, 1200, None) is None
  assert [console.phase_of(s, 1000) for s in (1, 1000, 1001)] == ["pretrain", "pretrain", "GAN"]


def test_the_progress_line():
  gan = console.Snapshot(step=1050, total_steps=1200, phase="GAN", steps_per_sec=2.5,
                         losses=console.main_losses({"g_loss": 0.41234, "d_loss": 1.38, "x": 1}),
                         validation=console.validation_gain(
                             800, {"psnr_db": 27.11, "bicubic_psnr_db": 25.79}))
  assert console.progress_text(gan) == (
      "GAN step 1050/1200 | 2.50 steps/s | ETA 1m00s | G 0.4123 D 1.38 | "
      "val +1.32 dB vs bicubic @800")
  pretrain = console.Snapshot(step=1, total_steps=1200, phase="pretrain",
                              status="compiling the pretrain step",
                              losses=console.main_losses({"g_loss": 0.11}))
  assert console.progress_text(pretrain) == (
      "pretrain step 1/1200 | compiling the pretrain step | loss 0.11")
  done = console.Snapshot(step=1200, total_steps=1200, phase="GAN", steps_per_sec=2.0,
                          elapsed_s=605)
  assert console.progress_text(done) == "GAN step 1200/1200 | 2.00 steps/s | took 10m05s"
  assert console.fit_width("x" * 30, 10) == "xxxxxxx..." and console.fit_width("abc", 10) == "abc"
  assert console.validation_line(400, {"psnr_db": 26.1, "bicubic_psnr_db": 25.29}) == (
      "validation at step 400: SR PSNR 26.10 dB, bicubic 25.29 dB, gain +0.81 dB")


def test_terminal_or_plain():
  assert console.wants_live_line(True, "xterm-256color")
  assert not console.wants_live_line(False, "xterm-256color")  # a pipe, a file, a scheduler log
  assert not console.wants_live_line(True, "dumb")


class _Clock:
  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


def _train(progress, clock, steps=range(1, 7), pretrain=3, total=6):
  progress.start(total, pretrain, 0)
  for step in steps:
    clock.now += 0.5
    progress.step_done(step)
    if step % 2 == 0:
      progress.losses(step, {"g_loss": 0.1 * step, **({"d_loss": 1.4} if step > pretrain else {})})
    if step % 3 == 0:
      progress.validation(step, {"psnr_db": 26.0 + step, "bicubic_psnr_db": 25.0})


def test_live_line_is_redrawn_in_place_with_messages_above_it():
  out, clock = io.StringIO(), _Clock()
  progress = console.Progress(out, live=True, clock=clock, width=200)
  _train(progress, clock)
  progress.message("warning: disk almost full")
  progress.close()
  text = out.getvalue()
  lines = text.split("\n")
  # Messages on lines of their own, each clearing the live line first; the line is redrawn after.
  assert lines[0].endswith("validation at step 3: SR PSNR 29.00 dB, bicubic 25.00 dB, gain "
                           "+4.00 dB")
  assert lines[1].endswith("warning: disk almost full")
  assert lines[1].startswith("\r") and "\x1b[K" in lines[1]
  final = lines[2].split("\r")[-1]  # what the terminal shows last, on the last line
  assert final == ("GAN step 6/6 | 2.00 steps/s | took 3s | G 0.6 D 1.4 | "
                   "val +7.00 dB vs bicubic @6\x1b[K")
  assert lines[3] == ""  # closed: ends with a newline, the next output starts on its own line
  assert text.count("\n") == 3


def test_speed_is_timed_where_the_device_has_caught_up():
  """JAX dispatches steps ahead of the device: the speed comes from a phase's first step (after
  its compilation) and the logged windows (their metrics fetched), not from dispatch times."""
  out, clock = io.StringIO(), _Clock()
  progress = console.Progress(out, live=True, clock=clock, width=200)
  progress.start(100, 50, 0)
  clock.now += 60  # compilation
  progress.step_done(1)
  for step in range(2, 11):  # dispatched at once
    clock.now += 0.01
    progress.step_done(step)
  assert "steps/s" not in out.getvalue() and "s/step" not in out.getvalue()
  clock.now = 1060 + 18  # the host waits for step 10's metrics
  progress.losses(10, {"g_loss": 0.5})
  assert out.getvalue().endswith("pretrain step 10/100 | 2.0 s/step | ETA 3m00s | loss 0.5\x1b[K")
  for step in range(11, 21):
    progress.step_done(step)
  clock.now += 10
  progress.losses(20, {"g_loss": 0.4})  # 19 steps in 28 s since step 1
  assert "pretrain step 20/100 | 1.5 s/step | ETA 1m58s | loss 0.4" in out.getvalue()


def test_plain_lines_are_periodic_and_have_no_carriage_returns():
  out, clock = io.StringIO(), _Clock()
  progress = console.Progress(out, live=False, clock=clock, plain_every_s=1.2)
  _train(progress, clock, steps=range(1, 13), total=12, pretrain=6)
  progress.close()
  text = out.getvalue()
  assert "\r" not in text and "\x1b" not in text
  progress_lines = [line[9:] for line in text.splitlines() if re.match(r"\d\d:\d\d:\d\d ", line)]
  # Losses every 2 steps (1 s); a line at most every 1.2 s, plus the first and the last.
  assert [line.split(" |")[0] for line in progress_lines] == [
      "pretrain step 2/12", "pretrain step 6/12", "GAN step 10/12", "GAN step 12/12"]
  validations = [line for line in text.splitlines() if line.startswith("validation")]
  assert [v.split(":")[0] for v in validations] == [f"validation at step {s}" for s in (3, 6, 9)]


def test_disabled_progress_shows_no_progress_but_messages():
  out = io.StringIO()
  progress = console.Progress(out, live=True, enabled=False)
  _train(progress, _Clock())
  assert out.getvalue() == ""
  progress.message("error: boom")
  assert out.getvalue() == "error: boom\n"


@pytest.fixture
def restored_logging():
  """route_logs changes process-wide logging: put it back."""
  root = logging.getLogger()
  handlers, level, current = list(root.handlers), root.level, console._current
  yield
  for handler in root.handlers:
    if handler not in handlers:
      handler.close()
  root.handlers[:] = handlers
  root.setLevel(level)
  logging.captureWarnings(False)
  console._current, console._quiet = current, False


def test_records_go_to_log_txt_and_only_warnings_and_marked_lines_to_the_console(
    tmp_path, restored_logging):
  out = io.StringIO()
  logging.getLogger().setLevel(logging.INFO)
  progress = console.route_logs(str(tmp_path), stream=out)
  assert progress is console.current() and progress.enabled and not progress.live
  absl_logging.info("[2] g_loss=0.11, loss/pixel=0.11")  # what clu's LoggingWriter writes
  console.info("Training %s", "sinsr")
  absl_logging.warning("Taking over the lock of %s", "run")
  logging.getLogger("tensorflow_datasets").warning(
      "Variant folder /x/2.0.0 has no dataset_info.json")
  logging.getLogger("tfds").handle(logging.LogRecord(
      "tfds", logging.WARNING, "/site/tensorflow_datasets/core/file_utils.py", 394,
      "Variant folder %s has no dataset_info.json", ("/x",), None))
  with console.quiet_dataset_preparation():
    print("Dataset sem_synthetic downloaded and prepared to /x.")
  assert out.getvalue() == (
      "Training sinsr\n"
      "warning: Taking over the lock of run\n"
      "warning: Variant folder /x/2.0.0 has no dataset_info.json\n")  # noise only by its file
  log = (tmp_path / "log.txt").read_text()
  for fragment in ("] [2] g_loss=0.11", "] Training sinsr", "] Taking over the lock of run",
                   "file_utils.py:394] Variant folder /x has no dataset_info.json",
                   "] Dataset sem_synthetic downloaded and prepared to /x."):
    assert fragment in log, fragment
  assert log.splitlines()[0].startswith("I")  # absl's format: level letter, date, time, ...


def test_verbose_keeps_absl_console_and_other_processes_show_no_progress(
    tmp_path, restored_logging):
  absl_handler = absl_logging.get_absl_handler()
  logging.getLogger().addHandler(absl_handler)  # as absl's app.run has it
  assert console.route_logs(str(tmp_path), verbosity=1).enabled is False
  assert absl_handler in logging.getLogger().handlers
  progress = console.route_logs(str(tmp_path), process_index=1, stream=io.StringIO())
  assert not progress.enabled
  assert (tmp_path / "log.process-1.txt").exists()


def _cli_env():
  from conftest import REPO
  return REPO, {**os.environ, "PYTHONPATH": str(REPO)}


def _run_flags(data_dir, workdir):
  from test_cli import _tiny_flags

  # Two grain worker processes, as the Quickstart has: their batches travel in shared memory.
  return [*_tiny_flags(data_dir), "--config.data.num_workers=2", "--config.train.log_every=1",
          "--config.train.eval_every=1", f"--workdir={workdir}"]


@pytest.mark.slow
def test_a_run_console_is_short_and_log_txt_holds_the_metrics(tiny_data_dir, tmp_path):
  repo, env = _cli_env()
  result = subprocess.run([sys.executable, "-m", "sinsr_jax.main",
                           *_run_flags(tiny_data_dir, tmp_path)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  err = result.stderr.splitlines()
  assert len(err) <= 6, result.stderr  # Training ..., 2 progress lines, 1 validation line
  assert err[0].startswith("Training sinsr x4 on sem_synthetic/train with 4 device(s)"), err
  assert "logging_writer.py" not in result.stderr and "\r" not in result.stderr
  assert "leaked shared_memory" not in result.stderr, result.stderr
  assert any(" pretrain step 1/2 | " in line for line in err), err
  assert any(" GAN step 2/2 | " in line and "took" in line for line in err), err
  assert result.stdout.strip().splitlines()[-1].startswith("step 2: SR PSNR ")
  log = (tmp_path / "log.txt").read_text()
  assert "logging_writer.py" in log and "] [2] d_accuracy=" in log and "val/psnr_db=" in log
  assert "Final metrics: {'step': 2" in log
  assert "leaked" not in log  # the resource tracker writes to log.txt: a clean exit leaks nothing


@pytest.mark.slow
def test_on_a_terminal_the_progress_is_one_line_redrawn_in_place(tiny_data_dir, tmp_path):
  repo, env = _cli_env()
  controller, terminal = pty.openpty()
  proc = subprocess.Popen([sys.executable, "-m", "sinsr_jax.main",
                           *_run_flags(tiny_data_dir, tmp_path)], cwd=repo,
                          env={**env, "TERM": "xterm", "COLUMNS": "200"},
                          stdout=subprocess.PIPE, stderr=terminal, text=True)
  os.close(terminal)
  chunks = []
  while True:
    try:
      chunk = os.read(controller, 65536)
    except OSError:  # the run closed its end
      break
    if not chunk:
      break
    chunks.append(chunk)
  out, _ = proc.communicate(timeout=600)
  os.close(controller)
  screen = b"".join(chunks).decode()
  assert proc.returncode == 0, screen[-3000:]
  lines = screen.replace("\r\n", "\n").split("\n")
  # Training ..., the validation of step 1, the final state of the progress line.
  assert len([line for line in lines if line.strip()]) == 3, lines
  assert screen.count("\r") > 3  # redrawn in place
  shown = [line.split("\r")[-1].replace("\x1b[K", "") for line in lines if line.strip()]
  assert shown[1].startswith("validation at step 1: SR PSNR "), shown
  assert shown[2].startswith("GAN step 2/2 | ") and "took" in shown[2], shown
  assert "leaked" not in screen and out.strip().startswith("step 2: SR PSNR ")
