"""Paired comparisons over images and seeds (evaluation.paired)."""

import dataclasses
import math

import numpy as np

from sinsr_jax.evaluation import paired


def test_pairs_by_image_id_never_by_position():
  a = {0: {"x.tif": {"psnr": 30.0}, "y.tif": {"psnr": 20.0}, "only_a.tif": {"psnr": 1.0}}}
  b = {0: {"y.tif": {"psnr": 19.0}, "x.tif": {"psnr": 29.5}}, 1: {"x.tif": {"psnr": 0.0}}}
  d = paired.pair_up(a, b, "psnr")  # seed 1 has no A: left out; images sorted by id
  np.testing.assert_array_equal(d, [[0.5], [1.0]])


def test_a_consistent_gain_is_ahead_and_noise_is_a_tie():
  rng = np.random.default_rng(0)
  difficulty = rng.uniform(-5, 5, (30, 1))  # cancels in the difference
  gain = 0.3 + rng.normal(0, 0.2, (30, 3)) + 0 * difficulty
  ahead = paired.compare(gain)
  assert ahead.low > 0 and ahead.p < 0.01 and ahead.images == 30 and ahead.seeds == 3
  np.testing.assert_allclose(ahead.mean, gain.mean())
  assert ahead.outcome("higher") == "A" and ahead.outcome("lower") == "B"
  noise = rng.normal(0, 1, (30, 3))
  tie = paired.compare(noise - noise.mean())
  assert tie.low < 0 < tie.high and tie.outcome("higher") == "tie"
  # A seed that moves every image (seed variance) widens the interval: 3 seeds, 2 bad.
  seeds_disagree = np.tile([1.0, -0.2, -0.1], (30, 1)) + rng.normal(0, 0.01, (30, 3))
  assert paired.compare(seeds_disagree).outcome("higher") == "tie"
  assert paired.compare(np.array([[1.0]])).outcome("higher") == "undecided"


def test_holm_adjusts_the_family_and_can_turn_a_win_into_a_tie():
  base = paired.Difference(0.1, 0.0, 0.2, 0.5, 8, 3)
  family = [dataclasses.replace(base, p=p) for p in (0.01, 0.04, 0.03, math.nan)]
  adjusted = [x.p_holm for x in paired.holm(family)]
  # Holm: sorted p 0.01, 0.03, 0.04 times 3, 2, 1, kept monotone: 0.03, 0.06, 0.06.
  np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
  assert math.isnan(adjusted[3])
  assert paired.holm(family)[1].outcome("higher") == "tie"  # p 0.04 alone would have won
  assert dataclasses.replace(family[1], p_holm=math.nan).outcome("higher") == "A"
