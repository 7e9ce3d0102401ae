"""Sample data the project makes itself: a sem_synthetic v2 frame (no download, no files)."""

from __future__ import annotations

import numpy as np


def make_sample(size: int = 256, kind: str = "nanoporous", seed: int = 0) -> list[tuple]:
  """[(uint8 (size, size) frame, layer kwargs, "image")]: one scene of sem_synthetic v2."""
  from tfds_sem.sem_synthetic.scenes_v2 import render_scene_v2

  image, _ = render_scene_v2(np.random.default_rng(seed), size, kind)
  metadata = {"source": f"sem_synthetic v2 {kind} scene, seed {seed}", "dtype": "uint8",
              "bit_depth": 8, "value_range": [0.0, 255.0], "pixel_size_nm": None}
  return [(image[..., 0], {"name": f"sem_synthetic {kind}", "metadata": metadata,
                           "contrast_limits": [0, 255]}, "image")]
