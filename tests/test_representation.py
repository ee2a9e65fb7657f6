"""Tests of course_utils.representation: the MIG estimator and the regression probes."""

import numpy as np
import pytest

from course_utils.representation import mutual_information_gap, probe_r2, quantile_bins


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    return np.random.default_rng(0).uniform(size=(2000, 2))


def test_quantile_bins_hold_equal_counts() -> None:
    values = np.random.default_rng(1).normal(size=1000)
    counts = np.bincount(quantile_bins(values, 10))
    assert counts.size == 10 and counts.min() == counts.max() == 100


def test_mig_of_the_factors_themselves_is_near_one(factors: np.ndarray) -> None:
    # Plug-in bias with 10 bins and 2000 examples: about 81 / 4000 = 0.02 nats of 2.3.
    assert mutual_information_gap(factors, factors) > 0.95


def test_mig_of_a_rotated_code_is_low(factors: np.ndarray) -> None:
    centred = (factors - factors.mean(0)) / factors.std(0)
    rotation = np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2.0)
    assert mutual_information_gap(centred @ rotation, factors) < 0.15


def test_mig_is_zero_when_a_factor_is_carried_twice(factors: np.ndarray) -> None:
    # Two identical copies of each factor: best and runner-up carry the same information.
    codes = np.column_stack([factors[:, 0], factors[:, 0], factors[:, 1], factors[:, 1]])
    assert mutual_information_gap(codes, factors) == pytest.approx(0.0, abs=1e-12)


def test_mig_ignores_monotone_transforms_and_noise_dimensions(factors: np.ndarray) -> None:
    noise = np.random.default_rng(2).normal(size=(2000, 3))
    codes = np.column_stack([np.exp(3 * factors[:, 1]), noise, -(factors[:, 0] ** 3)])
    assert mutual_information_gap(codes, factors) == pytest.approx(mutual_information_gap(factors, factors), abs=0.05)


@pytest.mark.parametrize(
    "codes, message",
    [
        (np.zeros((2000, 1)), "at least two dimensions"),
        (np.full((2000, 2), np.nan), "NaN"),
        (np.zeros((1999, 2)), "one row per example"),
        (np.zeros((20, 2)), "too few"),
    ],
)
def test_mig_rejects_bad_input(factors: np.ndarray, codes: np.ndarray, message: str) -> None:
    target = factors if codes.shape[0] != 20 else factors[:20]
    with pytest.raises(ValueError, match=message):
        mutual_information_gap(codes, target)


def test_probes_see_what_they_should(factors: np.ndarray) -> None:
    x = factors[:600]
    # Quadratic in the code: both probes find it.
    quadratic = (x[:, 0] - 0.5) ** 2
    assert probe_r2(x, quadratic, "quadratic") > 0.99
    assert probe_r2(x, quadratic, "knn") > 0.9
    # A fast oscillation: beyond degree 2, within reach of neighbours.
    wavy = np.sin(12 * x[:, 0])
    assert probe_r2(x, wavy, "quadratic") < 0.5 < 0.9 < probe_r2(x, wavy, "knn")
    # Unrelated noise: about zero (negative on average), never clearly positive.
    noise = np.random.default_rng(3).normal(size=600)
    assert probe_r2(x, noise, "knn") < 0.05 and probe_r2(x, noise, "quadratic") < 0.05


def test_probe_rejects_bad_input(factors: np.ndarray) -> None:
    with pytest.raises(ValueError, match="probe must be one of"):
        probe_r2(factors, factors[:, 0], "forest")
    with pytest.raises(ValueError, match="one factor"):
        probe_r2(factors, factors)
    with pytest.raises(ValueError, match="too few"):
        probe_r2(factors[:10], factors[:10, 0], "knn")
