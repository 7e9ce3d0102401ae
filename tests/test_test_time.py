"""Test-time refinements: self-ensemble and LR consistency, against references written here."""

import numpy as np
import pytest
from scipy import ndimage

from sinsr_jax.data import degradations
from sinsr_jax.errors import UserError
from sinsr_jax.inference import test_time


def _images(seed: int, shape=(2, 48, 40, 1)) -> np.ndarray:
  return np.random.default_rng(seed).random(shape).astype(np.float32)


@pytest.mark.parametrize("blur", [0.0, 1.2])
def test_the_consistency_operator_is_the_degradation(blur):
  """A x B^T equals SEMDegradation's noiseless, unquantised LR (scipy blur, MATLAB resize)."""
  hr = _images(0)[0]
  degrade = degradations.SEMDegradation(scale=4, blur_sigma=(blur, blur), quantize=False)
  a, _ = test_time.axis_operator(48, 4, blur)
  b, _ = test_time.axis_operator(40, 4, blur)
  lr = np.einsum("oh,pw,hwc->opc", a, b, hr)
  # The degradation clips to [0, 1]; bicubic's overshoot on random pixels is inside 0.02.
  np.testing.assert_allclose(np.clip(lr, 0, 1), degrade(hr, np.random.default_rng(0)), atol=1e-5)


@pytest.mark.parametrize("blur", [0.0, 1.2])
def test_projection_is_consistent_idempotent_and_never_further_from_the_truth(blur):
  hr = _images(1)
  a, _ = test_time.axis_operator(48, 4, blur)
  b, _ = test_time.axis_operator(40, 4, blur)
  lr = np.einsum("oh,pw,nhwc->nopc", a, b, hr)
  guess = _images(2)  # any SR estimate
  projected = test_time.project(guess, lr, 4, blur)
  np.testing.assert_allclose(np.einsum("oh,pw,nhwc->nopc", a, b, projected), lr, atol=1e-5)
  np.testing.assert_allclose(test_time.project(projected, lr, 4, blur), projected, atol=1e-5)
  for n in range(2):  # orthogonal: the truth is in the set, so the distance can only shrink
    assert np.linalg.norm(projected[n] - hr[n]) < np.linalg.norm(guess[n] - hr[n])
  # Orthogonal, checked against the least-squares solution of the full (Kronecker) system.
  full = np.kron(a, b).astype(np.float64)
  x0 = guess[0, ..., 0].ravel().astype(np.float64)
  step, *_ = np.linalg.lstsq(full, full @ x0 - lr[0, ..., 0].ravel(), rcond=None)
  np.testing.assert_allclose(projected[0, ..., 0].ravel(), x0 - step, atol=1e-4)


def test_consistent_output_is_clipped_and_moves_bicubic_towards_the_truth():
  smooth = ndimage.gaussian_filter(_images(3, (1, 96, 96, 1)), (0, 3, 3, 0))
  hr = (smooth - smooth.min()) / (smooth.max() - smooth.min())
  lr = degradations.bicubic_downscale(hr, 4)
  bicubic = lambda x: degradations.bicubic_upscale(x, 4)  # noqa: E731
  out = test_time.lr_consistent(bicubic, 4)(lr)
  assert out.min() >= 0.0 and out.max() <= 1.0
  assert np.mean((out - hr) ** 2) < np.mean((np.clip(bicubic(lr), 0, 1) - hr) ** 2)


def _reference_ensemble(fn, lr):
  """The 8 poses by explicit transposes and flips (not rot90), each undone, averaged."""
  outs = []
  for transpose in (False, True):
    for flip_h in (False, True):
      for flip_w in (False, True):
        x = lr.transpose(0, 2, 1, 3) if transpose else lr
        x = x[:, ::-1] if flip_h else x
        x = x[:, :, ::-1] if flip_w else x
        y = fn(np.ascontiguousarray(x))
        y = y[:, :, ::-1] if flip_w else y
        y = y[:, ::-1] if flip_h else y
        outs.append(y.transpose(0, 2, 1, 3) if transpose else y)
  return np.mean(outs, axis=0)


def test_self_ensemble_averages_the_eight_poses():
  lr = _images(4, (2, 12, 10, 1))
  ramp = np.linspace(0, 1, 24 * 24).reshape(1, 24, 24, 1).astype(np.float32)

  def not_equivariant(x):  # a position-dependent term: each pose gives another output
    up = np.repeat(np.repeat(x, 2, 1), 2, 2)
    return up + ramp[:, :up.shape[1], :up.shape[2]] * (up.shape[1] / 24.0)

  ensembled = test_time.self_ensemble(not_equivariant)(lr)
  np.testing.assert_allclose(ensembled, _reference_ensemble(not_equivariant, lr), atol=1e-6)
  assert np.abs(ensembled - not_equivariant(lr)).max() > 0.05
  # MATLAB bicubic is dihedral-equivariant (symmetric kernel, symmetric padding): unchanged.
  bicubic = lambda x: degradations.bicubic_upscale(x, 2)  # noqa: E731
  np.testing.assert_allclose(test_time.self_ensemble(bicubic)(lr), bicubic(lr), atol=1e-6)


def test_settings_defaults_labels_and_a_ranged_blur_refused():
  assert test_time.chosen(True, None, None) == test_time.Settings(True, True)
  assert test_time.chosen(False, None, None) == test_time.Settings(False, False)
  assert test_time.chosen(True, False, None) == test_time.Settings(False, True)
  assert test_time.Settings(True, True).suffix() == " +ens +cons"
  assert test_time.Settings().describe() == {"self_ensemble": None, "lr_consistency": None}
  ranged = degradations.SEMDegradation(scale=4, blur_sigma=(0.5, 1.5))
  with pytest.raises(UserError, match=r"blur_sigma is a range \(0.5, 1.5\)"):
    test_time.refine(lambda x: x, 4, test_time.Settings(consistency=True), ranged)
  fixed = test_time.refine(lambda x: x, 4, test_time.Settings(ensemble=True),
                           degradations.SEMDegradation(scale=4, blur_sigma=(0.5, 1.5)))
  assert callable(fixed)  # the ensemble alone needs no degradation model


def test_tiles_made_consistent_one_by_one_match_the_whole_frame():
  """Each tile is projected with its own LR; the tile edges' effects stay in the discarded
  context, so the tiled result is the whole-frame projection up to a small deviation."""
  from sinsr_jax.inference import tiling

  smooth = ndimage.gaussian_filter(_images(5, (1, 160, 224, 1)), (0, 2, 2, 0))
  hr = (smooth - smooth.min()) / (smooth.max() - smooth.min())
  lr = degradations.bicubic_downscale(hr, 4)
  nearest = lambda x: np.repeat(np.repeat(x, 4, 1), 4, 2)  # far from consistent  # noqa: E731
  consistent = test_time.lr_consistent(nearest, 4)
  tiled = tiling.upscale_tiled(consistent, lr[0], 4, tile=24, context=8, blend=4)
  whole = consistent(lr)[0]
  assert np.abs(tiled - whole).max() < 0.02
  assert np.mean((tiled - hr[0]) ** 2) < 0.9 * np.mean((nearest(lr)[0] - hr[0]) ** 2)
