"""Input pipeline throughput against the training step's consumption (HR patches per second).

    python benchmarks/input_pipeline.py                      # the quick config, this machine
    python benchmarks/input_pipeline.py --config.data.num_workers=1 --batches=50

Measures (1) the grain pipeline alone (decode, crop, augment, degrade, batch, workers) and (2)
the compiled pretraining and GAN steps of the same config on the same batch shape, then prints
the ratio and writes it to benchmarks/input_pipeline.json (or --out).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import jax  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from sinsr_jax.data import input_pipeline  # noqa: E402
from sinsr_jax.training import parallel, train

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sinsr.py:quick", lock_config=True)
_BATCHES = flags.DEFINE_integer("batches", 100, "Batches to time after warm-up.")
_STEPS = flags.DEFINE_integer("steps", 20, "Train steps to time per phase after compilation.")
_OUT = flags.DEFINE_string("out", "benchmarks/input_pipeline.json", "Where to write results.")


def _pipeline_rate(config, source, batches: int) -> float:
  it = input_pipeline.train_iterator(source, config.data, channels=config.model.channels,
                                     batch_size=config.train.batch_size, seed=config.seed,
                                     process_index=0, process_count=1)
  next(it)  # start-up: worker processes, first decode
  start = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * config.train.batch_size / (time.perf_counter() - start)


def _step_rates(config, source, steps: int) -> dict[str, float]:
  mesh = parallel.make_mesh()
  state, pretrain, gan = train.setup_steps(config, mesh)
  cfg = config.data.copy_and_resolve_references()
  with cfg.unlocked():
    cfg.num_workers = 0
  batch = parallel.shard_batch(next(input_pipeline.train_iterator(
      source, cfg, channels=config.model.channels, batch_size=config.train.batch_size,
      seed=0, process_index=0, process_count=1)), mesh)
  rates = {}
  for name, step in (("pretrain", pretrain), ("gan", gan)):
    state, metrics = step(state, batch)  # compile
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
      state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    rates[name] = steps * config.train.batch_size / (time.perf_counter() - start)
  return rates


def main(argv):
  del argv
  config = _CONFIG.value
  builder = input_pipeline.prepare_builder(config.data)
  source = builder.as_data_source(split=config.data.train_split)
  pipeline = _pipeline_rate(config, source, _BATCHES.value)
  steps = _step_rates(config, source, _STEPS.value)
  fastest = max(steps.values())
  result = {
      "machine": f"{platform.machine()}, {os.cpu_count()} cores, {jax.devices()[0].platform}",
      "command": " ".join(sys.argv),
      "batch_size": config.train.batch_size, "patch_size": config.data.patch_size,
      "num_workers": config.data.num_workers,
      "pipeline_patches_per_s": pipeline,
      "step_patches_per_s": steps,
      "pipeline_over_fastest_step": pipeline / fastest,
  }
  print(f"pipeline: {pipeline:.0f} patches/s ({config.data.num_workers} workers)")
  for name, rate in steps.items():
    print(f"{name} step consumes: {rate:.0f} patches/s")
  print(f"pipeline / fastest step = {pipeline / fastest:.2f}x")
  os.makedirs(os.path.dirname(os.path.abspath(_OUT.value)), exist_ok=True)
  with open(_OUT.value, "w") as f:
    json.dump(result, f, indent=2)


if __name__ == "__main__":
  app.run(main)
