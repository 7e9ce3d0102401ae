"""LPIPS (Zhang et al., CVPR 2018, v0.1) in JAX: learned perceptual distance, lower is closer.

Both images go through an ImageNet backbone (AlexNet or VGG16, frozen); at five layers the
features are unit-normalised along channels, their squared difference is weighted per channel
by a learned linear head, averaged over space and summed over layers. LPIPS feeds [-1, 1]
images through a scaling layer with shift/scale = 2 * ImageNet mean - 1 / 2 * std, which is the
[0, 1] mean/std normalisation of ``vgg.imagenet_input``. Grayscale is replicated to RGB.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from sinsr_jax.models import vgg

# The five layers LPIPS taps, per backbone (torchvision layer names, after the ReLU).
LAYERS = {
    "alex": ("relu1", "relu2", "relu3", "relu4", "relu5"),
    "vgg": ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"),
}
BACKBONES = {"alex": "alexnet", "vgg": "vgg16"}  # weights.SOURCES names of the backbones
_EPS = 1e-10  # LPIPS' normalize_tensor


def _unit_normalise(features):
  norm = jnp.sqrt(jnp.sum(features * features, axis=-1, keepdims=True))
  return features / (norm + _EPS)


def lpips_distance(backbone_params, heads: Mapping[str, jax.Array], x, y, *, net: str = "alex"):
  """Per-image LPIPS between NHWC [0, 1] batches ``x`` and ``y`` (1 or 3 channels) -> (N,).

  ``backbone_params``: ``vgg.Features`` params of ``BACKBONES[net]`` (widths from the params);
  ``heads``: {"lin0".. "lin4": (C_k,)} non-negative channel weights.
  """
  arch = BACKBONES[net]  # the weight-import names are the vgg.Features arch names
  extractor = vgg.Features(arch=arch, outputs=LAYERS[net],
                           widths=vgg.widths_of(arch, backbone_params))
  both = vgg.imagenet_input(jnp.concatenate([x, y]), "torch")
  features = extractor.apply({"params": backbone_params}, both)
  n = x.shape[0]
  total = jnp.zeros((n,), jnp.float32)
  for k, layer in enumerate(LAYERS[net]):
    f = _unit_normalise(features[layer])
    diff = (f[:n] - f[n:]) ** 2
    total = total + jnp.mean(jnp.sum(diff * heads[f"lin{k}"], axis=-1), axis=(1, 2))
  return total


@dataclasses.dataclass(frozen=True)
class LPIPS:
  """A loaded LPIPS: ``LPIPS.load("alex")(x, y)`` -> per-image distances (jitted)."""

  net: str
  backbone_params: dict
  heads: dict

  @classmethod
  def load(cls, net: str = "alex", *, backbone_path: str = "", heads_path: str = "",
           cache_dir: str = "", download: bool = True) -> LPIPS:
    """Backbone and heads through the weight import (local files, the cache or their URLs);
    raises weights.WeightsNotFound, saying which file to put where, when one is missing."""
    from sinsr_jax import weights

    if net not in LAYERS:
      raise ValueError(f"unknown LPIPS network {net!r}; valid: {', '.join(LAYERS)}")
    params, _ = weights.load(BACKBONES[net], backbone_path, cache_dir=cache_dir,
                             download=download)
    heads = weights.load_lpips_heads(f"lpips_{net}", heads_path, cache_dir=cache_dir,
                                     download=download)
    return cls(net, params, heads)

  @functools.cached_property
  def _jitted(self):
    return jax.jit(functools.partial(lpips_distance, net=self.net))

  def __call__(self, x, y) -> np.ndarray:
    return np.asarray(self._jitted(self.backbone_params, self.heads, jnp.asarray(x, jnp.float32),
                                   jnp.asarray(y, jnp.float32)))
