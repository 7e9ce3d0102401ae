"""XLA CPU settings the package applies before JAX starts its backend (benchmarks/RESULTS.md).

jaxlib 0.10's XLA hands 3x3 convolutions to YNNPACK by default; on x86 CPUs those run at about
half the speed of XLA's own (Eigen) convolutions: a residual conv stack measured 126 -> 72 ms
forward and 611 -> 314 ms forward+backward with YNNPACK fusions off
(``python benchmarks/conv_stack.py``). A flag the user already put in ``XLA_FLAGS`` wins.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

DEFAULTS = {"xla_cpu_experimental_ynn_fusion_type": ""}  # "": no YNNPACK fusions

# For programs that run once (a model's random initialisation): without LLVM's optimisations a
# tiny SINSR's initial state compiles in 4.5 s instead of 22 s, its values within 1 ulp.
RUN_ONCE_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

# For the training steps: LLVM's -O2 instead of -O3. The convolutions are library calls, so only
# the fused elementwise code is compiled less hard: the quick SINSR GAN step compiles in 18.1-18.7
# s instead of 21.4-25.3 s and runs as fast (761-797 against 761-786 ms; benchmarks/RESULTS.md).
STEP_OPTIONS = {"xla_backend_optimization_level": 2}


def apply(environ: MutableMapping[str, str] = os.environ) -> str:
  """Adds the defaults missing from ``environ["XLA_FLAGS"]``; returns the resulting flags.

  Effective only before the process's first JAX computation (XLA reads the flags once).
  """
  flags = environ.get("XLA_FLAGS", "")
  for name, value in DEFAULTS.items():
    if f"--{name}=" not in flags:
      flags = f"{flags} --{name}={value}".strip()
  environ["XLA_FLAGS"] = flags
  return flags


def step_options(environ: MutableMapping[str, str] = os.environ) -> dict | None:
  """``jax.jit``'s ``compiler_options`` for a training step: ``STEP_OPTIONS`` on CPU, unless
  ``XLA_FLAGS`` sets their level itself (as the test suite does); None elsewhere."""
  import jax

  if jax.default_backend() != "cpu" or any(f"--{k}=" in environ.get("XLA_FLAGS", "")
                                           for k in STEP_OPTIONS):
    return None
  return dict(STEP_OPTIONS)


def compile_run_once(fn, *args):
  """``jax.jit(fn)`` compiled for ``args`` to run once: cheap codegen on CPU, defaults elsewhere."""
  import jax

  options = RUN_ONCE_OPTIONS if jax.default_backend() == "cpu" else None
  return jax.jit(fn).lower(*args).compile(options)
