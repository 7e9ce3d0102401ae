"""sinsr_jax: structure-informed super-resolution GANs for SEM images, in JAX/Flax."""

__version__ = "0.1.0"
