"""Model registry: generators and discriminators looked up by name from the config."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from sinsr_jax.errors import ConfigError
from sinsr_jax.models.bicubic import Bicubic
from sinsr_jax.models.discriminators import ConditionalPatchDiscriminator, VGGDiscriminator
from sinsr_jax.models.dsrvae import DSRVAE
from sinsr_jax.models.rrdbnet import RRDBNet
from sinsr_jax.models.sinsr import SINSRGenerator
from sinsr_jax.models.spsr import SPSR
from sinsr_jax.models.srresnet import SRResNet
from sinsr_jax.models.swinir import SwinIR
from sinsr_jax.models.vdsr import VDSR


@dataclasses.dataclass(frozen=True)
class _Entry:
  factory: Callable[..., nn.Module]
  scales: tuple[int, ...]


GENERATORS: dict[str, _Entry] = {
    "bicubic": _Entry(Bicubic, scales=(2, 3, 4)),
    "dsrvae": _Entry(DSRVAE, scales=(2, 3, 4)),
    "esrgan": _Entry(RRDBNet, scales=(2, 3, 4)),
    "sinsr": _Entry(SINSRGenerator, scales=(2, 3, 4)),
    "spsr": _Entry(SPSR, scales=(2, 3, 4)),
    "srresnet": _Entry(SRResNet, scales=(2, 3, 4)),
    "swinir": _Entry(SwinIR, scales=(2, 3, 4)),
    "vdsr": _Entry(VDSR, scales=(2, 3, 4)),
}
DISCRIMINATORS: dict[str, _Entry] = {
    "sinsr_patch": _Entry(ConditionalPatchDiscriminator, scales=(2, 3, 4)),
    "vgg": _Entry(VGGDiscriminator, scales=(2, 3, 4)),
}
_INTERNAL = {"parent", "name", "axis_name"}  # set by the code, never by a config
# Every config carries these (configs/sinsr.py's model defaults); models without repeated
# blocks (bicubic, dSRVAE) have nothing to scan and ignore them.
LAYOUT_OPTIONS = ("scan", "remat")


def _build(registry: dict[str, _Entry], kind: str, name: str, scale: int,
           fixed: dict[str, Any], overrides: dict[str, Any],
           axis_name: str | None) -> nn.Module:
  if name not in registry:
    raise ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(registry))}")
  entry = registry[name]
  if scale not in entry.scales:
    raise ConfigError(f"{kind} {name!r} cannot upscale x{scale}; it supports "
                      f"{', '.join(f'x{s}' for s in entry.scales)}")
  all_fields = {f.name for f in dataclasses.fields(entry.factory)}
  fields = all_fields - _INTERNAL
  overrides = {k: v for k, v in overrides.items() if k in fields or k not in LAYOUT_OPTIONS}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ConfigError(f"{kind} {name!r} has no option {', '.join(unknown)}; valid: "
                      f"{', '.join(sorted(fields - set(fixed)))}")
  kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
  if "axis_name" in all_fields:
    kwargs["axis_name"] = axis_name
  return entry.factory(**fixed, **kwargs)


def create_generator(name: str, *, scale: int, channels: int, axis_name: str | None = None,
                     **overrides) -> nn.Module:
  """Returns generator ``name`` whose ``apply(variables, lr, train=...)`` gives the SR image.

  ``axis_name``: the mesh axis that batch statistics are averaged over in training (models
  with batch norm; None outside a data-parallel map).
  """
  return _build(GENERATORS, "generator", name, scale,
                {"scale": scale, "channels": channels}, overrides, axis_name)


def create_discriminator(name: str, *, scale: int, axis_name: str | None = None,
                         **overrides) -> nn.Module:
  """Returns discriminator ``name``: ``apply(variables, lr, image, train=...)`` -> logits."""
  return _build(DISCRIMINATORS, "discriminator", name, scale, {"scale": scale}, overrides,
                axis_name)
