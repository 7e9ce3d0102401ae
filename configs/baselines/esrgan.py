"""ESRGAN (Wang et al., ECCVW 2018): RRDBNet (64 features, 23 RRDBs, growth 32) and a
relativistic-average GAN with ESRGAN's VGG-style discriminator.

PSNR-oriented L1 pretraining, then L1 1e-2 + VGG19 conv5_4 L1 1.0 + relativistic GAN 5e-3 (the
VGG term is stood in for by L1 until the loss issue, see LOSS); Adam 1e-4, betas (0.9, 0.99);
batch 16 of 128x128 HR patches; EMA 0.999.

    python -m sinsr_jax.main --config=configs/baselines/esrgan.py:quick --workdir=runs/esrgan
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402

MODEL = {"name": "esrgan", "width": 64, "num_blocks": 23, "growth": 32}
QUICK_MODEL = {"width": 32, "num_blocks": 2, "growth": 16}
# The paper: L1 1e-2 + VGG19 conv5_4 1.0 + RaGAN 5e-3. Until the VGG term arrives with its weights
# (loss issue), L1 takes the content term's weight too: without an anchor of that size the GAN
# term, 5e-3 against 1e-2, drags PSNR below bicubic within a few hundred steps.
LOSS = {"pixel_kind": "l1", "pixel": 1e-2 + 1.0, "adversarial": 5e-3, "gan_kind": "ragan"}
OPTIM = {"g_lr": 1e-4, "d_lr": 1e-4, "b1": 0.9, "b2": 0.99, "decay_rate": 0.5,
         "decay_steps": 100_000, "ema_decay": 0.999}
TRAIN = {"batch_size": 16, "num_steps": 800_000, "pretrain_steps": 400_000}
DISCRIMINATOR = {"name": "vgg", "variant": "esrgan", "norm": "batch", "width": 64}


def get_config(arg=None):
  return baseline_recipes.build(
      arg, model=MODEL, discriminator=DISCRIMINATOR, loss=LOSS, optim=OPTIM, train=TRAIN,
      quick_model=QUICK_MODEL, quick_discriminator={"width": 16})
