"""Compile seconds and peak memory of the GAN step and of inference, unrolled vs scanned blocks.

    python benchmarks/compile_time.py                        # every model, width and layout
    python benchmarks/compile_time.py --models=esrgan --widths=quick --steps=5
    python benchmarks/compile_time.py --timeout=300 --max-rss-gb=8 --out=/tmp/ct.json

For SINSR, SINSR with its gradient branch (configs/sinsr.py:gradient_branch) and ESRGAN, at the
quick width (``:quick``) and the paper width, in the layouts ``scan`` (``model.scan``),
``unrolled`` and ``remat`` (scanned with ``model.remat``: each block's activations recomputed in
the backward pass), each measurement runs in a fresh process so that its peak RSS is its own:

- ``gan``: the product's data-parallel GAN step (G+D, convex loss, Adam, EMA; train.setup_steps)
  on a random batch, the perceptual term off; paper width at batch 4 of 128 px, quick width at
  its config's batch and patch. Compile seconds = first call - median of ``--steps`` further
  calls (the steady-state step time, also reported).
- ``inference``: the jitted generator (what upscale runs) on one LR tile of ``--tile`` px,
  compiled ahead of time (``lower().compile()``).

Peak RSS is the process's high-water mark (VmHWM), imports included (``base_gb``: before
building anything). A process past ``--timeout`` seconds or ``--max-rss-gb`` is stopped and
reported as such with what it had reached. Prints a table and writes compile_time.json next to
this file (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
MODELS = {"sinsr": ("configs/sinsr.py", ""), "sinsr_gb": ("configs/sinsr.py", "gradient_branch"),
          "esrgan": ("configs/baselines/esrgan.py", "")}
WIDTHS, WHAT, LAYOUTS = ("quick", "paper"), ("gan", "inference"), ("scan", "unrolled", "remat")


def _parse(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  p.add_argument("--models", default="sinsr,sinsr_gb,esrgan")
  p.add_argument("--widths", default="quick,paper")
  p.add_argument("--layouts", default="scan,unrolled", help="of scan, unrolled, remat")
  p.add_argument("--what", default="gan,inference")
  p.add_argument("--steps", type=int, default=3, help="GAN steps timed after the first")
  p.add_argument("--tile", type=int, default=64, help="inference LR tile side, px")
  p.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement")
  p.add_argument("--max-rss-gb", type=float, default=10.0, help="stop a process past this")
  p.add_argument("--out", default=os.path.join(HERE, "compile_time.json"))
  p.add_argument("--child", default="", help=argparse.SUPPRESS)
  return p.parse_args(argv)


def _rss_gb(pid: int | str = "self", field: str = "VmHWM") -> float:
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 2**20
  return 0.0


def load_config(model: str, width: str):
  """The model's config at ``width``; perceptual term off; paper width at batch 4 of 128 px."""
  import importlib.util

  path, variant = MODELS[model]
  spec = importlib.util.spec_from_file_location(f"bench_config_{model}",
                                                os.path.join(REPO, path))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  arg = ",".join(filter(None, ["quick" if width == "quick" else "", variant]))
  config = module.get_config(arg or None)
  config.loss.weights.perceptual = (0.0,)
  if width == "paper":
    config.train.batch_size, config.data.patch_size = 4, 128
  return config


def _measure(spec: dict) -> dict:
  """In the child process: one measurement; the parent reads its peak RSS."""
  sys.path.insert(0, REPO)
  from sinsr_jax.runtime import xla_cpu

  xla_cpu.apply()  # the product's XLA CPU settings, as the command lines apply them
  import jax
  import numpy as np

  from sinsr_jax.losses import objective
  from sinsr_jax.training import parallel, steps, train

  config = load_config(spec["model"], spec["width"])
  config.model.scan = spec["layout"] in ("scan", "remat")
  config.model.remat = spec["layout"] == "remat"
  base = _rss_gb()
  rng = np.random.default_rng(0)
  s, c = config.data.scale, config.model.channels
  out = {"base_gb": base}
  if spec["what"] == "inference":
    g_model = train.build_generator(config) if hasattr(train, "build_generator") else \
        train.build_models(config)[0]
    lr = rng.random((1, spec["tile"], spec["tile"], c), np.float32)
    variables = jax.jit(g_model.init)(jax.random.PRNGKey(0), lr)
    params, model_state = steps.split_variables(variables) if hasattr(
        steps, "split_variables") else (variables["params"], {})
    apply = jax.jit(lambda p, m, x: steps.generate(g_model, p, x, m))
    start = time.perf_counter()
    compiled = apply.lower(params, model_state, lr).compile()
    out["compile_s"] = time.perf_counter() - start
    jax.block_until_ready(compiled(params, model_state, lr))
    return out
  mesh = parallel.make_mesh()
  loss, frozen = objective.build(config)
  state, _, gan = train.setup_steps(config, mesh, loss, frozen)
  b, p = config.train.batch_size, config.data.patch_size
  batch = parallel.shard_batch({"lr": rng.random((b, p // s, p // s, c), np.float32),
                                "hr": rng.random((b, p, p, c), np.float32)}, mesh)
  holder = {"state": state}

  def step():
    holder["state"], metrics = gan(holder["state"], batch)
    jax.block_until_ready(metrics)

  start = time.perf_counter()
  step()
  first = time.perf_counter() - start
  times = []
  for _ in range(spec["steps"]):
    start = time.perf_counter()
    step()
    times.append(time.perf_counter() - start)
  median = float(np.median(times)) if times else 0.0
  out.update(first_s=first, step_s=median, compile_s=first - median, batch=b, patch=p)
  return out


def _run_child(spec: dict, a) -> dict:
  """Runs one measurement in a fresh process, watching its peak RSS; stops it past the limits."""
  cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
  proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  start, peak, stopped = time.perf_counter(), 0.0, ""
  while proc.poll() is None:
    try:
      peak = max(peak, _rss_gb(proc.pid))
    except OSError:
      pass
    elapsed = time.perf_counter() - start
    if elapsed > a.timeout or peak > a.max_rss_gb:
      stopped = (f"stopped after {elapsed:.0f} s" if elapsed > a.timeout
                 else f"stopped at {peak:.1f} GB RSS")
      proc.kill()
      break
    time.sleep(0.2)
  stdout, stderr = proc.communicate()
  result = {**spec, "wall_s": time.perf_counter() - start, "peak_rss_gb": peak}
  if stopped:
    return {**result, "stopped": stopped}
  lines = [x for x in stdout.splitlines() if x.startswith("{")]
  if proc.returncode or not lines:
    return {**result, "error": (stderr.strip().splitlines() or ["?"])[-1][:300]}
  child = json.loads(lines[-1])
  return {**result, **child, "peak_rss_gb": max(peak, child.pop("child_peak_gb", 0.0))}


def _row(r: dict) -> str:
  cells = [r["model"], r["width"], r["what"], r["layout"]]
  if "stopped" in r or "error" in r:
    note = r.get("stopped") or "error: " + r["error"]
    return " | ".join(cells + [f"> {r['wall_s']:.0f}" if "stopped" in r else "-",
                               f">= {r['peak_rss_gb']:.2f}", "-", note])
  step = f"{r['step_s']:.3f}" if r.get("step_s") else "-"
  return " | ".join(cells + [f"{r['compile_s']:.1f}", f"{r['peak_rss_gb']:.2f}", step, ""])


def main(argv=None) -> int:
  a = _parse(argv)
  if a.child:
    out = _measure(json.loads(a.child))
    out["child_peak_gb"] = _rss_gb()
    print(json.dumps(out), flush=True)
    return 0
  for name, given, known in (("--models", a.models, MODELS), ("--widths", a.widths, WIDTHS),
                             ("--what", a.what, WHAT), ("--layouts", a.layouts, LAYOUTS)):
    unknown = sorted(set(given.split(",")) - set(known))
    if unknown:
      sys.exit(f"{name}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
  results = []
  print("model | width | what | layout | compile s | peak RSS GB | step s | note", flush=True)
  for model in a.models.split(","):
    for width in a.widths.split(","):
      for what in a.what.split(","):
        for lay in a.layouts.split(","):
          spec = {"model": model, "width": width, "what": what, "layout": lay,
                  "steps": a.steps, "tile": a.tile}
          results.append(_run_child(spec, a))
          print(_row(results[-1]), flush=True)
  with open(a.out, "w") as f:
    json.dump({"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
               "argv": sys.argv[1:], "results": results}, f, indent=2)
  print(f"wrote {a.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
