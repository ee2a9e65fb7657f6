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
