"""SINSR's ablation grid: each loss term removed in turn, the gradient branch on, fixed weights.

Every ablation is a set of overrides of configs/sinsr.py, named, so that ``main`` runs it directly
and any other SINSR variant combines with it:

    python -m sinsr_jax.main --config=configs/ablations.py:no_ssim --workdir=runs/no_ssim
    python -m sinsr_jax.main --config=configs/ablations.py:fixed_weights,quick --workdir=runs/fw
    python configs/ablations.py                 # the grid, one command line per run
    python configs/ablations.py quick           # the same with configs/sinsr.py's variants

Removing a term sets its raw weight to 0; the convex combination renormalises the rest, so the
remaining terms keep their ratios. ``quick`` runs have no perceptual term already (no VGG19
weights on a laptop), so there ``no_perceptual`` equals ``full``.
"""

import importlib.util
import pathlib
import sys

import ml_collections

# The terms of SINSR's default loss (configs/sinsr.py, loss.weights, non-zero).
TERMS = ("adversarial", "perceptual", "gradient", "second_order", "ssim", "auxiliary")

ABLATIONS: dict[str, dict[str, object]] = {
    "full": {},
    **{f"no_{term}": {f"loss.weights.{term}": (0.0,)} for term in TERMS},
    "gradient_branch": {"model.gradient_branch": True},
    "fixed_weights": {"loss.schedule": "fixed"},
}


def _sinsr():
  path = pathlib.Path(__file__).resolve().parent / "sinsr.py"
  spec = importlib.util.spec_from_file_location("configs_sinsr", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def split_arg(arg: str | None) -> tuple[str, str]:
  """'no_ssim,quick,scale=2' -> ('no_ssim', 'quick,scale=2'): the ablation, SINSR's variants."""
  items = [i for i in (arg or "").split(",") if i]
  names = [i for i in items if i in ABLATIONS]
  if len(names) != 1:
    raise ValueError(f"name one ablation of {', '.join(ABLATIONS)} (got {arg!r}), e.g. "
                     f"configs/ablations.py:no_ssim or configs/ablations.py:no_ssim,quick")
  return names[0], ",".join(i for i in items if i not in ABLATIONS)


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict) -> None:
  for dotted, value in overrides.items():
    *groups, key = dotted.split(".")
    node = config
    for group in groups:
      node = node[group]
    node[key] = value


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  name, variants = split_arg(arg)
  config = _sinsr().get_config(variants)
  apply_overrides(config, ABLATIONS[name])
  config.ablation = name  # recorded in config.json and the hparams
  return config


def commands(variants: str = "") -> list[str]:
  """One ``main`` command line per ablation, each in its own workdir."""
  suffix = f",{variants}" if variants else ""
  return [f"python -m sinsr_jax.main --config=configs/ablations.py:{name}{suffix} "
          f"--workdir=runs/ablations/{name}" for name in ABLATIONS]


if __name__ == "__main__":
  print("\n".join(commands(sys.argv[1] if len(sys.argv) > 1 else "")))
