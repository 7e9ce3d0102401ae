"""Mixed precision: bf16 activations with f32 parameters, optimizer state and losses.

``MixedPrecision(module)`` has the module's ``init`` (f32 parameters) and an ``apply`` that
runs the forward pass on bf16 copies of the parameters and inputs and hands f32 back. The
gradient flows through the casts to the f32 master parameters, so Adam and the EMA never see
bf16; losses and metrics (SSIM, LPIPS, the VGG term) get f32 images.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def cast_floats(tree, dtype):
  """Floating-point leaves to ``dtype``; integers, keys and the rest untouched."""
  def cast(x):
    if isinstance(x, jax.Array | float) and jnp.issubdtype(jnp.result_type(x), jnp.floating):
      return jnp.asarray(x, dtype)
    return x
  return jax.tree.map(cast, tree)


@dataclasses.dataclass(frozen=True)
class MixedPrecision:
  module: nn.Module
  dtype: Any = jnp.bfloat16

  def init(self, *args, **kwargs):
    return self.module.init(*args, **kwargs)

  def apply(self, variables, *args, **kwargs):
    variables = {**variables, "params": cast_floats(variables.get("params", {}), self.dtype)}
    out = self.module.apply(variables, *cast_floats(args, self.dtype), **kwargs)
    return cast_floats(out, jnp.float32)


def with_compute_dtype(module: nn.Module, compute_dtype: str):
  """``module`` itself for float32, else wrapped to compute in ``compute_dtype``."""
  return module if compute_dtype == "float32" else MixedPrecision(module, DTYPES[compute_dtype])
