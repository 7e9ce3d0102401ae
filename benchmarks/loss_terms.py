"""What each loss term costs, and what the VGG19 perceptual term adds to a GAN step.

    python benchmarks/loss_terms.py                    # quick config: batch 16 of 64x64 HR
    python benchmarks/loss_terms.py --config=configs/sinsr.py --config.train.batch_size=4

(1) Every image term's value and gradient with respect to SR, jitted, on the config's batch of
HR patches, in ms per call and as a multiple of the pixel L1 term. (2) The config's compiled GAN
step without and with the perceptual term (a full-width VGG19 — random weights: the cost does
not depend on their values), in steps/s and as a ratio. (3) When CPU torch is installed (the
``torch`` extra), the same perceptual computation in torch as the reference: HR features
without gradient, SR features with their gradient, MSE over the same layers. Writes
benchmarks/loss_terms.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from sinsr_jax import weights  # noqa: E402
from sinsr_jax.losses import objective
from sinsr_jax.losses.generator_loss import IMAGE_TERMS  # noqa: E402
from sinsr_jax.models import vgg  # noqa: E402
from sinsr_jax.training import parallel, train

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sinsr.py:quick", lock_config=True)
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per measurement after compilation.")
_VGG_WIDTHS = flags.DEFINE_list("vgg_widths", [], "VGG19 block widths ([] = the published).")
_OUT = flags.DEFINE_string("out", "benchmarks/loss_terms.json", "Where to write results.")


def _time(fn, *args, repeats: int) -> float:
  """Median seconds per call of a compiled ``fn`` (first call compiles, not timed)."""
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _random_vgg19(path: str, widths: tuple[int, ...]) -> str:
  module = vgg.Features(arch="vgg19", outputs=("relu5_4",), widths=widths)
  params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))["params"]
  weights.write_checkpoint(path, jax.device_get(params),
                           {"arch": "vgg19", "preprocessing": "torch", "source_file": "random",
                            "source_sha256": ""})
  return path


def _term_costs(config, vgg_file: str, repeats: int) -> dict[str, float]:
  cfg = config.copy_and_resolve_references()
  for term in IMAGE_TERMS:
    cfg.loss.weights[term] = (1.0,)
  cfg.loss.vgg.weights = vgg_file
  loss, frozen = objective.build(cfg)
  b, p, c = config.train.batch_size, config.data.patch_size, config.model.channels
  rng = np.random.default_rng(0)
  hr = jnp.asarray(rng.random((b, p, p, c)), jnp.float32)
  sr = jnp.asarray(rng.random((b, p, p, c)), jnp.float32)
  costs = {}
  for term in IMAGE_TERMS:
    only = dataclasses.replace(loss, weights={term: (1.0, 1.0)})
    fn = jax.jit(jax.value_and_grad(lambda s, h, f, only=only, term=term:
                                    only.image_terms(s, h, f)[term]))
    costs[term] = _time(fn, sr, hr, frozen, repeats=repeats)
  return costs


def _torch_perceptual_ms(config, widths: tuple[int, ...], layers, repeats: int) -> float | None:
  """The reference: torchvision-layout VGG19 in CPU torch, same shapes, same layers."""
  try:
    import torch
  except ImportError:
    return None
  names, modules, in_ch = vgg.layer_names("vgg19"), [], 3
  block_widths = dict(zip(range(1, 6), widths, strict=True))
  for name in names:
    if name.startswith("conv"):
      out_ch = block_widths[int(name[4])]
      modules.append(torch.nn.Conv2d(in_ch, out_ch, 3, padding=1))
      in_ch = out_ch
    elif name.startswith("relu"):
      modules.append(torch.nn.ReLU())
    else:
      modules.append(torch.nn.MaxPool2d(2, 2))
  net = torch.nn.Sequential(*modules[:max(names.index(n) for n in layers) + 1]).eval()
  for p in net.parameters():
    p.requires_grad_(False)
  taps = {names.index(n) for n in layers}

  def features(x):
    out = []
    for i, m in enumerate(net):
      x = m(x)
      if i in taps:
        out.append(x)
    return out

  b, p = config.train.batch_size, config.data.patch_size
  sr = torch.rand(b, 3, p, p, requires_grad=True)
  hr = torch.rand(b, 3, p, p)

  def step():
    with torch.no_grad():
      target = features(hr)
    loss = sum(torch.mean((a - t) ** 2) for a, t in zip(features(sr), target, strict=True))
    loss.backward()
    sr.grad = None

  step()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def _gan_step_rate(config, repeats: int) -> float:
  mesh = parallel.make_mesh()
  state, _, gan = train.setup_steps(config, mesh)
  b, p, s, c = (config.train.batch_size, config.data.patch_size, config.data.scale,
                config.model.channels)
  rng = np.random.default_rng(0)
  batch = parallel.shard_batch({"hr": rng.random((b, p, p, c), np.float32),
                                "lr": rng.random((b, p // s, p // s, c), np.float32)}, mesh)
  state, metrics = gan(state, batch)  # compile
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(repeats):
    state, metrics = gan(state, batch)
  jax.block_until_ready(metrics)
  return repeats / (time.perf_counter() - start)


def main(argv):
  del argv
  config = _CONFIG.value
  widths = tuple(int(w) for w in _VGG_WIDTHS.value) or vgg.VGG_WIDTHS
  with tempfile.TemporaryDirectory() as tmp:
    vgg_file = _random_vgg19(os.path.join(tmp, "vgg19.msgpack"), widths)
    costs = _term_costs(config, vgg_file, _REPEATS.value)
    without = config.copy_and_resolve_references()
    without.loss.weights.perceptual = (0.0,)
    with_vgg = config.copy_and_resolve_references()
    with_vgg.loss.weights.perceptual = (2.0, 1.5)
    with_vgg.loss.vgg.weights = vgg_file
    rates = {"without_perceptual": _gan_step_rate(without, _REPEATS.value),
             "with_perceptual": _gan_step_rate(with_vgg, _REPEATS.value)}
  pixel = costs["pixel"]
  result = {
      "machine": f"{platform.machine()}, {os.cpu_count()} cores, {jax.devices()[0].platform}",
      "command": " ".join(sys.argv),
      "batch_size": config.train.batch_size, "patch_size": config.data.patch_size,
      "vgg_widths": list(widths),
      "term_ms": {k: 1e3 * v for k, v in costs.items()},
      "term_over_pixel": {k: v / pixel for k, v in costs.items()},
      "gan_steps_per_s": rates,
      "perceptual_step_slowdown": rates["without_perceptual"] / rates["with_perceptual"],
  }
  torch_ms = _torch_perceptual_ms(config, widths, tuple(config.loss.vgg.layers), _REPEATS.value)
  if torch_ms is not None:
    result["torch_perceptual_ms"] = torch_ms
    result["perceptual_jax_over_torch_time"] = 1e3 * costs["perceptual"] / torch_ms
  print(f"value + gradient w.r.t. SR, batch {config.train.batch_size} of "
        f"{config.data.patch_size}x{config.data.patch_size}:")
  for k, v in costs.items():
    print(f"  {k:15s} {1e3 * v:9.2f} ms  {v / pixel:7.1f}x pixel")
  print(f"GAN step: {rates['without_perceptual']:.2f} steps/s without the perceptual term, "
        f"{rates['with_perceptual']:.2f} with it "
        f"({result['perceptual_step_slowdown']:.2f}x slower)")
  if torch_ms is not None:
    print(f"perceptual term, CPU torch reference: {torch_ms:.2f} ms "
          f"(JAX / torch time = {result['perceptual_jax_over_torch_time']:.2f})")
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, "w") as f:
    json.dump(result, f, indent=2)


if __name__ == "__main__":
  app.run(main)
