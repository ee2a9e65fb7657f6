"""Tests of the GLM ground-truth generators: shapes, statistics, and that the truth is true."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.simulate import glm


@pytest.fixture(scope="module")
def maze() -> glm.LinearMazeSimulation:
    return glm.simulate_linear_maze(duration_s=600.0, bin_s=0.02, seed=3)


def test_maze_shapes_and_ranges(maze):
    n_bins = int(600.0 / 0.02)
    assert maze.t.shape == maze.position.shape == maze.speed.shape == (n_bins,)
    assert maze.counts.shape == (n_bins, 3)
    assert maze.position.min() >= 0 and maze.position.max() <= maze.track_length_cm
    assert maze.speed.min() >= 0 and maze.speed.max() <= 60.0 + 1e-9
    assert maze.neuron_kinds == ("speed", "position", "both")
    assert [len(s) for s in maze.spike_times] == list(maze.counts.sum(axis=0))
    assert np.all(np.diff(maze.lap_bounds, axis=1) > 0)


def test_speed_is_correlated_with_position_but_not_a_function_of_it(maze):
    running = maze.speed > 0
    distance = np.abs(maze.position[running] - 50.0)
    assert np.corrcoef(distance, maze.speed[running])[0, 1] < -0.5
    middle = running & (np.abs(maze.position - 50.0) < 5.0)
    assert maze.speed[middle].std() > 5.0  # laps differ in peak speed


def test_counts_follow_the_true_rates(maze):
    for k, neuron in enumerate(maze.neurons):
        expected = np.exp(neuron.log_rate(maze.position, maze.speed)) * maze.bin_s
        assert maze.counts[:, k].sum() == pytest.approx(expected.sum(), rel=0.05)


def test_spike_times_fall_in_their_bins(maze):
    times = maze.spike_times[0]
    recounted = np.histogram(times, bins=np.append(maze.t - maze.bin_s / 2, maze.t[-1] + maze.bin_s / 2))[0]
    np.testing.assert_array_equal(recounted, maze.counts[:, 0])


def test_truth_table_and_effects():
    neuron = glm.MazeNeuron("both", 0.5, 0.05, 40.0, 5.0, 2.0)
    assert neuron.position_effect(40.0) == pytest.approx(2.0)
    assert neuron.speed_effect(10.0) == pytest.approx(0.5)
    assert neuron.log_rate(40.0, 10.0) == pytest.approx(3.0)
    sim = glm.simulate_linear_maze(60.0, 0.02, seed=0, neurons=[neuron])
    assert sim.truth["speed_weight"].tolist() == [0.05]


def test_same_seed_same_data_other_seed_other_data():
    a = glm.simulate_linear_maze(60.0, 0.02, seed=1)
    b = glm.simulate_linear_maze(60.0, 0.02, seed=1)
    c = glm.simulate_linear_maze(60.0, 0.02, seed=2)
    np.testing.assert_array_equal(a.counts, b.counts)
    assert not np.array_equal(a.counts, c.counts)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(duration_s=-1.0), "positive"),
        (dict(bin_s=0.0), "positive"),
        (dict(duration_s=0.1, bin_s=0.02), "at least 10 bins"),
        (dict(kinds=("speed", "colour")), "Unknown neuron kind"),
        (dict(peak_speed_range=(30.0, 10.0)), "increasing"),
    ],
)
def test_maze_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        glm.simulate_linear_maze(**kwargs)


def test_current_injection_kernel_drives_the_rate():
    sim = glm.simulate_current_injection(duration_s=120.0, bin_s=0.005, seed=0)
    assert sim.current.shape == sim.counts.shape == sim.t.shape
    assert sim.kernel.shape == sim.kernel_lags_s.shape
    assert sim.kernel_lags_s[0] == pytest.approx(sim.bin_s)  # strictly causal
    assert sim.kernel.max() > 0 > sim.kernel.min()  # biphasic
    outside = np.ones(sim.t.size, bool)
    for start, end in sim.sweep_bounds:
        outside &= ~((sim.t >= start) & (sim.t < end))
    assert np.all(sim.current[outside] == 0)
    # The spike-triggered average of the current, read backwards, has the kernel's sign
    # pattern: more current shortly before a spike than on average.
    spike_bins = np.flatnonzero(sim.counts)
    spike_bins = spike_bins[spike_bins > 5]
    assert sim.current[spike_bins - 2].mean() > sim.current[~outside].mean()
    drive = np.convolve(sim.current, np.concatenate([[0.0], sim.kernel]))[: sim.t.size]
    expected = np.exp(sim.baseline_log_rate + drive) * sim.bin_s
    assert sim.counts.sum() == pytest.approx(expected.sum(), rel=0.1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(duration_s=5.0), "shorter than one sweep"),
        (dict(window_s=0.01), "at least 4 bins"),
        (dict(baseline_rate_hz=0.0), "positive"),
    ],
)
def test_current_injection_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        glm.simulate_current_injection(**kwargs)
