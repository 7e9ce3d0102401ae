"""Converters from published state dicts (torchvision, Keras, LPIPS) to ``vgg.Features``
parameter trees, each checked against the architecture's shapes."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping

import numpy as np

from sinsr_jax.models import vgg
from sinsr_jax.weights.readers import WeightsError, natural_key
from sinsr_jax.weights.sources import Params, _label


def _torch_conv_indices(arch: str) -> dict[str, int]:
  """{conv name: index in torchvision's ``features``}: one module per vgg.layer_names entry
  (conv, ReLU, max-pool), so the position in that list is the module index."""
  return {n: i for i, n in enumerate(vgg.layer_names(arch)) if n.startswith("conv")}


def vgg_params_from_torch(state_dict: Mapping[str, np.ndarray], arch: str = "vgg19") -> Params:
  """torchvision VGG16/19 state dict (``features.<i>.weight`` OIHW) -> vgg.Features params."""
  if arch not in vgg.VGG_BLOCKS:
    raise ValueError(f"{arch!r} is not a VGG; valid: {', '.join(vgg.VGG_BLOCKS)}")
  return _features_from_torch(state_dict, arch)


def alexnet_params_from_torch(state_dict: Mapping[str, np.ndarray]) -> Params:
  """torchvision AlexNet state dict (``features.0/3/6/8/10``) -> vgg.Features params."""
  return _features_from_torch(state_dict, "alexnet")


def _features_from_torch(state_dict: Mapping[str, np.ndarray], arch: str) -> Params:
  if not any(k.startswith("features.") for k in state_dict):
    # A bare ``features`` Sequential saved on its own: keys "0.weight", ...
    state_dict = {f"features.{k}": v for k, v in state_dict.items() if k[:1].isdigit()}
  indices = _torch_conv_indices(arch)
  expected = {f"features.{i}.{p}" for i in indices.values() for p in ("weight", "bias")}
  params = {}
  for name, i in indices.items():
    weight, bias = (state_dict.get(f"features.{i}.{p}") for p in ("weight", "bias"))
    for key, value in ((f"features.{i}.weight", weight), (f"features.{i}.bias", bias)):
      if value is None:
        raise WeightsError(f"{key} missing: not a {_label(arch)} state dict?")
    if weight.ndim != 4:
      raise WeightsError(f"features.{i}.weight has shape {weight.shape}, not a conv's OIHW: "
                         f"not a {_label(arch)} state dict?")
    params[name] = {"kernel": np.ascontiguousarray(weight.transpose(2, 3, 1, 0), np.float32),
                    "bias": np.asarray(bias, np.float32)}
  extra = sorted((k for k in state_dict if k.startswith("features.") and k not in expected),
                 key=natural_key)
  if extra:
    raise WeightsError(f"unexpected {extra[0]}: not a {_label(arch)} state dict "
                       "(batch norm, or another depth)?")
  _check_params(params, arch, {n: f"features.{i}" for n, i in indices.items()})
  return params


def vgg_params_from_keras(layers: Mapping[str, list[np.ndarray]], arch: str = "vgg19") -> Params:
  """Keras VGG16/19 weights (``block<b>_conv<i>``: HWIO kernel, bias) -> vgg.Features params.

  Keras 3 ``.weights.h5`` files name layers by class (``conv2d``, ``conv2d_1``, ...); their
  conv layers are taken in creation order.
  """
  if arch not in vgg.VGG_BLOCKS:
    raise ValueError(f"{arch!r} is not a VGG; valid: {', '.join(vgg.VGG_BLOCKS)}")
  names = vgg.conv_names(arch)
  keras_names = {n: "block{}_conv{}".format(*n[4:].split("_")) for n in names}
  if any(re.fullmatch(r"block\d+_conv\d+", k) for k in layers):
    extra = [k for k in layers
             if re.fullmatch(r"block\d+_conv\d+", k) and k not in keras_names.values()]
    if extra:
      raise WeightsError(f"unexpected layer {extra[0]}: not Keras {_label(arch)} weights?")
    missing = [k for k in keras_names.values() if k not in layers]
    if missing:
      raise WeightsError(f"layer {missing[0]} missing: not Keras {_label(arch)} weights?")
    found = {n: layers[keras_names[n]] for n in names}
  else:
    convs = [k for k, w in layers.items() if w and np.ndim(w[0]) == 4]
    if len(convs) != len(names):
      raise WeightsError(f"{len(convs)} conv layers, {_label(arch)} has {len(names)}: "
                         f"not Keras {_label(arch)} weights?")
    keras_names = dict(zip(names, convs, strict=True))
    found = {n: layers[k] for n, k in keras_names.items()}
  params = {}
  for name, weights in found.items():
    if len(weights) != 2:
      raise WeightsError(f"layer {keras_names[name]} has {len(weights)} weights, not a conv's "
                         "kernel and bias")
    params[name] = {"kernel": np.asarray(weights[0], np.float32),
                    "bias": np.asarray(weights[1], np.float32)}
  _check_params(params, arch, keras_names)
  return params


def _check_params(params: Params, arch: str, labels: Mapping[str, str]) -> None:
  """Kernel sizes as the arch has them, each conv taking the previous one's channels (3
  first), one width per VGG block (vgg.Features has one)."""
  channels = 3
  for name in vgg.conv_names(arch):
    kernel, bias = params[name]["kernel"], params[name]["bias"]
    size = vgg.ALEXNET_CONVS[int(name[4:]) - 1][1] if arch == "alexnet" else 3
    want = f"({size}, {size}, {channels}, C)"
    if kernel.ndim != 4 or kernel.shape[:3] != (size, size, channels):
      raise WeightsError(f"{labels[name]} ({name}) kernel has HWIO shape {kernel.shape}, "
                         f"{_label(arch)} needs {want}")
    if bias.shape != kernel.shape[-1:]:
      raise WeightsError(f"{labels[name]} ({name}) bias has shape {bias.shape}, "
                         f"needs ({kernel.shape[-1]},)")
    channels = kernel.shape[-1]
  if arch != "alexnet":
    widths = vgg.widths_of(arch, params)
    for name in vgg.conv_names(arch):
      width = widths[int(name[4]) - 1]
      if params[name]["kernel"].shape[-1] != width:
        raise WeightsError(f"{labels[name]} ({name}) has {params[name]['kernel'].shape[-1]} "
                           f"channels, its block {width}: vgg.Features needs one width a block")


def lpips_heads_from_torch(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """LPIPS linear heads (``lin<k>.model.1.weight``, shape (1, C, 1, 1)) -> {"lin<k>": (C,)}.

  ``model.0`` is the conv in heads saved without their dropout layer.
  """
  heads = {}
  for k in itertools.count():
    key = next((key for key in (f"lin{k}.model.1.weight", f"lin{k}.model.0.weight")
                if key in state_dict), None)
    if key is None:
      break
    weight = state_dict[key]
    if weight.ndim != 4 or weight.shape[0] != 1 or weight.shape[2:] != (1, 1):
      raise WeightsError(f"{key} has shape {weight.shape}, an LPIPS head needs (1, C, 1, 1)")
    heads[f"lin{k}"] = np.asarray(weight.reshape(-1), np.float32)
  if not heads:
    raise WeightsError("lin0.model.1.weight missing: not an LPIPS linear-head state dict?")
  return heads
