"""Finding weights: a given file or the cache, a verified download, conversion once to
``<cache>/<name>.msgpack`` (written atomically)."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Mapping

import numpy as np
from flax import serialization

from sinsr_jax.models import vgg
from sinsr_jax.weights.convert import (
  _check_params,
  alexnet_params_from_torch,
  lpips_heads_from_torch,
  vgg_params_from_keras,
  vgg_params_from_torch,
)
from sinsr_jax.weights.readers import WeightsError, read_keras_h5, read_torch_state_dict
from sinsr_jax.weights.sources import SOURCES, Params, Source, WeightsNotFound, source

log = logging.getLogger(__name__)


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


def check_hash(src: Source, digests: Mapping[str, str], path: str) -> None:
  """Refuses (WeightsError, one line) a file whose hash is not the pinned one of ``src``."""
  if not src.hash:
    raise WeightsError(f"{path}: {src.name} has no pinned hash to check it against; refused")
  algo, expected = src.hash.split(":")
  got = digests[algo]
  if not got.startswith(expected):
    what = "starts with" if len(expected) < len(got) else "is"
    raise WeightsError(f"{path}: refused, {algo} mismatch: the pinned {src.filename}'s {what} "
                       f"{expected}, this file's is {got} (changed upstream, or a corrupt or "
                       "incomplete download: delete it to fetch it again)")


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
  """Fetches ``src`` to ``dest`` with pooch (a temporary file, renamed into place once its hash
  is checked); '' or why it failed. A file that arrives with another hash is refused
  (WeightsError) and not kept."""
  import pooch  # only when downloading: pooch imports requests
  import requests

  algo, expected = src.hash.split(":") if src.hash else ("", "")
  full = algo == "sha256" and len(expected) == 64  # pooch checks full digests itself
  log.info("downloading %s to %s", src.url, os.path.dirname(dest))
  try:
    pooch.retrieve(src.url, known_hash=f"sha256:{expected}" if full else None,
                   fname=os.path.basename(dest), path=os.path.dirname(dest), progressbar=False)
  except ValueError as e:  # pooch's hash mismatch (several lines): ours says it in one
    got = re.search(r"but got ([0-9a-f]{64})", str(e))
    raise WeightsError(f"{src.url}: refused, sha256 mismatch: the pinned {src.filename}'s is "
                       f"{expected}, the downloaded file's is {got.group(1) if got else '?'} "
                       "(changed upstream?); nothing was kept") from None
  except (OSError, requests.RequestException) as e:  # URLError, timeouts, HTTP errors
    return f"{type(e).__name__}: {e}".replace("\n", " ")
  try:
    check_hash(src, file_hashes(dest), src.url)  # prefix and md5 pins, which pooch cannot check
  except WeightsError:
    os.unlink(dest)
    raise
  return ""


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
