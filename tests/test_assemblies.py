"""Tests of the planted-assembly simulator and its loader (chapter 4)."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.data import load_assemblies
from course_utils.simulate.assemblies import simulate_assemblies


@pytest.fixture(scope="module")
def sim():
    return simulate_assemblies(n_neurons=120, n_assemblies=8, n_timepoints=20000, seed=3)


def test_shapes_split_and_binary(sim):
    assert sim.activity.shape == (20000, 120) and sim.activity.dtype == np.uint8
    assert set(np.unique(sim.activity)) <= {0, 1}
    assert sim.membership.shape == (8, 120) and sim.assembly_activity.shape == (20000, 8)
    assert sim.train.shape[0] == 16000 and sim.test.shape[0] == 4000
    np.testing.assert_array_equal(np.vstack([sim.train, sim.test]), sim.activity)


def test_every_neuron_in_one_to_three_assemblies_and_no_assembly_empty(sim):
    per_neuron = sim.membership.sum(axis=0)
    assert per_neuron.min() >= 1 and per_neuron.max() <= 3
    assert set(per_neuron) == {1, 2, 3}
    assert sim.membership.sum(axis=1).min() >= 1


def test_active_fraction_and_persistence(sim):
    on = sim.assembly_activity
    assert on.mean() == pytest.approx(0.1, abs=0.02)
    # Mean length of an active run matches mean_duration (default 4 bins).
    starts = (on[1:] & ~on[:-1]).sum()
    assert on.sum() / starts == pytest.approx(4.0, rel=0.15)


def test_firing_follows_the_noisy_or_of_the_assemblies(sim):
    p = sim.firing_probability()
    # Observed and true rates agree per neuron; members fire more when their assembly is on.
    np.testing.assert_allclose(sim.activity.mean(0), p.mean(0), atol=0.02)
    k = 0
    members = sim.membership[k]
    on = sim.assembly_activity[:, k]
    assert sim.activity[on][:, members].mean() > sim.activity[~on][:, members].mean() + 0.3
    # Silent bins fire at the baseline.
    silent = ~sim.assembly_activity.any(axis=1)
    np.testing.assert_allclose(sim.activity[silent].mean(0), sim.baseline, atol=0.03)


def test_same_seed_same_data_other_seed_other_data():
    a = simulate_assemblies(40, 4, 500, seed=1)
    b = simulate_assemblies(40, 4, 500, seed=1)
    c = simulate_assemblies(40, 4, 500, seed=2)
    np.testing.assert_array_equal(a.activity, b.activity)
    assert not np.array_equal(a.activity, c.activity)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_neurons=1), "n_neurons"),
        (dict(n_assemblies=0), "n_assemblies"),
        (dict(active_fraction=1.0), "active_fraction"),
        (dict(mean_duration=0.5), "mean_duration"),
        (dict(active_fraction=0.9, mean_duration=1.0), "switch-on"),
        (dict(drive=(0.9, 0.5)), "drive"),
        (dict(assemblies_per_neuron=(0.5, 0.6)), "assemblies_per_neuron"),
        (dict(train_fraction=1.0), "train_fraction"),
    ],
)
def test_bad_arguments_say_what_is_wrong(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate_assemblies(**{**dict(n_neurons=20, n_assemblies=3, n_timepoints=100), **kwargs})


def test_loader_simulated_and_user():
    data = load_assemblies(n_neurons=30, n_assemblies=3, n_timepoints=200, seed=4)
    assert data.source == "simulated" and data.truth is not None
    assert data.train.shape == (160, 30) and data.test.shape == (40, 30)
    mine = np.random.default_rng(0).random((50, 6)) < 0.2
    user = load_assemblies("user", data=mine, train_fraction=0.6)
    assert user.source == "user" and user.truth is None
    np.testing.assert_array_equal(np.vstack([user.train, user.test]), mine.astype(np.uint8))
    assert user.train.shape == (30, 6)


@pytest.mark.parametrize(
    "activity, match",
    [
        (None, "needs your data"),
        (np.zeros(10), "2-D"),
        (np.full((20, 3), 0.5), "binary"),
        (np.array([[0, 1], [np.nan, 1], [0, 0], [1, 1]]), "NaN"),
        (np.array([["a", "b"]] * 10), "numbers"),
        (np.zeros((20, 1)), "at least 2 neurons"),
        (np.zeros((3, 50)), "transposed"),
    ],
)
def test_loader_rejects_bad_user_arrays(activity, match):
    with pytest.raises(ValueError, match=match):
        load_assemblies("user", data=activity)


def test_loader_rejects_unknown_source_and_mixed_arguments():
    with pytest.raises(ValueError, match="gin.g-node.org"):
        load_assemblies("real")
    with pytest.raises(ValueError, match="only read with source='user'"):
        load_assemblies("simulated", data=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="n_neurons only apply to source='simulated'"):
        load_assemblies("user", data=np.zeros((10, 3)), n_neurons=5)
    with pytest.raises(ValueError, match="load 'my_activity.npy' yourself"):
        load_assemblies("my_activity.npy")


def test_loader_cuts_train_validation_and_test_blocks_with_gaps():
    mine = (np.arange(100)[:, None] * np.ones((1, 3)) % 2).astype(np.uint8)
    mine[:, 2] = np.arange(100) % 7 == 0  # column 2 marks the time bin: 1 every 7 bins
    data = load_assemblies("user", data=mine, train_fraction=0.6, validation_fraction=0.2, gap=5)
    assert data.train.shape[0] == 60 and data.validation.shape[0] == 20 and data.test.shape[0] == 10
    np.testing.assert_array_equal(data.validation, mine[65:85])  # 5 bins after training
    np.testing.assert_array_equal(data.test, mine[90:])  # 5 bins after validation
    simulated = load_assemblies(
        n_neurons=20, n_assemblies=3, n_timepoints=300, seed=1, train_fraction=0.6, validation_fraction=0.2, gap=10
    )
    np.testing.assert_array_equal(simulated.validation, simulated.truth.activity[190:250])
    np.testing.assert_array_equal(simulated.test, simulated.truth.activity[260:])
    assert load_assemblies(n_neurons=20, n_assemblies=3, n_timepoints=100, seed=1).validation.shape == (0, 20)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(validation_fraction=0.5), "leave room for a test block"),
        (dict(gap=-1), "gap must be a non-negative integer"),
        (dict(validation_fraction=0.2, gap=30), "too few for the blocks"),
    ],
)
def test_loader_rejects_blocks_that_do_not_fit(options, match):
    with pytest.raises(ValueError, match=match):
        load_assemblies("user", data=np.zeros((100, 3)), train_fraction=0.6, **options)
