"""Tests of the photostimulation simulator: trial structure, stability, and that the truth is true."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from course_utils.simulate import photostim

SMALL = dict(n_neurons=30, rank=2, order=2, n_groups=8, n_heldout_groups=2, group_size=5, n_repeats=3)


@pytest.fixture(scope="module")
def sim() -> photostim.PhotostimSimulation:
    return photostim.simulate_photostim(seed=4, **SMALL)


def test_shapes_and_trial_structure(sim):
    n_trials = SMALL["n_groups"] * SMALL["n_repeats"]
    assert sim.activity.shape == sim.stimulation.shape == (30 + n_trials * 15, 30)
    assert sim.trial_onsets.shape == sim.trial_group.shape == (n_trials,)
    assert np.all(np.diff(sim.trial_onsets) == sim.trial_frames)
    assert np.bincount(sim.trial_group).tolist() == [SMALL["n_repeats"]] * SMALL["n_groups"]
    for onset, group in zip(sim.trial_onsets, sim.trial_group):
        stimulated = np.flatnonzero(sim.stimulation[onset])
        np.testing.assert_array_equal(stimulated, sim.groups[group])
        assert sim.stimulation[onset : onset + sim.stim_frames].any(axis=1).all()
        assert not sim.stimulation[onset + sim.stim_frames : onset + sim.trial_frames].any()
    assert not sim.stimulation[: sim.trial_onsets[0]].any()  # the lead-in is spontaneous


def test_groups_cover_the_population_and_heldout_groups_are_new(sim):
    train = np.setdiff1d(np.arange(SMALL["n_groups"]), sim.heldout_groups)
    assert np.unique(sim.groups[train]).size == SMALL["n_neurons"]  # every neuron stimulated in training
    assert all(np.unique(g).size == SMALL["group_size"] for g in sim.groups)
    train_sets = {tuple(g) for g in sim.groups[train]}
    assert not any(tuple(g) in train_sets for g in sim.groups[sim.heldout_groups])
    assert sim.is_heldout_trial.sum() == SMALL["n_heldout_groups"] * SMALL["n_repeats"]
    assert sim.patterns.sum(axis=1).tolist() == [SMALL["group_size"]] * SMALL["n_groups"]


def test_dynamics_are_stable_diagonal_plus_low_rank(sim):
    dyn = sim.dynamics
    assert dyn.order == 2 and dyn.rank == 2 and dyn.n_neurons == 30
    assert dyn.spectral_radius() <= 0.9 + 1e-9
    for full, diag in ((dyn.A, dyn.diag_A), (dyn.B, dyn.diag_B)):
        off_diagonal = full - np.einsum("sd,de->sde", diag, np.eye(30))
        for s in range(dyn.order):
            singular = np.linalg.svd(off_diagonal[s], compute_uv=False)
            assert singular[1] > 1e-3 and singular[2] < 1e-10  # exactly rank 2
    assert np.all(dyn.diag_B[0] > 0)  # stimulating a neuron excites it


def test_noiseless_activity_follows_the_recursion():
    clean = photostim.simulate_photostim(seed=1, noise_std=0.0, obs_noise_std=0.0, **SMALL)
    dyn, x, u = clean.dynamics, clean.activity, clean.stimulation
    np.testing.assert_allclose(x[: dyn.order], np.tile(dyn.baseline(), (dyn.order, 1)))
    for t in range(dyn.order - 1, 200):
        expected = dyn.bias + sum(dyn.A[s] @ x[t - s] + dyn.B[s] @ u[t - s] for s in range(dyn.order))
        np.testing.assert_allclose(x[t + 1], expected, atol=1e-9)
    # The trial-locked deviation from baseline is the noiseless response to the group's pattern.
    onset, group = clean.trial_onsets[0], clean.trial_group[0]
    response = dyn.response(clean.patterns[group], 6, clean.stim_frames)
    np.testing.assert_allclose(x[onset : onset + 6] - dyn.baseline(), response, atol=1e-9)


def test_response_is_linear_and_batched(sim):
    dyn = sim.dynamics
    one, two = sim.patterns[0], sim.patterns[1]
    batch = dyn.response(np.stack([one, two]), 8, 3)
    assert batch.shape == (2, 8, 30)
    np.testing.assert_allclose(dyn.response(one + two, 8, 3), batch.sum(axis=0), atol=1e-12)
    assert np.all(batch[:, 0] == 0)  # stimulation shows from the next frame on
    with pytest.raises(ValueError, match="one per neuron"):
        dyn.response(np.ones(7), 8, 3)


def test_noise_levels_are_what_they_say():
    quiet = photostim.simulate_photostim(seed=2, noise_std=0.0, obs_noise_std=0.5, **SMALL)
    clean = photostim.simulate_photostim(seed=2, noise_std=0.0, obs_noise_std=0.0, **SMALL)
    assert np.std(quiet.activity - clean.activity) == pytest.approx(0.5, rel=0.05)


def test_same_seed_same_data_other_seed_other_data():
    a = photostim.simulate_photostim(seed=7, **SMALL)
    b = photostim.simulate_photostim(seed=7, **SMALL)
    c = photostim.simulate_photostim(seed=8, **SMALL)
    np.testing.assert_array_equal(a.activity, b.activity)
    assert not np.allclose(a.activity, c.activity)


def test_given_dynamics_are_used(sim):
    again = photostim.simulate_photostim(seed=99, dynamics=sim.dynamics, **SMALL)
    np.testing.assert_array_equal(again.dynamics.A, sim.dynamics.A)
    with pytest.raises(ValueError, match="dynamics are for 30 neurons"):
        photostim.simulate_photostim(**{**SMALL, "n_neurons": 40}, dynamics=sim.dynamics)


@pytest.mark.parametrize(
    "bad, match",
    [
        (dict(n_neurons=0), "n_neurons must be a positive integer"),
        (dict(group_size=31), "exceeds n_neurons"),
        (dict(n_heldout_groups=8), "n_heldout_groups must be between"),
        (dict(stim_frames=15), "must be shorter than trial_frames"),
        (dict(rank=30), "to be low rank"),
        (dict(order=1.5), "order must be a positive integer"),
    ],
)
def test_bad_sizes_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        photostim.simulate_photostim(**{**SMALL, **bad})


# --------------------------------------------------------------------------- designed blocks


def test_simulate_trials_records_each_pattern_and_its_true_response(sim):
    clean = dataclasses.replace(sim.dynamics, noise_std=0.0, obs_noise_std=0.0)
    patterns = sim.patterns[:3]
    activity, stimulation = photostim.simulate_trial_block(
        clean, patterns, 2, seed=np.random.default_rng(0), lead_in_frames=20
    )
    assert activity.shape == stimulation.shape == (20 + 3 * 2 * 15, 30)
    onsets = 20 + 15 * np.arange(6)
    seen = [int(np.flatnonzero((patterns == stimulation[onset]).all(axis=1))[0]) for onset in onsets]
    assert sorted(seen) == [0, 0, 1, 1, 2, 2]  # every pattern twice, in some order
    assert not stimulation[:20].any()
    # The block starts at baseline and each trial is the noiseless response plus the tails
    # of earlier trials: the first trial is the response alone.
    np.testing.assert_allclose(activity[:20], np.tile(clean.baseline(), (20, 1)), atol=1e-9)
    response = clean.response(patterns[seen[0]], 15, 3)
    np.testing.assert_allclose(activity[20:35] - clean.baseline(), response, atol=1e-9)


def test_simulate_trials_is_reproducible_and_noisy(sim):
    first = photostim.simulate_trial_block(sim.dynamics, sim.patterns[:2], 3, seed=np.random.default_rng(5))
    again = photostim.simulate_trial_block(sim.dynamics, sim.patterns[:2], 3, seed=np.random.default_rng(5))
    other = photostim.simulate_trial_block(sim.dynamics, sim.patterns[:2], 3, seed=np.random.default_rng(6))
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.allclose(first[0], other[0])


@pytest.mark.parametrize(
    "patterns, kwargs, match",
    [
        (np.ones((2, 29)), {}, "shape"),
        (np.zeros((0, 30)), {}, "shape"),
        (-np.ones((2, 30)), {}, "non-negative"),
        (np.full((2, 30), np.nan), {}, "finite"),
        (np.ones((2, 30)), dict(lead_in_frames=1), "lead_in_frames"),
        (np.ones((2, 30)), dict(stim_frames=15), "shorter"),
    ],
)
def test_simulate_trials_rejects_bad_input(sim, patterns, kwargs, match):
    with pytest.raises(ValueError, match=match):
        photostim.simulate_trial_block(sim.dynamics, patterns, 2, seed=np.random.default_rng(0), **kwargs)
