"""How real do sem_synthetic images look? Statistics of v1, v2 and real micrographs side by side.

    python benchmarks/realism.py                                  # 48 images per version
    python benchmarks/realism.py --real=~/my_sem --real=frame.tif # add your own micrographs

Renders the first --num train images of sem_synthetic v1 and v2 straight from the scene
functions (no TFDS preparation) and reads the --real files and folders (databar cropped, as
upscale does); each real frame is cut into --size x --size tiles so every image is measured at
the synthetic frame size. Prints the median [10th-90th percentile] of each statistic of
tfds_sem/sem_synthetic/realism.py per set and writes benchmarks/realism.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from tfds_sem.sem_synthetic import realism  # noqa: E402
from tfds_sem.sem_synthetic.scenes import SCENE_KINDS, render_scene  # noqa: E402
from tfds_sem.sem_synthetic.scenes_v2 import SCENE_KINDS_V2, render_scene_v2  # noqa: E402

DEFAULT_REAL = "/work/shared/real_sem"
COLUMNS = ("spectrum_slope", "grad_mean", "grad_p99", "grad_kurtosis", "contrast_median",
           "contrast_spread", "noise_sigma")


def synthetic(render, kinds, num: int, size: int, seed: int, only: str = ""):
  """The first `num` train images of a version, as its builder draws them (split id 0)."""
  for index in range(num):
    kind = kinds[index % len(kinds)]
    if only and kind != only:
      continue
    image, _ = render(np.random.default_rng([seed, 0, index]), size, kind)
    yield image[..., 0] / 255.0


def real_tiles(paths: list[str], size: int):
  """Gray [0, 1] tiles of the image area of every readable micrograph under `paths`."""
  from sinsr_jax.inference import micrographs, upscaling

  files, problems = micrographs.expand_inputs(paths, recursive=True)
  for problem in problems:
    print(f"skipped: {problem}", file=sys.stderr)
  for path in files:
    try:
      micrograph = micrographs.read(path)
    except micrographs.MicrographError as e:
      print(f"skipped {path}: {e}", file=sys.stderr)
      continue
    image = micrographs.model_input(micrograph, 1)[:upscaling.databar_row(micrograph, "auto"),
                                                   :, 0]
    h, w = image.shape
    if min(h, w) < size:
      yield path, image
      continue
    for y in range(0, h - size + 1, size):
      for x in range(0, w - size + 1, size):
        yield path, image[y:y + size, x:x + size]


def _cell(summary: dict, key: str) -> str:
  s = summary[key]
  digits = 4 if key in ("grad_mean", "contrast_median", "noise_sigma") else 2
  return f"{s['median']:.{digits}f} [{s['p10']:.{digits}f}, {s['p90']:.{digits}f}]"


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--num", type=int, default=48, help="synthetic images per version")
  parser.add_argument("--size", type=int, default=256)
  parser.add_argument("--seed", type=int, default=0, help="the builder config's seed")
  parser.add_argument("--real", action="append", default=None,
                      help=f"micrograph file or folder (repeatable; default {DEFAULT_REAL})")
  parser.add_argument("--out", default="benchmarks/realism.json")
  args = parser.parse_args(argv)
  real = args.real if args.real is not None else (
      [DEFAULT_REAL] if os.path.isdir(DEFAULT_REAL) else [])

  sets = {
      "sem_synthetic v1": synthetic(render_scene, SCENE_KINDS, args.num, args.size, args.seed),
      "sem_synthetic v2": synthetic(render_scene_v2, SCENE_KINDS_V2, args.num, args.size,
                                    args.seed),
      "v2 photo scenes only": synthetic(render_scene_v2, SCENE_KINDS_V2, args.num, args.size,
                                        args.seed, only="photo"),
  }
  results, counts = {}, {}
  start = time.perf_counter()
  for name, images in sets.items():
    rows = [realism.image_stats(image) for image in images]
    results[name], counts[name] = realism.summarize(rows), len(rows)
  real_files = set()
  real_rows = []
  for path, tile in real_tiles([os.path.expanduser(p) for p in real], args.size):
    real_files.add(path)
    real_rows.append(realism.image_stats(tile))
  if real_rows:
    name = f"real ({len(real_files)} file{'s' * (len(real_files) != 1)})"
    results[name], counts[name] = realism.summarize(real_rows), len(real_rows)

  print("median [10th, 90th percentile] over images; slope band "
        f"{realism.SLOPE_BAND[0]}-{realism.SLOPE_BAND[1]} cycles/px; gray levels in [0, 1]\n")
  print("| set | images | " + " | ".join(COLUMNS) + " |")
  print("|---|---|" + "---|" * len(COLUMNS))
  for name, summary in results.items():
    print(f"| {name} | {counts[name]} | " + " | ".join(_cell(summary, k) for k in COLUMNS) +
          " |")
  with open(args.out, "w") as f:
    json.dump({"machine": platform.node(), "num": args.num, "size": args.size,
               "seed": args.seed, "real": sorted(real_files), "slope_band": realism.SLOPE_BAND,
               "images": counts, "stats": results,
               "seconds": time.perf_counter() - start}, f, indent=1)
  print(f"\nwrote {args.out}")


if __name__ == "__main__":
  main()
