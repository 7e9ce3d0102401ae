"""Downstream measurements (metrics.sizes): feature sizes in nm against independent references."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import draw, filters, measure, transform

from sinsr_jax.evaluation import downstream
from sinsr_jax.metrics import sizes


def _discs(radii, shape=(200, 200), bright=True):
  image = np.full(shape, 0.2 if bright else 0.8)
  centres = [(30 + 45 * (i // 4), 30 + 45 * (i % 4)) for i in range(len(radii))]
  for (r, c), radius in zip(centres, radii, strict=True):
    image[draw.disk((r, c), radius, shape=shape)] = 0.8 if bright else 0.2
  return image


def test_particle_diameters_equal_skimage_regionprops_in_nm():
  image = _discs([4, 6, 8, 10, 12])
  image[draw.disk((198, 100), 9, shape=image.shape)] = 0.8  # cut by the frame: left out
  got = np.sort(sizes.sizes(image, 2.5, "particles"))
  # The same one-pixel smoothing and IsoData threshold (ImageJ's default), then skimage's own
  # labelling and equivalent diameters.
  smooth = ndimage.gaussian_filter(image, 1.0)
  labels = measure.label(smooth > filters.threshold_isodata(smooth))
  inside = [p for p in measure.regionprops(labels)
            if p.bbox[0] > 0 and p.bbox[1] > 0 and p.bbox[2] < 200 and p.bbox[3] < 200]
  want = np.sort([p.equivalent_diameter_area * 2.5 for p in inside])
  np.testing.assert_allclose(got, want, rtol=1e-12)
  assert len(got) == 5 and abs(got[-1] - 2 * 12 * 2.5) < 2.5  # ~ the drawn diameter, in nm
  # Dark objects on a bright ground are pores; the bright discs are not.
  np.testing.assert_allclose(np.sort(sizes.sizes(_discs([4, 6, 8, 10, 12], bright=False), 2.5,
                                                 "pores")), want, rtol=1e-12)


@pytest.mark.parametrize("width", [5, 9, 15])
def test_phase_width_of_bars_is_their_thickness(width):
  image = np.zeros((120, 120))
  for top in (10, 45, 80):
    image[top:top + width, 10:110] = 1.0
  widths = sizes.sizes(image, 4.0, "width")
  # Intercepts across the bars (300, exactly the width) and along them (3 x width, ~100 px).
  np.testing.assert_array_equal(np.sort(widths)[:300], 4.0 * width)
  assert len(widths) == 300 + 3 * width
  # Features of 1-3 px are widened by the one-pixel smoothing (the module says so).
  thin = np.zeros((120, 120))
  thin[50, 10:110] = 1.0
  assert np.median(sizes.sizes(thin, 1.0, "width")) == 3.0


def test_sizes_survive_downscaling_at_the_right_pixel_size():
  hr = _discs([8, 10, 11, 12, 14, 15, 16, 18], shape=(256, 256))
  lr = transform.resize(hr, (64, 64), order=1, anti_aliasing=True)
  hr_sizes, lr_sizes = sizes.sizes(hr, 1.0, "particles"), sizes.sizes(lr, 4.0, "particles")
  score = sizes.agreement(lr_sizes, hr_sizes)
  assert score["count"] == len(hr_sizes) == 8
  assert abs(score["rel_error"]) < 0.1 and score["rel_error_lo"] <= score["rel_error"]
  # At the wrong pixel size (LR's pixels read as HR's) the error is what calibration is for.
  assert sizes.agreement(sizes.sizes(lr, 1.0, "particles"), hr_sizes)["rel_error"] < -0.7


def test_agreement_of_equal_and_scaled_distributions():
  rng = np.random.default_rng(0)
  reference = rng.gamma(4.0, 10.0, 300)
  same = sizes.agreement(reference, reference)
  assert same["rel_error"] == 0.0 and same["w1_rel"] == 0.0
  assert same["rel_error_lo"] < 0 < same["rel_error_hi"]
  bigger = sizes.agreement(1.1 * reference, reference)
  np.testing.assert_allclose(bigger["rel_error"], 0.1, rtol=1e-9)
  np.testing.assert_allclose(bigger["w1_rel"], 0.1, rtol=1e-9)  # W1 of a 10% stretch
  assert bigger["rel_error_lo"] > 0  # the interval excludes 0
  empty = sizes.agreement(np.zeros(0), reference)
  assert empty["count"] == 0 and np.isnan(empty["rel_error"])
  with pytest.raises(ValueError, match="unknown size kind 'grains'"):
    sizes.sizes(reference[:4, None], 1.0, "grains")


def test_lr_reference_measures_lr_at_its_own_pixel_size():
  hr = _discs([8, 10, 11, 12, 14, 15, 16, 18], shape=(256, 256))[..., None]
  lr = transform.resize(hr, (64, 64, 1), order=1, anti_aliasing=True)
  pairs = [{"hr": hr, "lr": lr, "filename": "a.tif", "pixel_nm": 2.0},
           {"hr": hr, "lr": lr, "filename": "uncalibrated.png", "pixel_nm": 0.0}]
  reference = downstream.lr_reference(pairs, 4)
  assert list(reference) == ["a.tif", "uncalibrated.png"]
  assert reference["a.tif"]["unit"] == "nm" and reference["uncalibrated.png"]["unit"] == "HR px"
  np.testing.assert_allclose(reference["uncalibrated.png"]["particles_mean_nm"] * 2.0,
                             reference["a.tif"]["particles_mean_nm"])
  assert abs(reference["a.tif"]["particles_rel_error"]) < 0.1
  assert reference["a.tif"]["particles_mean_nm"] > 2.0 * 2 * 8  # nm, not LR pixels
