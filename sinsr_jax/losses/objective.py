"""The generator's objective from a config: checked weights, schedule, and the frozen networks.

The one place where the loss touches I/O: the perceptual term's pretrained feature extractor is
loaded here, before any data is prepared, so a missing weights file stops the run at once.
"""

from __future__ import annotations

import functools

import ml_collections
import numpy as np
from absl import logging

from sinsr_jax.errors import ConfigError
from sinsr_jax.losses import terms as losses
from sinsr_jax.losses.generator_loss import (
  ADVERSARIAL_TERMS,
  IMAGE_TERMS,
  MODEL_TERMS,
  TERMS,
  GeneratorLoss,
)
from sinsr_jax.models import vgg

DISTANCES = ("l1", "l2")
SCHEDULES = ("linear", "fixed")


def raw_weights(loss_cfg: ml_collections.ConfigDict) -> dict[str, tuple[float, float]]:
  """The GAN phase's checked {term: (start, end)}; ``fixed`` keeps every start weight."""
  unknown = sorted(set(loss_cfg.weights) - set(TERMS))
  if unknown:
    raise ConfigError(f"unknown loss term {', '.join(unknown)}; valid: {', '.join(TERMS)}")
  try:
    weights = losses.check_weights(loss_cfg.weights.to_dict())
  except ValueError as e:
    raise ConfigError(str(e)) from None
  if loss_cfg.schedule == "fixed":
    weights = {k: (start, start) for k, (start, _) in weights.items()}
  if not any(max(weights.get(k, (0.0,))) > 0 for k in IMAGE_TERMS + ADVERSARIAL_TERMS):
    raise ConfigError(f"loss.weights: only {', '.join(MODEL_TERMS)} are positive, and "
                      "they exist only for generators with those outputs; give a term that "
                      "compares SR with HR a weight")
  return weights


def check_loss_config(loss_cfg: ml_collections.ConfigDict) -> None:
  """Raises ConfigError for the first invalid loss setting (no weights are loaded)."""
  raw_weights(loss_cfg)
  pretrain = loss_cfg.pretrain_weights.to_dict()
  unknown = sorted(set(pretrain) - {"pixel", *MODEL_TERMS})
  if unknown:
    raise ConfigError(f"loss.pretrain_weights has no term {', '.join(unknown)}; valid: pixel, "
                      f"{', '.join(MODEL_TERMS)}")
  for k, v in pretrain.items():
    if not v >= 0:  # also catches NaN
      raise ConfigError(f"loss.pretrain_weights.{k} must be non-negative, got {v}")
  if pretrain.get("pixel", 0.0) <= 0:
    raise ConfigError("loss.pretrain_weights.pixel must be positive: pretraining is "
                      "pixel-loss training")
  choices = (("pixel_kind", losses.PIXEL_KINDS), ("gan_kind", losses.GAN_KINDS),
             ("schedule", SCHEDULES), ("gradient_mode", ("components", "magnitude")),
             ("gradient_distance", DISTANCES), ("second_order_kind", ("sobel", "laplacian")))
  for key, valid in choices:
    if loss_cfg[key] not in valid:
      raise ConfigError(f"loss.{key}={loss_cfg[key]!r} is not one of {', '.join(valid)}")
  v = loss_cfg.vgg
  if v.distance not in DISTANCES:
    raise ConfigError(f"loss.vgg.distance={v.distance!r} is not one of {', '.join(DISTANCES)}")
  if not v.layers:
    raise ConfigError("loss.vgg.layers is empty")
  try:
    vgg.check_layers("vgg19", v.layers)
  except ValueError as e:
    raise ConfigError(f"loss.vgg.layers: {e}") from None
  if v.layer_weights and (len(v.layer_weights) != len(v.layers)
                          or not all(w >= 0 for w in v.layer_weights)
                          or not sum(v.layer_weights) > 0):
    raise ConfigError(f"loss.vgg.layer_weights must be {len(v.layers)} non-negative numbers "
                      f"(one per layer of loss.vgg.layers), not all 0; got {v.layer_weights}")


def _perceptual(vgg_cfg: ml_collections.ConfigDict, meta: dict, params):
  layer_weights = dict(zip(vgg_cfg.layers, vgg_cfg.layer_weights or [1.0] * len(vgg_cfg.layers),
                           strict=True))
  arch = meta["arch"]
  try:
    vgg.check_layers(arch, vgg_cfg.layers)
  except ValueError as e:
    raise ConfigError(f"loss.vgg.layers: {e}") from None
  extractor = vgg.Features(arch=arch, outputs=tuple(vgg_cfg.layers),
                           widths=vgg.widths_of(arch, params))
  return functools.partial(losses.perceptual_loss, extractor=extractor,
                           layer_weights=layer_weights, distance=vgg_cfg.distance,
                           preprocessing=meta["preprocessing"])


def build(config: ml_collections.ConfigDict) -> tuple[GeneratorLoss, dict]:
  """(the steps' GeneratorLoss, ``frozen``: what the GAN step reads and never changes, the
  schedule's bounds and the pretrained networks) for ``config``.

  Raises ``weights.WeightsNotFound`` (a UserError saying which file to put where) when the
  perceptual term is on and its weights cannot be found or fetched.
  """
  loss_cfg = config.loss
  check_loss_config(loss_cfg)
  weights = raw_weights(loss_cfg)
  train = config.train
  frozen, perceptual = {}, None
  has_gan_phase = train.pretrain_steps < train.num_steps
  if max(weights.get("perceptual", (0.0, 0.0))) > 0 and has_gan_phase:
    from sinsr_jax import weights as weight_import  # deferred: only runs that need VGG

    v = loss_cfg.vgg
    params, meta = weight_import.load(v.source, v.weights, download=v.download)
    frozen["vgg"] = params
    perceptual = _perceptual(v, meta, params)
    logging.info("Perceptual term: %s %s (%s input), layers %s, %s distance.", meta["arch"],
                 meta.get("source_file", v.source), meta["preprocessing"], ", ".join(v.layers),
                 v.distance)
  elif has_gan_phase:
    logging.info("Perceptual term off (loss.weights.perceptual = 0): no VGG19 weights needed.")
  on = {k: w for k, w in weights.items() if max(w) > 0}
  logging.info("GAN-phase loss (%s schedule, raw start -> end, normalised to sum to 1): %s",
               loss_cfg.schedule,
               ", ".join(f"{k} {s:g}" + (f"->{e:g}" if e != s else "") for k, (s, e) in on.items()))
  loss = GeneratorLoss(
      weights=weights, pretrain_weights=loss_cfg.pretrain_weights.to_dict(),
      pixel_kind=loss_cfg.pixel_kind, gan_kind=loss_cfg.gan_kind,
      gradient_mode=loss_cfg.gradient_mode, gradient_distance=loss_cfg.gradient_distance,
      second_order_kind=loss_cfg.second_order_kind, perceptual=perceptual)
  # The GAN phase's first and last steps: read by the step at run time, not compiled in.
  frozen["schedule"] = np.asarray([train.pretrain_steps,
                                   max(train.pretrain_steps, train.num_steps - 1)], np.float32)
  return loss, frozen
