"""Pure per-device training steps. No I/O, no Python side effects.

Each step is written for one device's shard of the batch; gradients and metrics are averaged
over the ``data`` mesh axis with ``lax.pmean`` (see parallel.py for the mapping).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from sinsr_jax.losses import terms as losses
from sinsr_jax.losses.generator_loss import (
  GeneratorLoss,
  model_terms,
)
from sinsr_jax.models.gradient import gradient_map

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


def split_variables(variables) -> tuple[Any, dict]:
  """(params, {collection: tree} of the non-trained variables)."""
  variables = dict(variables)
  return variables.pop("params", {}), variables


def create_train_state(rng, g_model: nn.Module, d_models: Mapping[str, nn.Module], g_tx, d_tx,
                       lr_shape: tuple[int, ...], hr_shape: tuple[int, ...]) -> TrainState:
  """``d_models``: {"image": D} and, for the gradient-map GAN term, {"gradient": D on maps}.

  Their parameters and states are dicts under the same names; one optimiser updates them all.
  """
  g_rng, d_rng, rng = jax.random.split(rng, 3)
  lr, hr = jnp.zeros(lr_shape, jnp.float32), jnp.zeros(hr_shape, jnp.float32)
  g_params, g_state = split_variables(g_model.init(g_rng, lr))
  d_params, d_state = {}, {}
  for i, (name, d_model) in enumerate(sorted(d_models.items())):
    variables = d_model.init(jax.random.fold_in(d_rng, i), lr, hr)
    d_params[name], d_state[name] = split_variables(variables)
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


def _global_mean(x):
  """Mean over the global batch: the per-device mean averaged over the ``data`` axis."""
  return jax.lax.pmean(jnp.mean(x), AXIS)


def _sample_rngs(state: TrainState) -> dict:
  """Fresh, reproducible noise for sampling generators: one key per step and device."""
  key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step),
                           jax.lax.axis_index(AXIS))
  return {"sample": key}


def _logged(terms: Mapping, weights: Mapping) -> dict:
  """Every term's raw value and the (normalised) weight it entered the total with."""
  return {**{f"loss/{k}": v for k, v in terms.items()},
          **{f"weight/{k}": v for k, v in weights.items()}}


def pretrain_step(state: TrainState, batch, frozen=None, *, g_model, g_tx, loss: GeneratorLoss,
                  ema_decay: float):
  """PSNR-oriented phase: generator only, the pixel loss (+ the model's auxiliary terms)."""
  del frozen  # the pretraining terms need no frozen networks

  def loss_fn(params):
    out, g_state = apply_model(g_model, params, state.g_state, batch["lr"], train=True,
                               rngs=_sample_rngs(state))
    terms = {"pixel": losses.pixel_loss(_sr_of(out), batch["hr"], loss.pixel_kind),
             **model_terms(out, batch)}
    terms = {k: v for k, v in terms.items() if loss.pretrain_weights.get(k, 0.0) > 0}
    total, weights = losses.convex_combination(terms, loss.pretrain_weights)
    return total, (_logged(terms, weights), g_state)

  (total, (logged, g_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
  grads = jax.lax.pmean(grads, AXIS)
  updates, g_opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  new_state = state.replace(
      step=state.step + 1, g_params=g_params, g_opt_state=g_opt_state, g_state=g_state,
      ema_params=_ema(state.ema_params, g_params, state.step, ema_decay))
  metrics = jax.lax.pmean({"g_loss": total, **logged}, AXIS)
  return _skip_if_nonfinite(state, new_state, (metrics, grads), metrics)


def _d_inputs(name: str, lr, image):
  """What discriminator ``name`` judges: the image with its LR, or both as gradient maps."""
  if name == "gradient":
    return {"lr": gradient_map(lr), "image": gradient_map(image)}
  return {"lr": lr, "image": image}


def gan_step(state: TrainState, batch, frozen, *, g_model, d_models, g_tx, d_tx,
             loss: GeneratorLoss, ema_decay: float):
  """GAN phase: G on the convex combination of its terms, then each D on real vs SR.

  ``frozen``: what the loss reads and never changes: ``"schedule"``, the GAN phase's (first,
  last) step for the weights' schedule, and ``"vgg"``, the perceptual term's network.
  """
  lr, hr = batch["lr"], batch["hr"]
  gan_kind = loss.gan_kind

  def discriminate(name, params, d_state, image):
    return apply_model(d_models[name], params[name], d_state[name], train=True,
                       **_d_inputs(name, lr, image))

  def g_loss_fn(params):
    out, g_state = apply_model(g_model, params, state.g_state, lr, train=True,
                               rngs=_sample_rngs(state))
    sr = _sr_of(out)
    terms = {**loss.image_terms(sr, hr, frozen), **model_terms(out, batch)}
    for name, term in (("image", "adversarial"), ("gradient", "gradient_adversarial")):
      if name not in d_models:
        continue
      # D's statistics are updated by its own step only; here it just scores the images.
      fake = discriminate(name, state.d_params, state.d_state, sr)[0]
      real = (jax.lax.stop_gradient(discriminate(name, state.d_params, state.d_state, hr)[0])
              if gan_kind == "ragan" else None)
      terms[term] = losses.g_loss(gan_kind, real, fake, _global_mean)
    raw = loss.raw_weights(state.step, frozen["schedule"])
    terms = {k: v for k, v in terms.items() if loss.active(k)}
    total, weights = losses.convex_combination(terms, raw)
    return total, (_logged(terms, weights), sr, g_state)

  (g_total, (logged, sr, g_state)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
      state.g_params)
  sr = jax.lax.stop_gradient(sr)

  def d_loss_fn(params):
    total, d_state, metrics = 0.0, dict(state.d_state), {}
    for name in sorted(d_models):
      real, d_state[name] = discriminate(name, params, d_state, hr)
      fake, d_state[name] = discriminate(name, params, d_state, sr)
      suffix = "" if name == "image" else f"_{name}"
      metrics[f"d_loss{suffix}"] = losses.d_loss(gan_kind, real, fake, _global_mean)
      metrics[f"d_accuracy{suffix}"] = losses.d_accuracy(gan_kind, real, fake, _global_mean)
      total = total + metrics[f"d_loss{suffix}"]
    return total, (metrics, d_state)

  (_, (d_metrics, d_state)), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
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
  metrics = jax.lax.pmean({"g_loss": g_total, **d_metrics, **logged}, AXIS)
  return _skip_if_nonfinite(state, new_state, (metrics, g_grads, d_grads), metrics)


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _skip_if_nonfinite(state: TrainState, new_state: TrainState, checked, metrics: dict):
  """A non-finite loss or gradient leaves the state as it was (only the step count moves on, in
  step with the input stream) and is logged as ``nonfinite`` = 1. ``checked`` holds values
  already averaged over devices, so every device takes the same branch."""
  ok = _all_finite(checked)
  # One branch on ``ok``, not a select per leaf: XLA fuses a copy of the whole check into every
  # select (hundreds of copies; a tiny SINSR step compiled 4x slower).
  kept = jax.lax.cond(ok, lambda: new_state.replace(step=state.step), lambda: state)
  return kept.replace(step=new_state.step), {**metrics, "nonfinite": 1.0 - ok.astype(jnp.float32)}
