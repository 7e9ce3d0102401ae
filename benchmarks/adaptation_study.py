"""Which --adapt settings help, measured across images (not tuned to one frame).

For each image (HR) the LR is made with the run's degradation, as `evaluate --images` does; the
run is adapted on that LR image alone, as `upscale --adapt` would, for each variant. Printed and
saved per (image, variant): PSNR gains over bicubic of the unadapted run, of the adapted weights
at every held-out check (what adaptation without the safeguard would give), of what the
safeguard keeps, and the held-out internal gains behind its decision.

    python benchmarks/adaptation_study.py --run=/tmp/runs/q_v2 --out=/tmp/adapt/study.jsonl \
        --images=/work/shared/real_sem/aquami_Sample.tif \
        --skimage=camera,moon,coins,brick,gravel,page --synthetic=3 \
        --variants=all:5e-5,head:5e-5,all:1e-5,anchor:5e-5 --steps=100

Variants are LAYERS:LR, LAYERS one of all, head, anchor (all layers, half of each batch from
the run's own training data). sem_synthetic frames come from its validation split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def _pairs(run, args) -> list[tuple[str, dict]]:
  from sinsr_jax.data import input_pipeline
  from sinsr_jax.evaluation import command as evaluate
  from sinsr_jax.evaluation import image_folder

  data = evaluate.data_config(run.config, split="images", max_images=0, crop=0, data_dir=None)
  named = []
  if args.images:
    elements, _ = image_folder.load(args.images.split(","), channels=run.channels,
                                    scale=run.scale)
    named += [(e["filename"].rsplit("/", 1)[-1], e) for e in elements]
  if args.skimage:
    import skimage.data

    named += [(f"skimage.{n}", {"image": getattr(skimage.data, n)()[..., None]})
              for n in args.skimage.split(",")]
  if args.synthetic:
    builder = input_pipeline.prepare_builder(run.config.data)
    source = builder.as_data_source(split="validation")
    named += [(f"sem_synthetic.val{i}", {"image": source[i]["image"]})
              for i in range(args.synthetic)]
  pairs = []
  for i, (name, element) in enumerate(named):
    pair = input_pipeline.eval_images([element], data, channels=run.channels,
                                      seed=run.config.seed + i)[0]
    pairs.append((name, pair))
  return pairs


def _anchors(run, count: int = 32) -> list[np.ndarray]:
  """HR frames of the run's training split (its first ``count``), in [0, 1]."""
  from sinsr_jax.data import input_pipeline

  source = input_pipeline.prepare_builder(run.config.data).as_data_source(split="train")
  return [input_pipeline._to_float(source[i]["image"], run.channels) for i in range(count)]


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--run", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--images", default="")
  parser.add_argument("--skimage", default="")
  parser.add_argument("--synthetic", type=int, default=0)
  parser.add_argument("--variants", default="all:5e-5")
  parser.add_argument("--steps", type=int, default=100)
  parser.add_argument("--checks", type=int, default=4)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  from absl import flags

  flags.FLAGS.mark_as_parsed()
  import jax

  from sinsr_jax.data import degradations
  from sinsr_jax.inference import adaptation
  from sinsr_jax.metrics import psnr_db
  from sinsr_jax.training import runs, steps

  run = runs.load(args.run)
  apply = jax.jit(lambda p, lr: steps.generate(run.g_model, p, lr, run.model_state))
  pairs = _pairs(run, args)
  anchors = None
  with open(args.out, "a") as out:
    for variant in args.variants.split(","):
      layers, rate = variant.split(":")
      if layers == "anchor" and anchors is None:
        anchors = _anchors(run)
      settings = adaptation.Settings(steps=args.steps, learning_rate=float(rate),
                                     layers="all" if layers == "anchor" else layers,
                                     checks=args.checks, seed=args.seed,
                                     anchor_share=0.5 if layers == "anchor" else 0.0)
      for name, pair in pairs:
        lr, hr = pair["lr"][None], pair["hr"][None]
        psnr = lambda sr: float(psnr_db(np.asarray(sr), hr, crop_border=run.scale)[0])  # noqa: B023,E731
        bicubic = psnr(degradations.bicubic_upscale(lr, run.scale))
        unadapted = psnr(apply(run.params, lr)) - bicubic
        true_at = {}
        start = time.perf_counter()
        result = adaptation.adapt(
            run, [pair["lr"]], settings, anchors=anchors if layers == "anchor" else (),
            observe=lambda step, r: true_at.__setitem__(step, psnr(apply(r.params, lr)) - bicubic))  # noqa: B023
        seconds = time.perf_counter() - start
        db = result.heldout_db
        row = {"image": name, "variant": variant, "steps": args.steps, "hr_shape": hr.shape[1:3],
               "bicubic_db": bicubic, "unadapted_gain": unadapted,
               "adapted_gain": true_at, "kept": result.kept, "kept_step": result.step,
               "safeguarded_gain": true_at[result.step] if result.kept else unadapted,
               "heldout_unadapted_gain": db["unadapted"] - db["bicubic"],
               "heldout_adapted_gain": {k: v - db["bicubic"] for k, v in db["checks"].items()},
               "heldout_pairs": result.heldout_pairs, "seconds": seconds}
        out.write(json.dumps(row) + "\n")
        out.flush()
        print(f"{variant:12s} {name:28s} unadapted {unadapted:+.2f}  adapted "
              + " ".join(f"{k}:{v:+.2f}" for k, v in true_at.items())
              + f"  held-out {row['heldout_unadapted_gain']:+.2f} -> "
              + " ".join(f"{v:+.2f}" for v in row["heldout_adapted_gain"].values())
              + f"  {'kept@' + str(result.step) if result.kept else 'discarded'}"
              f" => {row['safeguarded_gain']:+.2f}  ({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
  sys.exit(main())
