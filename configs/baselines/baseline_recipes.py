"""Shared construction of the baseline configs: configs/sinsr.py's data, training loop and
variants (``quick``, ``scale=``, ``seed=``, ``data=``, ``path=``), with a baseline's model,
discriminator, losses, optimiser and schedule put in place of SINSR's.

Perceptual (VGG) terms of the papers' recipes arrive with the loss issue; until then the
content terms are the pixel losses named in each file.
"""

import importlib.util
import pathlib

import ml_collections


def _sinsr_module():
  path = pathlib.Path(__file__).resolve().parents[1] / "sinsr.py"
  spec = importlib.util.spec_from_file_location("configs_sinsr", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def build(arg, *, model: dict, discriminator: dict, loss: dict, optim: dict, train: dict,
          quick_model: dict, quick_discriminator: dict | None = None,
          quick_train: dict | None = None) -> ml_collections.ConfigDict:
  """SINSR's config for ``arg`` with the baseline's groups; ``quick`` shrinks model and budget."""
  c = _sinsr_module().get_config(arg)
  quick = "quick" in (arg or "").split(",")
  channels = c.model.channels
  c.model = ml_collections.ConfigDict({"channels": channels, **model,
                                       **(quick_model if quick else {})})
  c.discriminator = ml_collections.ConfigDict({**discriminator,
                                               **((quick_discriminator or {}) if quick else {})})
  c.loss.update(**{k: 0.0 for k, v in c.loss.items() if not isinstance(v, str)})
  c.loss.update(**loss)
  if not quick:
    c.optim.update(**optim)
    c.train.update(**train)
  c.train.update(**((quick_train or {}) if quick else {}))
  return c
