"""Tests of the coupled head-direction population: shapes, the graph, and that the truth is true."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.simulate import population
from course_utils.simulate.population import simulate_head_direction_population


@pytest.fixture(scope="module")
def pop() -> population.HeadDirectionPopulation:
    return simulate_head_direction_population(duration_s=120.0, seed=5, n_neurons=12)


def rebuilt_log_mean(pop: population.HeadDirectionPopulation) -> np.ndarray:
    """The log expected count per bin, rebuilt from the returned truth alone."""
    n_lags = pop.window_size
    log_mean = pop.tuning_log_rate(pop.heading) + pop.drift + np.log(pop.bin_s)
    for lag in range(1, n_lags + 1):
        past = np.zeros_like(pop.counts, dtype=float)
        past[lag:] = pop.counts[:-lag]
        log_mean += past @ pop.filters[:, :, lag - 1].T  # [t, pre] @ [pre, post]
    return log_mean


def test_shapes_and_ranges(pop):
    n_bins, n = int(120.0 / 0.02), 12
    assert pop.t.shape == pop.heading.shape == (n_bins,)
    assert pop.counts.shape == pop.drift.shape == (n_bins, n) and pop.n_neurons == n
    assert pop.filters.shape == (n, n, pop.window_size) == (n, n, 15)
    assert pop.adjacency.shape == pop.coupling_weight.shape == (n, n)
    assert 0 <= pop.heading.min() and pop.heading.max() < 2 * np.pi
    assert [len(s) for s in pop.spike_times] == list(pop.counts.sum(axis=0))
    np.testing.assert_allclose(pop.filter_lags_s, np.arange(1, 16) * 0.02)  # strictly causal


def test_graph_and_filters_agree(pop):
    n = pop.n_neurons
    assert not pop.adjacency[np.arange(n), np.arange(n)].any()
    np.testing.assert_array_equal(pop.adjacency, pop.coupling_weight != 0)
    off = ~np.eye(n, dtype=bool)
    # the alpha filters peak at 40 ms, on the lag grid: their peak is the weight itself
    np.testing.assert_allclose(np.abs(pop.filters[off]).max(axis=1), np.abs(pop.coupling_weight[off]))
    assert np.all(np.sign(pop.filters[off].sum(axis=1)) == np.sign(pop.coupling_weight[off]))
    np.testing.assert_allclose(
        pop.self_filters, np.tile(population.exponential_filter(pop.filter_lags_s, -3.0, 0.04), (n, 1))
    )
    assert 0 < pop.adjacency[off].mean() < 0.4  # sparse: most pairs are not coupled


def test_spikes_follow_the_rebuilt_rate(pop):
    expected = np.exp(rebuilt_log_mean(pop))
    # the ceiling of 200 Hz is hardly ever reached, so the truth alone predicts the counts
    assert np.mean(expected > 200.0 * pop.bin_s) < 1e-3
    observed, predicted = pop.counts.sum(axis=0), expected.sum(axis=0)
    assert np.all(np.abs(observed - predicted) < 4 * np.sqrt(predicted)), (observed, predicted)
    assert observed.sum() == pytest.approx(predicted.sum(), rel=0.03)


def test_coupling_is_visible_in_the_spikes(pop):
    # Poisson log-likelihood with and without the true coupling filters: coupling must help.
    log_mean = rebuilt_log_mean(pop)
    uncoupled = pop.tuning_log_rate(pop.heading) + pop.drift + np.log(pop.bin_s)
    ll = lambda lm: np.sum(pop.counts * lm - np.exp(lm))  # noqa: E731
    assert ll(log_mean) > ll(uncoupled) + 100


def test_tuning_peaks_at_the_preferred_direction(pop):
    log_rate = pop.tuning_log_rate(pop.preferred_direction)
    np.testing.assert_allclose(np.diag(log_rate), np.log(pop.peak_rate_hz))
    assert np.all(np.diag(log_rate)[None, :] >= log_rate - 1e-12)  # [heading of i, neuron j]


def test_rates_stay_plausible_across_seeds():
    for seed in range(4):
        sim = simulate_head_direction_population(duration_s=60.0, seed=seed)
        rates = sim.counts.mean(axis=0) / sim.bin_s
        assert 0.3 < rates.min() and rates.max() < 30.0, (seed, rates)


def test_same_seed_same_network_for_any_duration():
    short = simulate_head_direction_population(duration_s=20.0, seed=1, n_neurons=6)
    again = simulate_head_direction_population(duration_s=20.0, seed=1, n_neurons=6)
    longer = simulate_head_direction_population(duration_s=40.0, seed=1, n_neurons=6)
    other = simulate_head_direction_population(duration_s=20.0, seed=2, n_neurons=6)
    np.testing.assert_array_equal(short.counts, again.counts)
    np.testing.assert_array_equal(short.coupling_weight, longer.coupling_weight)
    np.testing.assert_array_equal(short.preferred_direction, longer.preferred_direction)
    assert not np.array_equal(short.coupling_weight, other.coupling_weight)


def test_spike_times_fall_in_their_bins(pop):
    edges = np.append(pop.t - pop.bin_s / 2, pop.t[-1] + pop.bin_s / 2)
    np.testing.assert_array_equal(np.histogram(pop.spike_times[3], edges)[0], pop.counts[:, 3])


def test_drift_can_be_turned_off():
    sim = simulate_head_direction_population(duration_s=20.0, seed=0, n_neurons=4, drift_sd=0.0)
    assert not sim.drift.any()


def test_filter_shapes():
    lags = np.linspace(0.0, 0.2, 201)
    alpha = population.alpha_filter(lags, 0.5, 0.04)
    assert lags[alpha.argmax()] == pytest.approx(0.04) and alpha.max() == pytest.approx(0.5)
    assert population.exponential_filter(0.04, -3.0, 0.04) == pytest.approx(-3.0 / np.e)


def test_random_graph_edge_cases():
    rng = np.random.default_rng(0)
    none_asked = population.random_coupling_graph(5, 0.0, (0.3, 0.6), 0.0, seed=rng)
    assert np.count_nonzero(none_asked) == 1 and np.trace(np.abs(none_asked)) == 0
    inhibitory = population.random_coupling_graph(6, 0.5, (0.3, 0.6), 1.0, seed=rng)
    assert np.all(inhibitory <= 0) and np.all(np.abs(inhibitory[inhibitory != 0]) >= 0.3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(duration_s=-1.0), "positive"),
        (dict(bin_s=0.0), "positive"),
        (dict(n_neurons=1), "at least 2"),
        (dict(edge_probability=1.5), r"\[0, 1\]"),
        (dict(coupling_range=(0.6, 0.3)), "low <= high"),
        (dict(window_s=0.02), "at least 2 bins"),
        (dict(duration_s=2.0), "ten windows"),
        (dict(drift_sd=-0.1), "non-negative"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_head_direction_population(**kwargs)
