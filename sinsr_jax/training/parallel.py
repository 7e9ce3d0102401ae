"""Data parallelism over a 1-D ``data`` mesh of every device of every process.

A per-device step is mapped with ``jax.shard_map`` under ``jax.jit`` (what ``jax.pmap`` itself is
in JAX >= 0.10). ``check_vma=False`` keeps pmap's semantics: inside the step, gradients of the
replicated parameters are per-device and the step averages them with ``lax.pmean`` itself
(with ``check_vma=True`` autodiff would already sum them across devices).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from sinsr_jax.runtime import xla_cpu
from sinsr_jax.training.steps import AXIS


def make_mesh(devices=None) -> Mesh:
  return Mesh(np.asarray(devices if devices is not None else jax.devices()), (AXIS,))


def replicate(tree, mesh: Mesh):
  return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(local_batch, mesh: Mesh):
  """This process's share of the batch -> global arrays split over the ``data`` axis."""
  sharding = NamedSharding(mesh, P(AXIS))
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def data_parallel(step_fn: Callable, mesh: Mesh, frozen=None) -> Callable:
  """(state, batch) -> (state, metrics), jitted over the mesh, the state buffers donated.

  ``frozen``: replicated arrays every step reads but never changes (the loss schedule's bounds,
  pretrained loss networks), passed as the step's third argument: jit inputs, not constants
  baked into the compiled program (runs differing only in them share one compiled step).
  """
  mapped = jax.shard_map(step_fn, mesh=mesh, in_specs=(P(), P(AXIS), P()),
                         out_specs=(P(), P()), check_vma=False)
  jitted = jax.jit(mapped, donate_argnums=(0,), compiler_options=xla_cpu.step_options())
  frozen = replicate(frozen or {}, mesh)
  return lambda state, batch: jitted(state, batch, frozen)
