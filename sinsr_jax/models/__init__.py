"""Model registry: generators and discriminators looked up by name from the config."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from sinsr_jax.errors import ConfigError
from sinsr_jax.models.discriminators import ConditionalPatchDiscriminator
from sinsr_jax.models.sinsr import SINSRGenerator


@dataclasses.dataclass(frozen=True)
class _Entry:
  factory: Callable[..., nn.Module]
  scales: tuple[int, ...]


GENERATORS: dict[str, _Entry] = {
    "sinsr": _Entry(SINSRGenerator, scales=(2, 3, 4)),
}
DISCRIMINATORS: dict[str, _Entry] = {
    "sinsr_patch": _Entry(ConditionalPatchDiscriminator, scales=(2, 3, 4)),
}


def _build(registry: dict[str, _Entry], kind: str, name: str, scale: int,
           fixed: dict[str, Any], overrides: dict[str, Any]) -> nn.Module:
  if name not in registry:
    raise ConfigError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(registry))}")
  entry = registry[name]
  if scale not in entry.scales:
    raise ConfigError(f"{kind} {name!r} cannot upscale x{scale}; it supports "
                      f"{', '.join(f'x{s}' for s in entry.scales)}")
  fields = {f.name for f in dataclasses.fields(entry.factory)} - {"parent", "name"}
  unknown = sorted(set(overrides) - fields)
  if unknown:
    raise ConfigError(f"{kind} {name!r} has no option {', '.join(unknown)}; valid: "
                      f"{', '.join(sorted(fields - set(fixed)))}")
  kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
  return entry.factory(**fixed, **kwargs)


def create_generator(name: str, *, scale: int, channels: int, **overrides) -> nn.Module:
  """Returns generator ``name`` whose ``apply(variables, lr, train=...)`` gives the SR image."""
  return _build(GENERATORS, "generator", name, scale,
                {"scale": scale, "channels": channels}, overrides)


def create_discriminator(name: str, *, scale: int, **overrides) -> nn.Module:
  """Returns discriminator ``name``: ``apply(variables, lr, image, train=...)`` -> logits."""
  return _build(DISCRIMINATORS, "discriminator", name, scale, {"scale": scale}, overrides)
