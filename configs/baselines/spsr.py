"""SPSR (Ma et al., CVPR 2020): RRDB SR branch + gradient branch, ESRGAN's training recipe.

Losses: L1 1e-2, VGG19 conv5_4 L1 1.0, relativistic GAN 5e-3, gradient-pixel L1 1e-2, GAN on
gradient maps 5e-3 (a second discriminator of the same architecture), gradient-branch L1 0.5;
optimiser, schedule and discriminator as ESRGAN's; ``quick`` swaps the VGG term for L1 as
esrgan.py does.

    python -m sinsr_jax.main --config=configs/baselines/spsr.py:quick --workdir=runs/spsr
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402
from esrgan import DISCRIMINATOR, LOSS, OPTIM, QUICK_LOSS, TRAIN  # noqa: E402

GRADIENT_TERMS = {"gradient_pixel": 1e-2, "gradient_adversarial": 5e-3, "gradient_branch": 0.5}


def get_config(arg=None):
  return baseline_recipes.build(
      arg, model={"name": "spsr", "width": 64, "num_blocks": 23, "growth": 32, "tap_every": 5},
      discriminator=DISCRIMINATOR,
      loss={**LOSS, "weights": {**LOSS["weights"], **GRADIENT_TERMS}}, quick_loss=QUICK_LOSS,
      optim=OPTIM, train=TRAIN,
      # SPSR's fusion RRDB runs at HR size and 2x width: the quick model stays narrow.
      quick_model={"width": 16, "num_blocks": 4, "growth": 8, "tap_every": 1},
      quick_discriminator={"width": 16})
