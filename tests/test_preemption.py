"""sinsr_jax/training/preemption.py: a prompt stop ends the process even when a cleanup hangs."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from conftest import REPO

# A process inside a StopRequest, before its first step: one cleanup never returns (a data
# worker's join that waits forever), the essential one (the workdir lock) writes a file.
SCRIPT = textwrap.dedent("""
    import sys, threading, time
    from sinsr_jax.training import preemption
    preemption.HARD_STOP_S = float(sys.argv[2])
    with preemption.StopRequest(None) as stop:
      stop.on_hard_stop(lambda: open(sys.argv[1], "w").write("released"), essential=True)
      stop.on_hard_stop(lambda: threading.Event().wait())  # hangs
      print("ready", flush=True)
      time.sleep(120)
""")


def _stopped(tmp_path, deadline_s: float):
  marker = tmp_path / "lock-released"
  proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker), str(deadline_s)],
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  assert proc.stdout.readline().strip() == "ready"
  signalled = time.time()
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=60)
  return proc.returncode, out, time.time() - signalled, marker


def test_a_cleanup_that_hangs_does_not_hold_a_prompt_stop(tmp_path):
  code, out, took, marker = _stopped(tmp_path, 1.0)
  assert code == 128 + signal.SIGTERM, out
  assert took < 20, out  # the deadline (1 s) and the interpreter's start-up noise, not 60 s
  assert marker.read_text() == "released"  # the essential cleanup ran all the same
  assert out.strip().splitlines()[-1] == (
      "stopped by SIGTERM before the first step of this launch finished; nothing to save: the "
      "same command starts from step 0")
  assert out.count("stopped by SIGTERM") == 1  # said once, by the deadline's side
  assert "Traceback" not in out
