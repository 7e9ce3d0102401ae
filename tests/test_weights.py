"""Pretrained-weight import: torch-free .pth reading, Keras .h5, conversions checked against the
reference networks layer by layer, the cache, and the command line."""

import dataclasses
import hashlib
import os
import pathlib
import pickle
import re
import subprocess
import sys
import zipfile

import jax.numpy as jnp
import numpy as np
import pytest

from sinsr_jax import weights
from sinsr_jax.models import vgg

REPO = pathlib.Path(__file__).resolve().parents[1]
TORCH_REASON = "the reference VGG/AlexNet are built in CPU torch: pip install torch==2.13.0"
# torchvision's cfgs "D" (VGG16) and "E" (VGG19); "M" is a 2x2 max-pool.
VGG_CFGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
NARROW = {64: 8, 128: 16, 256: 16, 512: 32}  # per published width, for fast tests
VGG19_FEATURE_PARAMS = 20_024_384


def _torch():
  return pytest.importorskip("torch", reason=TORCH_REASON)


def torch_net(arch: str, narrow: bool = False):
  """A torchvision-layout model: ``features`` with torchvision's module indices, and a dummy
  ``classifier`` so the state dict keys look like torchvision's."""
  torch = _torch()
  nn = torch.nn
  torch.manual_seed(0)
  if arch == "alexnet":
    layers = [nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
              nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
              nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
              nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
              nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)]
  else:
    layers, channels = [], 3
    for v in VGG_CFGS[arch]:
      if v == "M":
        layers.append(nn.MaxPool2d(2, 2))
      else:
        width = NARROW[v] if narrow else v
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        channels = width
  net = nn.Module()
  net.features = nn.Sequential(*layers)
  net.classifier = nn.Linear(4, 2)
  for m in net.features:
    if isinstance(m, nn.Conv2d):  # He init keeps activations O(1) through all 16 convs
      nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
      nn.init.uniform_(m.bias, -0.1, 0.1)
  return net.eval()


def torch_features(net, arch: str, x: np.ndarray) -> dict[str, np.ndarray]:
  """Every layer's output (NHWC) of ``net.features`` fed the normalised NHWC batch ``x``."""
  torch = _torch()
  names = vgg.layer_names(arch)
  assert len(names) == len(net.features)
  out, h = {}, torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
  with torch.no_grad():
    for name, module in zip(names, net.features, strict=True):
      h = module(h)
      out[name] = h.numpy().transpose(0, 2, 3, 1).copy()  # copy: the next ReLU is in place
  return out


def jax_features(arch: str, params, x) -> dict[str, np.ndarray]:
  model = vgg.Features(arch, outputs=vgg.layer_names(arch), widths=vgg.widths_of(arch, params))
  return {k: np.asarray(v) for k, v in model.apply({"params": params}, x).items()}


def assert_features_close(ours: dict, ref: dict, names) -> None:
  for name in names:
    assert ours[name].shape == ref[name].shape, name
    rel = np.abs(ours[name] - ref[name]).max() / np.abs(ref[name]).max()
    assert rel < 1e-4, f"{name}: relative error {rel:.2e}"


def save_state_dict(net, path, zip_format: bool = True) -> str:
  _torch().save(net.state_dict(), str(path), _use_new_zipfile_serialization=zip_format)
  return str(path)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_read_torch_state_dict_matches_torch(tmp_path, zip_format):
  torch = _torch()
  torch.manual_seed(1)
  state = {
      "dense": torch.randn(2, 3, 4),
      "transposed": torch.randn(3, 5).t(),  # non-contiguous
      "strided": torch.arange(20.0)[5:15:2],  # storage offset and stride
      "half": torch.randn(4, 4).half(),
      "bfloat16": torch.randn(6).bfloat16(),
      "count": torch.tensor(7),
      "param": torch.nn.Parameter(torch.randn(2)),
  }
  path = tmp_path / "state.pth"
  torch.save(state, str(path), _use_new_zipfile_serialization=zip_format)
  read = weights.read_torch_state_dict(str(path))
  assert set(read) == set(state)
  for key, tensor in state.items():
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
      assert read[key].dtype.name == "bfloat16"
      np.testing.assert_array_equal(read[key].astype(np.float32), tensor.float().numpy())
    else:
      assert read[key].dtype == tensor.numpy().dtype, key
      np.testing.assert_array_equal(read[key], tensor.numpy(), err_msg=key)


def test_read_torch_state_dict_unwraps_checkpoints(tmp_path):
  torch = _torch()
  path = tmp_path / "checkpoint.pth"
  torch.save({"epoch": 3, "state_dict": {"module.features.0.weight": torch.ones(2)}}, str(path))
  read = weights.read_torch_state_dict(str(path))
  assert list(read) == ["features.0.weight"]
  np.testing.assert_array_equal(read["features.0.weight"], np.ones(2, np.float32))


@pytest.mark.parametrize("arch, narrow, size", [
    ("vgg19", True, 32), ("vgg16", True, 32), ("vgg19", False, 32), ("alexnet", False, 64),
], ids=["vgg19-narrow", "vgg16-narrow", "vgg19-full", "alexnet-full"])
def test_converted_features_match_torch(tmp_path, arch, narrow, size):
  net = torch_net(arch, narrow)
  state = weights.read_torch_state_dict(save_state_dict(net, tmp_path / f"{arch}.pth"))
  if arch == "alexnet":
    params = weights.alexnet_params_from_torch(state)
  else:
    params = weights.vgg_params_from_torch(state, arch)
  if arch == "vgg19" and not narrow:
    assert sum(p.size for layer in params.values() for p in layer.values()) == \
        VGG19_FEATURE_PARAMS
  x01 = np.random.default_rng(0).random((1, size, size, 3), np.float32)
  x = vgg.imagenet_input(jnp.asarray(x01), "torch")
  ref = torch_features(net, arch, np.asarray(x))
  assert_features_close(jax_features(arch, params, x), ref, vgg.layer_names(arch))


def test_vgg_converter_rejects_the_wrong_network(tmp_path, ledger):
  ledger.tried("weights file")
  net = torch_net("vgg16", narrow=True)
  state = weights.read_torch_state_dict(save_state_dict(net, tmp_path / "vgg16.pth"))
  with pytest.raises(weights.WeightsError, match=r"features\.\d+\.weight missing: not a VGG19"):
    weights.vgg_params_from_torch(state, "vgg19")
  state = {**state, "features.3.weight": np.zeros((8, 8, 3, 3), np.float32)}  # a ReLU's slot
  with pytest.raises(weights.WeightsError, match=r"unexpected features\.3\.weight"):
    weights.vgg_params_from_torch(state, "vgg16")


def _keras_legacy_h5_by_hand(model, path) -> None:
  """The layout of keras-applications' files: ``layer_names`` (bytes) on the root,
  ``weight_names`` on each layer group naming its datasets, kernel then bias."""
  import h5py

  with h5py.File(path, "w") as f:
    f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
    for layer in model.layers:
      group = f.create_group(layer.name)
      names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
      group.attrs["weight_names"] = names
      for name, w in zip(names, layer.get_weights(), strict=True):
        group.create_dataset(name.decode(), data=w)


def test_keras_vgg19_matches_keras(tmp_path):
  keras = pytest.importorskip("keras", reason="the reference Keras VGG19 needs keras")
  import h5py

  model = keras.applications.VGG19(weights=None, include_top=False, input_shape=(32, 32, 3))
  legacy = str(tmp_path / "vgg19_notop.h5")
  _keras_legacy_h5_by_hand(model, legacy)
  params = weights.vgg_params_from_keras(weights.read_keras_h5(legacy), "vgg19")
  others = [str(tmp_path / "vgg19.weights.h5")]  # Keras 3: layers named by class, by order
  model.save_weights(others[0])
  try:
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
    others.append(str(tmp_path / "keras_legacy.h5"))
    with h5py.File(others[1], "w") as f:
      save_weights_to_hdf5_group(f, model)
  except ImportError:
    pass  # keras without its legacy writer: the hand-written layout stands for it
  for other in others:
    for name, layer in weights.vgg_params_from_keras(weights.read_keras_h5(other)).items():
      for p in ("kernel", "bias"):
        np.testing.assert_array_equal(layer[p], params[name][p], err_msg=f"{other} {name}")

  x01 = np.random.default_rng(0).random((1, 32, 32, 3), np.float32)
  keras_input = keras.applications.vgg19.preprocess_input(x01 * 255.0)
  x = vgg.imagenet_input(jnp.asarray(x01), "caffe")
  np.testing.assert_allclose(np.asarray(x), keras_input, atol=1e-4)
  pairs = {f"relu{b}_{i}": f"block{b}_conv{i}"  # Keras convs include their ReLU
           for b, depth in enumerate(vgg.VGG_BLOCKS["vgg19"], 1) for i in range(1, depth + 1)}
  pairs.update({f"pool{b}": f"block{b}_pool" for b in range(1, 6)})
  probe = keras.Model(model.input, [model.get_layer(k).output for k in pairs.values()])
  ref = dict(zip(pairs, (np.asarray(o) for o in probe(keras_input)), strict=True))
  assert_features_close(jax_features("vgg19", params, x), ref, pairs)

  _, meta = weights.load("vgg19_keras", legacy, cache_dir=str(tmp_path / "cache"))
  assert meta["preprocessing"] == "caffe"
  with pytest.raises(weights.WeightsError, match="Keras HDF5 file.*use vgg19_keras"):
    weights.load("vgg19", legacy, cache_dir=str(tmp_path / "cache"))


def test_lpips_heads(tmp_path):
  channels = (64, 192, 384, 256, 256)
  rng = np.random.default_rng(0)
  state = {f"lin{k}.model.1.weight": rng.random((1, c, 1, 1), np.float32)
           for k, c in enumerate(channels)}
  heads = weights.lpips_heads_from_torch(state)
  assert list(heads) == [f"lin{k}" for k in range(5)]
  for k, c in enumerate(channels):
    np.testing.assert_array_equal(heads[f"lin{k}"], state[f"lin{k}.model.1.weight"].reshape(c))
  with pytest.raises(weights.WeightsError, match="lin0.model.1.weight missing"):
    weights.lpips_heads_from_torch({"features.0.weight": np.zeros((1, 3, 1, 1))})

  torch = _torch()
  path = tmp_path / "my_alex_heads.pth"  # named alex.pth it would be checked against the pin
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, str(path),
             _use_new_zipfile_serialization=False)  # richzhang's files predate the zip format
  loaded = weights.load_lpips_heads("lpips_alex", str(path), cache_dir=str(tmp_path / "cache"))
  for k in heads:
    np.testing.assert_array_equal(loaded[k], heads[k])
  assert (tmp_path / "cache" / "lpips_alex.msgpack").is_file()
  with pytest.raises(weights.WeightsError, match="not AlexNet weights"):
    weights.load("alexnet", str(tmp_path / "cache" / "lpips_alex.msgpack"),
                 cache_dir=str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def narrow_vgg19(tmp_path_factory) -> str:
  return save_state_dict(torch_net("vgg19", narrow=True),
                         tmp_path_factory.mktemp("src") / "my_vgg19.pth")


def test_load_converts_caches_and_reloads(tmp_path, narrow_vgg19):
  cache = tmp_path / "cache"
  params, meta = weights.load("vgg19", narrow_vgg19, cache_dir=str(cache), download=False)
  sha256 = hashlib.sha256(pathlib.Path(narrow_vgg19).read_bytes()).hexdigest()
  assert meta == {"arch": "vgg19", "preprocessing": "torch", "source_file": narrow_vgg19,
                  "source_sha256": sha256}
  assert vgg.widths_of("vgg19", params) == (8, 16, 16, 32, 32)
  assert [p.name for p in cache.iterdir()] == ["vgg19.msgpack"]  # no temp file left behind

  cached, cached_meta = weights.load("vgg19", cache_dir=str(cache), download=False)
  assert cached_meta == meta
  assert cached.keys() == params.keys()
  for name, layer in params.items():
    for p, value in layer.items():
      assert cached[name][p].dtype == np.float32
      np.testing.assert_array_equal(cached[name][p], value)
  again, _ = weights.load("vgg19", str(cache / "vgg19.msgpack"), cache_dir=str(tmp_path / "x"))
  np.testing.assert_array_equal(again["conv5_4"]["kernel"], params["conv5_4"]["kernel"])


def test_published_file_with_wrong_hash_is_refused(tmp_path, narrow_vgg19, ledger):
  ledger.tried("weights file")
  cache = tmp_path / "cache"
  cache.mkdir()
  (cache / "vgg19-dcbb9e9d.pth").write_bytes(pathlib.Path(narrow_vgg19).read_bytes())
  sha256 = hashlib.sha256(pathlib.Path(narrow_vgg19).read_bytes()).hexdigest()
  expected = f"refused, sha256 mismatch: .* is dcbb9e9dad569fff.*, this file's is {sha256}"
  with pytest.raises(weights.WeightsError, match=expected):
    weights.load("vgg19", cache_dir=str(cache), download=False)


@pytest.fixture
def served(tmp_path):
  """(folder, base URL) of a loopback HTTP server over a fresh folder, stopped after the test."""
  import functools
  import http.server
  import threading

  folder = tmp_path / "served"
  folder.mkdir()

  class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
      pass
  server = http.server.ThreadingHTTPServer(
      ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
  server.shutdown()
  server.server_close()
  thread.join(timeout=5)


def test_download_verifies_before_caching(tmp_path, narrow_vgg19, monkeypatch, served):
  folder, url = served
  data = pathlib.Path(narrow_vgg19).read_bytes()
  (folder / "vgg19-dcbb9e9d.pth").write_bytes(data)
  good = dataclasses.replace(weights.SOURCES["vgg19"], url=url + "vgg19-dcbb9e9d.pth",
                             hash="sha256:" + hashlib.sha256(data).hexdigest())
  monkeypatch.setitem(weights.SOURCES, "vgg19", good)
  params, _ = weights.load("vgg19", cache_dir=str(tmp_path / "ok"))
  assert vgg.widths_of("vgg19", params) == (8, 16, 16, 32, 32)
  assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == [
      "vgg19-dcbb9e9d.pth", "vgg19.msgpack"]

  # A changed file upstream: refused in one line, nothing kept (full digest: pooch checks it;
  # a prefix pin, as torchvision's names carry: checked after the download).
  for pin in ("sha256:" + "0" * 64, "sha256:0000"):
    monkeypatch.setitem(weights.SOURCES, "vgg19", dataclasses.replace(good, hash=pin))
    with pytest.raises(weights.WeightsError) as refused:
      weights.load("vgg19", cache_dir=str(tmp_path / "bad"))
    message = str(refused.value)
    assert "\n" not in message and "refused, sha256 mismatch" in message
    assert f"is {pin[7:]}" in message or f"starts with {pin[7:]}" in message
    assert hashlib.sha256(data).hexdigest() in message
    assert list((tmp_path / "bad").iterdir()) == []  # the bad download is not kept


def test_every_source_is_pinned_to_a_fixed_url_and_a_hash():
  for src in weights.SOURCES.values():
    algo, digest = src.hash.split(":")
    assert (algo, len(digest)) in {("sha256", 64), ("md5", 32)} or (
        src.name == "vgg16" and digest == "397923af"), src  # no full sha256 is published
    assert "/master/" not in src.url and "/main/" not in src.url, src.url
  for name in ("lpips_alex", "lpips_vgg"):  # at a commit, not a branch
    assert re.search(r"/raw/[0-9a-f]{40}/lpips/weights/v0\.1/",
                     weights.SOURCES[name].url), name
  for name in ("vgg19", "alexnet"):  # the name's hash prefix begins the full digest
    src = weights.SOURCES[name]
    assert src.hash[7:].startswith(re.search(r"-([0-9a-f]{8})\.pth", src.url).group(1))


def test_missing_weights_say_what_to_put_where(tmp_path):
  cache = str(tmp_path / "empty")
  with pytest.raises(weights.WeightsNotFound) as error:
    weights.load("vgg19", cache_dir=cache, download=False)
  message = str(error.value)
  assert "\n" not in message
  for part in ("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "vgg19-dcbb9e9d.pth",
               cache, "loss.vgg.weights", "convert vgg19 --file"):
    assert part in message


def test_unreadable_files_are_weights_errors(tmp_path, ledger):
  ledger.tried("weights file")
  text = tmp_path / "notes.pth"
  text.write_text("these are not weights\n")
  with pytest.raises(weights.WeightsError, match="not a readable PyTorch file"):
    weights.read_torch_state_dict(str(text))
  with pytest.raises(weights.WeightsError, match="notes.pth"):
    weights.load("vgg19", str(text), cache_dir=str(tmp_path / "cache"))
  with pytest.raises(weights.WeightsError, match="not an HDF5 file"):
    weights.read_keras_h5(str(text))


class _Exploit:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("container", ["pickle", "zip"])
def test_pickles_that_run_code_are_refused(tmp_path, container, ledger):
  ledger.tried("weights file")
  marker = tmp_path / "pwned"
  path = tmp_path / "exploit.pth"
  payload = pickle.dumps({"features.0.weight": _Exploit(marker)}, protocol=2)
  if container == "zip":
    with zipfile.ZipFile(path, "w") as archive:
      archive.writestr("archive/data.pkl", payload)
  else:
    path.write_bytes(payload)
  with pytest.raises(weights.WeightsError, match=r"refusing to unpickle (posix|nt|os)\.system"):
    weights.read_torch_state_dict(str(path))
  assert not marker.exists()


def _cli(*args, cache) -> subprocess.CompletedProcess:
  env = {**os.environ, "SINSR_WEIGHTS_DIR": str(cache), "JAX_PLATFORMS": "cpu"}
  return subprocess.run([sys.executable, "-m", "sinsr_jax.weights", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_convert(tmp_path, narrow_vgg19):
  done = _cli("convert", "vgg19", "--file", narrow_vgg19, "--no-download", cache=tmp_path)
  assert done.returncode == 0, done.stderr
  assert (tmp_path / "vgg19.msgpack").is_file()
  assert str(tmp_path / "vgg19.msgpack") in done.stdout
  assert "widths 8 16 16 32 32" in done.stdout

  missing = _cli("convert", "vgg19", "--file", str(tmp_path / "nope.pth"), cache=tmp_path)
  assert missing.returncode == 1
  assert "Traceback" not in missing.stderr
  errors = [line for line in missing.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "nope.pth" in errors[0]


def test_weights_module_does_not_import_torch():
  code = "import sys, sinsr_jax.weights; print('torch' in sys.modules)"
  done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                        env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=120)
  assert done.stdout.strip() == "False", done.stderr
