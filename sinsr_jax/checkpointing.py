"""Orbax checkpoints holding the train state and the grain iterator state together."""

from __future__ import annotations

import os

import grain
import jax
import orbax.checkpoint as ocp


def make_manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      item_names=("state", "data"),
      item_handlers={"state": ocp.StandardCheckpointHandler(),
                     "data": grain.checkpoint.CheckpointHandler()},
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=True))


def save(manager: ocp.CheckpointManager, step: int, state, data_iterator) -> None:
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=grain.checkpoint.CheckpointSave(data_iterator)))


def restore_latest(manager: ocp.CheckpointManager, state_template, data_iterator=None):
  """Restores the newest checkpoint into the template's structure and shardings, or None.

  The data iterator, when given, is set to the saved position in place.
  """
  step = manager.latest_step()
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template)
  items = {"state": ocp.args.StandardRestore(abstract)}
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
  return manager.restore(step, args=ocp.args.Composite(**items))["state"]
