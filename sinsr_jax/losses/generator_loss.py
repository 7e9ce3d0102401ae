"""What the generator minimises: the term names and the settings the jitted steps read.

The term functions are in terms.py; objective.py builds a ``GeneratorLoss`` from a config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp

from sinsr_jax.losses import terms as losses


@dataclasses.dataclass(frozen=True)
class GeneratorLoss:
  """What the generator minimises, as static settings of the jitted steps.

  ``weights``: GAN-phase raw weights {term: (start, end)} (checked by
  ``losses.check_weights``), moved linearly over the schedule passed to ``raw_weights`` and
  normalised to sum to one over the terms present. ``pretrain_weights``: the pretraining
  phase's fixed raw weights (the pixel loss and models' auxiliary outputs). ``perceptual``:
  ``(extractor_params, sr, hr) -> loss``, the extractor parameters passed to the step in
  ``frozen["vgg"]``; None when the perceptual term is off.
  """

  weights: Mapping[str, tuple[float, float]]
  pretrain_weights: Mapping[str, float]
  pixel_kind: str = "l1"
  gan_kind: str = "vanilla"
  gradient_mode: str = "components"
  gradient_distance: str = "l2"
  second_order_kind: str = "sobel"
  perceptual: Callable | None = None

  def active(self, term: str) -> bool:
    return max(self.weights.get(term, (0.0, 0.0))) > 0

  def raw_weights(self, step, schedule):
    """The raw weights at ``step`` of ``schedule`` = (first step, last step): arrays read at run
    time (``frozen["schedule"]``), so runs that differ only in their step counts share one
    compiled GAN step."""
    start, end = schedule[0], schedule[1]
    return losses.scheduled_weights(self.weights, (step - start) / jnp.maximum(1.0, end - start))

  def image_terms(self, sr, hr, frozen: Mapping[str, Any]) -> dict:
    """The terms that compare SR with HR, each computed only when its weight is non-zero."""
    makers = {
        "pixel": lambda: losses.pixel_loss(sr, hr, self.pixel_kind),
        "perceptual": lambda: self.perceptual(frozen["vgg"], sr, hr),
        "ssim": lambda: losses.ssim_loss(sr, hr),
        "gradient": lambda: losses.sobel_gradient(sr, hr, mode=self.gradient_mode,
                                                  distance=self.gradient_distance),
        "second_order": lambda: losses.second_order_gradient(sr, hr,
                                                             kind=self.second_order_kind),
        "tv": lambda: losses.total_variation(sr),
        "auxiliary": lambda: losses.auxiliary(sr, hr),
        "gradient_pixel": lambda: losses.gradient_pixel_l1(sr, hr),
    }
    return {k: make() for k, make in makers.items() if self.active(k)}


IMAGE_TERMS = ("pixel", "perceptual", "ssim", "gradient", "second_order", "tv", "auxiliary",
               "gradient_pixel")
MODEL_TERMS = ("gradient_branch", "vae_reconstruction", "kl")  # from a generator's extra outputs
ADVERSARIAL_TERMS = ("adversarial", "gradient_adversarial")
TERMS = IMAGE_TERMS + MODEL_TERMS + ADVERSARIAL_TERMS


def model_terms(out, batch) -> dict:
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
