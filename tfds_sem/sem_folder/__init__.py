"""A folder of the user's own SEM images as a TFDS dataset."""
