"""Fine-tuning from another run: ``--config.train.init_from=RUN_DIR``.

A new run starts its generator from another run's newest intact checkpoint: the source's EMA
weights become the generator's weights and its EMA. Its discriminator's weights are taken too
when the two discriminators have the same architecture; otherwise the discriminator starts
fresh (the log says so). The step counter, the loss schedule, the optimiser states and the rng
stay fresh: a new run that begins where another one ended, on new data or with a new recipe.
A resumed run ignores init_from (its own checkpoint is newer). A generator of another shape is
refused in one line naming the first parameter that differs.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
from absl import logging

from sinsr_jax.errors import UserError
from sinsr_jax.models import layout
from sinsr_jax.runtime import paths
from sinsr_jax.training import checkpointing


def first_difference(wanted, found) -> str:
  """'' when the trees have the same parameter names and shapes, else the first difference."""
  wanted, found = checkpointing.shapes(wanted), checkpointing.shapes(found)
  for name, shape in wanted.items():
    if name not in found:
      return f"has no {name}"
    if found[name] != shape:
      return f"holds {name} of shape {found[name]}, this config builds {shape}"
  extra = sorted(set(found) - set(wanted))
  return f"holds {extra[0]}, which this config does not build" if extra else ""


def _in_layout(found, wanted):
  """``found`` in ``wanted``'s layout of repeated blocks (model.scan) where they differ only in
  that; otherwise as it is, for first_difference to name what differs."""
  if layout.same_layout(found, wanted):
    return found
  try:
    return layout.to_layout(found, wanted)
  except layout.LayoutError:
    return found


def initialize(state, source_dir: str, build_state: Callable):
  """``state`` (a fresh TrainState) with the generator, and a matching discriminator, of the
  run in ``source_dir``. ``build_state(config)``: a fresh TrainState of a config, on the same
  devices, the template the source checkpoint is read into."""
  from sinsr_jax.training import runs

  where = f"--config.train.init_from={source_dir}"
  try:
    source_config = runs.read_config(source_dir)
  except UserError as e:
    raise UserError(f"{where}: {e}") from None
  try:
    template = build_state(source_config)
  except Exception as e:  # a config this version cannot build
    raise UserError(f"{where}: cannot build its model ({type(e).__name__}: {e})") from None
  source = checkpointing.read_newest(source_dir, template)
  if source is None:
    raise UserError(f"{where}: no checkpoint in {paths.join(source_dir, 'checkpoints')}")
  source = source.replace(ema_params=_in_layout(source.ema_params, state.g_params),
                          g_state=_in_layout(source.g_state, state.g_state))
  for what, wanted, found in (("generator", state.g_params, source.ema_params),
                              ("generator state", state.g_state, source.g_state)):
    difference = first_difference(wanted, found)
    if difference:
      raise UserError(f"{where}: its {what} {difference}; init_from needs the same "
                      f"generator architecture (model, widths, blocks, scale, channels)")
  like = lambda tree, target: jax.device_put(  # noqa: E731
      tree, jax.tree.map(lambda x: x.sharding, target))
  # Two copies: the train step donates the state's buffers, and one buffer donated twice is freed
  # under the other's feet.
  state = state.replace(g_params=like(source.ema_params, state.g_params),
                        ema_params=jax.tree.map(lambda x: jax.numpy.array(x, copy=True),
                                                like(source.ema_params, state.ema_params)),
                        g_state=like(source.g_state, state.g_state))
  same_d = not (first_difference(state.d_params, source.d_params) or
                first_difference(state.d_state, source.d_state))
  if same_d:
    state = state.replace(d_params=like(source.d_params, state.d_params),
                          d_state=like(source.d_state, state.d_state))
  logging.info("Initialised from %s (step %d): the generator's EMA weights%s.", source_dir,
               int(source.step), ", and the discriminator" if same_d else
               "; the discriminator starts fresh (another architecture)")
  return state
