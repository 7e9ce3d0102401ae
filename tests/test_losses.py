"""Loss terms: references, invariants and the direction of the adversarial terms."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from sinsr_jax import losses
from sinsr_jax.losses.generator_loss import IMAGE_TERMS, GeneratorLoss


def test_sobel_equals_scipy_in_the_interior():
  x = np.random.default_rng(0).random((2, 12, 10, 3)).astype(np.float32)
  grads = np.asarray(losses.sobel(x))
  assert grads.shape == (2, 12, 10, 3, 2)
  for n in range(2):
    for c in range(3):
      for axis in (0, 1):
        ref = ndimage.sobel(x[n, :, :, c].astype(np.float64), axis=axis)
        np.testing.assert_allclose(grads[n, 1:-1, 1:-1, c, axis], ref[1:-1, 1:-1], atol=1e-5)


def test_terms_vanish_on_identical_images_and_grow_otherwise():
  rng = np.random.default_rng(1)
  hr = jnp.asarray(ndimage.gaussian_filter(rng.random((2, 24, 24, 1)), (0, 1, 1, 0)),
                   jnp.float32)
  sr = hr + 0.05 * jnp.asarray(rng.standard_normal(hr.shape), jnp.float32)
  for term in (losses.pixel_l1, losses.sobel_gradient, losses.ssim_loss):
    term = jax.jit(term)  # one program each (op by op, every operation compiles apart)
    assert abs(float(term(hr, hr))) < 1e-6
    assert float(term(sr, hr)) > 1e-4
    grads = jax.jit(jax.grad(lambda s, t=term: t(s, hr)))(sr)
    assert np.all(np.isfinite(np.asarray(grads)))


def test_gradient_loss_ignores_a_constant_offset():
  hr = jnp.asarray(np.random.default_rng(2).random((1, 16, 16, 1)), jnp.float32)
  assert float(losses.sobel_gradient(hr + 0.2, hr)) < 1e-8
  assert float(losses.pixel_l1(hr + 0.2, hr)) > 0.19


def test_adversarial_sides_push_the_right_way():
  real, fake = jnp.full((2, 4, 4, 1), 3.0), jnp.full((2, 4, 4, 1), -3.0)
  # A discriminator that is right has a low loss; swapped (the original code's bug) a high one.
  assert float(losses.d_loss_bce(real, fake)) < 0.1
  assert float(losses.d_loss_bce(fake, real)) > 5.0
  # The generator's loss falls as the discriminator calls its output real.
  assert float(losses.g_loss_bce(real)) < float(losses.g_loss_bce(fake))
  d_fake = jax.grad(lambda f: losses.d_loss_bce(real, f))(jnp.zeros((1, 2, 2, 1)))
  g_fake = jax.grad(losses.g_loss_bce)(jnp.zeros((1, 2, 2, 1)))
  assert np.all(np.asarray(d_fake) > 0) and np.all(np.asarray(g_fake) < 0)


def _np_bce(logits, target):
  return np.mean(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits))))


@pytest.mark.parametrize("kind", ["vanilla", "ragan", "hinge"])
def test_gan_losses_against_numpy_and_their_directions(kind):
  rng = np.random.default_rng(0)
  real, fake = rng.normal(1, 1, (4, 2, 2, 1)), rng.normal(-1, 1, (4, 2, 2, 1))
  if kind == "vanilla":
    d_ref, g_ref = _np_bce(real, 1) + _np_bce(fake, 0), _np_bce(fake, 1)
  elif kind == "ragan":  # ESRGAN: D_Ra(x, y) = sigmoid(C(x) - mean C(y))
    d_ref = 0.5 * (_np_bce(real - fake.mean(), 1) + _np_bce(fake - real.mean(), 0))
    g_ref = 0.5 * (_np_bce(real - fake.mean(), 0) + _np_bce(fake - real.mean(), 1))
  else:
    d_ref = np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
    g_ref = -np.mean(fake)
  r, f = jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32)
  assert float(losses.d_loss(kind, r, f)) == pytest.approx(d_ref, rel=1e-5)
  assert float(losses.g_loss(kind, r, f)) == pytest.approx(g_ref, rel=1e-5)
  # The discriminator is pushed to raise real logits and lower fake ones (the original code's
  # swapped BCE arguments pushed both down); the generator to raise the fake ones.
  d_real, d_fake = jax.grad(lambda a, b: losses.d_loss(kind, a, b), argnums=(0, 1))(r, f)
  assert float(jnp.sum(d_real)) < 0 < float(jnp.sum(d_fake))
  g_fake = jax.grad(lambda b: losses.g_loss(kind, r, b))(f)
  assert float(jnp.sum(g_fake)) < 0


@pytest.mark.parametrize("kind", ["l1", "l2", "charbonnier"])
def test_pixel_losses(kind):
  a, b = np.random.default_rng(1).random((2, 2, 5, 5, 1)).astype(np.float32)
  d = a - b
  ref = {"l1": np.abs(d).mean(), "l2": (d * d).mean(),
         "charbonnier": np.sqrt(d * d + 1e-6).mean()}[kind]
  value = float(losses.pixel_loss(jnp.asarray(a), jnp.asarray(b), kind))
  assert value == pytest.approx(ref, rel=1e-5)


def _smooth_pair(seed=3):
  rng = np.random.default_rng(seed)
  hr = jnp.asarray(ndimage.gaussian_filter(rng.random((2, 20, 20, 1)), (0, 1, 1, 0)), jnp.float32)
  return hr + 0.05 * jnp.asarray(rng.standard_normal(hr.shape), jnp.float32), hr


@pytest.mark.parametrize("term", [
    lambda a, b: losses.sobel_gradient(a, b, mode="magnitude"),
    lambda a, b: losses.sobel_gradient(a, b, distance="l1"),
    lambda a, b: losses.second_order_gradient(a, b),
    lambda a, b: losses.second_order_gradient(a, b, kind="laplacian", distance="l1"),
], ids=["sobel_magnitude", "sobel_l1", "sobel_of_sobel", "laplacian"])
def test_structure_terms_vanish_on_equal_images_and_ignore_offsets(term):
  sr, hr = _smooth_pair()
  assert abs(float(term(hr, hr))) < 1e-5
  assert float(term(sr, hr)) > 1e-4
  assert float(term(hr + 0.3, hr)) < 1e-5  # derivatives do not see a constant offset
  assert np.all(np.isfinite(np.asarray(jax.grad(lambda s: term(s, hr))(sr))))


def test_laplacian_and_second_sobel_against_scipy_in_the_interior():
  x = np.random.default_rng(4).random((1, 14, 12, 1)).astype(np.float32)
  ref = ndimage.laplace(x[0, :, :, 0].astype(np.float64))
  np.testing.assert_allclose(np.asarray(losses.laplacian(x))[0, 1:-1, 1:-1, 0],
                             ref[1:-1, 1:-1], atol=1e-5)
  # d/dy of d/dx, as scipy composes it (compared away from the two-pixel border).
  first = np.asarray(losses.sobel(x))[0, :, :, 0, 1]
  second = np.asarray(losses.sobel(first[None, :, :, None]))[0, 2:-2, 2:-2, 0, 0]
  ref = ndimage.sobel(ndimage.sobel(x[0, :, :, 0].astype(np.float64), 1), 0)
  np.testing.assert_allclose(second, ref[2:-2, 2:-2], atol=1e-4)


def test_total_variation():
  flat = jnp.full((1, 8, 8, 1), 0.4)
  assert float(losses.total_variation(flat)) == 0.0
  stripes = jnp.tile(jnp.array([0.0, 1.0]), (1, 8, 4))[..., None]  # alternating columns
  assert float(losses.total_variation(stripes)) == pytest.approx(1.0)


def test_ssim_loss_is_one_minus_skimage_ssim():
  from skimage.metrics import structural_similarity

  rng = np.random.default_rng(5)
  hr = ndimage.gaussian_filter(rng.random((3, 40, 36, 1)), (0, 1.5, 1.5, 0))
  sr = np.clip(hr + 0.04 * rng.standard_normal(hr.shape), 0, 1)
  # Same window as dm-pix: 11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03, population covariance.
  ref = np.mean([structural_similarity(s[..., 0], h[..., 0], gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False, data_range=1.0)
                 for s, h in zip(sr, hr, strict=True)])
  value = float(losses.ssim_loss(jnp.asarray(sr, jnp.float32), jnp.asarray(hr, jnp.float32)))
  assert value == pytest.approx(1.0 - ref, abs=1e-4)
  assert value > 0.01


def test_auxiliary_term_is_pixel_l1_plus_sobel_l1():
  sr, hr = _smooth_pair(6)
  a, b = np.asarray(sr, np.float64), np.asarray(hr, np.float64)
  # jnp.pad's "reflect" is scipy's "mirror": the reference holds at the borders too.
  sobel_l1 = np.mean([np.abs(ndimage.sobel(a[n, ..., 0], axis, mode="mirror")
                             - ndimage.sobel(b[n, ..., 0], axis, mode="mirror"))
                      for n in range(2) for axis in (0, 1)])
  assert float(losses.auxiliary(sr, hr)) == pytest.approx(np.abs(a - b).mean() + sobel_l1,
                                                          rel=1e-5)
  assert float(losses.auxiliary(hr, hr)) == 0.0
  # The Sobel part does not see a constant offset; the pixel part sees all of it.
  assert float(losses.auxiliary(hr + 0.1, hr)) == pytest.approx(0.1, abs=1e-5)


def test_total_variation_gradient_is_finite_and_smooths():
  noisy = jnp.asarray(np.random.default_rng(7).random((1, 10, 10, 1)), jnp.float32)
  grad = jax.grad(losses.total_variation)(noisy)
  assert np.all(np.isfinite(np.asarray(grad)))
  assert float(losses.total_variation(noisy - 0.1 * grad)) < float(losses.total_variation(noisy))


def _extractor(layers, widths=(4, 8, 8, 8, 8)):
  from sinsr_jax.models import vgg

  module = vgg.Features(arch="vgg19", outputs=layers, widths=widths)
  params = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))["params"]
  return module, params


@pytest.mark.parametrize("distance", ["l1", "l2"])
def test_perceptual_loss_is_the_weighted_mean_of_feature_distances(distance):
  from sinsr_jax.models import vgg

  layers = ("conv1_2", "relu2_2", "conv3_4")
  module, params = _extractor(layers)
  sr, hr = _smooth_pair(8)
  sr, hr = jax.image.resize(sr, (2, 32, 32, 1), "linear"), jax.image.resize(hr, (2, 32, 32, 1),
                                                                             "linear")
  layer_weights = {"conv1_2": 1.0, "relu2_2": 0.5, "conv3_4": 2.0}
  perceptual = jax.jit(lambda p, s, h: losses.perceptual_loss(  # one program, not one per op
      p, s, h, extractor=module, layer_weights=layer_weights, distance=distance))
  value = float(perceptual(params, sr, hr))
  # Reference: each image through the network alone, grayscale replicated by hand.
  features = jax.jit(lambda x: module.apply({"params": params},
                                            vgg.imagenet_input(jnp.repeat(x, 3, -1))))
  feats = [features(x) for x in (sr, hr)]
  dist = (lambda d: np.mean(np.abs(d))) if distance == "l1" else (lambda d: np.mean(d * d))
  ref = sum(w * dist(np.asarray(feats[0][k]) - np.asarray(feats[1][k]))
            for k, w in layer_weights.items()) / sum(layer_weights.values())
  assert value == pytest.approx(ref, rel=1e-4)
  assert float(perceptual(params, hr, hr)) == 0.0
  # Gradients reach SR only: HR and the frozen network get none.
  g_sr, g_hr, g_params = jax.jit(jax.grad(lambda s, h, p: perceptual(p, s, h),
                                          argnums=(0, 1, 2)))(sr, hr, params)
  assert np.all(np.isfinite(np.asarray(g_sr))) and float(jnp.abs(g_sr).sum()) > 0
  assert float(jnp.abs(g_hr).sum()) == 0.0
  assert all(float(jnp.abs(g).sum()) == 0.0 for g in jax.tree.leaves(g_params))


def test_perceptual_loss_treats_grayscale_as_neutral_rgb_and_caffe_input():
  from sinsr_jax.models import vgg

  module, params = _extractor(("relu3_4",))
  rng = np.random.default_rng(9)
  gray = jnp.asarray(rng.random((2, 32, 32, 1)), jnp.float32)
  other = jnp.asarray(rng.random((2, 32, 32, 1)), jnp.float32)
  kwargs = dict(extractor=module, layer_weights={"relu3_4": 1.0})
  one = losses.perceptual_loss(params, gray, other, **kwargs)
  three = losses.perceptual_loss(params, jnp.repeat(gray, 3, -1), jnp.repeat(other, 3, -1),
                                 **kwargs)
  assert float(one) == pytest.approx(float(three), rel=1e-6)
  caffe = np.asarray(vgg.imagenet_input(jnp.full((1, 1, 1, 3), 0.5).at[..., 0].set(1.0),
                                        "caffe"))[0, 0, 0]
  # BGR order, 0..255, minus the ImageNet mean: R=255 lands last.
  np.testing.assert_allclose(caffe, [127.5 - 103.939, 127.5 - 116.779, 255.0 - 123.68],
                             rtol=1e-6)


def _every_term_loss():

  module, params = _extractor(("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"))
  perceptual = functools.partial(losses.perceptual_loss, extractor=module,
                                 layer_weights={k: 1.0 for k in module.outputs})
  loss = GeneratorLoss(weights={k: (1.0, 1.0) for k in IMAGE_TERMS},
                             pretrain_weights={"pixel": 1.0}, perceptual=perceptual)
  return loss, {"vgg": params}


@pytest.mark.parametrize("options", [
    {}, {"pixel_kind": "l2", "gradient_mode": "magnitude", "gradient_distance": "l1",
         "second_order_kind": "laplacian"}, {"pixel_kind": "charbonnier"}])
def test_every_image_term_is_minimal_on_hr_positive_otherwise_and_differentiable(options):
  import dataclasses

  loss, frozen = _every_term_loss()
  loss = dataclasses.replace(loss, **options)
  rng = np.random.default_rng(11)
  hr = jnp.asarray(ndimage.gaussian_filter(rng.random((2, 32, 32, 1)), (0, 1.5, 1.5, 0)),
                   jnp.float32)
  sr = hr + 0.05 * jnp.asarray(rng.standard_normal(hr.shape), jnp.float32)
  # Compiled once (op by op, the VGG19 features' every operation compiles apart).
  image_terms = jax.jit(lambda s, h, f: loss.image_terms(s, h, f))
  same, other = image_terms(hr, hr, frozen), image_terms(sr, hr, frozen)
  assert set(same) == set(steps_terms := other) and len(steps_terms) == 8
  for term in same:
    if term == "tv":  # a regulariser of SR alone: 0 for a flat image, more for a noisy one
      assert float(other[term]) > float(same[term]) > 0
      flat = image_terms(jnp.full_like(hr, 0.3), hr, frozen)["tv"]
      assert float(flat) == 0.0
      continue
    floor = 1.001e-3 if options.get("pixel_kind") == "charbonnier" and term == "pixel" else 1e-6
    assert abs(float(same[term])) <= floor, term  # Charbonnier's minimum is eps
    assert float(other[term]) > float(same[term]) + 1e-5, term
  grads = jax.jit(jax.grad(lambda s: sum(image_terms(s, hr, frozen).values())))(sr)
  assert np.all(np.isfinite(np.asarray(grads)))
  # Derivative-based terms ignore a constant offset.
  shifted = image_terms(hr + 0.2, hr, frozen)
  for term in ("gradient", "second_order"):
    assert float(shifted[term]) < 1e-5, term
  # SPSR's gradient maps are zero-padded, as its Get_gradient: invariant inside the border.
  from sinsr_jax.models.gradient import gradient_map

  np.testing.assert_allclose(gradient_map(hr + 0.2)[:, 1:-1, 1:-1], gradient_map(hr)[:, 1:-1, 1:-1],
                             atol=1e-5)
  assert float(shifted["tv"]) == pytest.approx(float(same["tv"]), rel=1e-5)


@pytest.mark.parametrize("kind", ["vanilla", "ragan", "hinge"])
def test_discriminator_accuracy_follows_the_loss_kind(kind):
  # Real logits 5, fake 3: a relativistic discriminator that ranks every pair right (its loss is
  # small), though both signs say "real". By the sign alone that read 0.5 for ragan, and the
  # collapse warning could never fire for ESRGAN or SPSR.
  real, fake = jnp.full((4, 2, 2, 1), 5.0), jnp.full((4, 2, 2, 1), 3.0)
  accuracy = float(losses.d_accuracy(kind, real, fake))
  assert accuracy == (1.0 if kind == "ragan" else 0.5)
  # Swapped, the relativistic discriminator is wrong on every pair.
  assert float(losses.d_accuracy(kind, fake, real)) == (0.0 if kind == "ragan" else 0.5)
  assert float(losses.d_accuracy(kind, real, -real)) == 1.0
