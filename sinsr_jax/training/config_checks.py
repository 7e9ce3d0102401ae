"""Up-front checks of a config, before any data is prepared or anything compiled."""

from __future__ import annotations

import jax
import ml_collections

from sinsr_jax.data import degradations
from sinsr_jax.errors import ConfigError

_MODEL_META = ("name", "channels")


def model_kwargs(model_cfg: ml_collections.ConfigDict) -> dict:
  """The config's architecture options, without the registry name and channel count."""
  return {k: v for k, v in model_cfg.to_dict().items() if k not in _MODEL_META}


def check_config(config: ml_collections.ConfigDict, *, num_devices: int | None = None,
                 num_processes: int | None = None) -> None:
  """Raises ConfigError naming the first problem found."""
  from sinsr_jax import models  # deferred: importing flax models is not needed to parse flags

  num_devices = num_devices or jax.device_count()
  num_processes = num_processes or jax.process_count()
  data, train = config.data, config.train
  scale, patch = data.scale, data.patch_size
  if config.model.channels not in (1, 3):
    raise ConfigError(f"model.channels must be 1 or 3, got {config.model.channels}")
  # Building the modules checks the scale and every architecture option.
  models.create_generator(config.model.name, scale=scale, channels=config.model.channels,
                          **model_kwargs(config.model))
  models.create_discriminator(config.discriminator.name, scale=scale,
                              **model_kwargs(config.discriminator))
  if train.get("compute_dtype", "float32") not in ("float32", "bfloat16"):
    raise ConfigError(f"train.compute_dtype must be float32 or bfloat16, got "
                      f"{train.compute_dtype!r}")
  for key in ("max_nonfinite_steps", "collapse_warning_steps"):
    if train.get(key, 0) < 0:
      raise ConfigError(f"train.{key} must be >= 0 (0 = off), got {train[key]}")
  if patch <= 0 or patch % scale:
    raise ConfigError(f"data.patch_size={patch} is not divisible by data.scale={scale}")
  if patch // scale < 4:
    raise ConfigError(f"data.patch_size={patch} gives LR patches under 4x4 at x{scale}")
  if train.batch_size <= 0 or train.batch_size % num_devices:
    raise ConfigError(f"train.batch_size={train.batch_size} is not divisible by the "
                      f"{num_devices} devices")
  if train.batch_size % num_processes:
    raise ConfigError(f"train.batch_size={train.batch_size} is not divisible by the "
                      f"{num_processes} processes")
  for key in ("num_steps", "log_every", "image_every", "eval_every", "checkpoint_every",
              "keep_checkpoints"):
    if train[key] <= 0:
      raise ConfigError(f"train.{key} must be positive, got {train[key]}")
  if train.pretrain_steps < 0:
    raise ConfigError(f"train.pretrain_steps must be >= 0, got {train.pretrain_steps}")
  from sinsr_jax.losses import objective

  objective.check_loss_config(config.loss)
  if not 0.0 <= config.optim.ema_decay < 1.0:
    raise ConfigError(f"optim.ema_decay must be in [0, 1), got {config.optim.ema_decay}")
  for key, value in data.degradation.items():
    try:
      degradations.as_range(value, f"data.degradation.{key}")
    except ValueError as e:
      raise ConfigError(str(e)) from None
  if data.min_patch_gradient < 0 or data.max_patch_retries < 0:
    raise ConfigError("data.min_patch_gradient and data.max_patch_retries must be >= 0")
  if data.num_workers < 0:
    raise ConfigError(f"data.num_workers must be >= 0, got {data.num_workers}")
