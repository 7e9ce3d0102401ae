"""What the test-time refinements (self-ensemble, LR consistency) and --adapt add, across images.

For each image (HR) the LR is made with the run's degradation, as `evaluate --images` does.
Printed per image and on average: the PSNR gain over bicubic (BasicSR convention) of the run
plain, with each refinement, with both, with both after `--adapt` (when --adapt > 0), and of
bicubic made LR-consistent (the classic back-projection baseline).

    python benchmarks/test_time_study.py --run=runs/quick \
        --images=../shared/real_sem/aquami_Sample.tif \
        --skimage=camera,moon,page,coins,gravel,brick --synthetic=2 --adapt=20
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

VARIANTS = {"plain": (False, False), "+ens": (True, False), "+cons": (False, True),
            "+ens +cons": (True, True)}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--run", required=True)
  parser.add_argument("--images", default="")
  parser.add_argument("--skimage", default="")
  parser.add_argument("--synthetic", type=int, default=0)
  parser.add_argument("--adapt", type=int, default=0, help="also adapt (default settings)")
  parser.add_argument("--out", default="", help="JSON lines, one per image")
  args = parser.parse_args()

  from absl import flags

  flags.FLAGS.mark_as_parsed()
  import adaptation_study

  from sinsr_jax.data import degradations, input_pipeline
  from sinsr_jax.inference import adaptation, test_time
  from sinsr_jax.metrics import psnr_db
  from sinsr_jax.training import runs

  run = runs.load(args.run)
  degradation = input_pipeline.degradation_from_config(run.config.data)
  bicubic = lambda lr: degradations.bicubic_upscale(lr, run.scale)  # noqa: E731
  rows = []
  for name, pair in adaptation_study._pairs(run, args):
    lr, hr = pair["lr"][None], pair["hr"][None]
    psnr = lambda sr: float(psnr_db(np.clip(np.asarray(sr), 0, 1), hr,  # noqa: E731,B023
                                    crop_border=run.scale)[0])
    base = psnr(bicubic(lr))
    refined = lambda fn, ens, cons: test_time.refine(  # noqa: E731
        fn, run.scale, test_time.Settings(ens, cons), degradation)
    row = {"image": name, "bicubic_db": base}
    row.update({k: psnr(refined(run.sr_fn(), *v)(lr)) - base for k, v in VARIANTS.items()})
    row["bicubic +cons"] = psnr(refined(bicubic, False, True)(lr)) - base
    if args.adapt:
      adapted = adaptation.adapt(run, [pair["lr"]], adaptation.Settings(steps=args.adapt))
      row[f"+adapt {args.adapt}"] = psnr(adapted.run.sr_fn()(lr)) - base
      row[f"+adapt {args.adapt} +ens +cons"] = psnr(
          refined(adapted.run.sr_fn(), True, True)(lr)) - base
      row["adapted_kept"] = adapted.kept
    rows.append(row)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
          flush=True)
  if args.out:
    with open(args.out, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)
  columns = [k for k in rows[0] if k not in ("image", "bicubic_db", "adapted_kept")]
  print("\n| image | " + " | ".join(columns) + " |")
  print("|---" * (len(columns) + 1) + "|")
  for r in rows + [{"image": "**mean**", **{k: np.mean([r[k] for r in rows]) for k in columns}}]:
    print(f"| {r['image']} | " + " | ".join(f"{r[k]:+.3f}" for k in columns) + " |")


if __name__ == "__main__":
  sys.exit(main())
