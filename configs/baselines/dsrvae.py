"""dSRVAE (Liu et al., CVPRW 2020): a VAE that denoises the LR input + a small SR network.

Training as the paper: reconstruction (pixel L1 of SR; L1 of the VAE's clean LR to its input)
and KL in the pretraining phase, then a GAN phase adding an adversarial term. Adam 1e-4.

    python -m sinsr_jax.main --config=configs/baselines/dsrvae.py:quick --workdir=runs/dsrvae
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402


def get_config(arg=None):
  return baseline_recipes.build(
      arg, model={"name": "dsrvae", "width": 64, "latent": 16, "num_blocks": 8},
      discriminator={"name": "sinsr_patch", "norm": "none"},
      loss={"pixel_kind": "l1", "gan_kind": "vanilla",
            "weights": {"pixel": 1.0, "vae_reconstruction": 1.0, "kl": 1e-3,
                        "adversarial": 5e-3},
            "pretrain_weights": {"pixel": 1.0, "vae_reconstruction": 1.0, "kl": 1e-3}},
      optim={"g_lr": 1e-4, "d_lr": 1e-4, "b2": 0.999, "decay_rate": 0.5,
             "decay_steps": 100_000},
      train={"batch_size": 16, "num_steps": 400_000, "pretrain_steps": 200_000},
      quick_model={"width": 32, "latent": 8, "num_blocks": 3},
      quick_discriminator={"width": 16, "stage_widths": (32, 64, 128, 128)})
