"""The SEM degradation model and structure-aware patch sampling."""

import numpy as np
import pytest

from conftest import tiny_config
from sinsr_jax.data import degradations, input_pipeline
from sinsr_jax.errors import ConfigError
from sinsr_jax.training.config_checks import check_config

FLAT = np.full((256, 256, 1), 0.5, np.float32)


def _lr(hr, seed=0, **params):
  params = {k: degradations.as_range(v, k) for k, v in params.items()}
  return degradations.SEMDegradation(scale=4, quantize=False, **params)(
      hr, np.random.default_rng(seed))


def test_no_noise_is_plain_quantized_bicubic():
  hr = np.random.default_rng(0).random((32, 32, 1)).astype(np.float32)
  lr = degradations.SEMDegradation(scale=4)(hr, np.random.default_rng(0))
  np.testing.assert_array_equal(
      lr, degradations.quantize_8bit(degradations.bicubic_downscale(hr, 4)))


def test_noise_models_have_their_statistics():
  poisson = _lr(FLAT, dose=200.0)  # variance = mean / dose
  assert poisson.mean() == pytest.approx(0.5, abs=0.01)
  assert poisson.var() == pytest.approx(0.5 / 200.0, rel=0.1)
  speckle = _lr(FLAT, gamma_shape=20.0)  # mean-1 Gamma: variance = mean^2 / k
  assert speckle.mean() == pytest.approx(0.5, abs=0.01)
  assert speckle.var() == pytest.approx(0.25 / 20.0, rel=0.1)
  read = _lr(FLAT, read_noise=0.03)
  assert read.std() == pytest.approx(0.03, rel=0.1)


def test_blur_removes_detail_and_ranges_are_sampled_per_image():
  hr = np.random.default_rng(1).random((64, 64, 1)).astype(np.float32)
  sharp, blurred = _lr(hr), _lr(hr, blur_sigma=2.0)
  assert np.std(np.diff(blurred[..., 0], axis=1)) < 0.7 * np.std(np.diff(sharp[..., 0], axis=1))
  a, b = _lr(FLAT, seed=3, read_noise=(0.0, 0.1)), _lr(FLAT, seed=3, read_noise=(0.0, 0.1))
  np.testing.assert_array_equal(a, b)  # same generator state, same LR
  stds = {round(float(_lr(FLAT, seed=s, read_noise=(0.0, 0.1)).std()), 3) for s in range(6)}
  assert len(stds) > 3


@pytest.mark.parametrize("value", [(-1.0,), (5.0, 1.0), (1.0, 2.0, 3.0)])
def test_bad_ranges_are_config_errors(value):
  config = tiny_config("/tmp/unused")
  config.data.degradation.dose = value
  with pytest.raises(ConfigError, match="data.degradation.dose"):
    check_config(config, num_devices=1, num_processes=1)


def test_structure_aware_sampling_avoids_flat_background():
  image = np.full((128, 128, 1), 128, np.uint8)
  image[:, 96:] = np.random.default_rng(0).integers(0, 255, (128, 32, 1))  # texture on the right
  degradation = degradations.SEMDegradation(scale=4)

  def textured_fraction(min_gradient):
    sampler = input_pipeline.PairedPatch(32, 1, False, degradation, min_gradient, 10)
    hits = 0
    for seed in range(40):
      patch = sampler({"image": image}, np.random.default_rng(seed))["hr"]
      hits += input_pipeline.patch_gradient_energy(patch) > 0.05
    return hits / 40

  assert textured_fraction(0.0) < 0.5
  assert textured_fraction(0.5) > 0.9


def test_eval_images_degrade_deterministically(tiny_data_dir):
  config = tiny_config(tiny_data_dir)
  config.data.degradation.dose = (50.0, 200.0)
  source = input_pipeline.prepare_builder(config.data).as_data_source(split="validation")
  a = input_pipeline.eval_images(source, config.data, channels=1, seed=0)
  b = input_pipeline.eval_images(source, config.data, channels=1, seed=0)
  np.testing.assert_array_equal(a[0]["lr"], b[0]["lr"])
  clean = degradations.quantize_8bit(degradations.bicubic_downscale(a[0]["hr"], 4))
  assert np.abs(a[0]["lr"] - clean).mean() > 0.01
