"""sinsr_jax: structure-informed super-resolution GANs for SEM images, in JAX/Flax."""

from sinsr_jax.runtime import xla_cpu as _xla_cpu

_xla_cpu.apply()  # before any JAX computation: XLA reads its flags once per process

__version__ = "0.1.0"
