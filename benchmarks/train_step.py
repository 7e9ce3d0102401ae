"""GAN-phase train-step throughput (G+D, HR patches/s), JAX against the same models in PyTorch.

    python benchmarks/train_step.py                      # SINSR and ESRGAN at the quick width
    python benchmarks/train_step.py --widths=quick,paper --batch=4 --steps=3
    python benchmarks/train_step.py --torch=eager,compile --models=sinsr
    python benchmarks/train_step.py --tiny               # a minute: the CI smoke setting

For each model and width, the product's compiled GAN step (sinsr_jax.training.train.setup_steps: the
generator's convex loss, the discriminator, Adam, EMA, the finiteness guard) runs on a fixed
random batch; then the same architectures and step in CPU torch (benchmarks/torch_reference.py,
channels-last; eager and/or ``torch.compile``). Compilation (first call) is reported apart from
the steady state (median step). The perceptual term is off on both sides: its VGG19 costs the
same in any model and has its own side-by-side in benchmarks/loss_terms.py. Prints a table with
the ratio JAX / PyTorch (>1: JAX faster) and writes benchmarks/train_step.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from sinsr_jax.losses import objective  # noqa: E402
from sinsr_jax.training import parallel, train  # noqa: E402

CONFIGS = {"sinsr": "configs/sinsr.py", "esrgan": "configs/baselines/esrgan.py"}


def _parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--models", default="sinsr,esrgan")
  p.add_argument("--widths", default="quick", help="quick and/or paper")
  p.add_argument("--batch", type=int, default=0, help="0 = the config's batch size")
  p.add_argument("--patch", type=int, default=0, help="HR patch side; 0 = the config's")
  p.add_argument("--steps", type=int, default=10, help="timed steps after compilation")
  p.add_argument("--torch", default="eager", help="eager, compile, both as a list, or none")
  p.add_argument("--tiny", action="store_true", help="tiny widths, batch 2, 32 px, 2 steps")
  p.add_argument("--out", default=os.path.join(HERE, "train_step.json"))
  return p.parse_args(argv)


def load_config(model: str, width: str, a):
  """The model's config at ``width`` with the perceptual term off and the benchmark's shape."""
  import importlib.util

  path = os.path.join(HERE, "..", CONFIGS[model])
  spec = importlib.util.spec_from_file_location(f"bench_config_{model}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config("quick" if width == "quick" else None)
  config.loss.weights.perceptual = (0.0,)
  if a.tiny:
    if model == "sinsr":
      config.model.update(stem_width=8, width=8, num_rrdb=1, growth=4)
      config.discriminator.update(width=4, stage_widths=(8, 8, 16, 16))
    else:
      config.model.update(width=8, num_blocks=1, growth=4)
      config.discriminator.update(width=4)
    config.train.batch_size, config.data.patch_size = 2, 32
  if a.batch:
    config.train.batch_size = a.batch
  if a.patch:
    config.data.patch_size = a.patch
  return config


def _batch(config, seed=0):
  rng = np.random.default_rng(seed)
  b, p, s, c = (config.train.batch_size, config.data.patch_size, config.data.scale,
                config.model.channels)
  return {"lr": rng.random((b, p // s, p // s, c), np.float32),
          "hr": rng.random((b, p, p, c), np.float32)}


def _timed(step, steps: int) -> tuple[float, float]:
  """(first call, median of ``steps`` further calls), seconds."""
  start = time.perf_counter()
  step()
  first = time.perf_counter() - start
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  return first, float(np.median(times))


def jax_step(config, batch, steps: int) -> dict:
  mesh = parallel.make_mesh()
  loss, frozen = objective.build(config)
  state, _, gan = train.setup_steps(config, mesh, loss, frozen)
  sharded = parallel.shard_batch(batch, mesh)
  holder = {"state": state}

  def step():
    holder["state"], metrics = gan(holder["state"], sharded)
    jax.block_until_ready(metrics)

  first, median = _timed(step, steps)
  n = sum(x.size for x in jax.tree.leaves(state.g_params))
  return {"first_s": first, "step_s": median, "compile_s": first - median, "g_params": int(n)}


def torch_models(model: str, config):
  import torch_reference as ref

  s, c = config.data.scale, config.model.channels
  m, d = config.model, config.discriminator
  if model == "sinsr":
    g = ref.SINSRGenerator(s, c, m.stem_width, m.width, m.num_rrdb, m.growth, m.attention)
    disc = ref.ConditionalPatchDiscriminator(s, c, d.width, tuple(d.stage_widths))
  else:
    g = ref.RRDBNet(s, c, m.width, m.num_blocks, m.growth)
    disc = ref.VGGDiscriminator(c, d.width, config.data.patch_size)
  return g, disc


def torch_step(model: str, config, batch, steps: int, compiled: bool) -> dict:
  import torch
  import torch_reference as ref

  torch.manual_seed(0)
  g, d = torch_models(model, config)
  g, d = (m.to(memory_format=torch.channels_last) for m in (g, d))
  weights = {k: float(v[0]) for k, v in config.loss.weights.items() if max(v) > 0}
  step_fn = ref.GANStep(g, d, weights, config.loss.gan_kind, compile_models=compiled,
                        ema_decay=config.optim.ema_decay)
  lr, hr = (torch.from_numpy(batch[k]).permute(0, 3, 1, 2).contiguous(
      memory_format=torch.channels_last) for k in ("lr", "hr"))
  first, median = _timed(lambda: step_fn(lr, hr), steps)
  return {"first_s": first, "step_s": median, "compile_s": first - median,
          "g_params": ref.num_params(g), "threads": torch.get_num_threads()}


def main(argv=None) -> dict:
  a = _parse(argv)
  torch_modes = [] if a.torch == "none" else (
      ["eager", "compile"] if a.torch == "both" else a.torch.split(","))
  rows = []
  for model in a.models.split(","):
    for width in a.widths.split(","):
      config = load_config(model, width, a)
      batch = _batch(config)
      row = {"model": model, "width": "tiny" if a.tiny else width,
             "batch": config.train.batch_size, "patch": config.data.patch_size,
             "jax": jax_step(config, batch, a.steps)}
      print(f"{model} {row['width']}: JAX {row['jax']}", file=sys.stderr, flush=True)
      for mode in torch_modes:
        try:
          row[f"torch_{mode}"] = torch_step(model, config, batch, a.steps, mode == "compile")
        except ImportError:
          sys.exit("CPU torch is needed for the reference: pip install -e .[torch]")
        print(f"{model} {row['width']}: torch {mode} {row[f'torch_{mode}']}", file=sys.stderr,
              flush=True)
      rows.append(row)
  print(f"\nGAN step (G+D), {os.cpu_count()} CPUs, {jax.devices()[0].device_kind}\n")
  print("| " + " | ".join(["model", "width", "batch x patch", "JAX patches/s", "JAX compile s",
                           *[f"torch {m} patches/s | JAX / torch {m}" for m in torch_modes]])
        + " |")
  print("|---|---|---|---|---|" + "---|---|" * len(torch_modes))
  for row in rows:
    rate = lambda r, batch=row["batch"]: batch / r["step_s"]  # noqa: E731
    row["jax"]["patches_per_s"] = rate(row["jax"])
    cells = [row["model"], row["width"], f"{row['batch']} x {row['patch']}",
             f"{rate(row['jax']):.2f}", f"{row['jax']['compile_s']:.1f}"]
    for m in torch_modes:
      r = row[f"torch_{m}"]
      r["patches_per_s"] = rate(r)
      row[f"jax_over_torch_{m}"] = rate(row["jax"]) / rate(r)
      cells += [f"{rate(r):.2f}", f"{row[f'jax_over_torch_{m}']:.2f}x"]
    print("| " + " | ".join(cells) + " |")
  return save_rows(rows, a.out)


def save_rows(rows: list, out: str) -> dict:
  """Writes the rows with the machine, the XLA flags and the command line; returns it all."""
  result = {"machine": {"cpu_count": os.cpu_count(), "processor": platform.processor(),
                        "platform": platform.platform(), "device": str(jax.devices()[0]),
                        "xla_flags": os.environ.get("XLA_FLAGS", "")},
            "command": " ".join(["python", *sys.argv]), "rows": rows}
  with open(out, "w") as f:
    json.dump(result, f, indent=1)
  return result


if __name__ == "__main__":
  main()
