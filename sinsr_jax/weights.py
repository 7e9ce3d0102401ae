"""Pretrained ImageNet weights for the perceptual loss and LPIPS: find, verify, convert, cache.

Published weights come as PyTorch ``.pth`` files (torchvision VGG16/19 and AlexNet, the LPIPS
linear heads) or Keras HDF5 files, read by weight_files.py WITHOUT torch or TensorFlow: ``.pth``
files through a restricted unpickler that only rebuilds tensors (no code runs), ``.h5`` files
through h5py. Each is converted once to the parameter tree of ``vgg.Features`` and cached as
``<cache>/<name>.msgpack``; the cache is ``$SINSR_WEIGHTS_DIR`` or ``~/.cache/sinsr_jax/weights``.
Missing weights are an error that says which file to put where, never a silent random init.

Command line: ``python -m sinsr_jax.weights {list,convert,verify} ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import http.client
import itertools
import logging
import os
import re
import sys
import tempfile
import urllib.request
from collections.abc import Mapping

import numpy as np
from flax import serialization

from sinsr_jax.errors import UserError
from sinsr_jax.models import vgg
from sinsr_jax.weight_files import WeightsError, natural_key, read_keras_h5, read_torch_state_dict

log = logging.getLogger(__name__)

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


def source(name: str) -> Source:
  if name not in SOURCES:
    raise WeightsError(f"unknown weights {name!r}; known: {', '.join(SOURCES)}")
  return SOURCES[name]


# ---------------------------------------------------------------------------------------------
# Converters to vgg.Features params

def _label(arch: str) -> str:
  return {"vgg16": "VGG16", "vgg19": "VGG19", "alexnet": "AlexNet"}[arch]


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


# ---------------------------------------------------------------------------------------------
# Files: hashes, format, cache

def default_cache_dir() -> str:
  return os.path.expanduser(
      os.environ.get("SINSR_WEIGHTS_DIR") or os.path.join("~", ".cache", "sinsr_jax", "weights"))


def file_hashes(path: str) -> dict[str, str]:
  """{"sha256": hex, "md5": hex} of a file, in one pass."""
  digests = {"sha256": hashlib.sha256(), "md5": hashlib.md5()}
  try:
    with open(path, "rb") as f:
      while chunk := f.read(1 << 22):
        for d in digests.values():
          d.update(chunk)
  except OSError as e:
    raise WeightsError(f"{path}: cannot read ({e.strerror or e})") from None
  return {k: d.hexdigest() for k, d in digests.items()}


def check_hash(src: Source, digests: Mapping[str, str], path: str) -> bool:
  """Raises on a mismatch with the published hash; False when none is published."""
  if not src.hash:
    log.info("%s: sha256 %s (no published hash to check)", path, digests["sha256"])
    return False
  algo, expected = src.hash.split(":")
  got = digests[algo]
  if not got.startswith(expected):
    what = "starts with" if len(expected) < len(got) else "is"
    raise WeightsError(f"{path}: {algo} mismatch: the published {src.filename}'s {what} "
                       f"{expected}, this file's is {got} (corrupt or incomplete download? "
                       "delete it and fetch it again)")
  return True


def _sniff_format(path: str) -> str:
  with open(path, "rb") as f:
    head = f.read(8)
  if head == b"\x89HDF\r\n\x1a\n":
    return "keras"
  if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80":  # zip, or a pickle's PROTO opcode
    return "torch"
  return "unknown"


def _convert(src: Source, path: str, sha256: str):
  fmt = _sniff_format(path)
  if fmt not in (src.format, "unknown"):
    others = [s.name for s in SOURCES.values()
              if s.format == fmt and s.arch == src.arch and s.kind == src.kind]
    hint = f": use {others[0]}" if others else ""
    raise WeightsError(f"{path} is a {'Keras HDF5' if fmt == 'keras' else 'PyTorch'} file, "
                       f"{src.name} takes {src.format} weights{hint}")
  if src.kind == "lpips_heads":
    tree = lpips_heads_from_torch(read_torch_state_dict(path))
    want = 5  # one head after each of the backbone's 5 feature stages
    if len(tree) != want:
      raise WeightsError(f"{path} has {len(tree)} LPIPS heads, {src.label} has {want}")
  elif src.format == "keras":
    tree = vgg_params_from_keras(read_keras_h5(path), src.arch)
  elif src.arch == "alexnet":
    tree = alexnet_params_from_torch(read_torch_state_dict(path))
  else:
    tree = vgg_params_from_torch(read_torch_state_dict(path), src.arch)
  meta = {"arch": src.arch, "preprocessing": src.preprocessing,
          "source_file": os.path.abspath(path), "source_sha256": sha256}
  return tree, meta


def write_checkpoint(path: str, tree, meta: Mapping[str, str]) -> None:
  """Atomic: a temp file renamed into place, so a crash never leaves half a checkpoint."""
  directory = os.path.dirname(path)
  os.makedirs(directory, exist_ok=True)
  data = serialization.msgpack_serialize({"params": tree, "meta": dict(meta)})
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    os.unlink(tmp)
    raise


def _read_checkpoint(path: str, src: Source):
  try:
    with open(path, "rb") as f:
      restored = serialization.msgpack_restore(f.read())
  except OSError as e:
    raise WeightsError(f"{path}: cannot read ({e.strerror or e})") from None
  except Exception as e:  # msgpack raises several unrelated types on garbage
    raise WeightsError(f"{path}: not a converted weights checkpoint ({type(e).__name__}); "
                       "delete it to convert again") from None
  if not isinstance(restored, dict) or not {"params", "meta"} <= restored.keys():
    raise WeightsError(f"{path}: not a converted weights checkpoint (no params/meta)")
  tree, meta = restored["params"], restored["meta"]
  meta = dict(meta) if isinstance(meta, dict) else {}
  layers = src.kind == "features"  # features: {conv: {kernel, bias}}; heads: {lin<k>: array}
  if not isinstance(tree, dict) or not all(isinstance(v, dict) == layers for v in tree.values()):
    raise WeightsError(f"{path}: not {src.label} weights (a checkpoint of another kind?)")
  if meta.get("arch") != src.arch:
    raise WeightsError(f"{path} holds {meta.get('arch')} weights, {src.name} needs {src.arch}")
  if src.kind == "lpips_heads":
    tree = {k: np.asarray(v, np.float32) for k, v in tree.items()}
  else:
    tree = {n: {p: np.asarray(v, np.float32) for p, v in layer.items()}
            for n, layer in tree.items()}
    if set(tree) != set(vgg.conv_names(src.arch)):
      raise WeightsError(f"{path}: layers {sorted(tree)} are not {src.arch}'s")
    _check_params(tree, src.arch, {n: path for n in tree})
  return tree, meta


def _download(src: Source, dest: str) -> str:
  """Fetches ``src`` to ``dest`` (verified, then renamed into place); '' or why it failed."""
  directory, tmp = os.path.dirname(dest), ""
  try:
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{src.filename}.", suffix=".part")
    with os.fdopen(fd, "wb") as f, urllib.request.urlopen(src.url, timeout=20) as response:
      total = int(response.headers.get("Content-Length") or 0)
      size = f"{total / 1e6:.0f} MB" if total else "size unknown"
      log.info("downloading %s (%s) to %s", src.url, size, directory)
      done, reported = 0, 0
      while chunk := response.read(1 << 20):
        f.write(chunk)
        done += len(chunk)
        if total > 10_000_000 and done * 10 // total > reported:
          reported = done * 10 // total
          log.info("  %d%% of %.0f MB", reported * 10, total / 1e6)
    check_hash(src, file_hashes(tmp), src.url)
    os.replace(tmp, dest)
    return ""
  except (OSError, ValueError, http.client.HTTPException) as e:  # URLError, timeouts: OSError
    return f"{type(e).__name__}: {e}".replace("\n", " ")
  finally:
    if tmp and os.path.exists(tmp):
      os.unlink(tmp)


def _not_found(src: Source, cache: str, reason: str) -> WeightsNotFound:
  where = f"in {src.config_key}" if src.config_key else "as path"
  why = f" ({reason})" if reason else ""
  return WeightsNotFound(
      f"{src.label} weights not found{why}: download {src.url} and put it in "
      f"{os.path.join(cache, '')} (or pass its path {where}), or run: "
      f"python -m sinsr_jax.weights convert {src.name} --file FILE")


def _load_tree(src: Source, path: str, cache: str, download: bool, reconvert: bool = False):
  """(tree, meta) from ``path`` or the cache (converting and caching a source file)."""
  cache = os.path.expanduser(cache) if cache else default_cache_dir()
  path = os.path.expanduser(path) if path else path  # config values are not shell-expanded
  checkpoint = os.path.join(cache, f"{src.name}.msgpack")
  if path:
    if not os.path.isfile(path):
      raise WeightsNotFound(f"{src.label} weights file {path} does not exist")
    if path.endswith(".msgpack"):
      return _read_checkpoint(path, src)
    digests = file_hashes(path)
    if os.path.basename(path) == src.filename:  # claims to be the published file: check it
      check_hash(src, digests, path)
    else:
      log.info("%s: sha256 %s", path, digests["sha256"])
    if not reconvert and os.path.isfile(checkpoint):
      try:
        cached = _read_checkpoint(checkpoint, src)
        if cached[1].get("source_sha256") == digests["sha256"]:
          return cached
      except WeightsError:
        pass  # converted again below, replacing it
  else:
    if not reconvert and os.path.isfile(checkpoint):
      tree, meta = _read_checkpoint(checkpoint, src)
      log.info("%s weights: %s (from %s)", src.name, checkpoint, meta.get("source_file"))
      return tree, meta
    path = os.path.join(cache, src.filename)
    if not os.path.isfile(path):
      reason = _download(src, path) if download else ""
      if not os.path.isfile(path):
        raise _not_found(src, cache, f"download failed: {reason}" if reason else "")
    digests = file_hashes(path)
    check_hash(src, digests, path)
  log.info("converting %s to %s", path, checkpoint)
  tree, meta = _convert(src, path, digests["sha256"])
  try:
    write_checkpoint(checkpoint, tree, meta)
  except OSError as e:  # still usable, only not cached: set SINSR_WEIGHTS_DIR to fix
    log.warning("could not cache %s weights in %s: %s", src.name, checkpoint, e)
  return tree, meta


def load(name: str, path: str = "", *, cache_dir: str = "",
         download: bool = True) -> tuple[Params, dict[str, str]]:
  """vgg.Features params (numpy float32) and meta {arch, preprocessing, source_file,
  source_sha256} of the known weights ``name``.

  ``path``: a converted ``.msgpack``, or a source file (``.pth``/``.h5``) converted and cached.
  Without it: the cached checkpoint, else the source file in the cache dir, else a download
  (when ``download``); else WeightsNotFound, which says which file to put where.
  """
  src = source(name)
  if src.kind != "features":
    raise WeightsError(f"{name} holds LPIPS heads: use load_lpips_heads")
  return _load_tree(src, path, cache_dir, download)


def load_lpips_heads(name: str, path: str = "", *, cache_dir: str = "",
                     download: bool = True) -> dict[str, np.ndarray]:
  """The LPIPS linear heads ``{"lin<k>": (C_k,)}`` of ``name`` (lpips_alex, lpips_vgg); the
  backbone is ``load(SOURCES[name].arch)``. Same lookup as ``load``."""
  src = source(name)
  if src.kind != "lpips_heads":
    raise WeightsError(f"{name} is not an LPIPS head set: use load")
  return _load_tree(src, path, cache_dir, download)[0]


# ---------------------------------------------------------------------------------------------
# Command line

def _describe(src: Source, tree) -> str:
  if src.kind == "lpips_heads":
    return f"{len(tree)} heads, channels {' '.join(str(v.shape[0]) for v in tree.values())}"
  widths = " ".join(map(str, vgg.widths_of(src.arch, tree)))
  return f"arch {src.arch} ({src.preprocessing} preprocessing), widths {widths}"


def _cmd_list(args) -> None:
  cache = args.cache_dir or default_cache_dir()
  print(f"cache: {cache}")
  for src in SOURCES.values():
    if os.path.isfile(os.path.join(cache, f"{src.name}.msgpack")):
      status = "converted"
    elif os.path.isfile(os.path.join(cache, src.filename)):
      status = "source file"
    else:
      status = "missing"
    print(f"{src.name:12} {src.arch:8} {status:12} {src.url}")


def _cmd_convert(args) -> None:
  src = source(args.name)
  if args.file.endswith(".msgpack"):
    raise WeightsError(f"{args.file} is already converted: pass it as the weights path")
  cache = args.cache_dir or default_cache_dir()
  tree, meta = _load_tree(src, args.file, cache, not args.no_download, reconvert=True)
  checkpoint = os.path.join(cache, f"{src.name}.msgpack")
  if not os.path.isfile(checkpoint):
    raise WeightsError(f"could not write {checkpoint}: set SINSR_WEIGHTS_DIR or --cache-dir "
                       "to a writable directory")
  print(f"{src.name}: {checkpoint}")
  print(f"  {_describe(src, tree)}")
  print(f"  from {meta['source_file']} (sha256 {meta['source_sha256']})")


def _cmd_verify(args) -> None:
  src = source(args.name)
  path = args.file or os.path.join(args.cache_dir or default_cache_dir(), src.filename)
  if not os.path.isfile(path):
    raise WeightsNotFound(f"{path} does not exist")
  digests = file_hashes(path)
  checked = check_hash(src, digests, path)
  tree, _ = _convert(src, path, digests["sha256"])
  verdict = f"matches the published {src.hash}" if checked else "no published hash to check"
  print(f"{src.name}: {path}: sha256 {digests['sha256']} ({verdict})")
  print(f"  {_describe(src, tree)}")


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m sinsr_jax.weights",
                                   description="Pretrained weights: list, convert, verify.")
  common = argparse.ArgumentParser(add_help=False)
  common.add_argument("--cache-dir", default="",
                      help="default: $SINSR_WEIGHTS_DIR or ~/.cache/sinsr_jax/weights")
  commands = parser.add_subparsers(dest="command", required=True)
  commands.add_parser("list", parents=[common], help="known weights and their cache status")
  convert = commands.add_parser("convert", parents=[common],
                                help="convert to <cache>/<name>.msgpack")
  convert.add_argument("name", choices=SOURCES)
  convert.add_argument("--file", default="", help="source file (default: cache or download)")
  convert.add_argument("--no-download", action="store_true")
  verify = commands.add_parser("verify", parents=[common], help="check a source file")
  verify.add_argument("name", choices=SOURCES)
  verify.add_argument("--file", default="", help="default: the source file in the cache")
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
  try:
    {"list": _cmd_list, "convert": _cmd_convert, "verify": _cmd_verify}[args.command](args)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
