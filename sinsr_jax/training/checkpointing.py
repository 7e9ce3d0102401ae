"""Orbax checkpoints holding the train state and the grain iterator state together.

A checkpoint written with the other layout of repeated blocks (``model.scan``: unrolled blocks
``rrdb_0, rrdb_1, ...`` or one scanned stack ``rrdb_scan0``) is read in its own layout and
converted into the template's (sinsr_jax.models.layout): parameters, EMA weights, Adam's
moments and batch statistics alike, so runs of either layout resume, evaluate and upscale.

Restoring verifies: a checkpoint that cannot be read back whole (a truncated array file, a
missing ``_METADATA``, an empty folder, a corrupt data-iterator state) is moved to
``checkpoints/quarantine/<step>`` (never deleted) with one warning naming the check it failed,
and the next older one is tried. A read failing with a transient storage error (a timeout, a
reset connection, a permission blip: runtime/storage_errors.py) is retried with backoff and,
still failing, stops with one line and nothing moved: a brief outage must not restart a run.
Readers (evaluate, upscale) pass ``read_only=True``: they fall back the same way but move
nothing, since a training may own the folder.
"""

from __future__ import annotations

import logging as logging_std
import sys

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from sinsr_jax.errors import UserError
from sinsr_jax.models import layout
from sinsr_jax.runtime import paths, storage_errors

QUARANTINE = "quarantine"


class CheckpointMismatch(UserError):
  """A checkpoint written by another model or configuration than the one restoring it."""


class CheckpointDamaged(UserError):
  """A checkpoint that cannot be read back whole."""


class NoIntactCheckpoint(UserError):
  """Checkpoints exist but none can be read."""


class StorageUnavailable(UserError):
  """A checkpoint read kept failing with transient storage errors (nothing was moved)."""


def make_manager(workdir: str, keep: int | None, read_only: bool = False
                 ) -> ocp.CheckpointManager:
  """The run's checkpoints; ``read_only``: creates, deletes and cleans up nothing (orbax's own
  read_only option would say so in warnings on every call)."""
  paths.refresh(workdir)  # a listing cached in this process misses what tensorstore wrote
  return ocp.CheckpointManager(
      paths.join(paths.absolute(workdir), "checkpoints"),
      item_names=("state", "data"),
      item_handlers={"state": ocp.StandardCheckpointHandler(),
                     "data": grain.checkpoint.CheckpointHandler()},
      options=ocp.CheckpointManagerOptions(max_to_keep=None if read_only else keep,
                                           create=not read_only,
                                           enable_async_checkpointing=not read_only))


def save(manager: ocp.CheckpointManager, step: int, state, data_iterator) -> None:
  manager.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=grain.checkpoint.CheckpointSave(data_iterator)))


def read_newest(workdir: str, state_template):
  """The newest intact checkpoint of ``workdir`` in the template's structure, or None, read
  without writing anything: a training may be writing it, so damaged checkpoints are skipped
  (with a warning), never quarantined."""
  manager = make_manager(workdir, None, read_only=True)
  try:
    return restore_latest(manager, state_template, read_only=True)
  finally:
    manager.close()


def restore_latest(manager: ocp.CheckpointManager, state_template, data_iterator=None,
                   step: int | None = None, read_only: bool = False):
  """Restores the newest intact checkpoint (or the one of ``step``) into the template's
  structure and shardings, or None when there is none.

  The data iterator, when given, is set to the saved position in place. Damaged checkpoints
  newer than the one restored are quarantined (or, ``read_only``, skipped) with a warning each;
  raises NoIntactCheckpoint when every checkpoint is damaged, CheckpointMismatch when one was
  written by another configuration.
  """
  if step is not None:
    return _restore(manager, step, state_template, data_iterator)
  return _newest_intact(manager, lambda s: _restore(manager, s, state_template, data_iterator),
                        read_only)[0]


def restore_generator(manager: ocp.CheckpointManager, template: dict, device=None) -> tuple:
  """(tree, step) of the newest readable checkpoint's ``template`` part only, e.g.
  ``{"ema_params": ..., "g_state": ...}``, or (None, None) when there is no checkpoint.

  Read-only (damaged checkpoints are skipped with a warning, as in ``restore_latest``): what
  upscale, evaluate and adaptation need, without building or reading the discriminator and the
  optimisers' state. Arrays land on ``device`` (the first local device by default).
  """
  # restore_part converts a checkpoint of the other block layout (model.scan).
  return _newest_intact(manager, lambda step: restore_part(manager, step, template, device),
                        read_only=True)


_OK, _UNREACHABLE, _DAMAGED = 2, 1, 0  # one process's verdict; the lowest of all counts


def _newest_intact(manager, read, read_only: bool) -> tuple:
  """(``read(step)``, step) for the newest step it succeeds on (on every process), or
  (None, None) when there is no checkpoint; damaged ones newer than it are set aside (see
  ``restore_latest``). A read failing with a transient storage error is retried, and if it
  still fails, raises StorageUnavailable with nothing moved: a hiccup is not damage."""
  damaged = []  # (step, reason), newest first
  _quiet_abandoned_reads()  # a failing read's siblings may report before its exception does
  for candidate in sorted(manager.all_steps(), reverse=True):
    state, verdict, reason = None, _DAMAGED, "unreadable on another process"
    try:
      state = storage_errors.retry(lambda step=candidate: read(step),
                                   f"the checkpoint of step {candidate}")
      verdict = _OK
    except CheckpointMismatch:
      raise
    except storage_errors.StillFailing as e:
      verdict, reason = _UNREACHABLE, f"{_reason(e.error)}; tried {e.tries} times"
    except Exception as e:  # the data itself: it failed an integrity check
      reason = _damage(e)
    verdict = _everywhere(verdict)
    if verdict == _UNREACHABLE:
      if reason.startswith("unreadable on another"):
        reason = "a storage error on another process"
      raise StorageUnavailable(
          f"cannot read the checkpoint of step {candidate} in {manager.directory}: storage "
          f"error ({reason}); nothing was moved: the same command tries again")
    if verdict == _OK:
      _set_aside(manager, damaged, candidate, read_only)
      return state, candidate
    damaged.append((candidate, reason))
  if not damaged:
    return None, None
  _set_aside(manager, damaged, None, read_only)
  steps = ", ".join(str(s) for s, _ in damaged)
  first = f"step {damaged[0][0]}: {damaged[0][1]}"
  if read_only:
    raise NoIntactCheckpoint(f"no readable checkpoint in {manager.directory} (steps {steps}; "
                             f"{first})")
  raise NoIntactCheckpoint(
      f"no intact checkpoint in {manager.directory} (steps {steps} moved to "
      f"{manager.directory / QUARANTINE}; {first}): the same command now starts over from step "
      f"0, or move them back to retry them")


def _damage(error: BaseException) -> str:
  """Which integrity check ``error`` failed, with the storage layer's own words."""
  errors = storage_errors.chain(error)
  text = " ".join(str(e).split("\n", 1)[0] for e in errors)
  if any(isinstance(e, (FileNotFoundError, CheckpointDamaged)) for e in errors) or (
      "NOT_FOUND" in text):
    kind = "missing file"
  elif "OUT_OF_RANGE" in text or "DATA_LOSS" in text:
    kind = "truncated or corrupt array data"
  elif any(type(e).__name__ == "JSONDecodeError" for e in errors) or "metadata" in text.lower():
    kind = "unreadable metadata"
  else:
    kind = "unreadable"
  return f"{kind}: {_reason(error)}"


class _AbandonedReadTasks:
  """Drops asyncio's "Task exception was never retrieved" for a failed checkpoint read's
  sibling reads (the storage layer's errors), which the damage line already accounts for."""

  drops_abandoned_reads = True

  def filter(self, record) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return not (str(record.msg).startswith("Task exception was never retrieved")
                and error is not None and ("OCDBT" in str(error) or "zarr" in str(error)))


def _quiet_abandoned_reads() -> None:
  """A read that fails part-way leaves the storage layer's other reads of that checkpoint
  running; as they finish, their callbacks find orbax's event loop closed and Python prints a
  traceback for each (through ``sys.unraisablehook``, from tensorstore's threads through
  ``sys.excepthook``, or as asyncio's "Task exception was never retrieved" log), burying the
  one-line account of the damage. Only those are dropped."""
  def drop_abandoned(hook_name: str, error_of) -> None:
    previous = getattr(sys, hook_name)
    if getattr(previous, "drops_abandoned_reads", False):
      return

    def hook(*args):
      error = error_of(*args)
      if not (isinstance(error, RuntimeError) and str(error) == "Event loop is closed"):
        previous(*args)
    hook.drops_abandoned_reads = True
    setattr(sys, hook_name, hook)

  drop_abandoned("unraisablehook", lambda unraisable: unraisable.exc_value)
  drop_abandoned("excepthook", lambda kind, error, traceback: error)
  asyncio_log = logging_std.getLogger("asyncio")
  if not any(getattr(f, "drops_abandoned_reads", False) for f in asyncio_log.filters):
    asyncio_log.addFilter(_AbandonedReadTasks())


def _restore(manager, step: int, state_template, data_iterator):
  stored = _stored(manager, step)
  converts = check_compatible(manager, step, state_template, stored=stored)
  if converts:  # read in the stored layout, on this process's first device, then convert
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                            stored)
  else:
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template)
  items = {"state": ocp.args.StandardRestore(abstract)}
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
  state = manager.restore(step, args=ocp.args.Composite(**items))["state"]
  if not converts:
    return state
  logging.info("The checkpoint of step %d holds the other layout of repeated blocks "
               "(model.scan): converted on restore.", step)
  return place_like(layout.to_layout(state, state_template), state_template)


def place_like(tree, template):
  """``tree``'s (host) arrays with ``template``'s dtypes and shardings; processes each hold the
  whole value (the state is replicated), so each builds its own shards from it."""
  def place(value, like):
    sharding = getattr(like, "sharding", None)
    value = np.asarray(value, getattr(like, "dtype", None))
    if sharding is None:
      return jax.numpy.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])
  return jax.tree.map(place, tree, template)


def _everywhere(verdict: int) -> int:
  """Several processes must agree, or one would resume from another step than the others: the
  worst verdict of any process counts."""
  if jax.process_count() == 1:
    return verdict
  from jax.experimental import multihost_utils

  return int(multihost_utils.process_allgather(np.int32(verdict)).min())


def _set_aside(manager, damaged: list, restored: int | None, read_only: bool) -> None:
  """Warns of each damaged checkpoint in one line; moves it to quarantine unless read_only."""
  if not damaged:
    return
  then = f"step {restored}" if restored is not None else "no checkpoint"
  for step, reason in damaged:
    if read_only:
      logging.warning("Cannot read the checkpoint of step %d (%s); using %s.", step, reason,
                      then)
      continue
    target = manager.directory / QUARANTINE / str(step)
    suffix = 1
    while target.exists():  # the same step damaged twice: keep both
      target, suffix = manager.directory / QUARANTINE / f"{step}.{suffix}", suffix + 1
    if jax.process_index() == 0:
      target.parent.mkdir(parents=True, exist_ok=True)
      paths.rename(str(manager.directory / str(step)), str(target))
    logging.warning("The checkpoint of step %d is damaged (%s): moved to %s; resuming from %s.",
                    step, reason, target, then)
  if not read_only:
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils

      multihost_utils.sync_global_devices("sinsr_jax quarantine")
    manager.reload()


def _reason(error: BaseException) -> str:
  """The root cause's first line: what the storage layer said, not its wrappers."""
  root = error
  while root.__cause__ is not None or root.__context__ is not None:
    root = root.__cause__ or root.__context__
  text = str(root).strip().splitlines()
  line = f"{type(root).__name__}: {text[0]}" if text else type(root).__name__
  return line if len(line) <= 200 else line[:197] + "..."


def _dotted(path) -> str:
  """A tree path as orbax names arrays: ``g_params.stem.kernel``, ``g_opt_state.0.mu...``."""
  return ".".join(layout.path_key(path))


def shapes(tree) -> dict[str, tuple]:
  """Parameter name (as orbax names it) -> shape, for every leaf of ``tree``."""
  return {_dotted(path): tuple(getattr(leaf, "shape", ()))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def check_compatible(manager: ocp.CheckpointManager, step: int, state_template,
                     part: bool = False, stored=None) -> bool:
  """Raises CheckpointMismatch naming the first parameter that differs in name or shape, instead
  of the restore's shape traceback. Names are compared after converting the checkpoint to the
  template's layout of repeated blocks; returns whether that conversion is needed. ``part``:
  the template is a part of the state (e.g. {"ema_params", "g_state"}); the rest is not read.
  ``stored``: the checkpoint's metadata when the caller has read it already (reading it costs
  seconds on a large state)."""
  if stored is None:
    stored = _stored(manager, step, state_template if part else None)
  found, missing, unused = layout.convert(stored, state_template)
  missing = set(missing)
  where = f"the checkpoint at step {step} in {manager.directory}"
  hint = "it was written by another model or configuration (model, width, scale, loss terms?)"
  for path, leaf in layout.flatten(state_template).items():
    name, wanted = ".".join(path), tuple(getattr(leaf, "shape", ()))
    if path in missing:
      raise CheckpointMismatch(f"{where} has no {name}: {hint}")
    saved = tuple(getattr(found[path], "shape", ()))
    if saved != wanted:
      raise CheckpointMismatch(f"{where} holds {name} of shape {saved}, the config builds "
                               f"{wanted}: {hint}")
  if unused:
    raise CheckpointMismatch(f"{where} holds {'.'.join(sorted(unused)[0])}, which the config "
                             f"does not build: {hint}")
  return not layout.same_layout(stored, state_template)


def _stored(manager, step: int, part=None):
  """The checkpoint's state metadata (shapes, dtypes); with ``part`` (a dict template), only
  its top-level entries."""
  if not (manager.directory / str(step) / "state" / "_METADATA").exists():
    raise CheckpointDamaged("its state/_METADATA is missing")
  stored = manager.item_metadata(step)["state"]
  if part is None:
    return stored
  stored = getattr(stored, "tree", stored)
  return {k: stored[k] for k in part if k in stored}


def restore_part(manager: ocp.CheckpointManager, step: int, template: dict, device=None):
  """``template``'s part of the state at ``step`` (e.g. {"ema_params": ..., "g_state": ...}),
  in ``template``'s layout of repeated blocks whichever layout the checkpoint holds, on
  ``device`` (the first local device by default). Nothing else of the state is read."""
  sharding = jax.sharding.SingleDeviceSharding(device or jax.local_devices()[0])
  stored = _stored(manager, step, template)
  converts = check_compatible(manager, step, template, part=True, stored=stored)
  target = stored if converts else template
  abstract = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), target)
  restore_args = jax.tree.map(lambda _: ocp.ArrayRestoreArgs(sharding=sharding), target)
  tree = ocp.Checkpointer(ocp.PyTreeCheckpointHandler()).restore(
      manager.directory / str(step) / "state",
      args=ocp.args.PyTreeRestore(abstract, restore_args=restore_args, partial_restore=True))
  if not converts:
    return tree
  on_device = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
                           template)
  return place_like(layout.to_layout(tree, template), on_device)
