"""Command line: ``python -m sinsr_jax.main --config=configs/sinsr.py[:variants] --workdir=DIR``.

Any config value can be overridden with ``--config.a.b=value``. Mistakes the user can fix (an
unknown key, an impossible scale, an unwritable folder, ...) end with one ``error:`` line and
exit status 2 (flags) or 1 (everything else), never a traceback (an unforeseen failure's goes
to ``WORKDIR/log.txt``, and to the console with ``--verbosity=1``).

The console shows the training's progress (sinsr_jax/console.py); ``WORKDIR/log.txt`` holds the
whole log (every metric, library messages); ``--verbosity=1`` shows that log on the console too.
"""

from __future__ import annotations

import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # clu imports TensorFlow; keep it quiet
# TensorFlow 2.21 announces its oneDNN ops through absl's C++ log, which that level does not
# silence; no TensorFlow op computes anything here.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from sinsr_jax.runtime.cli import fail as _fail  # noqa: E402
from sinsr_jax.runtime.cli import fail_unexpected, log_failures_to, prepare_process  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file, optionally with variants: configs/sinsr.py:quick",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: checkpoints, logs, metrics.json.")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "evaluate"],
                          "train (resumes from the workdir if it holds checkpoints) or evaluate "
                          "the newest checkpoint on config.data.eval_split.")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Join a multi-process run: jax.distributed.initialize() finds the "
    "cluster from the platform (TPU VM, SLURM, ...) or from the three flags below.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 (implies --distributed).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0-based.")
_STOPPED_EXIT = flags.DEFINE_integer(
    "exit_code_when_stopped", 0, "Exit status of a training stopped by a signal (preemption) "
    "before its last step, for launchers that start it again (launch/: 75).")




def _unknown_override(config, dotted: str) -> str | None:
  """Describes why ``dotted`` is not a key of ``config``, naming the valid keys; None if it is."""
  node, path = config, []
  for part in dotted.split("."):
    keys = list(node.keys()) if hasattr(node, "keys") else []
    if part not in keys:
      where = ".".join(["config", *path])
      valid = ", ".join(sorted(keys)) or "none (not a group)"
      return f"unknown config key --{where}.{part}; valid keys of {where}: {valid}"
    node, path = node[part], [*path, part]
  return None


def _config_spec(argv: list[str]) -> str | None:
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      return arg.split("=", 1)[1]
    if arg == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return None


def _load_config_quietly(spec: str | None):
  """The config named by ``path[:arg]`` without overrides, or None if it cannot be loaded."""
  if not spec:
    return None
  path, _, arg = spec.partition(":")
  try:
    module_spec = importlib.util.spec_from_file_location("_sinsr_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()
  except Exception:
    return None


def _describe(error: BaseException) -> str:
  """One line: the error's own first line, completed by its root cause when it ends in ':'."""
  top = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
  if not top.endswith(":"):
    return top
  root = error
  while root.__cause__ is not None or root.__context__ is not None:
    root = root.__cause__ or root.__context__
  lines = str(root).strip().splitlines()
  return f"{top} {lines[-1] if lines else type(root).__name__}"


def parse_flags(argv: list[str]) -> list[str]:
  """Parses flags, turning every config mistake into one ``error:`` line (exit status 2)."""
  spec = _config_spec(argv)
  if spec and not os.path.isfile(spec.partition(":")[0]):
    _fail(f"config file {spec.partition(':')[0]} not found", 2)
  try:
    parsed = flags.FLAGS(argv)
    config = _CONFIG.value
    if config is not None:
      config.keys()  # a config file that failed to load raises its error on first use
  except Exception as e:  # absl wraps config-file errors in flag errors: find the real one
    config = _load_config_quietly(spec)
    for arg in (a for a in argv[1:] if a.startswith("--config.") and config is not None):
      problem = _unknown_override(config, arg[2:].split("=", 1)[0][len("config."):])
      if problem:
        _fail(problem, 2)
    _fail(_describe(e), 2)
  if config is None:
    _fail("--config is required, e.g. --config=configs/sinsr.py:quick", 2)
  return parsed


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    _fail(f"unexpected arguments: {' '.join(argv[1:])}", 2)
  prepare_process()
  from sinsr_jax.errors import UserError  # deferred: keeps `--help` fast

  if _DISTRIBUTED.value or _COORDINATOR.value:
    from sinsr_jax.training import distributed

    try:
      distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    except UserError as e:
      _fail(str(e))
  if _WORKDIR.value is None:
    _fail("--workdir is required", 2)
  log_failures_to(_WORKDIR.value)
  import jax

  from sinsr_jax.runtime import console

  console.route_logs(_WORKDIR.value, verbosity=flags.FLAGS.verbosity,
                     process_index=jax.process_index())
  try:
    from sinsr_jax.training import train

    if _MODE.value == "train":
      record = train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    else:
      record = train.evaluate(_CONFIG.value, _WORKDIR.value)
  except UserError as e:
    _fail(str(e))
  except Exception as e:  # a failure no check foresaw: one line, the traceback in log.txt
    fail_unexpected(e)
  logging.info("Final metrics: %s", record)
  console.close()
  if record.get("stopped"):
    print(f"stopped by {record['stopped']}; checkpoint written: the same command resumes")
    if _STOPPED_EXIT.value:
      sys.exit(_STOPPED_EXIT.value)
  elif record:
    gain = record["psnr_db"] - record["bicubic_psnr_db"]
    print(f"step {record['step']}: SR PSNR {record['psnr_db']:.2f} dB, SSIM {record['ssim']:.4f}"
          f" | bicubic PSNR {record['bicubic_psnr_db']:.2f} dB, SSIM {record['bicubic_ssim']:.4f}"
          f" | gain {gain:+.2f} dB")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
