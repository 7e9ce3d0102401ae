"""SRResNet (Ledig et al., CVPR 2017): 16 residual blocks with batch norm, MSE, 10^6 updates.

PSNR-oriented: no GAN phase (srgan.py adds it). Adam 1e-4, batch 16 of 96x96 HR patches.

    python -m sinsr_jax.main --config=configs/baselines/srresnet.py:quick --workdir=runs/srresnet
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402

MODEL = {"name": "srresnet", "width": 64, "num_blocks": 16}
QUICK_MODEL = {"width": 32, "num_blocks": 4}


def get_config(arg=None):
  c = baseline_recipes.build(
      arg, model=MODEL, discriminator={"name": "vgg", "variant": "srgan", "norm": "batch"},
      loss={"pixel_kind": "l2", "weights": {"pixel": 1.0}},
      optim={"g_lr": 1e-4, "b2": 0.999, "decay_rate": 1.0},
      train={"batch_size": 16, "num_steps": 1_000_000, "pretrain_steps": 1_000_000},
      quick_model=QUICK_MODEL, quick_train={"pretrain_steps": 1200})
  if "quick" not in (arg or "").split(","):
    c.data.patch_size = 96
  return c
