"""Joining a multi-process (multi-host) run through JAX's own distributed runtime."""

from __future__ import annotations

import jax
from absl import logging

from sinsr_jax.errors import UserError


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """``jax.distributed.initialize``, explicitly or from the platform's environment.

  Given a coordinator address, the process count and id are needed too; without one, JAX
  detects the cluster (TPU VM worker metadata, SLURM, Open MPI, ...). CPU processes exchange
  collectives through gloo (JAX's CPU default has none across processes).
  """
  explicit = (coordinator_address, num_processes, process_id)
  if any(v is not None for v in explicit) and any(v is None for v in explicit):
    raise UserError("an explicit cluster needs all of --coordinator_address, --num_processes "
                    "and --process_id (or none of them, to detect TPU VM / SLURM)")
  if num_processes is not None and not 0 <= process_id < num_processes:
    raise UserError(f"--process_id={process_id} is not in [0, --num_processes={num_processes})")
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  try:
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
  except ValueError as e:  # nothing to detect, and no explicit cluster
    raise UserError(f"cannot join a multi-process run: {e}") from None
  if jax.process_count() > 1 and jax.default_backend() == "cpu" and (
      jax.config.jax_compilation_cache_dir and jax.config.jax_enable_compilation_cache):
    # CPU executables read back from the persistent cache can number their gloo communicators
    # apart from freshly compiled ones on the other processes: the run then hangs in its first
    # collective ("Gloo context initialization failed ... GetKeyValue() timed out").
    logging.warning("Multi-process CPU run: the persistent compilation cache (%s) is turned off; "
                    "its executables can hang gloo collectives.",
                    jax.config.jax_compilation_cache_dir)
    jax.config.update("jax_enable_compilation_cache", False)
  logging.info("Process %d of %d, %d local / %d global devices.", jax.process_index(),
               jax.process_count(), jax.local_device_count(), jax.device_count())
