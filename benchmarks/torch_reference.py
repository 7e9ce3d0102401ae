"""The benchmarked architectures and GAN step written again in PyTorch, the speed reference.

Layer for layer as sinsr_jax.models (same widths, kernels, paddings, attention, upsampling, the
same MATLAB-bicubic matrices) and the same GAN step as sinsr_jax.training.steps.gan_step: the
generator on its convex combination of image terms plus the adversarial term, then the
discriminator on real vs SR, Adam for both, EMA of the generator. Parameter counts equal the
JAX models' (tests/test_benchmarks.py). torch is a benchmark-only dependency (the ``torch`` extra).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sinsr_jax.data import degradations


def lrelu(x):
  return F.leaky_relu(x, 0.2)


def conv(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Conv2d:
  """A conv with flax's "SAME" padding for odd kernels and for k=4, stride 2 on even sizes."""
  return nn.Conv2d(cin, cout, k, stride, padding=(k - 1) // 2 if k % 2 else 1)


class MatlabBicubic(nn.Module):
  """x``scale`` upsampling by the same resize matrices as degradations.imresize."""

  def __init__(self, scale: int):
    super().__init__()
    self.scale = scale
    self._cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

  def forward(self, x):  # (N, C, h, w)
    h, w = x.shape[-2:]
    if (h, w) not in self._cache:
      mh = torch.from_numpy(np.asarray(degradations.resize_matrix(h, h * self.scale), np.float32))
      mw = torch.from_numpy(np.asarray(degradations.resize_matrix(w, w * self.scale), np.float32))
      self._cache[(h, w)] = (mh, mw)
    mh, mw = self._cache[(h, w)]
    return torch.einsum("oh,nchw,pw->ncop", mh, x, mw)


class CBAM(nn.Module):
  def __init__(self, channels: int, reduction: int = 8, kernel: int = 7):
    super().__init__()
    self.hidden = nn.Linear(channels, max(1, channels // reduction))
    self.out = nn.Linear(max(1, channels // reduction), channels)
    self.spatial = conv(2, 1, kernel)

  def forward(self, x):
    mlp = lambda v: self.out(F.relu(self.hidden(v)))  # noqa: E731
    att = torch.sigmoid(mlp(x.mean((2, 3))) + mlp(x.amax((2, 3))))
    x = x * att[:, :, None, None]
    pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    return x * torch.sigmoid(self.spatial(pooled))


class ResidualDenseBlock(nn.Module):
  def __init__(self, features: int, growth: int):
    super().__init__()
    self.convs = nn.ModuleList(conv(features + i * growth, growth) for i in range(4))
    self.last = conv(features + 4 * growth, features)

  def forward(self, x):
    feats = [x]
    for c in self.convs:
      feats.append(lrelu(c(torch.cat(feats, 1))))
    return x + 0.2 * self.last(torch.cat(feats, 1))


class RRDB(nn.Module):
  def __init__(self, features: int, growth: int, attention: bool):
    super().__init__()
    self.blocks = nn.ModuleList(ResidualDenseBlock(features, growth) for _ in range(3))
    self.attention = nn.ModuleList(CBAM(features) for _ in range(3)) if attention else None

  def forward(self, x):
    y = x
    for i, block in enumerate(self.blocks):
      y = block(y)
      if self.attention is not None:
        y = self.attention[i](y)
    return x + 0.2 * y


class PixelShuffleUpsampler(nn.Module):
  def __init__(self, scale: int, features: int):
    super().__init__()
    self.factors = [3] if scale == 3 else [2] * {2: 1, 4: 2, 8: 3}[scale]
    self.convs = nn.ModuleList(conv(features, features * r * r) for r in self.factors)

  def forward(self, x):
    for c, r in zip(self.convs, self.factors, strict=True):
      x = lrelu(F.pixel_shuffle(c(x), r))
    return x


class SINSRGenerator(nn.Module):
  """sinsr_jax.models.sinsr.SINSRGenerator without the gradient branch."""

  def __init__(self, scale=4, channels=1, stem_width=128, width=64, num_rrdb=4, growth=32,
               attention="cbam"):
    super().__init__()
    stack = lambda: nn.Sequential(*[RRDB(width, growth, attention == "cbam")  # noqa: E731
                                    for _ in range(num_rrdb)])
    self.stem = conv(channels, stem_width)
    self.stem_proj = conv(stem_width, width, 1)
    self.full, self.down_up, self.up_down = stack(), stack(), stack()
    self.fuse = conv(3 * width, width)
    self.upsample = PixelShuffleUpsampler(scale, width)
    self.hr_conv = conv(width, width)
    self.out_conv = conv(width, channels)
    self.bicubic = MatlabBicubic(scale)

  def forward(self, lr):
    h, w = lr.shape[-2:]
    feats = self.stem_proj(self.stem(lr))
    full = self.full(feats)
    down_up = F.interpolate(self.down_up(F.avg_pool2d(feats, 2)), size=(h, w), mode="bilinear")
    up_down = F.avg_pool2d(self.up_down(F.interpolate(feats, size=(2 * h, 2 * w),
                                                      mode="bilinear")), 2)
    fused = self.fuse(torch.cat([full, down_up, up_down], 1)) + feats
    up = lrelu(self.hr_conv(self.upsample(fused)))
    return self.bicubic(lr) + self.out_conv(up)


class RRDBNet(nn.Module):
  """ESRGAN's generator (x4), as sinsr_jax.models.rrdbnet.RRDBNet."""

  def __init__(self, scale=4, channels=3, width=64, num_blocks=23, growth=32):
    super().__init__()
    if scale != 4:
      raise ValueError("the benchmark's RRDBNet is x4")
    self.conv_first = conv(channels, width)
    self.body = nn.Sequential(*[RRDB(width, growth, False) for _ in range(num_blocks)])
    self.conv_body = conv(width, width)
    self.conv_up1, self.conv_up2 = conv(width, width), conv(width, width)
    self.conv_hr, self.conv_last = conv(width, width), conv(width, channels)

  def forward(self, lr):
    feat = self.conv_first(lr)
    feat = feat + self.conv_body(self.body(feat))
    for c in (self.conv_up1, self.conv_up2):
      feat = lrelu(c(F.interpolate(feat, scale_factor=2, mode="nearest")))
    return self.conv_last(lrelu(self.conv_hr(feat)))


class ResidualBlock(nn.Module):
  def __init__(self, features: int):
    super().__init__()
    self.conv_0, self.conv_1 = conv(features, features), conv(features, features)

  def forward(self, x):
    return x + self.conv_1(lrelu(self.conv_0(x)))


class ConditionalPatchDiscriminator(nn.Module):
  """SINSR's discriminator with layer norm (GroupNorm of one group), as in the JAX model."""

  def __init__(self, scale=4, channels=1, width=32, stage_widths=(64, 128, 256, 512)):
    super().__init__()
    self.bicubic = MatlabBicubic(scale)
    self.stem = conv(2 * channels, width)
    self.branches = nn.ModuleList(ResidualBlock(width) for _ in range(3))
    stages, cin = [], 3 * width
    for features in stage_widths:
      stages += [conv(cin, features, 4, 2), nn.GroupNorm(1, features), nn.LeakyReLU(0.2)]
      cin = features
    self.stages = nn.Sequential(*stages)
    self.logits = nn.Conv2d(cin, 1, 4)  # flax "SAME" for an even kernel pads (1, 2)

  def forward(self, lr, image):
    h, w = image.shape[-2:]
    x = lrelu(self.stem(torch.cat([image, self.bicubic(lr)], 1)))
    branches = [self.branches[0](x)]
    for block, factor in zip(self.branches[1:], (2, 4), strict=True):
      branches.append(F.interpolate(block(F.avg_pool2d(x, factor)), size=(h, w),
                                    mode="bilinear"))
    x = self.stages(torch.cat(branches, 1))
    return self.logits(F.pad(x, (1, 2, 1, 2)))


class VGGDiscriminator(nn.Module):
  """ESRGAN's VGG-style discriminator (batch norm), judging the image alone."""

  def __init__(self, channels=3, width=64, patch=128):
    super().__init__()
    layers, cin = [], channels
    for i, m in enumerate((1, 2, 4, 8, 8)):
      features = width * m
      for j, (k, s) in enumerate(((3, 1), (4, 2))):
        first = i == 0 and j == 0
        layers.append(nn.Conv2d(cin, features, k, s, padding=1, bias=first))
        if not first:
          layers.append(nn.BatchNorm2d(features))
        layers.append(nn.LeakyReLU(0.2))
        cin = features
    self.features = nn.Sequential(*layers)
    side = patch // 32
    self.linear1 = nn.Linear(cin * side * side, 100)
    self.linear2 = nn.Linear(100, 1)

  def forward(self, lr, image):
    del lr
    x = self.features(image).flatten(1)
    return self.linear2(lrelu(self.linear1(x)))


# --- The generator's image terms, as sinsr_jax.losses ------------------------------------------

_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel(x):
  """(N, C, H, W) -> (N, 2C, H, W): d/dy, d/dx per channel, reflect-padded."""
  c = x.shape[1]
  kernels = torch.stack([_SOBEL_X.T, _SOBEL_X])[:, None].repeat(c, 1, 1, 1)
  return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), kernels, groups=c)


def _gaussian_window(size=11, sigma=1.5):
  g = torch.exp(-((torch.arange(size) - size // 2) ** 2) / (2 * sigma * sigma))
  g = g / g.sum()
  return g[:, None] * g[None, :]


def ssim(a, b, max_val=1.0):
  """dm-pix's SSIM: 11x11 Gaussian window (sigma 1.5), valid filtering, per-channel mean."""
  c = a.shape[1]
  window = _gaussian_window().to(a)[None, None].repeat(c, 1, 1, 1)
  f = lambda x: F.conv2d(x, window, groups=c)  # noqa: E731
  mu_a, mu_b = f(a), f(b)
  var_a, var_b = f(a * a) - mu_a ** 2, f(b * b) - mu_b ** 2
  cov = f(a * b) - mu_a * mu_b
  c1, c2 = (0.01 * max_val) ** 2, (0.03 * max_val) ** 2
  num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
  den = (mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2)
  return (num / den).mean()


def image_terms(sr, hr) -> dict[str, torch.Tensor]:
  """SINSR's GAN-phase image terms (perceptual off, as in the benchmark's configs)."""
  ds, dh = sobel(sr), sobel(hr)
  return {"auxiliary": (sr - hr).abs().mean() + (ds - dh).abs().mean(),
          "gradient": ((ds - dh) ** 2).mean(),
          "second_order": ((sobel(ds) - sobel(dh)) ** 2).mean(),
          "ssim": 1.0 - ssim(sr, hr)}


# --- The GAN step ----------------------------------------------------------------------------


class GANStep:
  """One G+D step as sinsr_jax.training.steps.gan_step, for ``weights`` {term: weight} over the
  terms in use (normalised to sum to one; ``adversarial`` included) and ``gan_kind``
  vanilla | ragan."""

  def __init__(self, g: nn.Module, d: nn.Module, weights: dict[str, float], gan_kind: str,
               lr=1e-4, betas=(0.9, 0.99), ema_decay=0.999, compile_models=False):
    self.g, self.d = g, d
    self.ema = copy.deepcopy(g).requires_grad_(False)
    total = sum(weights.values())
    self.weights = {k: v / total for k, v in weights.items()}
    self.gan_kind = gan_kind
    self.g_opt = torch.optim.Adam(g.parameters(), lr=lr, betas=betas)
    self.d_opt = torch.optim.Adam(d.parameters(), lr=lr, betas=betas)
    self.ema_decay = ema_decay
    self.g_fwd = torch.compile(g) if compile_models else g
    self.d_fwd = torch.compile(d) if compile_models else d

  def _gan_losses(self, real, fake):
    bce = F.binary_cross_entropy_with_logits
    if self.gan_kind == "ragan":
      g = 0.5 * (bce(real - fake.mean(), torch.zeros_like(real))
                 + bce(fake - real.mean(), torch.ones_like(fake)))
      return g
    return bce(fake, torch.ones_like(fake))

  def __call__(self, lr, hr) -> dict[str, float]:
    self.g_opt.zero_grad(set_to_none=True)
    sr = self.g_fwd(lr)
    terms = {k: v for k, v in image_terms(sr, hr).items() if k in self.weights}
    if "pixel" in self.weights:
      terms["pixel"] = (sr - hr).abs().mean()
    self.d.requires_grad_(False)
    fake = self.d_fwd(lr, sr)
    real = self.d_fwd(lr, hr).detach() if self.gan_kind == "ragan" else None
    terms["adversarial"] = self._gan_losses(real, fake)
    g_loss = sum(self.weights[k] * v for k, v in terms.items())
    g_loss.backward()
    self.d.requires_grad_(True)

    self.d_opt.zero_grad(set_to_none=True)
    sr = sr.detach()
    real, fake = self.d_fwd(lr, hr), self.d_fwd(lr, sr)
    bce = F.binary_cross_entropy_with_logits
    if self.gan_kind == "ragan":
      d_loss = 0.5 * (bce(real - fake.mean(), torch.ones_like(real))
                      + bce(fake - real.mean(), torch.zeros_like(fake)))
    else:
      d_loss = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
    d_loss.backward()
    self.g_opt.step()
    self.d_opt.step()
    with torch.no_grad():
      for e, p in zip(self.ema.parameters(), self.g.parameters(), strict=True):
        e.lerp_(p, 1.0 - self.ema_decay)
    return {"g_loss": float(g_loss), "d_loss": float(d_loss)}


def num_params(module: nn.Module) -> int:
  return sum(p.numel() for p in module.parameters())
