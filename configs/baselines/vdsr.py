"""VDSR (Kim et al., CVPR 2016): 20 layers of 64 3x3 convs on the bicubic upsample, MSE only.

The paper trains with SGD (lr 0.1, momentum 0.9, adjustable gradient clipping, 80 epochs); this
recipe uses Adam at 1e-4, as re-implementations commonly do. PSNR-oriented: no GAN phase.

    python -m sinsr_jax.main --config=configs/baselines/vdsr.py:quick --workdir=runs/vdsr
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402


def get_config(arg=None):
  return baseline_recipes.build(
      arg, model={"name": "vdsr", "width": 64, "depth": 20},
      discriminator={"name": "sinsr_patch"},
      loss={"pixel_kind": "l2", "weights": {"pixel": 1.0}},
      optim={"g_lr": 1e-4, "b2": 0.999, "decay_rate": 0.1, "decay_steps": 200_000},
      train={"batch_size": 64, "num_steps": 400_000, "pretrain_steps": 400_000},
      quick_model={"width": 32, "depth": 10},
      quick_train={"pretrain_steps": 1200})
