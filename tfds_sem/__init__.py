"""TFDS builders for SEM super-resolution data. Importing this package registers them."""

from tfds_sem.nffa_sem.nffa_sem import NffaSem
from tfds_sem.sem_folder.sem_folder import SemFolder
from tfds_sem.sem_synthetic.sem_synthetic import SemSynthetic

__all__ = ["NffaSem", "SemFolder", "SemSynthetic"]
