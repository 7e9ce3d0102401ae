"""The NFFA-EUROPE SEM archive as a TFDS dataset."""
