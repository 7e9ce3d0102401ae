"""The model zoo's table: parameters and GFLOPs per LR input, from XLA's cost analysis.

    python benchmarks/model_table.py                        # README's table (64x64 LR, x4)
    python benchmarks/model_table.py --models=vdsr,esrgan --lr_size=32 --scale=2

Every generator at its paper-scale defaults (SINSR: configs/sinsr.py's model; also with the
gradient branch). FLOPs count a multiply-add as 2, for the forward pass of one LR image, as XLA
estimates them from the lowered program (nothing is compiled or run). Writes
benchmarks/model_table.json (or --out) and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs"))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from sinsr_jax import models  # noqa: E402

# name in the table -> (registry name, options beyond the registry defaults)
ROWS = {
    "bicubic": ("bicubic", {}),
    "vdsr": ("vdsr", {}),
    "srresnet": ("srresnet", {}),
    "esrgan": ("esrgan", {}),
    "spsr": ("spsr", {}),
    "dsrvae": ("dsrvae", {}),
    "swinir": ("swinir", {}),
    "sinsr": ("sinsr", None),  # None: configs/sinsr.py's model options
    "sinsr+gradient_branch": ("sinsr", {"gradient_branch": True}),
}


def _sinsr_options() -> dict:
  import sinsr  # configs/sinsr.py

  model = sinsr.get_config().model.to_dict()
  return {k: v for k, v in model.items() if k not in ("name", "channels")}


def measure(name: str, options: dict, *, scale: int, channels: int, lr_size: int) -> dict:
  # XLA's cost analysis counts a scanned loop's body once, so FLOPs are counted on the
  # unrolled layout (the same arithmetic as the scanned one).
  options = {**options, "scan": False}
  g = models.create_generator(name, scale=scale, channels=channels, **options)
  lr = jax.ShapeDtypeStruct((1, lr_size, lr_size, channels), jnp.float32)
  variables = jax.eval_shape(g.init, jax.random.PRNGKey(0), lr)
  params = sum(x.size for x in jax.tree.leaves(variables.get("params", {})))
  cost = jax.jit(lambda v, x: g.apply(v, x)).lower(variables, lr).cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return {"params": int(params), "gflops": float(cost.get("flops", 0.0)) / 1e9}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--models", default=",".join(ROWS), help="comma list of table rows")
  parser.add_argument("--scale", type=int, default=4)
  parser.add_argument("--lr_size", type=int, default=64)
  parser.add_argument("--out", default="benchmarks/model_table.json")
  args = parser.parse_args(argv)
  rows = []
  for row in args.models.split(","):
    if row not in ROWS:
      parser.error(f"unknown model {row!r}; valid: {', '.join(ROWS)}")
    name, options = ROWS[row]
    options = _sinsr_options() | (options or {}) if name == "sinsr" else options
    one = measure(name, options, scale=args.scale, channels=1, lr_size=args.lr_size)
    three = measure(name, options, scale=args.scale, channels=3, lr_size=args.lr_size)
    rows.append({"model": row, "params_1ch": one["params"], "params_3ch": three["params"],
                 "gflops_1ch": one["gflops"], "gflops_3ch": three["gflops"]})
  print(f"| model | parameters (1 ch) | parameters (3 ch) | GFLOPs, {args.lr_size}x{args.lr_size} "
        f"LR x{args.scale} (1 ch) | GFLOPs (3 ch) |")
  print("| --- | ---: | ---: | ---: | ---: |")
  for r in rows:
    print(f"| `{r['model']}` | {r['params_1ch']:,} | {r['params_3ch']:,} | "
          f"{r['gflops_1ch']:.1f} | {r['gflops_3ch']:.1f} |")
  with open(args.out, "w") as f:
    json.dump({"scale": args.scale, "lr_size": args.lr_size, "rows": rows}, f, indent=2)


if __name__ == "__main__":
  main()
