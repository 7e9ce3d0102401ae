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
  """A published weights file at a fixed URL. ``hash``: "sha256:<hex>" (the full digest, or
  the prefix torchvision's file name carries), or "md5:<hex>"; a file not matching it is
  refused."""

  name: str
  url: str
  filename: str
  format: str  # "torch" (.pth) | "keras" (legacy Keras HDF5)
  arch: str  # the vgg.Features arch (for LPIPS heads: the backbone they sit on)
  preprocessing: str  # vgg.imagenet_input convention the weights were trained with
  hash: str = ""  # required: check_hash refuses a file of a source without one
  kind: str = "features"  # "features" (vgg.Features params) | "lpips_heads"
  config_key: str = ""  # where a config takes the file's path, for the not-found message

  @property
  def label(self) -> str:
    return f"LPIPS {_label(self.arch)} heads" if self.kind == "lpips_heads" else _label(self.arch)


_TORCHVISION = "https://download.pytorch.org/models/"
# LPIPS heads from the commit that last changed them (2020-09-05, still unchanged upstream), not
# a branch: what a branch URL serves can change under a published LPIPS column. The sha256s
# were computed from that commit's blobs and match the files in the lpips 0.1.4 wheel on PyPI.
_LPIPS_COMMIT = "c33f89e9f46522a584cf41d8880eb0afa982708b"
_LPIPS = (f"https://github.com/richzhang/PerceptualSimilarity/raw/{_LPIPS_COMMIT}/lpips/"
          "weights/v0.1/")
# Keras' files sit under a fixed (never rewritten) path of the keras-applications release.
_KERAS = "https://storage.googleapis.com/tensorflow/keras-applications/"

# Full sha256 of torchvision's files as published for them (the files' names carry the first 8
# hex digits; these were not recomputed here, which had no access to download.pytorch.org).
_TORCHVISION_SHA256 = {
    "vgg19-dcbb9e9d.pth": "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
    "alexnet-owt-7be5be79.pth":
        "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
}


def _torchvision(name: str, filename: str, arch: str, config_key: str = "") -> Source:
  # torchvision names its files <model>-<first 8 hex digits of the file's sha256>.pth: where no
  # full sha256 could be established from public sources (vgg16), that prefix is checked.
  prefix = re.search(r"-([0-9a-f]+)\.pth$", filename).group(1)
  sha256 = _TORCHVISION_SHA256.get(filename, prefix)
  return Source(name, _TORCHVISION + filename, filename, "torch", arch, "torch",
                hash=f"sha256:{sha256}", config_key=config_key)


SOURCES: dict[str, Source] = {s.name: s for s in (
    _torchvision("vgg19", "vgg19-dcbb9e9d.pth", "vgg19", "loss.vgg.weights"),
    _torchvision("vgg16", "vgg16-397923af.pth", "vgg16"),
    _torchvision("alexnet", "alexnet-owt-7be5be79.pth", "alexnet"),
    # md5s are keras' own file_hash (keras/src/applications/vgg{16,19}.py); no sha256 of these
    # files is published.
    Source("vgg19_keras", _KERAS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
           "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "keras", "vgg19", "caffe",
           hash="md5:253f8cb515780f3b799900260a226db6", config_key="loss.vgg.weights"),
    Source("vgg16_keras", _KERAS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
           "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "keras", "vgg16", "caffe",
           hash="md5:6d6bbae143d832006294945121d1f1fc"),
    # LPIPS scales [-1, 1] inputs by shift/scale = ImageNet mean/std: the torch convention.
    Source("lpips_alex", _LPIPS + "alex.pth", "alex.pth", "torch", "alexnet", "torch",
           hash="sha256:df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
           kind="lpips_heads"),
    Source("lpips_vgg", _LPIPS + "vgg.pth", "vgg.pth", "torch", "vgg16", "torch",
           hash="sha256:a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
           kind="lpips_heads"),
)}


def _label(arch: str) -> str:
  return {"vgg16": "VGG16", "vgg19": "VGG19", "alexnet": "AlexNet"}[arch]


def source(name: str) -> Source:
  if name not in SOURCES:
    raise WeightsError(f"unknown weights {name!r}; known: {', '.join(SOURCES)}")
  return SOURCES[name]
