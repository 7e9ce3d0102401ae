"""TFDS builders for SEM super-resolution data. Importing this package registers them."""

from tfds_sem.sem_synthetic.sem_synthetic import SemSynthetic

__all__ = ["SemSynthetic"]
