"""SRGAN (Ledig et al., CVPR 2017): SRResNet pretrained on MSE, then adversarial training.

Generator SRResNet; SRGAN's VGG-style discriminator with batch norm; the GAN phase minimises the
VGG54 content loss (MSE of VGG19 relu5_4 features, weighted 0.006 ~ the paper's 1/12.75 rescaling
of the features, squared) + 1e-3 adversarial (vanilla GAN); Adam 1e-4 then 1e-5 (here: decay by
10x over the 10^5 GAN steps). ``quick`` swaps the VGG term for MSE of the pixels.

    python -m sinsr_jax.main --config=configs/baselines/srgan.py:quick --workdir=runs/srgan
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402
from srresnet import MODEL, QUICK_MODEL  # noqa: E402


def get_config(arg=None):
  c = baseline_recipes.build(
      arg, model=MODEL, discriminator={"name": "vgg", "variant": "srgan", "norm": "batch",
                                       "width": 64},
      loss={"pixel_kind": "l2", "gan_kind": "vanilla",
            "weights": {"perceptual": 0.006, "adversarial": 1e-3},
            "vgg": {"source": "vgg19", "layers": ("relu5_4",), "layer_weights": (),
                    "distance": "l2"}},
      quick_loss={"weights": {"pixel": 1.0, "perceptual": 0.0}},
      optim={"g_lr": 1e-4, "d_lr": 1e-4, "b2": 0.999, "decay_rate": 0.1,
             "decay_steps": 100_000},
      train={"batch_size": 16, "num_steps": 1_100_000, "pretrain_steps": 1_000_000},
      quick_model=QUICK_MODEL, quick_discriminator={"width": 16})
  if "quick" not in (arg or "").split(","):
    c.data.patch_size = 96
  return c
