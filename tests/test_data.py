"""sem_synthetic builder and the grain input pipeline."""

import numpy as np
import tensorflow_datasets as tfds

from conftest import tiny_config
from sinsr_jax.data import degradations, input_pipeline
from tfds_sem.sem_synthetic.scenes import SCENE_KINDS, render_scene


def test_scenes_are_deterministic_and_draw_objects():
  for kind in SCENE_KINDS:
    a_img, a_mask = render_scene(np.random.default_rng([7, 1]), 64, kind)
    b_img, b_mask = render_scene(np.random.default_rng([7, 1]), 64, kind)
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_mask, b_mask)
    assert a_img.dtype == np.uint8 and a_img.shape == (64, 64, 1)
    assert a_mask.dtype == np.uint16 and a_mask.max() >= 1
    c_img, _ = render_scene(np.random.default_rng([8, 1]), 64, kind)
    assert not np.array_equal(a_img, c_img)


def test_objects_have_bright_edges():
  """Secondary-electron edge brightening: object rims are brighter than object interiors."""
  from scipy import ndimage

  img, mask = render_scene(np.random.default_rng(0), 128, "particles")
  objects = mask[..., 0] > 0
  rim = objects & ~ndimage.binary_erosion(objects, iterations=2)
  core = ndimage.binary_erosion(objects, iterations=4)
  assert img[..., 0][rim].mean() > img[..., 0][core].mean() + 10


def test_builder_outputs_splits_masks_and_array_record(tiny_data_dir):
  builder = tfds.builder("sem_synthetic/tiny", data_dir=tiny_data_dir)
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
      "train": 16, "validation": 4, "test": 4}
  source = builder.as_data_source(split="validation")
  example = source[0]
  assert example["image"].shape == (96, 96, 1) and example["image"].dtype == np.uint8
  assert example["mask"].shape == (96, 96, 1) and example["mask"].dtype == np.uint16
  assert example["num_objects"] == len(np.unique(example["mask"])) - 1
  files = list(builder.data_path.glob("*.array_record*"))
  assert files


def test_train_batches_are_paired_patches_and_reproducible(tiny_data_dir):
  config = tiny_config(tiny_data_dir)
  source = input_pipeline.prepare_builder(config.data).as_data_source(split="train")
  make = lambda: input_pipeline.train_iterator(source, config.data, channels=1, batch_size=4,
                                               seed=3, process_index=0, process_count=1)
  it = make()
  batch = next(it)
  assert batch["hr"].shape == (4, 32, 32, 1) and batch["lr"].shape == (4, 8, 8, 1)
  assert batch["hr"].dtype == np.float32 and 0 <= batch["hr"].min() <= batch["hr"].max() <= 1
  expected_lr = degradations.quantize_8bit(degradations.bicubic_downscale(batch["hr"], 4))
  np.testing.assert_array_equal(batch["lr"], expected_lr)
  np.testing.assert_array_equal(next(make())["hr"], batch["hr"])  # same seed, same stream
  # The iterator's state resumes the exact stream.
  state = it.get_state()
  following = [next(it)["hr"] for _ in range(5)]  # crosses an epoch boundary (16 images / 4)
  resumed = make()
  resumed.set_state(state)
  for expected in following:
    np.testing.assert_array_equal(next(resumed)["hr"], expected)


def test_processes_split_the_single_process_global_batch(tiny_data_dir):
  # Process i's local batches are its slice of the global batches one process would make: the
  # training does not depend on the number of processes.
  config = tiny_config(tiny_data_dir)
  source = input_pipeline.prepare_builder(config.data).as_data_source(split="train")
  make = lambda index, count: input_pipeline.train_iterator(
      source, config.data, channels=1, batch_size=4 // count, seed=0, process_index=index,
      process_count=count)
  whole, first, second = make(0, 1), make(0, 2), make(1, 2)
  for _ in range(6):  # past an epoch (16 images)
    local = [next(first)["hr"], next(second)["hr"]]
    np.testing.assert_array_equal(np.concatenate(local), next(whole)["hr"])
    assert local[0].tobytes() != local[1].tobytes()


def test_eval_images_are_whole_and_cropped_to_the_scale(tiny_data_dir):
  config = tiny_config(tiny_data_dir)
  config.data.scale = 3
  source = input_pipeline.prepare_builder(config.data).as_data_source(split="validation")
  pairs = input_pipeline.eval_images(source, config.data, channels=1)
  assert len(pairs) == 2
  assert pairs[0]["hr"].shape == (96, 96, 1) and pairs[0]["lr"].shape == (32, 32, 1)
  rgb = input_pipeline.eval_images(source, config.data, channels=3)
  assert rgb[0]["hr"].shape == (96, 96, 3)
