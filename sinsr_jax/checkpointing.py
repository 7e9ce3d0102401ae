"""Orbax checkpoints holding the train state and the grain iterator state together."""

from __future__ import annotations

import os

import grain
import jax
import orbax.checkpoint as ocp

from sinsr_jax.errors import UserError


class CheckpointMismatch(UserError):
  """A checkpoint written by another model or configuration than the one restoring it."""


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


def restore_latest(manager: ocp.CheckpointManager, state_template, data_iterator=None,
                   step: int | None = None):
  """Restores the newest checkpoint (or the one of ``step``) into the template's structure and
  shardings, or None when there is none.

  The data iterator, when given, is set to the saved position in place.
  """
  step = manager.latest_step() if step is None else step
  if step is None:
    return None
  check_compatible(manager, step, state_template)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template)
  items = {"state": ocp.args.StandardRestore(abstract)}
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
  return manager.restore(step, args=ocp.args.Composite(**items))["state"]


def _dotted(path) -> str:
  """A tree path as orbax names arrays: ``g_params.stem.kernel``, ``g_opt_state.0.mu...``."""
  parts = (getattr(k, "name", getattr(k, "key", getattr(k, "idx", k))) for k in path)
  return ".".join(str(p) for p in parts)


def _shapes(tree) -> dict[str, tuple]:
  return {_dotted(path): tuple(getattr(leaf, "shape", ()))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def check_compatible(manager: ocp.CheckpointManager, step: int, state_template) -> None:
  """Raises CheckpointMismatch naming the first parameter that differs in name or shape, instead
  of the restore's shape traceback."""
  saved = _shapes(manager.item_metadata(step)["state"])
  wanted = _shapes(state_template)
  where = f"the checkpoint at step {step} in {manager.directory}"
  hint = "it was written by another model or configuration (model, width, scale, loss terms?)"
  for name in wanted:
    if name not in saved:
      raise CheckpointMismatch(f"{where} has no {name}: {hint}")
    if saved[name] != wanted[name]:
      raise CheckpointMismatch(f"{where} holds {name} of shape {saved[name]}, the config builds "
                               f"{wanted[name]}: {hint}")
  extra = sorted(set(saved) - set(wanted))
  if extra:
    raise CheckpointMismatch(f"{where} holds {extra[0]}, which the config does not build: {hint}")
