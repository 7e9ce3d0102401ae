"""Adapting a run's generator to the user's own micrographs at upscale time (zero-shot).

ZSSR's internal learning (Shocher et al., CVPR 2018) applied to a pretrained generator: each
input frame's image area is an HR image for once, its downscale by the run's scale and
degradation the LR. Random crops of these pairs (flips and 90-degree turns; flat crops redrawn
as in training) fine-tune the run's EMA weights with the pixel loss for N steps; the adapted
weights then upscale the frames themselves. Nothing in the source run is written. Crops and
degradations come from the seed: the same inputs and seed give the same weights.

A safeguard: a strip of each frame is held out of the fine-tuning; the adapted weights at the
best of a few evenly spaced checks are kept only if they beat the run's own weights on pairs
cut from those strips. Measured (benchmarks/adaptation_study.py): the check stops adaptations
that also hurt at the internal scale, but an internal gain does not promise a gain at the real
scale one x``scale`` finer, hence the conservative defaults (head layers, 20 steps).

Memory is bounded: at most MAX_FRAMES frames take part (a seeded choice), each through a window
of at most MAX_SIDE pixels a side.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import numpy as np

from sinsr_jax.errors import UserError

MAX_FRAMES = 64
MAX_SIDE = 1024
MAX_HELDOUT_PAIRS = 64
# The recommended --adapt=N and the Settings defaults: the least harmful measured across real
# and synthetic images (benchmarks/adaptation_study.py; no measured setting gains on average).
DEFAULT_STEPS = 20

# The layers that work at HR resolution (upsampler and output convolutions), per generator:
# what --adapt-layers=head fine-tunes, the trunk frozen.
HEAD_LAYERS = {
    "sinsr": ("upsample", "hr_conv", "fusion", "out_conv"),
    "rrdbnet": ("conv_hr", "conv_last"),
    "spsr": ("upsample", "conv_hr", "fusion", "conv_fused", "conv_last"),
    "srresnet": ("up_0", "up_0_act", "up_1", "up_1_act", "out"),
    "dsrvae": ("sr_upsample", "sr_out"),
    "swinir": ("upsample",),
}


class AdaptError(UserError):
  """Adaptation cannot run: no frame is large enough to cut training pairs from."""


@dataclasses.dataclass(frozen=True)
class Settings:
  """How to adapt. ``layers``: "all", or "head" (HEAD_LAYERS only). ``checks``: held-out
  evaluations, evenly spaced over the steps; the best one's weights are kept when they beat the
  source's by more than ``min_gain_db``. ``holdout``: the share of each frame's long side kept
  out of training for those checks. ``anchor_share``: the share of each batch cut from
  ``anchors`` (HR frames of the run's own training data), against forgetting."""

  steps: int
  batch: int = 8
  learning_rate: float = 5e-5
  seed: int = 0
  layers: str = "head"
  checks: int = 4
  holdout: float = 0.25
  min_gain_db: float = 0.0
  anchor_share: float = 0.0


@dataclasses.dataclass(frozen=True)
class Adaptation:
  """What adaptation gave: ``run`` holds the weights to upscale with (the adapted ones at the
  best check, or the source's when adaptation did not gain on the held-out pairs)."""

  run: object
  kept: bool
  step: int  # the adaptation step whose weights ``run`` holds; 0: the source's
  settings: Settings
  heldout_pairs: int
  heldout_db: dict  # {"bicubic": dB, "unadapted": dB, "checks": {step: dB}}

  def summary(self) -> str:
    """One line for the console: the decision and the held-out figures behind it."""
    db = self.heldout_db
    best = max(db["checks"].items(), key=lambda kv: kv[1])
    figures = (f"held-out internal pairs ({self.heldout_pairs}): adapted {best[1]:.2f} dB at "
               f"step {best[0]}, unadapted {db['unadapted']:.2f} dB, bicubic "
               f"{db['bicubic']:.2f} dB")
    if self.kept:
      return (f"Adapted weights kept (step {self.step} of {self.settings.steps}, "
              f"{best[1] - db['unadapted']:+.2f} dB): {figures}")
    return (f"Adapted weights discarded, the run's own are used (no gain on held-out pairs): "
            f"{figures}")

  def describe(self) -> dict:
    """JSON-ready provenance: settings, decision and held-out PSNRs."""
    return {"kept": self.kept, "step": self.step, **dataclasses.asdict(self.settings),
            "heldout_pairs": self.heldout_pairs,
            "heldout_psnr_db": {"bicubic": self.heldout_db["bicubic"],
                                "unadapted": self.heldout_db["unadapted"],
                                "checks": {str(k): v for k, v in
                                           self.heldout_db["checks"].items()}}}


def patch_size(run, frames: list[np.ndarray] = ()) -> int:
  """The HR crop side: the run's training patch, at most 64 (input frames are LR images);
  smaller, down to 8 LR pixels, when the largest frame cannot give a training and a held-out
  strip of that side."""
  patch = min(int(run.config.data.patch_size), 64)
  fits = [min(min(f.shape[:2]), max(f.shape[:2]) // 2) for f in frames]
  if fits:
    patch = max(min(patch, max(fits)) // run.scale * run.scale, 8 * run.scale)
  return patch


def split_frame(frame: np.ndarray, patch: int, holdout: float,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """(training part, held-out strip) of ``frame``: a strip across its long side, at least
  ``patch`` wide, at a seeded end. Distinct regions: no training crop overlaps a held-out one."""
  axis = 0 if frame.shape[0] > frame.shape[1] else 1
  length = frame.shape[axis]
  width = max(patch, int(round(holdout * length)))
  cut = width if rng.random() < 0.5 else length - width
  first, second = np.split(frame, [cut], axis=axis)
  return (second, first) if cut == width else (first, second)


def training_frames(frames: list[np.ndarray], patch: int, scale: int, seed: int,
                    holdout: float = 0.25) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """(training parts, held-out strips) of the frames (H, W, C) in [0, 1] that can give both
  (at least ``2 * patch`` x ``patch``); at most MAX_FRAMES of them, each first cut to a seeded
  window of at most MAX_SIDE a side."""
  rng = np.random.default_rng([seed, 1])
  usable = [f for f in frames if min(f.shape[:2]) >= patch and max(f.shape[:2]) >= 2 * patch]
  if not usable:
    sizes = ", ".join(f"{f.shape[1]}x{f.shape[0]}" for f in frames[:3])
    raise AdaptError(f"--adapt needs a frame of at least {2 * patch}x{patch} px above its "
                     f"databar to cut x{scale} training and held-out pairs from; the input is "
                     f"{sizes} px: upscale without --adapt")
  if len(usable) > MAX_FRAMES:
    usable = [usable[i] for i in sorted(rng.choice(len(usable), MAX_FRAMES, replace=False))]
  parts, strips = [], []
  for frame in usable:
    h, w = frame.shape[:2]
    top, left = rng.integers(0, max(h - MAX_SIDE, 0) + 1), rng.integers(0, max(w - MAX_SIDE, 0) + 1)
    part, strip = split_frame(frame[top:top + MAX_SIDE, left:left + MAX_SIDE], patch, holdout,
                              rng)
    parts.append(part)
    strips.append(strip)
  return parts, strips


def heldout_pairs(run, strips: list[np.ndarray], patch: int, seed: int) -> dict:
  """{"lr", "hr"}: the held-out strips cut into non-overlapping ``patch`` tiles (at most
  MAX_HELDOUT_PAIRS, a seeded choice), each degraded as the run was trained."""
  from sinsr_jax.data import input_pipeline

  tiles = [strip[y:y + patch, x:x + patch] for strip in strips
           for y in range(0, strip.shape[0] - patch + 1, patch)
           for x in range(0, strip.shape[1] - patch + 1, patch)]
  rng = np.random.default_rng([seed, 3])
  if len(tiles) > MAX_HELDOUT_PAIRS:
    tiles = [tiles[i] for i in sorted(rng.choice(len(tiles), MAX_HELDOUT_PAIRS, replace=False))]
  degrade = input_pipeline.degradation_from_config(run.config.data)
  hr = np.stack([input_pipeline._to_float(t, run.channels) for t in tiles])
  return {"hr": hr, "lr": np.stack([degrade(t, rng) for t in hr])}


def pair_sampler(run, frames: list[np.ndarray], patch: int, batch: int,
                 seed: int) -> Callable[..., dict]:
  """A function giving the next {"lr", "hr"} batch of random pairs cut from ``frames``."""
  from sinsr_jax.data import input_pipeline

  data = run.config.data
  patches = input_pipeline.PairedPatch(patch, run.channels, True,
                                       input_pipeline.degradation_from_config(data),
                                       data.min_patch_gradient, data.max_patch_retries)
  weights = np.array([f.shape[0] * f.shape[1] for f in frames], np.float64)
  rng = np.random.default_rng([seed, 2])

  def next_batch(size: int = batch) -> dict:
    picks = rng.choice(len(frames), size, p=weights / weights.sum())
    pairs = [patches({"image": frames[i]}, rng) for i in picks]
    return {k: np.stack([p[k] for p in pairs]) for k in ("lr", "hr")}

  return next_batch


def _trainable(run, layers: str) -> Callable[[str], bool]:
  """Whether a top-level layer of the generator is fine-tuned under ``layers``."""
  if layers == "all":
    return lambda name: True
  head = HEAD_LAYERS.get(run.config.model.name)
  if layers != "head" or head is None:
    raise AdaptError(f"--adapt-layers={layers}: valid are all and head (head: "
                     f"{', '.join(sorted(HEAD_LAYERS))} generators)")
  return lambda name: name in head


def _split(params, trainable: Callable[[str], bool]) -> tuple[dict, dict]:
  """(fine-tuned, frozen) halves of a generator's parameters by top-level layer."""
  inner = params["params"] if set(params) == {"params"} else params
  tuned = {k: v for k, v in inner.items() if trainable(k)}
  frozen = {k: v for k, v in inner.items() if not trainable(k)}
  return tuned, frozen


def _join(params, tuned: dict, frozen: dict):
  inner = {k: tuned[k] if k in tuned else frozen[k]
           for k in (params["params"] if set(params) == {"params"} else params)}
  return {"params": inner} if set(params) == {"params"} else inner


@functools.lru_cache(maxsize=8)
def _compiled_steps(g_model, learning_rate: float, scale: int):
  """The jitted training step and held-out PSNR of a generator (cached: one compile a process
  for a model and learning rate, however many images are adapted)."""
  import jax
  import jax.numpy as jnp
  import optax

  from sinsr_jax.training import steps

  tx = optax.adam(learning_rate)

  def loss_fn(tuned, frozen, template, state, lr, hr):
    sr = steps.generate(g_model, _join(template, tuned, frozen), lr, state)
    return jnp.mean(jnp.abs(sr - hr))

  @jax.jit
  def train_step(tuned, frozen, template, opt_state, state, lr, hr):
    loss, grads = jax.value_and_grad(loss_fn)(tuned, frozen, template, state, lr, hr)
    updates, opt_state = tx.update(grads, opt_state, tuned)
    return optax.apply_updates(tuned, updates), opt_state, loss

  @jax.jit
  def heldout_psnr(params, state, lr, hr):
    sr = jnp.clip(steps.generate(g_model, params, lr, state), 0.0, 1.0)
    return pooled_psnr(sr, hr, scale)

  return tx, train_step, heldout_psnr


def pooled_psnr(sr, hr, border: int):
  """PSNR (dB) of all pairs' pixels together, ``border`` pixels cropped at each edge, on the
  8-bit scale (sr, hr (N, H, W, C) in [0, 1]); flat pairs weigh as much as any pixel."""
  import jax.numpy as jnp

  if border:
    sr, hr = sr[:, border:-border, border:-border], hr[:, border:-border, border:-border]
  sr = jnp.round(sr * 255.0)
  mse = jnp.mean((sr - hr * 255.0) ** 2)
  return 10.0 * jnp.log10(255.0 ** 2 / jnp.maximum(mse, 1e-10))


def _check_steps(settings: Settings) -> list[int]:
  count = max(1, min(settings.checks, settings.steps))
  return sorted({max(1, round(settings.steps * k / count)) for k in range(1, count + 1)})


def adapt(run, frames: list[np.ndarray], settings: Settings, progress=None,
          anchors: list[np.ndarray] = (), observe: Callable | None = None) -> Adaptation:
  """The run's generator fine-tuned on pairs cut from ``frames`` (each (H, W, C) in [0, 1]:
  the image areas of the micrographs to upscale), checked on held-out pairs from other regions
  of the frames; the adapted weights are kept only when they gain there.

  ``progress``: a tqdm-like bar. ``anchors``: HR frames of the run's training data mixed in at
  ``settings.anchor_share``. ``observe(step, run)``: called at each check (for studies).
  """
  import jax
  import jax.numpy as jnp

  from sinsr_jax.data import degradations

  if settings.steps < 1:
    raise ValueError(f"adaptation steps must be >= 1, got {settings.steps}")
  if not jax.tree.leaves(run.params):
    raise AdaptError(f"--adapt fine-tunes a trained generator; {run.label} has no weights")
  patch = patch_size(run, frames)
  parts, strips = training_frames(frames, patch, run.scale, settings.seed, settings.holdout)
  sample = pair_sampler(run, parts, patch, settings.batch, settings.seed)
  anchored = min(settings.batch - 1, round(settings.anchor_share * settings.batch)) if len(
      anchors) else 0
  sample_anchor = (pair_sampler(run, list(anchors), patch, anchored, settings.seed + 1)
                   if anchored else None)
  heldout = heldout_pairs(run, strips, patch, settings.seed)
  tx, train_step, heldout_psnr = _compiled_steps(run.g_model, float(settings.learning_rate),
                                                 run.scale)
  measure = lambda params: float(heldout_psnr(params, run.model_state, heldout["lr"],  # noqa: E731
                                              heldout["hr"]))
  bicubic = float(pooled_psnr(jnp.clip(degradations.bicubic_upscale(
      jnp.asarray(heldout["lr"]), run.scale, xp=jnp), 0.0, 1.0), heldout["hr"], run.scale))
  template = jax.tree.map(jnp.asarray, run.params)
  tuned, frozen = _split(template, _trainable(run, settings.layers))
  opt_state = tx.init(tuned)
  unadapted = measure(template)
  best_step, best_params, checks = 0, None, {}
  check_at = set(_check_steps(settings))
  if progress is not None:
    progress.reset(total=settings.steps)
  for step in range(1, settings.steps + 1):
    batch = sample(settings.batch - anchored)
    if sample_anchor is not None:
      extra = sample_anchor()
      batch = {k: np.concatenate([batch[k], extra[k]]) for k in batch}
    tuned, opt_state, loss = train_step(tuned, frozen, template, opt_state, run.model_state,
                                        batch["lr"], batch["hr"])
    if step in check_at:
      params = _join(template, tuned, frozen)
      checks[step] = measure(params)
      if observe is not None:
        observe(step, dataclasses.replace(run, params=jax.device_get(params)))
      if not best_step or checks[step] > checks[best_step]:
        best_step, best_params = step, jax.device_get(params)
    if progress is not None:
      progress.set_postfix_str(f"L1 {float(loss):.4f}")
      progress.update(1)
  kept = checks[best_step] > unadapted + settings.min_gain_db
  return Adaptation(run=dataclasses.replace(run, params=best_params) if kept else run,
                    kept=kept, step=best_step if kept else 0, settings=settings,
                    heldout_pairs=len(heldout["hr"]),
                    heldout_db={"bicubic": bicubic, "unadapted": unadapted, "checks": checks})


def save_run(run, dest: str, note: dict) -> str:
  """Writes the adapted ``run`` as a run folder ``dest`` that ``--run`` reads later: its
  config, and a checkpoint at the source's step whose generator (and EMA) weights are the
  adapted ones (discriminator and optimiser state fresh: it is for inference and init_from).
  ``note`` (what was adapted on, how) goes into run_info.json. Holds the folder's lock while
  writing; a folder that already holds a run is refused."""
  import json

  import jax
  import orbax.checkpoint as ocp

  from sinsr_jax.runtime import paths, provenance
  from sinsr_jax.runtime.workdir_lock import WorkdirLock
  from sinsr_jax.training import checkpointing, parallel, train

  if paths.exists(paths.join(dest, "config.json")):
    raise UserError(f"--adapt-save: {dest} already holds a run; name a new folder")
  paths.makedirs(dest)
  with WorkdirLock(dest, "adapted weights"):
    mesh = parallel.make_mesh(jax.local_devices()[:1])
    g_model, d_models = train.build_models(run.config)
    g_tx, d_tx = train.build_optimizers(run.config.optim, run.config.train.pretrain_steps)
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
    paths.write_atomic(paths.join(dest, "run_info.json"), json.dumps(
        {**provenance.describe(int(run.config.seed)), "adapted": note}, indent=2))
    # config.json last: a folder holds a run once it is there (what the check above reads)
    paths.write_atomic(paths.join(dest, "config.json"), run.config.to_json_best_effort(indent=2))
  return dest
