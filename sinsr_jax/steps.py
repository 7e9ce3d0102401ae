"""Pure per-device training steps. No I/O, no Python side effects.

Each step is written for one device's shard of the batch; gradients and metrics are averaged
over the ``data`` mesh axis with ``lax.pmean`` (see parallel.py for the mapping).
"""

from __future__ import annotations

import functools
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from sinsr_jax import losses

AXIS = "data"


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  ema_params: Any  # exponential moving average of the generator: what is evaluated and saved
  rng: jax.Array
  # Non-trained variables (batch-norm statistics, spectral-norm vectors): {collection: tree}.
  g_state: Any = flax.struct.field(default_factory=dict)
  d_state: Any = flax.struct.field(default_factory=dict)


def _split_variables(variables) -> tuple[Any, dict]:
  variables = dict(variables)
  return variables.pop("params", {}), variables


def create_train_state(rng, g_model: nn.Module, d_model: nn.Module, g_tx, d_tx,
                       lr_shape: tuple[int, ...], hr_shape: tuple[int, ...]) -> TrainState:
  g_rng, d_rng, rng = jax.random.split(rng, 3)
  lr, hr = jnp.zeros(lr_shape, jnp.float32), jnp.zeros(hr_shape, jnp.float32)
  g_params, g_state = _split_variables(g_model.init(g_rng, lr))
  d_params, d_state = _split_variables(d_model.init(d_rng, lr, hr))
  return TrainState(step=jnp.zeros((), jnp.int32), g_params=g_params, d_params=d_params,
                    g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
                    ema_params=g_params, rng=rng, g_state=g_state, d_state=d_state)


def apply_model(model: nn.Module, params, model_state: dict, *args, train: bool, **kwargs):
  """Applies a model; in training, also returns its updated non-trained variables."""
  variables = {"params": params, **model_state}
  if train and model_state:
    out, updates = model.apply(variables, *args, train=True, mutable=list(model_state), **kwargs)
    return out, {**model_state, **updates}
  return model.apply(variables, *args, train=train, **kwargs), model_state


def _sr_of(out):
  return out["sr"] if isinstance(out, dict) else out


def generate(g_model: nn.Module, params, lr, model_state: dict | None = None):
  """Inference: the SR image of a generator, whether it returns the image or a dict with "sr"."""
  return _sr_of(apply_model(g_model, params, model_state or {}, lr, train=False)[0])


def _ema(ema_params, params, step, decay: float):
  # Warm-up keeps the average from being dominated by the random initialisation early on.
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, ema_params, params)


def _auxiliary_terms(out, batch) -> dict:
  """Terms of generators with extra outputs: a gradient branch's map, a VAE's LR and KL."""
  if not isinstance(out, dict):
    return {}
  terms = {}
  if "grad" in out:
    terms["gradient_branch"] = losses.gradient_branch_l1(out["grad"], batch["hr"])
  if "lr_clean" in out:
    terms["vae_reconstruction"] = losses.pixel_l1(out["lr_clean"], batch["lr"])
  if "kl" in out:
    terms["kl"] = out["kl"]
  return terms


def _global_mean(x):
  """Mean over the global batch: the per-device mean averaged over the ``data`` axis."""
  return jax.lax.pmean(jnp.mean(x), AXIS)


def _sample_rngs(state: TrainState) -> dict:
  """Fresh, reproducible noise for sampling generators: one key per step and device."""
  key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step),
                           jax.lax.axis_index(AXIS))
  return {"sample": key}


def pretrain_step(state: TrainState, batch, *, g_model, g_tx, ema_decay: float,
                  weights: dict | None = None, pixel_kind: str = "l1"):
  """PSNR-oriented phase: generator only, the pixel loss (+ the model's auxiliary terms)."""
  weights = weights or {}

  def loss_fn(params):
    out, g_state = apply_model(g_model, params, state.g_state, batch["lr"], train=True,
                               rngs=_sample_rngs(state))
    aux = _auxiliary_terms(out, batch)
    terms = {"pixel": losses.pixel_loss(_sr_of(out), batch["hr"], pixel_kind), **aux}
    total = terms["pixel"] + sum(weights.get(k, 0.0) * v for k, v in aux.items())
    return total, (terms, g_state)

  (loss, (terms, g_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  grads = jax.lax.pmean(grads, AXIS)
  updates, g_opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  new_state = state.replace(
      step=state.step + 1, g_params=g_params, g_opt_state=g_opt_state, g_state=g_state,
      ema_params=_ema(state.ema_params, g_params, state.step, ema_decay))
  return new_state, jax.lax.pmean({"g_loss": loss, **terms}, AXIS)


def gan_step(state: TrainState, batch, *, g_model, d_model, g_tx, d_tx, weights: dict,
             ema_decay: float, pixel_kind: str = "l1", gan_kind: str = "vanilla"):
  """GAN phase: G on its weighted loss terms, then D on (LR, HR) vs (LR, SR)."""
  lr, hr = batch["lr"], batch["hr"]
  discriminate = functools.partial(apply_model, d_model, train=True, lr=lr)

  def g_loss_fn(params):
    out, g_state = apply_model(g_model, params, state.g_state, lr, train=True,
                               rngs=_sample_rngs(state))
    sr = _sr_of(out)
    # D's statistics are updated by its own step only; here it just scores the images.
    fake_logits, _ = discriminate(state.d_params, state.d_state, image=sr)
    real_logits = (jax.lax.stop_gradient(discriminate(state.d_params, state.d_state, image=hr)[0])
                   if gan_kind == "ragan" else None)
    terms = {
        "pixel": losses.pixel_loss(sr, hr, pixel_kind),
        "adversarial": losses.g_loss(gan_kind, real_logits, fake_logits, _global_mean),
        "ssim": losses.ssim_loss(sr, hr),
        "gradient": losses.sobel_gradient_l2(sr, hr),
        "gradient_pixel": losses.gradient_pixel_l1(sr, hr),
        "second_order": losses.second_order_gradient(sr, hr),
        "tv": losses.total_variation(sr),
        **_auxiliary_terms(out, batch),
    }
    terms = {k: v for k, v in terms.items() if weights.get(k, 0.0) or k in ("pixel",
                                                                           "adversarial")}
    total = sum(weights.get(k, 0.0) * v for k, v in terms.items())
    return total, (terms, sr, g_state)

  (g_loss, (terms, sr, g_state)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
      state.g_params)
  sr = jax.lax.stop_gradient(sr)

  def d_loss_fn(params):
    real, d_state = discriminate(params, state.d_state, image=hr)
    fake, d_state = discriminate(params, d_state, image=sr)
    accuracy = 0.5 * (jnp.mean(real > 0) + jnp.mean(fake < 0))
    return losses.d_loss(gan_kind, real, fake, _global_mean), (accuracy, d_state)

  (d_loss, (d_acc, d_state)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
      state.d_params)
  g_grads, d_grads = jax.lax.pmean((g_grads, d_grads), AXIS)

  g_updates, g_opt_state = g_tx.update(g_grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, g_updates)
  d_updates, d_opt_state = d_tx.update(d_grads, state.d_opt_state, state.d_params)
  d_params = optax.apply_updates(state.d_params, d_updates)
  new_state = state.replace(
      step=state.step + 1, g_params=g_params, d_params=d_params, g_opt_state=g_opt_state,
      d_opt_state=d_opt_state, g_state=g_state, d_state=d_state,
      ema_params=_ema(state.ema_params, g_params, state.step, ema_decay))
  metrics = {"g_loss": g_loss, "d_loss": d_loss, "d_accuracy": d_acc, **terms}
  return new_state, jax.lax.pmean(metrics, AXIS)
