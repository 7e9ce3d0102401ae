"""Generator inference throughput (output megapixels/s), JAX against the same model in PyTorch.

    python benchmarks/inference.py                         # SINSR quick + paper width, ESRGAN
    python benchmarks/inference.py --models=sinsr --widths=paper --lr_size=128 --batch=1
    python benchmarks/inference.py --tiny                  # seconds: the CI smoke setting

What one tile of ``upscale`` costs: the jitted generator (EMA weights' shapes, random values)
on a batch of LR tiles, against benchmarks/torch_reference.py's same architecture in CPU torch
(channels-last, ``inference_mode``; eager and/or ``torch.compile``). Compilation is reported
apart. End-to-end tiled upscaling of whole frames, with peak memory, is benchmarks/upscale.py.
Writes benchmarks/inference.json (or --out).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import train_step  # noqa: E402

from sinsr_jax.training import steps, train  # noqa: E402


def _parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--models", default="sinsr,esrgan")
  p.add_argument("--widths", default="quick,paper")
  p.add_argument("--lr_size", type=int, default=128, help="LR tile side (upscale's --tile)")
  p.add_argument("--batch", type=int, default=1)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--torch", default="eager", help="eager, compile, both as a list, or none")
  p.add_argument("--tiny", action="store_true", help="tiny widths, 16 px tiles, 2 repeats")
  p.add_argument("--out", default=os.path.join(HERE, "inference.json"))
  a = p.parse_args(argv)
  if a.tiny:
    a.lr_size, a.repeats = 16, 2
  return a


def jax_inference(config, lr: np.ndarray, repeats: int) -> dict:
  g_model, _ = train.build_models(config)
  params = g_model.init(jax.random.key(0), lr[:1])
  variables = dict(params)
  weights = variables.pop("params")
  fn = jax.jit(lambda w, x: steps.generate(g_model, w, x, variables))
  x = jax.device_put(lr)
  first, median = train_step._timed(lambda: jax.block_until_ready(fn(weights, x)), repeats)
  return {"first_s": first, "step_s": median, "compile_s": first - median}


def torch_inference(model: str, config, lr: np.ndarray, repeats: int, compiled: bool) -> dict:
  import torch

  torch.manual_seed(0)
  g, _ = train_step.torch_models(model, config)
  g = g.eval().to(memory_format=torch.channels_last)
  forward = torch.compile(g) if compiled else g
  x = torch.from_numpy(lr).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)

  def run():
    with torch.inference_mode():
      forward(x)

  first, median = train_step._timed(run, repeats)
  return {"first_s": first, "step_s": median, "compile_s": first - median}


def main(argv=None) -> dict:
  a = _parse(argv)
  modes = [] if a.torch == "none" else (["eager", "compile"] if a.torch == "both"
                                         else a.torch.split(","))
  rows = []
  for model in a.models.split(","):
    for width in a.widths.split(","):
      config = train_step.load_config(model, width, train_step._parse(["--tiny"] if a.tiny
                                                                      else []))
      c, s = config.model.channels, config.data.scale
      lr = np.random.default_rng(0).random((a.batch, a.lr_size, a.lr_size, c), np.float32)
      mpix = a.batch * (a.lr_size * s) ** 2 / 1e6
      row = {"model": model, "width": "tiny" if a.tiny else width, "batch": a.batch,
             "lr_size": a.lr_size, "output_mpix": mpix,
             "jax": jax_inference(config, lr, a.repeats)}
      for mode in modes:
        row[f"torch_{mode}"] = torch_inference(model, config, lr, a.repeats, mode == "compile")
      for key in ("jax", *(f"torch_{m}" for m in modes)):
        row[key]["mpix_per_s"] = mpix / row[key]["step_s"]
      for m in modes:
        row[f"jax_over_torch_{m}"] = row["jax"]["mpix_per_s"] / row[f"torch_{m}"]["mpix_per_s"]
      print(f"{model} {row['width']}: {row}", file=sys.stderr, flush=True)
      rows.append(row)
  print(f"\nGenerator inference, {os.cpu_count()} CPUs, {jax.devices()[0].device_kind}\n")
  print("| " + " | ".join(["model", "width", "batch x LR tile", "JAX MP/s", "JAX compile s",
                           *[f"torch {m} MP/s | JAX / torch {m}" for m in modes]]) + " |")
  print("|---|---|---|---|---|" + "---|---|" * len(modes))
  for row in rows:
    cells = [row["model"], row["width"], f"{row['batch']} x {row['lr_size']}",
             f"{row['jax']['mpix_per_s']:.3f}", f"{row['jax']['compile_s']:.1f}"]
    for m in modes:
      cells += [f"{row[f'torch_{m}']['mpix_per_s']:.3f}", f"{row[f'jax_over_torch_{m}']:.2f}x"]
    print("| " + " | ".join(cells) + " |")
  return train_step.save_rows(rows, a.out)


if __name__ == "__main__":
  main()
