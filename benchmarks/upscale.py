"""Upscaling real-size micrographs: wall time, output megapixels/s and peak memory per image.

    python benchmarks/upscale.py                                  # random SINSR, paper width
    python benchmarks/upscale.py --config=configs/sinsr.py:quick  # the quick width
    python benchmarks/upscale.py --run=runs/sinsr                 # a trained run
    python benchmarks/upscale.py --tiny                           # seconds: small images, model

Writes a synthetic 16-bit TIFF frame (texture above a databar, as NFFA frames have) of each
``--sizes`` (default 1024x768, a typical frame, then 2048x1536, 4x the pixels) and upscales it
through the command line's code path (read, tiles, databar, atomic write) in a fresh process
per image, so each image's peak RSS is its own. The model is compiled on the tile shape first
(``warmup_s``); ``wall_s`` is the file's upscaling after that. Tiling bounds memory by the tile,
so the peak RSS should not grow with the image (beyond the input and output arrays). Prints a
table and writes benchmarks/upscale.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import tifffile  # noqa: E402

TINY = {"sizes": "96x64,192x128", "tile": 48, "context": 12, "blend": 4,
        "model": {"stem_width": 8, "width": 8, "num_rrdb": 1, "growth": 4}}


def synthetic_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
  """A 16-bit SEM-like frame: blurred particles and noise, a white databar with dark marks."""
  from scipy import ndimage

  rng = np.random.default_rng(seed)
  frame = ndimage.gaussian_filter(rng.random((height, width), np.float32), 4)
  frame = (frame - frame.min()) / (np.ptp(frame) or 1.0)
  frame = np.clip(0.15 + 0.6 * frame + 0.05 * rng.standard_normal(frame.shape), 0, 0.85)
  frame = np.round(frame * 65535).astype(np.uint16)
  bar = max(8, height * 7 // 100)  # ~7% of the height, as the NFFA instruments' databars
  frame[height - bar:] = 65535
  for x in range(width // 20, width * 2 // 3, max(4, width // 60)):  # "text" with clean edges
    frame[height - bar * 3 // 4:height - bar // 4, x:x + max(2, width // 120)] = 0
  return frame


def _model(spec: dict):
  """(upscaling.Model, description) from a run folder, or a random generator of a config."""
  from sinsr_jax import models
  from sinsr_jax.inference import upscaling
  from sinsr_jax.training import runs

  if spec["run"]:
    run = runs.load(spec["run"])
  else:
    config = _load_config(spec["config"])
    options = {k: v for k, v in config.model.items() if k not in ("name", "channels")}
    options.update(spec["model_overrides"])
    g = models.create_generator(config.model.name, scale=config.data.scale,
                                channels=config.model.channels, **options)
    variables = _random_variables(g, config.model.channels)
    state = {k: v for k, v in variables.items() if k != "params"}
    config.model.update(options)
    run = runs.Run(config.model.name, config, g, variables["params"], state, 0)
  sr_fn = run.sr_fn()
  model = upscaling.Model(sr_fn, run.scale, run.channels,
                          upscaling.size_multiple(sr_fn, run.channels))
  options = {k: v for k, v in run.config.model.items() if k not in ("name",)}
  return model, {"name": run.label, "scale": run.scale, "num_params": run.num_params, **options}


def _random_variables(g, channels: int):
  """Lecun-normal kernels, zero biases: flax's init without compiling it (which takes longer
  than the tiny benchmark)."""
  import jax
  import jax.numpy as jnp

  shapes = jax.eval_shape(g.init, jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, channels)))
  rng = np.random.default_rng(0)
  return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype) if len(s.shape) < 2 else (
      rng.standard_normal(s.shape) / np.sqrt(np.prod(s.shape[:-1]))).astype(s.dtype), shapes)


def _load_config(spec: str):
  import importlib.util

  path, _, arg = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("_benchmark_config", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(arg or None)


class _Tiles:
  """Counts the model's tiles (the image above the databar), as a progress bar would."""

  total = 0

  def reset(self, total: int) -> None:
    self.total = total

  def update(self, n: int) -> None:
    pass


def child(spec: dict) -> dict:
  """One image in this process: compile on the tile shape, then upscale the file."""
  from sinsr_jax.inference import upscaling

  start = time.perf_counter()
  model, description = _model(spec)
  settings = upscaling.Settings(**spec["settings"])
  height, width = spec["height"], spec["width"]
  tile_shape = (settings.batch, min(settings.tile, height), min(settings.tile, width),
                model.channels)
  np.asarray(model.sr_fn(np.zeros(tile_shape, np.float32)))  # compile outside the timing
  warmup = time.perf_counter() - start
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  start = time.perf_counter()
  tiles = _Tiles()
  out_h, out_w = upscaling.upscale_file(spec["input"], spec["output"], model, settings,
                                        tiles).shape
  wall = time.perf_counter() - start
  return {"size": f"{width}x{height}", "model": description, "tiles": tiles.total,
          "out_megapixels": out_h * out_w / 1e6, "warmup_s": warmup, "wall_s": wall,
          "out_mp_per_s": out_h * out_w / 1e6 / wall,
          "peak_rss_before_upscaling_gb": rss_before,
          "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", default="", help="trained run folder (default: random weights)")
  parser.add_argument("--config", default="configs/sinsr.py",
                      help="config of the random generator, path[:variants]")
  parser.add_argument("--sizes", default="1024x768,2048x1536", help="LR frames, WxH, comma list")
  parser.add_argument("--tile", type=int, default=256)
  parser.add_argument("--context", type=int, default=32)
  parser.add_argument("--blend", type=int, default=16)
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--tiny", action="store_true", help="small images and model: seconds")
  parser.add_argument("--out", default="benchmarks/upscale.json")
  parser.add_argument("--child", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    print(json.dumps(child(json.loads(args.child))))
    return
  if args.tiny:
    args.sizes, args.tile, args.context, args.blend = (TINY[k] for k in (
        "sizes", "tile", "context", "blend"))
  settings = {"tile": args.tile, "context": args.context, "blend": args.blend,
              "batch": args.batch}
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for size in args.sizes.split(","):
      width, height = (int(v) for v in size.lower().split("x"))
      source = os.path.join(tmp, f"frame_{width}x{height}.tif")
      tifffile.imwrite(source, synthetic_frame(width, height))
      spec = {"run": args.run, "config": args.config, "settings": settings,
              "model_overrides": TINY["model"] if args.tiny else {}, "input": source,
              "output": os.path.join(tmp, f"frame_{width}x{height}_x.tif"),
              "width": width, "height": height}
      result = subprocess.run([sys.executable, os.path.abspath(__file__),
                               f"--child={json.dumps(spec)}"], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": ROOT})
      if result.returncode:
        sys.exit(f"the {size} run failed:\n{result.stderr[-3000:]}")
      rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
      os.remove(spec["output"])
  import jax

  record = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                       f"{jax.devices()[0].platform}",
            "command": " ".join(sys.argv), "settings": settings, "model": rows[0]["model"],
            "runs": [{k: v for k, v in r.items() if k != "model"} for r in rows]}
  print(f"{record['model']['name']} x{record['model']['scale']}, "
        f"{record['model']['num_params']:,} parameters; tile {args.tile}, context "
        f"{args.context}, blend {args.blend}; {record['machine']}")
  print("| LR frame | tiles | warm-up s | wall s | output MP/s | peak RSS GB |")
  print("| --- | ---: | ---: | ---: | ---: | ---: |")
  for r in record["runs"]:
    print(f"| {r['size']} | {r['tiles']} | {r['warmup_s']:.1f} | {r['wall_s']:.1f} | "
          f"{r['out_mp_per_s']:.3f} | {r['peak_rss_gb']:.2f} |")
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w") as f:
    json.dump(record, f, indent=2)


if __name__ == "__main__":
  main()
