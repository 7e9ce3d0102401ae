"""Adapting a run's generator to the user's own micrographs at upscale time (zero-shot).

ZSSR's internal learning (Shocher et al., CVPR 2018) applied to a pretrained generator: each
input frame's image area is an HR image for once, its downscale by the run's scale and
degradation the LR. Random crops of these pairs (flips and 90-degree turns; flat crops redrawn
as in training) fine-tune the run's EMA weights with the pixel loss for N steps; the adapted
weights then upscale the frames themselves. Nothing in the source run is written. Crops and
degradations come from the seed: the same inputs and seed give the same weights.

Memory is bounded: at most MAX_FRAMES frames take part (a seeded choice), each through a window
of at most MAX_SIDE pixels a side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from sinsr_jax.errors import UserError

MAX_FRAMES = 64
MAX_SIDE = 1024
DEFAULT_STEPS = 200  # what the README recommends: --adapt=200


class AdaptError(UserError):
  """Adaptation cannot run: no frame is large enough to cut training pairs from."""


@dataclasses.dataclass(frozen=True)
class Settings:
  steps: int
  batch: int = 8
  learning_rate: float = 5e-5
  seed: int = 0


def patch_size(run) -> int:
  """The HR crop side: the run's training patch, at most 64 (input frames are LR images)."""
  return min(int(run.config.data.patch_size), 64)


def training_frames(frames: list[np.ndarray], patch: int, scale: int,
                    seed: int) -> list[np.ndarray]:
  """The frames (H, W, C) in [0, 1] to cut pairs from: those at least ``patch`` a side, at most
  MAX_FRAMES of them, each cut to a seeded window of at most MAX_SIDE a side."""
  rng = np.random.default_rng([seed, 1])
  usable = [f for f in frames if min(f.shape[:2]) >= patch]
  if not usable:
    sizes = ", ".join(f"{f.shape[1]}x{f.shape[0]}" for f in frames[:3])
    raise AdaptError(f"--adapt needs a frame of at least {patch}x{patch} px above its databar "
                     f"to cut x{scale} training pairs from; the input is {sizes} px: upscale "
                     f"without --adapt")
  if len(usable) > MAX_FRAMES:
    usable = [usable[i] for i in sorted(rng.choice(len(usable), MAX_FRAMES, replace=False))]
  windows = []
  for frame in usable:
    h, w = frame.shape[:2]
    top, left = rng.integers(0, max(h - MAX_SIDE, 0) + 1), rng.integers(0, max(w - MAX_SIDE, 0) + 1)
    windows.append(frame[top:top + MAX_SIDE, left:left + MAX_SIDE])
  return windows


def pair_sampler(run, frames: list[np.ndarray], batch: int, seed: int) -> Callable[[], dict]:
  """A function giving the next {"lr", "hr"} batch of random pairs cut from ``frames``."""
  from sinsr_jax import input_pipeline

  data = run.config.data
  patches = input_pipeline.PairedPatch(patch_size(run), run.channels, True,
                                       input_pipeline.degradation_from_config(data),
                                       data.min_patch_gradient, data.max_patch_retries)
  weights = np.array([f.shape[0] * f.shape[1] for f in frames], np.float64)
  rng = np.random.default_rng([seed, 2])

  def next_batch() -> dict:
    picks = rng.choice(len(frames), batch, p=weights / weights.sum())
    pairs = [patches({"image": frames[i]}, rng) for i in picks]
    return {k: np.stack([p[k] for p in pairs]) for k in ("lr", "hr")}

  return next_batch


def adapt(run, frames: list[np.ndarray], settings: Settings, progress=None):
  """The run with its generator fine-tuned on pairs cut from ``frames`` (each (H, W, C) in
  [0, 1]: the image areas of the micrographs to upscale). ``progress``: a tqdm-like bar."""
  import jax
  import jax.numpy as jnp
  import optax

  from sinsr_jax import steps

  if settings.steps < 1:
    raise ValueError(f"adaptation steps must be >= 1, got {settings.steps}")
  if not jax.tree.leaves(run.params):
    raise AdaptError(f"--adapt fine-tunes a trained generator; {run.label} has no weights")
  patch = patch_size(run)
  sample = pair_sampler(run, training_frames(frames, patch, run.scale, settings.seed),
                        settings.batch, settings.seed)
  tx = optax.adam(settings.learning_rate)

  def loss_fn(params, lr, hr):
    return jnp.mean(jnp.abs(steps.generate(run.g_model, params, lr, run.model_state) - hr))

  @jax.jit
  def step(params, opt_state, lr, hr):
    loss, grads = jax.value_and_grad(loss_fn)(params, lr, hr)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params = jax.tree.map(jnp.asarray, run.params)
  opt_state = tx.init(params)
  if progress is not None:
    progress.reset(total=settings.steps)
  for _ in range(settings.steps):
    batch = sample()
    params, opt_state, loss = step(params, opt_state, batch["lr"], batch["hr"])
    if progress is not None:
      progress.set_postfix_str(f"L1 {float(loss):.4f}")
      progress.update(1)
  return dataclasses.replace(run, params=jax.device_get(params))


def save_run(run, dest: str, note: dict) -> str:
  """Writes the adapted ``run`` as a run folder ``dest`` that ``--run`` reads later: its
  config, and a checkpoint at the source's step whose generator (and EMA) weights are the
  adapted ones (discriminator and optimiser state fresh: it is for inference and init_from).
  ``note`` (what was adapted on, how) goes into run_info.json. Holds the folder's lock while
  writing; a folder that already holds a run is refused."""
  import json
  import os

  import jax
  import orbax.checkpoint as ocp

  from sinsr_jax import checkpointing, parallel, provenance, train
  from sinsr_jax.workdir_lock import WorkdirLock

  if os.path.exists(os.path.join(dest, "config.json")):
    raise UserError(f"--adapt-save: {dest} already holds a run; name a new folder")
  os.makedirs(dest, exist_ok=True)
  with WorkdirLock(dest, "adapted weights"):
    mesh = parallel.make_mesh(jax.local_devices()[:1])
    g_model, d_models = train.build_models(run.config)
    g_tx, d_tx = train.build_optimizers(run.config.optim)
    state = train.initial_state(run.config, g_model, d_models, g_tx, d_tx, mesh)
    like = lambda tree, template: jax.device_put(  # noqa: E731
        tree, jax.tree.map(lambda x: x.sharding, template))
    state = state.replace(step=jax.numpy.asarray(run.step, state.step.dtype),
                          g_params=like(run.params, state.g_params),
                          ema_params=like(run.params, state.ema_params),
                          g_state=like(run.model_state, state.g_state))
    manager = checkpointing.make_manager(dest, None)
    try:
      manager.save(run.step, args=ocp.args.Composite(state=ocp.args.StandardSave(state)))
      manager.wait_until_finished()
    finally:
      manager.close()
    with open(os.path.join(dest, "config.json"), "w") as f:
      f.write(run.config.to_json_best_effort(indent=2))
    with open(os.path.join(dest, "run_info.json"), "w") as f:
      json.dump({**provenance.describe(int(run.config.seed)), "adapted": note}, f, indent=2)
  return dest
