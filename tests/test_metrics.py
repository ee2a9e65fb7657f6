"""Tests of course_utils.metrics against scipy and known values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from course_utils import metrics


def test_poisson_log_likelihood_matches_scipy():
    rng = np.random.default_rng(0)
    rate = rng.uniform(0.1, 3.0, 500)
    counts = rng.poisson(rate)
    assert metrics.poisson_log_likelihood(counts, rate) == pytest.approx(poisson.logpmf(counts, rate).mean())


def test_zero_rate_with_zero_count_is_fine_and_with_spikes_is_minus_infinity():
    assert metrics.poisson_log_likelihood([0, 0], [0.0, 0.0]) == 0.0
    assert metrics.poisson_log_likelihood([1, 0], [0.0, 1.0]) == -np.inf


def test_pseudo_r2_is_zero_for_the_null_model_and_positive_for_the_truth():
    rng = np.random.default_rng(1)
    rate = np.exp(rng.normal(0, 1, 5000))
    counts = rng.poisson(rate)
    assert metrics.pseudo_r2(counts, np.full(counts.shape, counts.mean())) == pytest.approx(0.0, abs=1e-12)
    assert metrics.pseudo_r2(counts, rate) > 0.1
    # scoring held-out data against the training mean can be negative
    assert metrics.pseudo_r2(counts, np.full(counts.shape, 10.0), null_rate=counts.mean()) < 0


@pytest.mark.parametrize(
    "counts, rate, match",
    [
        ([1, 2], [1.0], "same shape"),
        ([], [], "empty"),
        ([1, np.nan], [1.0, 1.0], "NaN"),
        ([1, -1], [1.0, 1.0], "non-negative integers"),
        ([1.5, 1], [1.0, 1.0], "non-negative integers"),
        ([1, 1], [-1.0, 1.0], "non-negative"),
    ],
)
def test_bad_input_is_a_clear_error(counts, rate, match):
    with pytest.raises(ValueError, match=match):
        metrics.poisson_log_likelihood(counts, rate)


def test_pearson_r_checks_its_input():
    assert metrics.pearson_r([1, 2, 3], [2, 4, 6.5]) > 0.99
    with pytest.raises(ValueError, match="same number"):
        metrics.pearson_r([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="constant"):
        metrics.pearson_r([1, 1, 1], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        metrics.pearson_r([1, np.nan, 1], [1, 2, 3])


def test_separation_is_complete_or_nothing():
    assert metrics.separated([3.0, 4.0, 5.0], [1.0, 2.0, 2.9])
    assert not metrics.separated([3.0, 4.0, 5.0], [1.0, 2.0, 3.0])  # a tie is not a separation
    assert not metrics.separated([3.0, 1.5, 5.0], [1.0, 2.0, 2.5])
    assert metrics.separated([np.inf, 4.0], [1.0, 2.0])  # a failed run is the worst value
    assert not metrics.separated([np.inf, 4.0], [np.inf, 2.0])  # two failed runs tie
    with pytest.raises(ValueError, match="NaN"):
        metrics.separated([np.nan, 1.0], [0.0])
    with pytest.raises(ValueError, match="at least one"):
        metrics.separated([], [0.0])


def test_separation_chance_matches_a_simulation():
    assert metrics.separation_chance(3, 3) == pytest.approx(1 / 20)
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(200_000, 5))
    simulated = np.mean(draws[:, :3].min(axis=1) > draws[:, 3:].max(axis=1))
    assert simulated == pytest.approx(metrics.separation_chance(3, 2), abs=3e-3)  # 1/10
    with pytest.raises(ValueError, match="positive integer"):
        metrics.separation_chance(0, 3)


def _symmetric(rng, k):
    a = rng.normal(size=(k, k))
    return a + a.T


def test_mantel_finds_a_shared_structure_and_is_calibrated_without_one():
    rng = np.random.default_rng(1)
    membership = rng.random((4, 30)) < 0.25
    shared = membership.T.astype(float) @ membership  # pairs sharing assemblies
    related = shared + 0.5 * _symmetric(rng, 30)
    r, p = metrics.mantel_test(related, shared, n_permutations=199, seed=2)
    assert r[0] > 0.3 and p[0] == pytest.approx(1 / 200)
    # Without a relation, p is uniform: about 5 % of unrelated matrices fall below 0.05.
    unrelated = np.stack([_symmetric(rng, 30) for _ in range(300)])
    _, p_null = metrics.mantel_test(unrelated, shared, n_permutations=99, seed=3)
    assert 0.02 < np.mean(p_null <= 0.05) < 0.09
    assert 0.4 < p_null.mean() < 0.6


def test_mantel_says_what_is_wrong():
    shared = np.eye(4) + 1.0
    with pytest.raises(ValueError, match=r"\(k, k\)"):
        metrics.mantel_test(np.zeros((3, 3)), shared)
    with pytest.raises(ValueError, match="constant"):
        metrics.mantel_test(np.eye(4), np.ones((4, 4)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.mantel_test(np.full((4, 4), np.nan), np.arange(16.0).reshape(4, 4))
    r, p = metrics.mantel_test(np.ones((4, 4)), np.arange(16.0).reshape(4, 4) + np.arange(16.0).reshape(4, 4).T)
    assert np.isnan(r[0]) and p[0] == 1.0  # a constant candidate carries no structure
