"""train_and_evaluate(config, workdir): the training loop, checkpoints, logging, validation."""

from __future__ import annotations

import functools
import json
import time

import jax
import ml_collections
import numpy as np
import optax
from absl import logging

from sinsr_jax import models
from sinsr_jax.data import input_pipeline
from sinsr_jax.errors import UserError
from sinsr_jax.losses import objective
from sinsr_jax.losses.generator_loss import GeneratorLoss
from sinsr_jax.runtime import console, paths, provenance, workdir_lock, xla_cpu
from sinsr_jax.runtime.files import ensure_writable_dir, write_atomic
from sinsr_jax.training import (
  checkpointing,
  init_from,
  monitoring,
  parallel,
  preemption,
  steps,
  validation,
)
from sinsr_jax.training import summaries as summaries_lib
from sinsr_jax.training.config_checks import check_config
from sinsr_jax.training.networks import build_generator, build_models  # noqa: F401  (train.build_models)


def build_optimizers(optim: ml_collections.ConfigDict, pretrain_steps: int = 0):
  """(generator, discriminator) Adam, each learning rate decayed by the global step.

  The discriminator updates only in the GAN phase, so its optimiser counts from 0 at step
  ``pretrain_steps``: its schedule is shifted by that many steps, so that the two rates keep
  their configured ratio in the GAN phase (unshifted, D's rate started there undecayed)."""
  def adam(lr, offset):
    decay = optax.exponential_decay(lr, optim.decay_steps, optim.decay_rate)
    return optax.adam(lambda count: decay(count + offset), b1=optim.b1, b2=optim.b2)

  return adam(optim.g_lr, 0), adam(optim.d_lr, pretrain_steps)


def initial_state(config, g_model, d_models, g_tx, d_tx, mesh) -> steps.TrainState:
  p, s, c = config.data.patch_size, config.data.scale, config.model.channels
  init = functools.partial(steps.create_train_state, g_model=g_model, d_models=d_models,
                           g_tx=g_tx, d_tx=d_tx, lr_shape=(1, p // s, p // s, c),
                           hr_shape=(1, p, p, c))
  key = jax.random.PRNGKey(config.seed)
  return parallel.replicate(xla_cpu.compile_run_once(init, key)(key), mesh)


def compiled_steps(config, g_model, d_models, g_tx, d_tx, mesh, loss: GeneratorLoss,
                   frozen: dict):
  """The pretraining and GAN steps, data-parallel over ``mesh``: (state, batch) -> ..."""
  ema = config.optim.ema_decay
  pretrain = functools.partial(steps.pretrain_step, g_model=g_model, g_tx=g_tx, loss=loss,
                               ema_decay=ema)
  gan = functools.partial(steps.gan_step, g_model=g_model, d_models=d_models, g_tx=g_tx,
                          d_tx=d_tx, loss=loss, ema_decay=ema)
  return parallel.data_parallel(pretrain, mesh), parallel.data_parallel(gan, mesh, frozen)


def setup_steps(config, mesh, loss: GeneratorLoss | None = None, frozen=None):
  """(initial replicated state, pretraining step, GAN step) for ``config`` on ``mesh``."""
  if loss is None:
    loss, frozen = objective.build(config)
  g_model, d_models = build_models(config)
  g_tx, d_tx = build_optimizers(config.optim, config.train.pretrain_steps)
  state = initial_state(config, g_model, d_models, g_tx, d_tx, mesh)
  return (state, *compiled_steps(config, g_model, d_models, g_tx, d_tx, mesh, loss, frozen))


# What may change when a run resumes: how long it runs and how it is watched, where its data
# lies, how its blocks are compiled (checkpoints convert between layouts). Any other difference
# (seed, loss weights, data, model, schedules) would make a folder whose checkpoints no single
# config produced, so resuming with it is refused.
_MAY_CHANGE_ON_RESUME = (
    "train.num_steps", "train.log_every", "train.image_every", "train.eval_every",
    "train.checkpoint_every", "train.keep_checkpoints", "train.max_nonfinite_steps",
    "train.collapse_warning_steps", "data.num_workers", "data.prefetch_buffer", "data.data_dir",
    "data.manual_dir", "data.eval_max_images", "data.eval_crop", "data.eval_split",
    "loss.vgg.weights", "loss.vgg.download", *(f"model.{k}" for k in models.LAYOUT_OPTIONS))


def _flat(tree: dict, prefix: str = "") -> dict:
  return dict(_flatten(tree, prefix))


def check_same_run(config, workdir: str) -> None:
  """Refuses to resume a workdir whose checkpoints another config wrote (another model, seed,
  loss weight, ...: anything but ``_MAY_CHANGE_ON_RESUME``), naming the differences, before
  anything is built."""
  saved_path = paths.join(workdir, "config.json")
  checkpoints = paths.join(workdir, "checkpoints")
  if not paths.isfile(saved_path) or not paths.isdir(checkpoints) or not any(
      d.isdigit() for d in paths.listdir(checkpoints)):
    return
  from sinsr_jax.training import runs

  saved, current = _flat(runs.read_config(workdir).to_dict()), _flat(config.to_dict())
  differ = [k for k in sorted(set(saved) | set(current))
            if k not in _MAY_CHANGE_ON_RESUME and str(saved.get(k)) != str(current.get(k))]
  if differ:
    details = "; ".join(f"{k}: {saved.get(k, '(unset)')} there, {current.get(k, '(unset)')} here"
                        for k in differ[:4])
    raise UserError(f"{workdir} holds checkpoints of another run ({details}): use another "
                    f"--workdir, or delete {checkpoints} to start over")


def _sr_fn(g_model):
  return jax.jit(lambda params, model_state, lr: steps.generate(g_model, params, lr, model_state))


def _write_run_info(config, workdir: str) -> None:
  """The resolved config, and the LR degradation spelled out, for whoever reads the run later.
  Each file is replaced atomically: a resume reads them back, and a kill may come at any time."""
  write_atomic(paths.join(workdir, "config.json"), config.to_json_best_effort(indent=2))
  degradation = input_pipeline.degradation_from_config(config.data).describe()
  write_atomic(paths.join(workdir, "degradation.json"), json.dumps(degradation, indent=2))
  logging.info("LR degradation: %s", degradation)
  # What reproducing the run needs beside its config: code version, libraries, seed, command.
  info = provenance.describe(config.seed)
  history_path = paths.join(workdir, "run_info.json")
  previous = {}
  try:
    previous = json.loads(paths.read_text(history_path))
  except FileNotFoundError:
    pass
  except (OSError, ValueError) as e:  # cut by a kill under an older version: history restarts
    logging.warning("%s is unreadable (%s); its history of starts begins anew.", history_path, e)
  starts = [*previous.get("starts", []), info]  # one entry per start: resumes are visible
  write_atomic(history_path, json.dumps({**info, "starts": starts}, indent=2))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains (resuming from the newest intact checkpoint in ``workdir``) and returns the last
  metrics.

  The workdir is locked for the whole run (a second training on it raises WorkdirBusy); a
  signal before the first step of this launch has finished ends the process (preemption).
  """
  check_config(config)
  ensure_writable_dir(workdir)
  with preemption.StopRequest(workdir) as stop, workdir_lock.WorkdirLock(
      workdir, "training", jax.process_index()) as lock:
    stop.on_hard_stop(lock.release, essential=True)
    opened = []  # closed however the run ends: grain's workers, orbax's writer threads
    try:
      return _train(config, workdir, stop, opened)
    finally:
      console.current().status("finishing: checkpoint writes, data workers")
      for close in reversed(opened):
        try:
          close()
        except Exception as e:  # already failing or stopping: the first error is the one to tell
          logging.info("Closing after the run: %s", e)
      _release_shared_memory()


def _train(config, workdir: str, stop: preemption.StopRequest, opened: list) -> dict:
  check_same_run(config, workdir)
  progress = console.current()
  progress.status("building the loss")
  loss, frozen = objective.build(config)  # pretrained loss networks: found before any work
  progress.status("opening the data")
  with console.quiet_dataset_preparation():
    builder = input_pipeline.prepare_builder(config.data)
  is_chief = jax.process_index() == 0
  if is_chief:
    _write_run_info(config, workdir)

  progress.status("initialising the models")
  mesh = parallel.make_mesh()
  g_model, d_models = build_models(config)
  g_tx, d_tx = build_optimizers(config.optim, config.train.pretrain_steps)
  state = initial_state(config, g_model, d_models, g_tx, d_tx, mesh)

  train_iter = input_pipeline.train_iterator(
      builder.as_data_source(split=config.data.train_split), config.data,
      channels=config.model.channels,
      batch_size=config.train.batch_size // jax.process_count(), seed=config.seed,
      process_index=jax.process_index(), process_count=jax.process_count())
  eval_pairs = input_pipeline.eval_images(builder.as_data_source(split=config.data.eval_split),
                                          config.data, channels=config.model.channels,
                                          seed=config.seed)
  opened.append(train_iter.close)
  stop.on_hard_stop(_unlink_shared_memory)  # after the workers stopped: cleanups run last first
  stop.on_hard_stop(train_iter.close)

  if not jax.tree.leaves(state.g_params):  # bicubic: nothing to train, score it once
    logging.info("%s has no parameters: evaluating it without training.", config.model.name)
    sr = functools.partial(_sr_fn(g_model), state.ema_params, state.g_state)
    record = {"step": 0, **validation.evaluate_pairs(sr, eval_pairs, config.data.scale)}
    if is_chief:
      validation.write_metrics_json(paths.join(workdir, "metrics.json"), record, [record])
    return record

  manager = checkpointing.make_manager(workdir, config.train.keep_checkpoints)
  opened.append(manager.close)
  progress.status("looking for checkpoints")
  restored = checkpointing.restore_latest(manager, state, train_iter)
  if restored is not None:
    state = restored
    console.info("Resumed from the checkpoint at step %d.", int(state.step))
  elif config.train.get("init_from"):
    state = init_from.initialize(state, paths.absolute(config.train.init_from), lambda c: (
        initial_state(c, *build_models(c), *build_optimizers(c.optim), mesh)))
  start_step = int(state.step)

  pretrain_step, gan_step = compiled_steps(config, g_model, d_models, g_tx, d_tx, mesh, loss,
                                           frozen)
  sr_fn = _sr_fn(g_model)
  # clu's writers import TensorFlow (~4 s): only once the config and data are known good, so a
  # mistake in them is reported in a second or two.
  from clu import periodic_actions

  summaries = summaries_lib.Summaries(workdir, is_chief)
  opened.append(summaries.flush)
  writer = summaries.writer
  if start_step == 0:
    writer.write_hparams(dict(_flatten(config.to_dict())))
  train_cfg = config.train
  report = periodic_actions.ReportProgress(num_train_steps=train_cfg.num_steps, writer=writer)
  metrics_path = paths.join(workdir, "metrics.json")
  # A crash between a validation and the next checkpoint leaves records the resume will redo.
  history = [r for r in _load_history(metrics_path) if r["step"] <= start_step]
  record = history[-1] if history else {}
  scale = config.data.scale

  console.info("Training %s x%d on %s/%s with %d device(s), steps %d -> %d (pretrain %d).",
               config.model.name, scale, config.data.name, config.data.train_split,
               jax.device_count(), start_step, train_cfg.num_steps, train_cfg.pretrain_steps)
  health = monitoring.Health(train_cfg.get("max_nonfinite_steps", 10),
                             train_cfg.get("collapse_warning_steps", 2000))
  train_metrics, window = [], []
  progress.start(train_cfg.num_steps, train_cfg.pretrain_steps, start_step)
  for step in range(start_step + 1, train_cfg.num_steps + 1):
    if step in (start_step + 1, train_cfg.pretrain_steps + 1):  # a step function's first call
      progress.status(f"compiling the {console.phase_of(step, train_cfg.pretrain_steps)} step")
    batch = parallel.shard_batch(next(train_iter), mesh)
    step_fn = pretrain_step if step <= train_cfg.pretrain_steps else gan_step
    state, step_metrics = step_fn(state, batch)
    stop.arm()  # compiled and running: a first signal now ends this step with a checkpoint
    train_metrics.append(step_metrics)
    window.append(step)
    report(step, time.time())
    progress.step_done(step)
    stopping = stop.should_stop(step)
    last = step == train_cfg.num_steps or stopping
    if step % train_cfg.log_every == 0 or last:
      host = jax.device_get(_local_copy(train_metrics))
      try:
        for warning in health.update(window, host):
          logging.warning(warning)
      except monitoring.NonFiniteError as e:
        _finish(manager)
        raise monitoring.NonFiniteError(f"{e}. Last checkpoint: step "
                                        f"{manager.latest_step()} in {manager.directory}, "
                                        f"intact") from None
      summary = _mean_metrics(host)
      summary["phase_gan"] = float(step > train_cfg.pretrain_steps)
      writer.write_scalars(step, summary)
      progress.losses(step, summary)
      train_metrics, window = [], []
    # Validation runs on process 0 alone, on its local copy of the replicated weights: no
    # collective, so the other processes go on to the next step (or checkpoint) meanwhile.
    if is_chief and not stopping and (step % train_cfg.eval_every == 0 or last):
      progress.status("validating")
      sr = functools.partial(sr_fn, *_local_copy((state.ema_params, state.g_state)))
      record = {"step": step, **validation.evaluate_pairs(sr, eval_pairs, scale)}
      history.append(record)
      writer.write_scalars(step, {f"val/{k}": v for k, v in record.items() if k != "step"})
      validation.write_metrics_json(metrics_path, record, history)
      summaries.flush()
      progress.validation(step, record)
    if is_chief and not stopping and (step % train_cfg.image_every == 0 or last):
      sr = functools.partial(sr_fn, *_local_copy((state.ema_params, state.g_state)))
      writer.write_images(step, {"val/lr_bicubic_sr_hr": validation.sample_grid(
          sr, eval_pairs, scale)})
    if step % train_cfg.checkpoint_every == 0 or last:
      _save(manager, step, state, train_iter)
    if stopping:
      _finish(manager)
      summaries.flush()
      logging.warning("Stopped at step %d (%s); checkpoint written. The same command resumes.",
                      step, stop.signal_name or "preemption")
      return {**record, "stopped": f"{stop.signal_name or 'preemption'} at step {step}"}
  _finish(manager)
  summaries.flush()
  return record


def _release_shared_memory() -> None:
  """Unlinks, before the process ends, the shared memory of the batches grain's workers handed
  over. grain unlinks a batch when its array is deleted, on a background thread: one deleted
  shortly before exit, or still alive at exit (the interpreter tears the modules down first),
  is left to the resource tracker, which then warns of 'leaked shared_memory objects'."""
  import gc

  try:  # grain has no public handle on this
    from grain._src.python.ipc import shared_memory_array

    arrays = shared_memory_array.SharedMemoryArray
    pool = arrays._del_thread_pool
  except (ImportError, AttributeError) as e:  # another grain: at worst the warning comes back
    logging.info("Shared memory left to grain: %s", e)
    return
  gc.collect()  # batches in reference cycles (the pipeline's buffers) are deleted now
  if pool is not None:
    arrays._disable_async_del()  # from now on a deleted batch is unlinked at once
    pool.close()
    pool.join()  # the unlinks already queued are done
  for obj in gc.get_objects():  # still alive (a traceback holds the batch in hand)
    if isinstance(obj, arrays) and getattr(obj, "_unlink_on_del", False) and obj.shm is not None:
      try:
        obj.shm.unlink()
      except OSError:  # already unlinked
        pass
      obj._unlink_on_del = False  # its deletion now only closes the mapping


def _unlink_shared_memory() -> None:
  """Unlinks the shared memory this process still maps (the batch in hand, from grain's worker
  processes): a process ended without unwinding would leave it to the resource tracker, which
  removes it with a 'leaked shared_memory objects' warning."""
  import gc
  from multiprocessing import shared_memory

  for obj in gc.get_objects():
    if isinstance(obj, shared_memory.SharedMemory):
      try:
        obj.unlink()
      except OSError:  # already unlinked
        pass


def _save(manager, step: int, state, train_iter) -> None:
  """A checkpoint, or one clear error (disk full, folder gone) naming the ones still intact."""
  try:
    checkpointing.save(manager, step, state, train_iter)
  except OSError as e:
    raise UserError(f"cannot write the checkpoint of step {step} in {manager.directory}: "
                    f"{e.strerror or e}; the earlier checkpoints {manager.all_steps()} are "
                    f"intact") from None


def _finish(manager) -> None:
  """Waits for the asynchronous checkpoint writes; their I/O errors surface here."""
  try:
    manager.wait_until_finished()
  except OSError as e:
    raise UserError(f"a checkpoint write in {manager.directory} failed: {e.strerror or e}; the "
                    f"complete checkpoints {manager.all_steps()} are intact") from None


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Evaluates the newest checkpoint's EMA generator on ``config.data.eval_split``."""
  check_config(config)
  builder = input_pipeline.prepare_builder(config.data)
  mesh = parallel.make_mesh()
  g_model, d_models = build_models(config)
  g_tx, d_tx = build_optimizers(config.optim, config.train.pretrain_steps)
  template = initial_state(config, g_model, d_models, g_tx, d_tx, mesh)
  state = template
  if jax.tree.leaves(template.g_params):  # a model without parameters needs no checkpoint
    # A training may be writing this workdir; its newest finalized checkpoint counts.
    state = checkpointing.read_newest(workdir, template)
  if state is None:
    raise UserError(f"no checkpoint in {paths.join(workdir, 'checkpoints')}; train first")
  pairs = input_pipeline.eval_images(builder.as_data_source(split=config.data.eval_split),
                                     config.data, channels=config.model.channels,
                                     seed=config.seed)
  sr = functools.partial(_sr_fn(g_model), state.ema_params, state.g_state)
  record = {"step": int(state.step), "split": config.data.eval_split,
            **validation.evaluate_pairs(sr, pairs, config.data.scale)}
  if jax.process_index() == 0:
    path = paths.join(workdir, f"eval_{config.data.eval_split}.json")
    validation.write_metrics_json(path, record, [record])
  return record


def _local_copy(tree):
  """This process's replica of replicated arrays (on one local device)."""
  return jax.tree.map(lambda x: x.addressable_data(0), tree)


def _mean_metrics(host: list[dict]) -> dict[str, float]:
  """Means over a window's steps; skipped (non-finite) steps count only in ``nonfinite``."""
  finite = [m for m in host if not m.get("nonfinite", 0.0)] or host
  means = {k: float(np.mean([m[k] for m in finite if k in m]))
           for k in sorted({k for m in host for k in m})}
  means["nonfinite"] = float(np.mean([m.get("nonfinite", 0.0) for m in host]))
  return means


def _load_history(path: str) -> list[dict]:
  if not paths.exists(path):
    return []
  return json.loads(paths.read_text(path)).get("history", [])


def _flatten(tree: dict, prefix: str = ""):
  for k, v in tree.items():
    if isinstance(v, dict):
      yield from _flatten(v, f"{prefix}{k}.")
    else:
      yield f"{prefix}{k}", v if isinstance(v, (int, float, str, bool)) else str(v)
