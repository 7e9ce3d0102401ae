"""The published weights files the product knows: where each comes from, its format, hash and
preprocessing convention."""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from sinsr_jax.errors import UserError
from sinsr_jax.weights.readers import WeightsError

Params = dict[str, dict[str, np.ndarray]]


class WeightsNotFound(UserError):
  """No weights file was found or could be downloaded."""


# ---------------------------------------------------------------------------------------------
# Known sources

@dataclasses.dataclass(frozen=True)
class Source:
  """A published weights file. ``hash``: "sha256:<hex prefix>", "md5:<hex>" or "" (unknown)."""

  name: str
  url: str
  filename: str
  format: str  # "torch" (.pth) | "keras" (legacy Keras HDF5)
  arch: str  # the vgg.Features arch (for LPIPS heads: the backbone they sit on)
  preprocessing: str  # vgg.imagenet_input convention the weights were trained with
  hash: str = ""
  kind: str = "features"  # "features" (vgg.Features params) | "lpips_heads"
  config_key: str = ""  # where a config takes the file's path, for the not-found message

  @property
  def label(self) -> str:
    return f"LPIPS {_label(self.arch)} heads" if self.kind == "lpips_heads" else _label(self.arch)


_TORCHVISION = "https://download.pytorch.org/models/"
_LPIPS = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/"
_KERAS = "https://storage.googleapis.com/tensorflow/keras-applications/"


def _torchvision(name: str, filename: str, arch: str, config_key: str = "") -> Source:
  # torchvision names its files <model>-<first 8 hex digits of the file's sha256>.pth.
  prefix = re.search(r"-([0-9a-f]+)\.pth$", filename).group(1)
  return Source(name, _TORCHVISION + filename, filename, "torch", arch, "torch",
                hash=f"sha256:{prefix}", config_key=config_key)


SOURCES: dict[str, Source] = {s.name: s for s in (
    _torchvision("vgg19", "vgg19-dcbb9e9d.pth", "vgg19", "loss.vgg.weights"),
    _torchvision("vgg16", "vgg16-397923af.pth", "vgg16"),
    _torchvision("alexnet", "alexnet-owt-7be5be79.pth", "alexnet"),
    # md5s are keras' own file_hash (keras/src/applications/vgg{16,19}.py).
    Source("vgg19_keras", _KERAS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
           "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "keras", "vgg19", "caffe",
           hash="md5:253f8cb515780f3b799900260a226db6", config_key="loss.vgg.weights"),
    Source("vgg16_keras", _KERAS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
           "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "keras", "vgg16", "caffe",
           hash="md5:6d6bbae143d832006294945121d1f1fc"),
    # LPIPS scales [-1, 1] inputs by shift/scale = ImageNet mean/std: the torch convention.
    Source("lpips_alex", _LPIPS + "alex.pth", "alex.pth", "torch", "alexnet", "torch",
           kind="lpips_heads"),
    Source("lpips_vgg", _LPIPS + "vgg.pth", "vgg.pth", "torch", "vgg16", "torch",
           kind="lpips_heads"),
)}


def _label(arch: str) -> str:
  return {"vgg16": "VGG16", "vgg19": "VGG19", "alexnet": "AlexNet"}[arch]


def source(name: str) -> Source:
  if name not in SOURCES:
    raise WeightsError(f"unknown weights {name!r}; known: {', '.join(SOURCES)}")
  return SOURCES[name]
