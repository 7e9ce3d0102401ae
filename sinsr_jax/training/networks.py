"""The networks a config describes: the generator (all that inference needs) and the
discriminators, in the config's compute dtype. Light to import: no data or logging stack."""

from __future__ import annotations

import ml_collections

from sinsr_jax import models
from sinsr_jax.training import precision, steps
from sinsr_jax.training.config_checks import model_kwargs


def build_generator(config: ml_collections.ConfigDict):
  """The generator of ``config``, in its compute dtype."""
  g_model = models.create_generator(config.model.name, scale=config.data.scale,
                                    channels=config.model.channels, axis_name=steps.AXIS,
                                    **model_kwargs(config.model))
  return precision.with_compute_dtype(g_model, config.train.get("compute_dtype", "float32"))


def build_models(config: ml_collections.ConfigDict):
  """(generator, {"image": discriminator[, "gradient": discriminator of gradient maps]})."""
  scale = config.data.scale
  d_model = models.create_discriminator(config.discriminator.name, scale=scale,
                                        axis_name=steps.AXIS,
                                        **model_kwargs(config.discriminator))
  compute = lambda m: precision.with_compute_dtype(
      m, config.train.get("compute_dtype", "float32"))  # runs from before the option: f32
  d_models = {"image": compute(d_model)}
  if max(config.loss.weights.gradient_adversarial) > 0:  # SPSR: same architecture, own weights
    d_models["gradient"] = compute(d_model)
  return build_generator(config), d_models
