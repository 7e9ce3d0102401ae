"""dSRVAE (Liu et al., CVPRW 2020, arXiv 2004.12811): a variational autoencoder that denoises
the LR input, with a small SR network on the denoised image.

VAE: convs down to a latent map (x1/4) -> mean and log-variance -> a sample (the mean at
inference) -> decoder back to LR size -> a residual on the input: the clean LR estimate.
SR network: conv, residual blocks, pixel-shuffle upsampling, a residual on the clean LR's
bicubic upsample. Output {"sr", "lr_clean", "kl"}: the training step adds the reconstruction
(L1 of lr_clean to the input) and KL terms with their weights. Sampling uses the "sample" rng.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from sinsr_jax.data import degradations
from sinsr_jax.models.blocks import PixelShuffleUpsampler, lrelu, resize_to
from sinsr_jax.models.conv import Conv


class DSRVAE(nn.Module):
  scale: int = 4
  channels: int = 1
  width: int = 64
  latent: int = 16
  num_blocks: int = 8

  @nn.compact
  def __call__(self, lr, train: bool = False):
    h, w = lr.shape[1], lr.shape[2]
    e = lrelu(Conv(self.width, (3, 3), name="enc_in")(lr))
    for i in range(2):
      e = lrelu(Conv(self.width, (4, 4), strides=(2, 2), name=f"enc_down_{i}")(e))
    mean = Conv(self.latent, (3, 3), name="enc_mean")(e)
    log_var = jnp.clip(Conv(self.latent, (3, 3), name="enc_log_var")(e), -10.0, 10.0)
    z = mean
    if train:
      z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(self.make_rng("sample"), mean.shape)
    d = lrelu(Conv(self.width, (3, 3), name="dec_in")(z))
    for i in range(2):
      d = resize_to(d, (d.shape[1] * 2, d.shape[2] * 2), method="nearest")
      d = lrelu(Conv(self.width, (3, 3), name=f"dec_up_{i}")(d))
    clean = lr + Conv(self.channels, (3, 3), name="dec_out")(resize_to(d, (h, w)))
    kl = -0.5 * jnp.mean(1.0 + log_var - mean * mean - jnp.exp(log_var))

    head = Conv(self.width, (3, 3), name="sr_in")(clean)
    x = head
    for i in range(self.num_blocks):
      y = nn.relu(Conv(self.width, (3, 3), name=f"sr_block_{i}_0")(x))
      x = x + Conv(self.width, (3, 3), name=f"sr_block_{i}_1")(y)
    x = head + Conv(self.width, (3, 3), name="sr_body")(x)
    x = PixelShuffleUpsampler(self.scale, self.width, name="sr_upsample")(x)
    residual = Conv(self.channels, (3, 3), name="sr_out")(x)
    sr = degradations.bicubic_upscale(clean, self.scale, xp=jnp) + residual
    return {"sr": sr, "lr_clean": clean, "kl": kl}
