"""The CPU gap at its root: a plain residual stack of 3x3 convs, forward + backward, JAX vs torch.

    python benchmarks/conv_stack.py                       # every XLA flag set below, then torch
    python benchmarks/conv_stack.py --variants=default,onednn --batch=8 --size=48
    python benchmarks/conv_stack.py --tiny                # seconds: the CI smoke setting

Each variant runs in a fresh process (XLA flags are read once per process): the gradient of a
mean-square of the stack's output with respect to its parameters and input, jitted, timed after
compilation. The same stack in CPU torch (channels-last, eager and ``torch.compile``) is the
reference; the table gives each JAX variant's throughput over the best torch one. Writes
benchmarks/conv_stack.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

# name -> XLA_FLAGS: the XLA CPU switches that could move conv speed (see RESULTS.md).
XLA_VARIANTS = {
    "default": "",  # jaxlib's defaults (sinsr_jax applies its own: see no_ynn)
    "no_ynn": "--xla_cpu_experimental_ynn_fusion_type=",  # what sinsr_jax sets (xla_cpu.py)
    "onednn": "--xla_cpu_use_onednn=true",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "ynn_conv": "--xla_cpu_experimental_ynn_fusion_type=LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION",
    "fast_runtime": "--xla_cpu_opt_preset=CPU_OPT_PRESET_FAST_RUNTIME",
    "no_thunks": "--xla_cpu_use_thunk_runtime=false",
    "nchw": "",  # the default flags, activations NCHW and kernels OIHW (torch's layouts)
    "im2col": "",  # the default flags, each conv as one matmul over its 9 shifted inputs
}
TORCH_VARIANTS = ("torch_eager", "torch_compile")


def _parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--variants", default=",".join([*XLA_VARIANTS, *TORCH_VARIANTS]))
  p.add_argument("--batch", type=int, default=16)
  p.add_argument("--size", type=int, default=32, help="feature map side (an LR patch)")
  p.add_argument("--width", type=int, default=64)
  p.add_argument("--blocks", type=int, default=8, help="residual blocks of two convs")
  p.add_argument("--repeats", type=int, default=20)
  p.add_argument("--forward_only", action="store_true", help="time inference (no backward)")
  p.add_argument("--tiny", action="store_true", help="batch 2, 8x8, width 8, 1 block, 2 repeats")
  p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "conv_stack.json"))
  p.add_argument("--worker", default="", help=argparse.SUPPRESS)  # one variant, in a subprocess
  args = p.parse_args(argv)
  if args.tiny:
    args.batch, args.size, args.width, args.blocks, args.repeats = 2, 8, 8, 1, 2
  return args


def _flops(a) -> float:
  """Multiply-adds x2; a backward pass costs two forward convs (input and weight gradients)."""
  per_conv = 2 * a.batch * a.size * a.size * 9 * a.width * a.width
  return (1 if a.forward_only else 3) * per_conv * (2 * a.blocks)


def _time(step, repeats: int) -> tuple[float, float]:
  """(first call incl. compilation, median steady-state seconds)."""
  t = time.perf_counter()
  step()
  first = time.perf_counter() - t
  step()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
  return first, sorted(times)[len(times) // 2]


def _jax_worker(a, nchw: bool, im2col: bool) -> dict:
  import jax
  import jax.numpy as jnp

  keys = jax.random.split(jax.random.key(0), 2 * a.blocks + 1)
  scale = (2.0 / (9 * a.width)) ** 0.5 * 0.2
  kernel_shape = (a.width, a.width, 3, 3) if nchw else (3, 3, a.width, a.width)
  bias_shape = (a.width, 1, 1) if nchw else (a.width,)
  params = [(scale * jax.random.normal(k, kernel_shape), jnp.zeros(bias_shape))
            for k in keys[1:]]
  x = jax.random.normal(keys[0], (a.batch, a.width, a.size, a.size) if nchw
                        else (a.batch, a.size, a.size, a.width))
  numbers = ("NCHW", "OIHW", "NCHW") if nchw else ("NHWC", "HWIO", "NHWC")

  def conv(x, w, b):
    if im2col:
      h, w_ = x.shape[1:3]
      padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
      cols = jnp.concatenate([padded[:, i:i + h, j:j + w_] for i in range(3) for j in range(3)],
                             -1)
      return cols @ w.reshape(-1, w.shape[-1]) + b
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=numbers) + b

  def loss(params, x):
    for i in range(a.blocks):
      y = jax.nn.leaky_relu(conv(x, *params[2 * i]), 0.2)
      x = x + conv(y, *params[2 * i + 1])
    return jnp.mean(x * x)

  fn = jax.jit(loss if a.forward_only else jax.grad(loss, argnums=(0, 1)))
  first, steady = _time(lambda: jax.block_until_ready(fn(params, x)), a.repeats)
  return {"compile_s": first - steady, "step_s": steady}


def _torch_worker(a, compiled: bool) -> dict:
  import torch

  torch.manual_seed(0)
  layers = torch.nn.ModuleList(torch.nn.Conv2d(a.width, a.width, 3, padding=1)
                               for _ in range(2 * a.blocks))
  layers = layers.to(memory_format=torch.channels_last)
  x = torch.randn(a.batch, a.width, a.size, a.size).to(memory_format=torch.channels_last)
  x.requires_grad_(True)

  def forward(x):
    for i in range(a.blocks):
      y = torch.nn.functional.leaky_relu(layers[2 * i](x), 0.2)
      x = x + layers[2 * i + 1](y)
    return torch.mean(x * x)

  if compiled:
    forward = torch.compile(forward)

  def step():
    if a.forward_only:
      with torch.inference_mode():
        return forward(x)
    for p in layers.parameters():
      p.grad = None
    x.grad = None
    forward(x).backward()

  first, steady = _time(step, a.repeats)
  return {"compile_s": first - steady, "step_s": steady, "threads": torch.get_num_threads()}


def _run_variant(name: str, a) -> dict:
  env = dict(os.environ)
  if name in XLA_VARIANTS:
    env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS", ""), XLA_VARIANTS[name]]))
  args = [sys.executable, __file__, f"--worker={name}", f"--batch={a.batch}", f"--size={a.size}",
          f"--width={a.width}", f"--blocks={a.blocks}", f"--repeats={a.repeats}",
          *(["--forward_only"] if a.forward_only else [])]
  proc = subprocess.run(args, env=env, capture_output=True, text=True)
  if proc.returncode != 0:
    return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
  a = _parse(argv)
  if a.worker:
    if a.worker in XLA_VARIANTS:
      result = _jax_worker(a, nchw=a.worker == "nchw", im2col=a.worker == "im2col")
    else:
      result = _torch_worker(a, compiled=a.worker == "torch_compile")
    print(json.dumps(result))
    return result
  variants = [v for v in a.variants.split(",") if v]
  unknown = set(variants) - {*XLA_VARIANTS, *TORCH_VARIANTS}
  if unknown:
    sys.exit(f"unknown variants {sorted(unknown)}; known: {[*XLA_VARIANTS, *TORCH_VARIANTS]}")
  rows = {}
  for name in variants:
    rows[name] = _run_variant(name, a)
    print(f"{name}: {rows[name]}", file=sys.stderr, flush=True)
  gflop = _flops(a) / 1e9
  torch_best = min((r["step_s"] for n, r in rows.items() if n in TORCH_VARIANTS and "step_s" in r),
                   default=None)
  mode = "forward" if a.forward_only else "fwd+bwd"
  print(f"\nResidual 3x3-conv stack, {mode}: batch {a.batch}, {a.size}x{a.size}, width "
        f"{a.width}, {a.blocks} blocks ({gflop:.2f} GFLOP/step), {os.cpu_count()} CPUs\n")
  print("| variant | ms/step | GFLOP/s | compile s | vs best torch |")
  print("|---|---|---|---|---|")
  for name, r in rows.items():
    if "step_s" not in r:
      print(f"| {name} | failed: {r['error']} | | | |")
      continue
    r["gflops"] = gflop / r["step_s"]
    if torch_best:
      r["speed_vs_torch"] = torch_best / r["step_s"]
    ratio = f"{r['speed_vs_torch']:.2f}x" if torch_best else "-"
    print(f"| {name} | {1e3 * r['step_s']:.1f} | {r['gflops']:.1f} | {r['compile_s']:.2f} | "
          f"{ratio} |")
  result = {"machine": {"cpu_count": os.cpu_count(), "processor": platform.processor(),
                        "platform": platform.platform()},
            "setting": {k: getattr(a, k) for k in ("batch", "size", "width", "blocks", "repeats",
                                                   "forward_only")},
            "command": " ".join(["python", *sys.argv]), "gflop_per_step": gflop,
            "variants": rows}
  with open(a.out, "w") as f:
    json.dump(result, f, indent=1)
  return result


if __name__ == "__main__":
  main()
