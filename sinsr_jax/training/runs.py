"""A training run read back from its workdir: the resolved config, the generator and its EMA
weights from the newest checkpoint. What ``evaluate`` and ``upscale`` apply to images."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import ml_collections

from sinsr_jax.errors import UserError
from sinsr_jax.runtime import paths


def _tuples(value):
  """JSON lists back to the tuples the configs use."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The resolved config a run wrote to ``workdir/config.json``."""
  path = paths.join(workdir, "config.json")
  if not paths.isdir(workdir):
    raise UserError(f"run folder {workdir} not found")
  if not paths.isfile(path):
    raise UserError(f"{workdir} is not a training run: it has no config.json (train with "
                    f"python -m sinsr_jax.main --workdir={workdir} first)")
  try:
    return ml_collections.ConfigDict(_tuples(json.loads(paths.read_text(path))))
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read {path}: {e}") from None


@dataclasses.dataclass(frozen=True)
class Run:
  """A generator with the weights to apply: a trained run's EMA weights, or none (bicubic)."""

  label: str
  config: ml_collections.ConfigDict
  g_model: nn.Module
  params: Any
  model_state: Any
  step: int
  workdir: str | None = None

  @property
  def scale(self) -> int:
    return int(self.config.data.scale)

  @property
  def channels(self) -> int:
    return int(self.config.model.channels)

  @property
  def num_params(self) -> int:
    return int(sum(x.size for x in jax.tree.leaves(self.params)))

  def sr_fn(self) -> Callable:
    """Jitted LR batch (N, h, w, C) in [0, 1] -> SR batch; one compile per input shape."""
    from sinsr_jax.training import steps

    apply = jax.jit(lambda p, s, lr: steps.generate(self.g_model, p, lr, s))
    return lambda lr: apply(self.params, self.model_state, lr)


def load(workdir: str, label: str | None = None) -> Run:
  """The run in ``workdir`` with its newest readable checkpoint's EMA generator weights.

  Only the EMA generator and its batch statistics are read: no discriminator, no optimiser
  state, nothing compiled (what upscale, evaluate and adaptation need, in about a second).
  """
  from sinsr_jax.training import checkpointing, networks
  from sinsr_jax.training.config_checks import check_config

  config = read_config(workdir)
  try:
    check_config(config, num_devices=1, num_processes=1)
  except UserError as e:
    raise UserError(f"{workdir}/config.json: {e}") from None
  label = label or config.model.name
  g_model = networks.build_generator(config)
  params, model_state = generator_variables(config, g_model)
  if not jax.tree.leaves(params):  # bicubic: nothing was trained
    return Run(label, config, g_model, params, model_state, 0, workdir)
  template = {"ema_params": params, "g_state": model_state}
  # Read-only: a training may be writing the run; its newest finalized, readable checkpoint
  # counts (a damaged one is skipped with a warning, and left where it is).
  manager = checkpointing.make_manager(workdir, None, read_only=True)
  try:
    tree, step = checkpointing.restore_generator(manager, template)
  finally:
    manager.close()
  if tree is None:
    raise UserError(f"no checkpoint in {paths.join(workdir, 'checkpoints')}; train first")
  return Run(label, config, g_model, jax.device_get(tree["ema_params"]),
             jax.device_get(tree.get("g_state", {})), int(step), workdir)


def generator_variables(config: ml_collections.ConfigDict, g_model: nn.Module) -> tuple:
  """(params, non-trained state) of ``g_model`` as shapes only (nothing is computed), laid out
  as a training of ``config`` saves them."""
  from sinsr_jax.training import steps

  p, s, c = config.data.patch_size, config.data.scale, config.model.channels
  lr = jax.ShapeDtypeStruct((1, p // s, p // s, c), jax.numpy.float32)
  variables = jax.eval_shape(lambda x: g_model.init(jax.random.PRNGKey(0), x), lr)
  return steps.split_variables(variables)


def bicubic(config: ml_collections.ConfigDict) -> Run:
  """MATLAB bicubic at ``config``'s scale and channels: the baseline every table includes."""
  from sinsr_jax import models

  g_model = models.create_generator("bicubic", scale=config.data.scale,
                                    channels=config.model.channels)
  bicubic_config = ml_collections.ConfigDict(config.to_dict())
  bicubic_config.model = ml_collections.ConfigDict({"name": "bicubic",
                                                    "channels": config.model.channels})
  return Run("bicubic", bicubic_config, g_model, {}, {}, 0)
