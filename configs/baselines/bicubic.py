"""Bicubic (MATLAB-compatible antialiased): the baseline every SR table starts from.

No parameters: a run scores it on the validation images and writes metrics.json at step 0.

    python -m sinsr_jax.main --config=configs/baselines/bicubic.py:quick --workdir=runs/bicubic
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import baseline_recipes  # noqa: E402


def get_config(arg=None):
  return baseline_recipes.build(
      arg, model={"name": "bicubic"}, discriminator={"name": "sinsr_patch"},
      loss={"weights": {"pixel": 1.0}},
      optim={}, train={}, quick_model={})
