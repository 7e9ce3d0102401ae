"""SwinIR, lightweight (Liang et al., ICCVW 2021): embed 60, 4 RSTBs of depth 6, window 8.

PSNR-oriented, as the paper's lightweight SR: L1, Adam 2e-4 halved along the run (here: an
exponential decay to a 16th over 500k steps), batch 64 of 64x64 LR patches, no GAN phase.

    python -m sinsr_jax.main --config=configs/baselines/swinir.py:quick --workdir=runs/swinir
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402


def get_config(arg=None):
  c = baseline_recipes.build(
      arg, model={"name": "swinir", "embed_dim": 60, "depths": (6, 6, 6, 6), "heads": 6,
                  "window": 8, "mlp_ratio": 2.0},
      discriminator={"name": "sinsr_patch"},
      loss={"pixel_kind": "l1", "weights": {"pixel": 1.0}},
      optim={"g_lr": 2e-4, "b2": 0.99, "decay_rate": 0.5, "decay_steps": 125_000},
      train={"batch_size": 64, "num_steps": 500_000, "pretrain_steps": 500_000},
      quick_model={"embed_dim": 24, "depths": (2, 2), "heads": 4, "window": 8},
      quick_train={"pretrain_steps": 1200})
  if "quick" not in (arg or "").split(","):
    c.data.patch_size = 64 * c.data.scale  # 64x64 LR patches
  return c
