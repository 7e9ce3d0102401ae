"""Loss terms: pure functions on NHWC batches in [0, 1] (logits for the adversarial terms),
and the convex combination of the generator's terms with its linear weight schedule."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import dm_pix
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from sinsr_jax.models import vgg
from sinsr_jax.models.gradient import gradient_map

__all__ = ["GAN_KINDS", "PIXEL_KINDS", "auxiliary", "check_weights", "convex_combination",
           "d_accuracy", "d_loss", "d_loss_bce", "g_loss", "g_loss_bce", "gradient_branch_l1",
           "gradient_pixel_l1",
           "laplacian", "perceptual_loss", "pixel_l1", "pixel_loss", "scheduled_weights",
           "second_order_gradient", "sobel", "sobel_gradient", "ssim_loss", "total_variation"]

_SOBEL_X = jnp.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def pixel_l1(sr, hr):
  return jnp.mean(jnp.abs(sr - hr))


PIXEL_KINDS = ("l1", "l2", "charbonnier")


def pixel_loss(sr, hr, kind: str = "l1", eps: float = 1e-3):
  """Pixel fidelity: L1, L2 (MSE) or Charbonnier sqrt(d^2 + eps^2)."""
  d = sr - hr
  if kind == "l1":
    return jnp.mean(jnp.abs(d))
  if kind == "l2":
    return jnp.mean(d * d)
  if kind == "charbonnier":
    return jnp.mean(jnp.sqrt(d * d + eps * eps))
  raise ValueError(f"unknown pixel loss {kind!r}; valid: {', '.join(PIXEL_KINDS)}")


def sobel(images):
  """Sobel derivatives (N, H, W, C) -> (N, H, W, C, 2) [d/dy, d/dx], reflect-padded borders.

  Kernels as scipy.ndimage.sobel (unnormalised); applied per channel by one depthwise conv.
  """
  channels = images.shape[-1]
  kernels = jnp.stack([_SOBEL_X.T, _SOBEL_X], -1)  # (3, 3, 2): d/dy, d/dx
  kernels = jnp.tile(kernels[:, :, None, :], (1, 1, 1, channels))  # (3, 3, 1, 2C)
  padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
  # XLA convolutions are cross-correlations, as scipy.ndimage.sobel's correlate1d.
  out = jax.lax.conv_general_dilated(
      padded, kernels, window_strides=(1, 1), padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels,
      precision=jax.lax.Precision.HIGHEST)
  n, h, w, _ = out.shape
  return out.reshape(n, h, w, channels, 2)


def sobel_gradient(sr, hr, *, mode: str = "components", distance: str = "l2"):
  """Distance between Sobel maps: the two derivatives (``components``) or the magnitude.

  The default, MSE of the components, penalises blurred or displaced edges (SINSR's term).
  """
  a, b = sobel(sr), sobel(hr)
  if mode == "magnitude":
    a, b = (jnp.sqrt(jnp.sum(g * g, axis=-1) + 1e-12) for g in (a, b))
  elif mode != "components":
    raise ValueError(f"unknown Sobel mode {mode!r}; valid: components, magnitude")
  return _distance(a - b, distance)


_LAPLACIAN = jnp.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian(images):
  """5-point Laplacian (N, H, W, C) -> (N, H, W, C), reflect-padded borders."""
  channels = images.shape[-1]
  kernel = jnp.tile(_LAPLACIAN[:, :, None, None], (1, 1, 1, channels))
  padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
  return jax.lax.conv_general_dilated(
      padded, kernel, window_strides=(1, 1), padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels,
      precision=jax.lax.Precision.HIGHEST)


def second_order_gradient(sr, hr, *, kind: str = "sobel", distance: str = "l2"):
  """Distance between second derivatives: Sobel of Sobel (all four), or the Laplacian.

  Catches curvature errors (ringing, rounded corners) that first derivatives under-weight.
  """
  if kind == "sobel":
    def second(x):
      first = sobel(x)  # (N, H, W, C, 2)
      n, h, w, c, _ = first.shape
      return sobel(first.reshape(n, h, w, 2 * c))
    diff = second(sr) - second(hr)
  elif kind == "laplacian":
    diff = laplacian(sr) - laplacian(hr)
  else:
    raise ValueError(f"unknown second-order gradient {kind!r}; valid: sobel, laplacian")
  return _distance(diff, distance)


def total_variation(sr):
  """Anisotropic total variation of SR, mean |dy| + |dx| per pixel: 0 for a flat image."""
  dy = jnp.abs(sr[:, 1:] - sr[:, :-1])
  dx = jnp.abs(sr[:, :, 1:] - sr[:, :, :-1])
  return jnp.mean(dy) + jnp.mean(dx)


def _distance(diff, kind: str):
  if kind == "l2":
    return jnp.mean(diff * diff)
  if kind == "l1":
    return jnp.mean(jnp.abs(diff))
  raise ValueError(f"unknown distance {kind!r}; valid: l1, l2")


def auxiliary(sr, hr):
  """The original SINSR's auxiliary term: L1 of the pixels plus L1 of the Sobel maps."""
  return pixel_loss(sr, hr, "l1") + sobel_gradient(sr, hr, distance="l1")


def perceptual_loss(extractor_params, sr, hr, *, extractor: nn.Module,
                    layer_weights: Mapping[str, float], distance: str = "l2",
                    preprocessing: str = "torch"):
  """Distance between ImageNet features of SR and HR, the layers' weighted mean.

  ``extractor``: a ``vgg.Features`` whose ``outputs`` are the layers of ``layer_weights``;
  ``extractor_params`` its frozen pretrained parameters. Grayscale is replicated to RGB and
  normalised as the weights expect (``preprocessing``). No gradient flows into HR's features
  or the extractor; HR takes its own forward pass, so the backward pass covers SR alone.
  """
  extractor_params = jax.lax.stop_gradient(extractor_params)

  def features(images):
    return extractor.apply({"params": extractor_params}, vgg.imagenet_input(images, preprocessing))

  sr_features = features(sr)
  hr_features = jax.lax.stop_gradient(features(jax.lax.stop_gradient(hr)))
  total = sum(w * _distance(sr_features[layer] - hr_features[layer], distance)
              for layer, w in layer_weights.items())
  return total / sum(layer_weights.values())


def ssim_loss(sr, hr):
  """1 - SSIM (dm-pix, 11x11 Gaussian window, sigma 1.5) on [0, 1] images."""
  return 1.0 - jnp.mean(dm_pix.ssim(sr, hr, max_val=1.0))


GAN_KINDS = ("vanilla", "ragan", "hinge")


def d_loss_bce(real_logits, fake_logits):
  """Discriminator side of the vanilla GAN: real -> 1, fake -> 0."""
  real = optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits))
  fake = optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits))
  return jnp.mean(real) + jnp.mean(fake)


def g_loss_bce(fake_logits):
  """Generator side of the (non-saturating) vanilla GAN: make fakes look real."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, jnp.ones_like(fake_logits)))


def gradient_branch_l1(predicted_gradient, hr):
  """L1 between a gradient branch's HR gradient map and the gradient map of HR (SPSR)."""
  return jnp.mean(jnp.abs(predicted_gradient - gradient_map(hr)))


def gradient_pixel_l1(sr, hr):
  """L1 between the gradient maps of SR and HR (SPSR's gradient-pixel loss)."""
  return jnp.mean(jnp.abs(gradient_map(sr) - gradient_map(hr)))


def _bce(logits, target: float):
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def d_loss(kind: str, real_logits, fake_logits, batch_mean=jnp.mean):
  """Discriminator side: real (LR, HR) judged real, (LR, SR) judged fake.

  ``ragan``: relativistic average GAN (ESRGAN): each logit relative to the other set's mean
  (``batch_mean``: over the global batch in a data-parallel step). ``hinge``:
  mean(relu(1 - real)) + mean(relu(1 + fake)).
  """
  if kind == "vanilla":
    return d_loss_bce(real_logits, fake_logits)
  if kind == "ragan":
    return 0.5 * (_bce(real_logits - batch_mean(fake_logits), 1.0)
                  + _bce(fake_logits - batch_mean(real_logits), 0.0))
  if kind == "hinge":
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))
  raise ValueError(f"unknown GAN loss {kind!r}; valid: {', '.join(GAN_KINDS)}")


def d_accuracy(kind: str, real_logits, fake_logits, batch_mean=jnp.mean):
  """The share of decisions the discriminator gets right, as its loss ``kind`` decides.

  vanilla and hinge decide by the logit's sign; ``ragan`` by each logit relative to the other
  set's mean (real 5 and fake 3 is a winning relativistic discriminator, though both are > 0).
  """
  if kind == "ragan":
    real_logits, fake_logits = (real_logits - batch_mean(fake_logits),
                                fake_logits - batch_mean(real_logits))
  return 0.5 * (jnp.mean(real_logits > 0) + jnp.mean(fake_logits < 0))


def g_loss(kind: str, real_logits, fake_logits, batch_mean=jnp.mean):
  """Generator side (non-saturating); ``ragan`` uses the real logits too, the others ignore them."""
  if kind == "vanilla":
    return g_loss_bce(fake_logits)
  if kind == "ragan":
    return 0.5 * (_bce(real_logits - batch_mean(fake_logits), 0.0)
                  + _bce(fake_logits - batch_mean(real_logits), 1.0))
  if kind == "hinge":
    return -jnp.mean(fake_logits)
  raise ValueError(f"unknown GAN loss {kind!r}; valid: {', '.join(GAN_KINDS)}")


# --- The convex combination -------------------------------------------------------------------


def check_weights(weights: Mapping[str, Sequence[float] | float]) -> dict[str, tuple[float, float]]:
  """Raw config weights -> {term: (start, end)}; raises ValueError outside the simplex's cone.

  Each weight is ``(value,)`` (fixed), ``(start, end)`` (moved linearly over the GAN phase) or
  a bare number. Every weight must be finite and non-negative, and some must be positive: the
  combination divides by their sum.
  """
  checked = {}
  for term, raw in weights.items():
    values = (raw,) if isinstance(raw, int | float) else tuple(raw)
    if len(values) not in (1, 2):
      raise ValueError(f"loss.weights.{term} must be (value,) or (start, end), got {raw!r}")
    if not all(isinstance(v, int | float) and math.isfinite(v) and v >= 0 for v in values):
      raise ValueError(f"loss.weights.{term} must be non-negative (the combination is convex), "
                       f"got {raw!r}")
    checked[term] = (float(values[0]), float(values[-1]))
  if not any(max(v) > 0 for v in checked.values()):
    raise ValueError("loss.weights are all zero: at least one term needs a positive weight")
  for end, at in ((0, "start"), (1, "end")):  # linear in between: positive at both ends suffices
    if not sum(v[end] for v in checked.values()) > 0:
      raise ValueError(f"loss.weights all reach 0 at the schedule's {at}: the combination "
                       "divides by their sum")
  return checked


def scheduled_weights(weights: Mapping[str, tuple[float, float]], progress):
  """Raw weights at ``progress`` in [0, 1] of the schedule: start + (end - start) * progress."""
  progress = jnp.clip(progress, 0.0, 1.0)
  return {k: start + (end - start) * progress for k, (start, end) in weights.items()}


def convex_combination(terms: Mapping[str, jax.Array], raw_weights: Mapping[str, jax.Array]):
  """sum_k w_k * term_k / sum_k w_k over the terms present: normalised weights sum to one.

  Returns (total, normalised weights). Terms without a weight, or with weight 0 all along,
  are left out by the caller; a term whose scheduled weight passes through 0 stays in.
  """
  total_weight = sum(raw_weights[k] for k in terms)
  normalised = {k: raw_weights[k] / total_weight for k in terms}
  return sum(normalised[k] * v for k, v in terms.items()), normalised
