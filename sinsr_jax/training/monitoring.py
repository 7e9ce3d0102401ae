"""Training health: non-finite updates (skipped by the steps) and GAN collapse signals."""

from __future__ import annotations

import dataclasses

from sinsr_jax.errors import UserError


class NonFiniteError(UserError):
  """Too many consecutive non-finite updates: the run stops, its checkpoints intact."""


@dataclasses.dataclass
class Health:
  """Fed each logged window's per-step metrics, in order; raises or returns warnings.

  max_nonfinite: consecutive skipped (non-finite) updates that stop the run (0 = never).
  collapse_steps: steps of discriminator accuracy pinned at >= 0.99 or <= 0.01 before a
  warning (0 = never).
  """

  max_nonfinite: int
  collapse_steps: int
  consecutive_nonfinite: int = 0
  total_nonfinite: int = 0
  pinned_since: int | None = None
  pinned_side: str = ""

  def update(self, steps: list[int], per_step: list[dict]) -> list[str]:
    warnings, skipped = [], 0
    for step, metrics in zip(steps, per_step, strict=True):
      if metrics.get("nonfinite", 0.0) > 0:
        skipped += 1
        self.total_nonfinite += 1
        self.consecutive_nonfinite += 1
        if self.max_nonfinite and self.consecutive_nonfinite >= self.max_nonfinite:
          raise NonFiniteError(
              f"{self.consecutive_nonfinite} non-finite updates in a row, the last at step "
              f"{step} (loss or gradient NaN/inf; each was skipped): stopping. Lower the "
              f"learning rates or check the data; train.max_nonfinite_steps sets the limit")
        continue
      self.consecutive_nonfinite = 0
      warnings += self._collapse(step, metrics.get("d_accuracy"))
    if skipped:
      warnings.insert(0, f"step {steps[-1]}: {skipped} non-finite update(s) skipped in the last "
                         f"{len(steps)} steps ({self.total_nonfinite} in total)")
    return warnings

  def _collapse(self, step: int, accuracy) -> list[str]:
    if not self.collapse_steps or accuracy is None:
      return []
    side = "1" if accuracy >= 0.99 else "0" if accuracy <= 0.01 else ""
    if side != self.pinned_side:
      self.pinned_since, self.pinned_side = (step if side else None), side
      return []
    if side and step - self.pinned_since + 1 == self.collapse_steps:
      meaning = ("the discriminator wins outright: the generator's adversarial gradient "
                 "vanishes" if side == "1" else "the discriminator has given up: the "
                 "adversarial term no longer shapes the generator")
      return [f"step {step}: discriminator accuracy pinned at {side} for {self.collapse_steps} "
              f"steps — {meaning} (GAN collapse?); consider the learning rates or gan_kind"]
    return []
