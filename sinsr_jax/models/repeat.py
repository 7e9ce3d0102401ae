"""Identical blocks applied in sequence, unrolled or as one ``nn.scan`` over stacked weights.

Unrolled, XLA compiles every block separately: compile time and compile memory grow with depth
(ESRGAN's 23 RRDBs, SINSR's 3 paths of RRDBs). Scanned, the block is compiled once and its
weights carry a leading block axis. ``remat`` recomputes each block's activations in the backward
pass instead of keeping them (memory for time, for large patches on accelerators).

Names (what sinsr_jax.models.layout converts between): unrolled, block ``i`` of a stack called
``base`` is the subtree ``base_i``; scanned, blocks ``start .. start+n-1`` are one subtree
``base_scan{start}`` whose leaves have a leading axis of length n. A stack of one block is
always unrolled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

SCAN_TAG = "_scan"
# Parameters and batch statistics get a leading block axis; each block draws its own init rng.
_SCAN = dict(variable_axes={"params": 0, "batch_stats": 0}, split_rngs={"params": True})


def scanned_name(base: str, start: int = 0) -> str:
  """The subtree name of blocks ``start ..`` of stack ``base`` in the scanned layout."""
  return f"{base}{SCAN_TAG}{start}"


def repeat_blocks(block: type[nn.Module], x, num: int, *, name: str, scan: bool,
                  remat: bool = False, start: int = 0, keep_outputs: bool = False,
                  per_block: Sequence[Any] | None = None, **fields):
  """Applies ``num`` blocks ``block(**fields)`` in sequence to ``x``, inside a compact method.

  ``per_block``: one extra call argument per block (``block(x, per_block[i])``): Python values
  unrolled, stacked into an array scanned. Returns ``(x, outputs)``: ``outputs`` holds every
  block's output (a list unrolled, a stacked array with the block axis first scanned) when
  ``keep_outputs``, else None.
  """
  cls = nn.remat(block) if remat else block
  if num == 0:
    return x, ([] if keep_outputs else None)
  # One block is never scanned: a one-step loop saves nothing and costs compile time (+37% for
  # a 3-step training of the tests' tiny SINSR, whose paths hold one RRDB each, as the quick
  # config's do), and those runs keep the layout they had before scanning existed.
  if not scan or num == 1:
    outputs = []
    for i in range(num):
      args = () if per_block is None else (per_block[i],)
      x = cls(**fields, name=f"{name}_{start + i}")(x, *args)
      outputs.append(x)
    return x, (outputs if keep_outputs else None)

  def body(module, carry, extra):
    carry = module(carry) if per_block is None else module(carry, extra)
    return carry, (carry if keep_outputs else None)

  xs = None if per_block is None else jnp.asarray(per_block)
  x, outputs = nn.scan(body, length=num, **_SCAN)(
      cls(**fields, name=scanned_name(name, start)), x, xs)
  return x, outputs
