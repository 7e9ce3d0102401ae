"""ESRGAN (Wang et al., ECCVW 2018): RRDBNet (64 features, 23 RRDBs, growth 32) and a
relativistic-average GAN with ESRGAN's VGG-style discriminator.

PSNR-oriented L1 pretraining, then L1 1e-2 + VGG19 conv5_4 (before ReLU) L1 1.0 + relativistic
GAN 5e-3; Adam 1e-4, betas (0.9, 0.99); batch 16 of 128x128 HR patches; EMA 0.999. The VGG term
needs the torchvision VGG19 weights (see README, "Pretrained weights"); ``quick`` swaps it for
L1 of the same weight (QUICK_LOSS).

    python -m sinsr_jax.main --config=configs/baselines/esrgan.py:quick --workdir=runs/esrgan
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402

MODEL = {"name": "esrgan", "width": 64, "num_blocks": 23, "growth": 32}
QUICK_MODEL = {"width": 32, "num_blocks": 2, "growth": 16}
LOSS = {"pixel_kind": "l1", "gan_kind": "ragan",
        "weights": {"pixel": 1e-2, "perceptual": 1.0, "adversarial": 5e-3},
        "vgg": {"source": "vgg19", "layers": ("conv5_4",), "layer_weights": (),
                "distance": "l1"}}
# Without the VGG term, L1 takes its weight: without an anchor of that size the GAN term, 5e-3
# against 1e-2, drags PSNR below bicubic within a few hundred steps (measured).
QUICK_LOSS = {"weights": {"pixel": 1e-2 + 1.0, "perceptual": 0.0}}
OPTIM = {"g_lr": 1e-4, "d_lr": 1e-4, "b1": 0.9, "b2": 0.99, "decay_rate": 0.5,
         "decay_steps": 100_000, "ema_decay": 0.999}
TRAIN = {"batch_size": 16, "num_steps": 800_000, "pretrain_steps": 400_000}
DISCRIMINATOR = {"name": "vgg", "variant": "esrgan", "norm": "batch", "width": 64}


def get_config(arg=None):
  return baseline_recipes.build(
      arg, model=MODEL, discriminator=DISCRIMINATOR, loss=LOSS, optim=OPTIM, train=TRAIN,
      quick_model=QUICK_MODEL, quick_discriminator={"width": 16}, quick_loss=QUICK_LOSS)
