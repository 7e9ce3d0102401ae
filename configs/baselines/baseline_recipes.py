"""Shared construction of the baseline configs: configs/sinsr.py's data, training loop and
variants (``quick``, ``scale=``, ``seed=``, ``data=``, ``path=``), with a baseline's model,
discriminator, losses, optimiser and schedule put in place of SINSR's.

``loss`` holds a recipe's loss settings: ``weights`` (raw GAN-phase weights; terms not named are
0), ``pretrain_weights``, ``vgg`` and the kinds. The papers' VGG content terms need pretrained
weights, which a laptop quickstart cannot assume: ``quick`` variants swap them (``quick_loss``)
for a pixel term of the same weight and say so in the log.
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
          quick_train: dict | None = None,
          quick_loss: dict | None = None) -> ml_collections.ConfigDict:
  """SINSR's config for ``arg`` with the baseline's groups; ``quick`` shrinks model and budget."""
  c = _sinsr_module().get_config(arg)
  quick = "quick" in (arg or "").split(",")
  shared = {k: c.model[k] for k in ("channels", "scan", "remat")}  # every model's defaults
  c.model = ml_collections.ConfigDict({**shared, **model, **(quick_model if quick else {})})
  c.discriminator = ml_collections.ConfigDict({**discriminator,
                                               **((quick_discriminator or {}) if quick else {})})
  c.loss.weights.update(**{k: (0.0,) for k in c.loss.weights})
  c.loss.schedule = "fixed"
  for group in (loss, (quick_loss or {}) if quick else {}):
    group = dict(group)
    c.loss.weights.update(**{k: _as_weight(v) for k, v in group.pop("weights", {}).items()})
    c.loss.pretrain_weights.update(**group.pop("pretrain_weights", {}))
    c.loss.vgg.update(**group.pop("vgg", {}))
    c.loss.update(**group)
  if not quick:
    c.optim.update(**optim)
    c.train.update(**train)
  c.train.update(**((quick_train or {}) if quick else {}))
  return c


def _as_weight(value) -> tuple[float, ...]:
  return tuple(float(v) for v in value) if isinstance(value, tuple | list) else (float(value),)
