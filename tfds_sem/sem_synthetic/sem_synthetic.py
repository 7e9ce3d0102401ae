"""TFDS builder for sem_synthetic: procedural SEM-like scenes with their object masks.

Every example is a pure function of (config seed, split, index), so a rebuild anywhere gives
the same bytes. Scenes cycle through the kinds so every split is balanced.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from tfds_sem.sem_synthetic.scenes import SCENE_KINDS, render_scene

_SPLIT_IDS = {"train": 0, "validation": 1, "test": 2}


@dataclasses.dataclass
class SemSyntheticConfig(tfds.core.BuilderConfig):
  image_size: int = 256
  num_train: int = 480
  num_validation: int = 16
  num_test: int = 48
  seed: int = 0


class SemSynthetic(tfds.core.GeneratorBasedBuilder):
  """Procedural grayscale SEM scenes: particles, fibres, porous texture, patterned arrays."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release."}
  BUILDER_CONFIGS = [
      SemSyntheticConfig(name="default", description="256x256 scenes, 480/16/48 split."),
      SemSyntheticConfig(name="large", description="512x512 scenes, 1920/64/128 split.",
                         image_size=512, num_train=1920, num_validation=64, num_test=128),
      SemSyntheticConfig(name="tiny", description="96x96 scenes, 16/4/4 split, for tests.",
                         image_size=96, num_train=16, num_validation=4, num_test=4),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return self.dataset_info_from_configs(
        description=("Procedurally generated SEM-like secondary-electron images with "
                     "edge brightening and shot noise, and the instance masks of their objects."),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(size, size, 1), dtype=np.uint8),
            # Instance ids (0 = background); zlib tensor because PNG16 decoding needs OpenCV.
            "mask": tfds.features.Tensor(shape=(size, size, 1), dtype=np.uint16,
                                         encoding=tfds.features.Encoding.ZLIB),
            "scene": tfds.features.ClassLabel(names=list(SCENE_KINDS)),
            "num_objects": np.int32,
            "filename": tfds.features.Text(),
        }),
        supervised_keys=None,
        homepage="https://github.com/aaivu/CSM-SR",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing to download
    cfg = self.builder_config
    counts = {"train": cfg.num_train, "validation": cfg.num_validation, "test": cfg.num_test}
    return {split: self._generate_examples(split, n) for split, n in counts.items()}

  def _generate_examples(self, split: str, count: int):
    cfg = self.builder_config
    for index in range(count):
      kind = SCENE_KINDS[index % len(SCENE_KINDS)]
      rng = np.random.default_rng([cfg.seed, _SPLIT_IDS[split], index])
      image, mask = render_scene(rng, cfg.image_size, kind)
      key = f"{split}_{index:06d}"
      yield key, {"image": image, "mask": mask, "scene": kind,
                  "num_objects": int(len(np.unique(mask)) - 1), "filename": f"{key}.png"}
