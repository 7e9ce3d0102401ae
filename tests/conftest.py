"""Test setup: 4 simulated CPU devices (set before JAX starts), shared tiny data and configs."""

import os

from sinsr_jax.runtime import xla_cpu  # imports no JAX: the flags below still take effect

# The suite's tiny models spend most of their time compiling, not running: FAST_COMPILE and no
# LLVM optimisation, as the product compiles its run-once programs (a tiny SINSR GAN step
# compiles in 11 s instead of 45 s). Subprocesses inherit the flags.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_force_host_platform_device_count=4",
     "--xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_COMPILE"]
    + [f"--{k}={str(v).lower()}" for k, v in xla_cpu.RUN_ONCE_OPTIONS.items()]).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # as the entry points set it

import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "configs"))

import jax  # noqa: E402
import sinsr as sinsr_config  # noqa: E402  (configs/sinsr.py)
from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()  # grain's workers read absl flags; pytest never parses them


CACHE_MIN_COMPILE_SECS = 1.0


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
  """Share compiled steps between the tests' training runs (same HLO, no recompile).

  Subprocesses (the command lines under test) and the other pytest-xdist workers share it too,
  and none writes to the user's own cache (sinsr_jax/runtime/compile_cache.py). A size bound
  makes JAX lock the folder around each read and write, which concurrent processes need.

  Only programs that take a second or more to compile are written (JAX's default): each write
  scans the whole folder under that lock to decide on evictions, so caching the millisecond
  compiles of eager operations too made a 150-step test 3-10x slower once the suite's cache held
  a few thousand entries. The environment carries the settings to the command lines under test.
  """
  base = tmp_path_factory.getbasetemp()
  shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
  path = shared / "jax_cache"
  path.mkdir(exist_ok=True)
  jax.config.update("jax_compilation_cache_dir", str(path))
  jax.config.update("jax_compilation_cache_max_size", 16 << 30)
  os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path)
  os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(16 << 30)
  os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = str(CACHE_MIN_COMPILE_SECS)
  os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"
  jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECS)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
  """A prepared sem_synthetic/tiny dataset (96x96 images, 16/4/4 split)."""
  import tensorflow_datasets as tfds

  import tfds_sem  # noqa: F401

  data_dir = str(tmp_path_factory.mktemp("tfds"))
  tfds.builder("sem_synthetic/tiny", data_dir=data_dir,
               file_format="array_record").download_and_prepare()
  return data_dir


@pytest.fixture(scope="session")
def trained_tiny_run(tiny_data_dir, tmp_path_factory) -> pathlib.Path:
  """A tiny SINSR trained for 3 steps, shared by the tests that read a run (evaluate, upscale,
  adaptation); they copy it before writing anything into it."""
  from sinsr_jax.training import train

  path = tmp_path_factory.mktemp("trained") / "run"
  train.train_and_evaluate(tiny_config(tiny_data_dir, num_steps=3, pretrain_steps=2,
                                       eval_every=3, checkpoint_every=3), str(path))
  return path


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
  """The tests that read ``trained_tiny_run`` share one xdist worker (``--dist loadgroup``), so
  the run is trained once per suite, not once per worker."""
  for item in items:
    if "trained_tiny_run" in getattr(item, "fixturenames", ()):
      item.add_marker(pytest.mark.xdist_group("trained_tiny_run"))


def tiny_config(data_dir: str, **train_overrides):
  """The quick config shrunk to a few seconds of CPU per step on 32x32 HR patches. CBAM is off:
  it adds a third to every tiny step's compile; the command-line training test in test_cli trains
  the default (CBAM) model end to end, and test_models, test_scan and test_upscale test it."""
  c = sinsr_config.get_config("quick")
  c.data.builder_config = "tiny"
  c.data.data_dir = data_dir
  c.data.patch_size = 32
  c.data.num_workers = 0
  c.data.eval_max_images = 2
  c.model.update(stem_width=8, width=8, num_rrdb=1, growth=4, attention="none")
  c.discriminator.update(width=4, stage_widths=(8, 8, 16, 16))
  c.train.update(batch_size=4, num_steps=4, pretrain_steps=2, log_every=2, eval_every=4,
                 image_every=4, checkpoint_every=2)
  c.train.update(**train_overrides)
  return c


# XLA's usual code generation, for the few tests that run one program hundreds of times.
OPTIMISED_CODEGEN = {"xla_backend_optimization_level": 3,
                     "xla_llvm_disable_expensive_passes": False}


def jit_for_loops(fn):
  """``jax.jit(fn)`` compiled with LLVM's optimisations on its first call (the suite turns them
  off above: most tests run a program a few times, and a 300-step loop then runs 6x slower)."""
  jitted, compiled = jax.jit(fn), []

  def call(*args):
    if not compiled:
      compiled.append(jitted.lower(*args).compile(OPTIMISED_CODEGEN))
    return compiled[0](*args)
  return call


class FaultLedger:
  """What the fault tests injected and tried, for README's counts. Each record is a line in a
  file the whole session shares (pytest-xdist workers are separate processes)."""

  def __init__(self, path: str):
    self.path = path

  def _add(self, what: str, kind: str, count: int) -> None:
    with open(self.path, "a") as f:
      f.write(json.dumps([what, kind, count]) + "\n")

  def injected(self, kind: str, count: int = 1) -> None:
    self._add("fault", kind, count)

  def tried(self, kind: str, count: int = 1) -> None:
    self._add("input", kind, count)

  def totals(self) -> dict[str, dict[str, int]]:
    totals = {"fault": {}, "input": {}}
    if os.path.exists(self.path):
      with open(self.path) as f:
        for what, kind, count in map(json.loads, f):
          totals[what][kind] = totals[what].get(kind, 0) + count
    return totals


def pytest_configure(config):
  if "SINSR_FAULT_LEDGER" not in os.environ:  # the controller; xdist workers inherit it
    fd, path = tempfile.mkstemp(prefix="sinsr_faults_", suffix=".jsonl")
    os.close(fd)
    os.environ["SINSR_FAULT_LEDGER"] = path


@pytest.fixture
def ledger() -> FaultLedger:
  return FaultLedger(os.environ["SINSR_FAULT_LEDGER"])


def pytest_terminal_summary(terminalreporter):
  if hasattr(terminalreporter.config, "workerinput"):
    return
  totals = FaultLedger(os.environ["SINSR_FAULT_LEDGER"]).totals()
  if not (totals["fault"] or totals["input"]):
    return
  describe = lambda d: ", ".join(f"{k}: {v}" for k, v in sorted(d.items()))
  terminalreporter.write_line(
      f"Reliability: {sum(totals['fault'].values())} faults injected "
      f"({describe(totals['fault'])}); {sum(totals['input'].values())} bad inputs tried "
      f"({describe(totals['input'])}); data lost: 0 (every fault test asserts it)")
