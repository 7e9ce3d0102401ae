"""Reading published weights files without their frameworks: PyTorch ``.pth`` and Keras HDF5.

``.pth`` files go through a restricted unpickler that only rebuilds tensors, storages and
(ordered) dicts, so no code in the file runs; ``.h5`` files through h5py.
"""

from __future__ import annotations

import collections
import dataclasses
import pickle
import re
import zipfile
from collections.abc import Mapping

import ml_dtypes
import numpy as np

from sinsr_jax.errors import UserError


class WeightsError(UserError):
  """A weights file is unreadable, corrupt, or not the network it should be."""

# ---------------------------------------------------------------------------------------------
# Torch-free .pth reader

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C  # torch.serialization's legacy format header
_PROTOCOL_VERSION = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_, "UntypedStorage": np.uint8,
}


@dataclasses.dataclass(frozen=True)
class _StorageType:
  dtype: np.dtype


@dataclasses.dataclass
class _Storage:
  """A torch storage: its flat data, filled after unpickling in the legacy format."""

  dtype: np.dtype
  data: np.ndarray | None = None
  root: _Storage | None = None  # legacy storage views: an element offset into a root storage
  offset: int = 0


@dataclasses.dataclass(frozen=True)
class _Tensor:
  storage: _Storage
  offset: int
  size: tuple[int, ...]
  stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride):
  return _Tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks,
                       metadata=None):
  return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad, backward_hooks, state=None):
  return data


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _Refused(pickle.UnpicklingError):
  pass


class _Unpickler(pickle.Unpickler):
  """Rebuilds tensors, storages and (ordered) dicts only: anything else is refused, so a
  malicious file cannot run code."""

  def __init__(self, file, persistent_load=None):
    super().__init__(file)
    self._load_storage = persistent_load

  def find_class(self, module: str, name: str):
    if (module, name) in _ALLOWED:
      return _ALLOWED[(module, name)]
    if module == "torch" and name in _STORAGE_DTYPES:
      return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
    hint = " (a whole pickled model? save model.state_dict() instead)" if "torch" in module else ""
    raise _Refused(f"refusing to unpickle {module}.{name}: only tensors and state dicts are "
                   f"read{hint}")

  def persistent_load(self, pid):
    if self._load_storage is None:
      raise pickle.UnpicklingError("unexpected persistent id")
    return self._load_storage(pid)


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
  """A ``torch.save``d state dict (zip or legacy format) -> {key: numpy array}, torch-free.

  Unwraps ``{"state_dict" | "params" | "model": ...}`` checkpoints and ``module.`` prefixes
  (DataParallel); entries that are not tensors are dropped.
  """
  try:
    if zipfile.is_zipfile(path):
      obj = _read_zip(path)
    else:
      obj = _read_legacy(path)
  except WeightsError:
    raise
  except OSError as e:
    raise WeightsError(f"{path}: cannot read ({e.strerror or e})") from None
  except _Refused as e:
    raise WeightsError(f"{path}: {e}") from None
  except Exception as e:  # any parse failure means the same thing: not a readable torch file
    raise WeightsError(f"{path}: not a readable PyTorch file ({type(e).__name__}: {e})") from None
  return _state_dict_of(obj, path)


def _read_zip(path: str):
  with zipfile.ZipFile(path) as archive:
    pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
    if not pickles:
      raise WeightsError(f"{path}: a zip archive without */data.pkl: not a torch.save file")
    prefix = pickles[0][:-len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in archive.namelist():
      byteorder = archive.read(prefix + "byteorder").decode()
    storages: dict[str, _Storage] = {}

    def load_storage(pid):
      kind, storage_type, key, _location, numel = pid[:5]
      if kind != "storage" or not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid[:2]!r}")
      if key not in storages:
        dtype = storage_type.dtype.newbyteorder("<" if byteorder == "little" else ">")
        raw = archive.read(f"{prefix}data/{key}")
        if len(raw) < numel * dtype.itemsize:
          raise WeightsError(f"{path}: storage {key} is truncated")
        data = np.frombuffer(raw, dtype, count=numel).astype(storage_type.dtype, copy=False)
        storages[key] = _Storage(storage_type.dtype, data)
      return storages[key]

    with archive.open(pickles[0]) as f:
      return _materialise(_Unpickler(f, load_storage).load(), path)


def _read_legacy(path: str):
  """magic, protocol, sys_info, the object, its storage keys, then per storage an int64
  element count and the raw little-endian data."""
  with open(path, "rb") as f:
    if _Unpickler(f).load() != _MAGIC_NUMBER:
      raise WeightsError(f"{path}: not a PyTorch file (no torch.save header)")
    protocol = _Unpickler(f).load()
    if protocol != _PROTOCOL_VERSION:
      raise WeightsError(f"{path}: unsupported torch.save protocol {protocol}")
    _Unpickler(f).load()  # sys_info: the data is little-endian whatever it says
    storages: dict[str, _Storage] = {}

    def load_storage(pid):
      if not isinstance(pid, tuple) or _ascii(pid[0]) != "storage":
        raise _Refused("refusing a pickled module: only tensors and state dicts are read "
                       "(save model.state_dict() instead)")
      _, storage_type, key, _location, _numel, view = pid
      if not isinstance(storage_type, _StorageType):
        raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
      root = storages.setdefault(key, _Storage(storage_type.dtype))
      if view is None:
        return root
      view_key, offset, _view_size = view
      return storages.setdefault(view_key, _Storage(root.dtype, root=root, offset=int(offset)))

    obj = _Unpickler(f, load_storage).load()
    for key in _Unpickler(f).load():
      storage = storages[key]
      count = int(np.frombuffer(f.read(8), "<i8")[0])
      nbytes = count * storage.dtype.itemsize
      raw = f.read(nbytes)
      if len(raw) != nbytes:
        raise WeightsError(f"{path}: storage {key} is truncated")
      storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<")).astype(
          storage.dtype, copy=False)
  return _materialise(obj, path)


def _ascii(value) -> str:
  return value.decode("ascii") if isinstance(value, bytes) else value


def _materialise(obj, path: str):
  """Replaces the rebuilt tensors of a loaded object by numpy copies of their storage views."""
  if isinstance(obj, _Tensor):
    return _tensor_to_numpy(obj, path)
  if isinstance(obj, Mapping):
    return {k: _materialise(v, path) for k, v in obj.items()}
  if isinstance(obj, list | tuple):
    return type(obj)(_materialise(v, path) for v in obj)
  return obj


def _tensor_to_numpy(t: _Tensor, path: str) -> np.ndarray:
  storage = t.storage.root or t.storage
  offset = t.offset + t.storage.offset
  data = storage.data
  if any(n == 0 for n in t.size):
    return np.zeros(t.size, storage.dtype)
  last = offset + sum((n - 1) * s for n, s in zip(t.size, t.stride, strict=True))
  if data is None or offset < 0 or min(t.stride, default=0) < 0 or last >= data.size:
    raise WeightsError(f"{path}: a tensor lies outside its storage: corrupt file?")
  view = np.lib.stride_tricks.as_strided(
      data[offset:], t.size, tuple(s * data.itemsize for s in t.stride), writeable=False)
  return view.copy()


def _state_dict_of(obj, path: str) -> dict[str, np.ndarray]:
  while isinstance(obj, Mapping):
    wrapped = [k for k in ("state_dict", "params", "model") if isinstance(obj.get(k), Mapping)]
    if not wrapped:
      break
    obj = obj[wrapped[0]]
  if not isinstance(obj, Mapping):
    raise WeightsError(f"{path} holds a {type(obj).__name__}, not a state dict")
  tensors = {str(k).removeprefix("module."): v for k, v in obj.items()
             if isinstance(v, np.ndarray)}
  if not tensors:
    raise WeightsError(f"{path} holds no tensors")
  return tensors


# ---------------------------------------------------------------------------------------------
# Keras HDF5 reader

def read_keras_h5(path: str) -> dict[str, list[np.ndarray]]:
  """Keras weights -> {layer name: [kernel, bias, ...]} in saving order.

  Reads the legacy HDF5 layout of keras-applications' files (``layer_names`` /
  ``weight_names`` attributes, also inside a full model's ``model_weights``) and Keras 3
  ``.weights.h5`` files (``layers/<name>/vars/<i>``, layers named by class: ``conv2d``,
  ``conv2d_1``, ... in creation order).
  """
  import h5py  # only the Keras weights need it

  try:
    f = h5py.File(path, "r")
  except OSError as e:
    raise WeightsError(f"{path}: not an HDF5 file ({e})") from None
  with f:
    try:
      return _keras_layers(f, h5py)
    except KeyError as e:
      raise WeightsError(f"{path}: broken Keras weights file ({e.args[0]})") from None


def _keras_layers(f, h5py) -> dict[str, list[np.ndarray]]:
  root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
  layers = {}
  if "layer_names" in root.attrs:
    for name in map(_str, root.attrs["layer_names"]):
      names = [_str(w) for w in root[name].attrs.get("weight_names", [])]
      if names:
        layers[name] = [np.asarray(root[name][w]) for w in names]
    return layers
  if not isinstance(f.get("layers"), h5py.Group):
    raise KeyError("no layer_names attribute, no layers/ group: HDF5 but not Keras weights")
  for name in sorted(f["layers"], key=natural_key):
    weights = f["layers"][name].get("vars")
    if isinstance(weights, h5py.Group) and len(weights):
      layers[name] = [np.asarray(weights[k]) for k in sorted(weights, key=int)]
  return layers


def _str(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def natural_key(name: str):
  return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
