"""sem_synthetic 2.0.0: realistic scenes, the frozen 1.0.0 bytes, and the realism statistics."""

import hashlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfds_sem  # noqa: F401
from tfds_sem.sem_synthetic import acquisition, realism
from tfds_sem.sem_synthetic.scenes import SCENE_KINDS, render_scene
from tfds_sem.sem_synthetic.scenes_v2 import SCENE_KINDS_V2, render_scene_v2

# sha256 of the first 8 v1 train images and masks of seed 0 at 96 px, computed with the 1.0.0
# code before v2 existed: v1 must never change.
V1_SHA256 = "5772c8367144b2917d45421aefb00404f066694b532a45de961866e7e590554e"


def _sample(render, kinds, num, size):
  return [render(np.random.default_rng([0, 0, i]), size, kinds[i % len(kinds)])[0][..., 0] / 255.
          for i in range(num)]


def test_v1_bytes_are_unchanged():
  digest = hashlib.sha256()
  for i in range(8):
    image, mask = render_scene(np.random.default_rng([0, 0, i]), 96, SCENE_KINDS[i % 4])
    digest.update(image.tobytes())
    digest.update(mask.tobytes())
  assert digest.hexdigest() == V1_SHA256


def test_v2_is_a_pure_function_of_seed_and_index():
  for i, kind in enumerate(SCENE_KINDS_V2):
    a = render_scene_v2(np.random.default_rng([0, 0, i]), 64, kind)
    b = render_scene_v2(np.random.default_rng([0, 0, i]), 64, kind)
    c = render_scene_v2(np.random.default_rng([0, 0, i + 8]), 64, kind)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].tobytes() != c[0].tobytes()


@pytest.mark.parametrize("kind", SCENE_KINDS_V2)
def test_every_v2_kind_renders_images_and_instance_masks(kind):
  with_objects = 0
  for seed in range(3):
    image, mask = render_scene_v2(np.random.default_rng([seed, 0]), 80, kind)
    assert image.shape == (80, 80, 1) and image.dtype == np.uint8
    assert mask.shape == (80, 80, 1) and mask.dtype == np.uint16
    assert image.std() > 1.0  # a micrograph, not a flat frame
    with_objects += int(mask.max() >= 1)
  assert with_objects >= 2
  with pytest.raises(ValueError, match="unknown scene kind"):
    render_scene_v2(np.random.default_rng(0), 32, "nope")


def test_noise_and_spectrum_statistics_recover_known_values():
  rng = np.random.default_rng(0)
  field = acquisition.fractal_field(rng, 256, 2.0)
  assert realism.spectrum_slope(field) == pytest.approx(-2.0, abs=0.3)
  smooth = 0.5 + 0.05 * acquisition.gaussian_field(rng, 256, 8.0)
  noisy = smooth + rng.normal(0, 0.03, smooth.shape)
  assert realism.noise_sigma(noisy) == pytest.approx(0.03, rel=0.1)
  assert realism.noise_sigma(smooth) < 0.003


def test_v2_spans_wider_noise_and_smoothness_ranges_than_v1():
  # Real frames range from clean, oversampled ones (spectrum slope ~ -5, as the real nanoporous
  # gold frame) to very noisy ones; v1's noise sits in a narrow band and no v1 frame is as smooth.
  def spread(images):
    rows = [realism.image_stats(x) for x in images]
    noise = np.array([r["noise_sigma"] for r in rows])
    slope = np.array([r["spectrum_slope"] for r in rows])
    return np.percentile(noise, 90) / np.percentile(noise, 10), slope.min()
  v1_noise, v1_steepest = spread(_sample(render_scene, SCENE_KINDS, 16, 128))
  v2_noise, v2_steepest = spread(_sample(render_scene_v2, SCENE_KINDS_V2, 24, 128))
  assert v2_noise > 3 * v1_noise  # measured: 10.0 vs 2.3
  assert v2_steepest < min(-4.0, v1_steepest - 0.5)  # measured: -4.7 vs -3.4


@pytest.mark.slow
def test_tiny_v2_prepares_through_tfds_and_v1_stays_preparable(tmp_path):
  data_dir = str(tmp_path)
  for version, kinds, render in (("2.0.0", SCENE_KINDS_V2, render_scene_v2),
                                 ("1.0.0", SCENE_KINDS, render_scene)):
    builder = tfds.builder(f"sem_synthetic/tiny:{version}", data_dir=data_dir,
                           file_format="array_record")
    builder.download_and_prepare()
    assert str(builder.version) == version
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": 16, "validation": 4, "test": 4}
    assert builder.info.features["scene"].names == list(kinds)
    source = builder.as_data_source(split="validation")
    for example in (source[i] for i in range(len(source))):
      index = int(example["filename"].decode().split("_")[1].split(".")[0])
      image, mask = render(np.random.default_rng([0, 1, index]), 96, kinds[index % len(kinds)])
      np.testing.assert_array_equal(example["image"], image)
      np.testing.assert_array_equal(example["mask"], mask)
      assert example["num_objects"] == len(np.unique(mask)) - 1
  assert str(tfds.builder("sem_synthetic/tiny", data_dir=data_dir).version) == "2.0.0"
