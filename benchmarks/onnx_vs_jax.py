"""ONNX Runtime against JAX on the same real-frame tiles: time per tile, side by side, and the
max abs difference, per generator family at its default (study) size.

    python benchmarks/onnx_vs_jax.py [--tile=128] [--tiles=8] [--threads=2] [--out=FILE.json]

Weights are random (time does not depend on them); both run on the CPU in this process, JAX
jitted for the tile's shape, ONNX Runtime with ``--threads`` intra-op threads. Needs the
``export`` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import jax
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_upscale import _run  # noqa: E402  (random-weight runs without compiling an init)

from sinsr_jax.export import onnx_model  # noqa: E402
from sinsr_jax.inference import micrographs  # noqa: E402

REAL = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "real_sem",
                    "aquami_Sample.tif")
FAMILIES = {  # the configs' default sizes (configs/sinsr.py, configs/baselines/*.py)
    "sinsr": ("sinsr", {}),
    "sinsr_gradient": ("sinsr", {"gradient_branch": True}),
    "esrgan": ("esrgan", {"channels": 1}),
    "vdsr": ("vdsr", {}),
}


def _median_ms(fn, lr_tiles, repeats: int = 1) -> float:
  times = []
  for _ in range(repeats):
    for tile in lr_tiles:
      start = time.perf_counter()
      fn(tile[None])
      times.append((time.perf_counter() - start) * 1e3)
  return float(np.median(times))


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--tile", type=int, default=128)
  parser.add_argument("--tiles", type=int, default=8)
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--families", default=",".join(FAMILIES))
  parser.add_argument("--out", default=None)
  args = parser.parse_args()
  lr = micrographs.model_input(micrographs.read(REAL), 1)[:691]
  rng = np.random.default_rng(0)
  corners = [(rng.integers(0, 691 - args.tile), rng.integers(0, 1024 - args.tile))
             for _ in range(args.tiles)]
  tiles = [lr[r:r + args.tile, c:c + args.tile] for r, c in corners]
  rows = []
  for family in args.families.split(","):
    name, options = FAMILIES[family]
    run = _run(name, **options)
    jax_fn = run.sr_fn()
    jax_sr = lambda x, f=jax_fn: jax.block_until_ready(  # noqa: E731
        (lambda o: o["sr"] if isinstance(o, dict) else o)(f(x)))
    with tempfile.TemporaryDirectory() as tmp:
      path = os.path.join(tmp, "model.onnx")
      onnx_model.write_onnx(run, path, args.tile)
      ort_sr = onnx_model.sr_fn(path, threads=args.threads)
      jax_sr(tiles[0][None]), ort_sr(tiles[0][None])  # compile / warm up
      diff = max(float(np.abs(np.asarray(jax_sr(t[None])) - ort_sr(t[None])).max())
                 for t in tiles)
      jax_ms, ort_ms = _median_ms(jax_sr, tiles), _median_ms(ort_sr, tiles)
    row = {"family": family, "params": run.num_params, "tile": args.tile, "jax_ms": jax_ms,
           "onnxruntime_ms": ort_ms, "jax_over_onnxruntime": jax_ms / ort_ms,
           "max_abs_diff": diff}
    rows.append(row)
    print(f"{family:15s} {run.num_params:>10,d} params  JAX {jax_ms:8.1f} ms/tile  "
          f"ONNX Runtime {ort_ms:8.1f} ms/tile  ratio {jax_ms / ort_ms:5.2f}  "
          f"max|diff| {diff:.1e}", flush=True)
  if args.out:
    with open(args.out, "w") as f:
      json.dump({"jax": jax.__version__, "cpu_count": os.cpu_count(), "rows": rows}, f,
                indent=1)


if __name__ == "__main__":
  main()
