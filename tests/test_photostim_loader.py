"""Tests of load_photostim: the simulated default, your own arrays, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.data import PhotostimSession, load_photostim

SMALL = dict(n_neurons=25, rank=2, order=2, n_groups=10, n_heldout_groups=2, group_size=5, n_repeats=3)


@pytest.fixture(scope="module")
def simulated() -> PhotostimSession:
    return load_photostim(seed=5, **SMALL)


def test_simulated_session_carries_the_truth(simulated):
    sim = simulated.truth
    assert simulated.source == "simulated"
    np.testing.assert_array_equal(simulated.activity, sim.activity)
    np.testing.assert_array_equal(simulated.trial_onsets, sim.trial_onsets)
    np.testing.assert_array_equal(simulated.patterns[simulated.trial_pattern], sim.stimulation[sim.trial_onsets])
    np.testing.assert_array_equal(simulated.heldout_patterns, sim.heldout_groups)
    assert (simulated.stim_frames, simulated.trial_frames) == (sim.stim_frames, sim.trial_frames) == (3, 15)


def test_user_arrays_give_the_same_trials(simulated):
    for arrays in (
        (simulated.activity, simulated.stimulation),
        {"activity": simulated.activity.tolist(), "stimulation": simulated.stimulation},
    ):
        yours = load_photostim("user", data=arrays, seed=1)
        assert yours.source == "user" and yours.truth is None
        np.testing.assert_array_equal(yours.trial_onsets, simulated.trial_onsets)
        # Patterns are numbered differently, but each trial stimulates the same neurons.
        np.testing.assert_array_equal(yours.patterns[yours.trial_pattern], simulated.patterns[simulated.trial_pattern])
        assert yours.patterns.shape == simulated.patterns.shape
        assert (yours.stim_frames, yours.trial_frames) == (3, 15)
        assert yours.heldout_patterns.size == 2  # a fifth of 10 patterns
        assert len(set(yours.heldout_patterns)) == 2


def test_user_held_out_patterns_follow_the_seed(simulated):
    arrays = (simulated.activity, simulated.stimulation)
    a = load_photostim("user", data=arrays, seed=3, n_heldout_patterns=4)
    b = load_photostim("user", data=arrays, seed=3, n_heldout_patterns=4)
    np.testing.assert_array_equal(a.heldout_patterns, b.heldout_patterns)
    assert a.heldout_patterns.size == 4
    with pytest.raises(ValueError, match="n_heldout_patterns must be an integer from 1 to 9"):
        load_photostim("user", data=arrays, n_heldout_patterns=10)


def test_back_to_back_trials_of_different_patterns_are_split():
    stimulation = np.zeros((20, 3))
    stimulation[2:4, 0] = 1  # pattern A
    stimulation[4:6, 1] = 1  # pattern B right after
    stimulation[10:12, 0] = 1  # pattern A again
    session = load_photostim("user", data=(np.zeros((20, 3)), stimulation))
    assert session.trial_onsets.tolist() == [2, 4, 10]
    assert session.trial_pattern[0] == session.trial_pattern[2] != session.trial_pattern[1]
    assert session.stim_frames == 2


def test_real_source_explains_there_is_no_public_copy():
    with pytest.raises(ValueError, match="not public.*source='user'"):
        load_photostim("real")
    with pytest.raises(ValueError, match="'simulated' .*or 'user'"):
        load_photostim("recording")
    with pytest.raises(ValueError, match="load 'rec.npz' yourself .*data=\\(activity, stimulation\\)"):
        load_photostim("rec.npz")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda a, s: None, "needs your data"),
        (lambda a, s: (a,), r"\(activity, stimulation\)"),
        (lambda a, s: {"activity": a}, "missing \\['stimulation'\\]"),
        (lambda a, s: (a[:, 0], s), "2-D"),
        (lambda a, s: (a, s[:, :-1]), "same shape.*transpose"),
        (lambda a, s: (np.where(np.arange(a.shape[0])[:, None] == 7, np.nan, a), s), "NaN or inf.*first in frame 7"),
        (lambda a, s: (a, -s), "non-negative"),
        (lambda a, s: (a, np.zeros_like(s)), "zero everywhere"),
        (lambda a, s: (a, (s.any(axis=1, keepdims=True) * np.eye(1, s.shape[1]))), "at least 2"),
        (lambda a, s: (np.full(a.shape, "x"), s), "numeric array"),
    ],
)
def test_bad_user_arrays_raise_with_advice(simulated, make, match):
    arrays = make(simulated.activity, simulated.stimulation)
    with pytest.raises(ValueError, match=match):
        load_photostim("user", data=arrays)


def test_arguments_of_the_other_source_are_refused(simulated):
    with pytest.raises(ValueError, match="only read with source='user'"):
        load_photostim("simulated", data=(simulated.activity, simulated.stimulation))
    with pytest.raises(ValueError, match="only apply to source='simulated'"):
        load_photostim("user", data=(simulated.activity, simulated.stimulation), n_neurons=5)
    with pytest.raises(ValueError, match="n_heldout_groups"):
        load_photostim("simulated", n_heldout_patterns=2, **SMALL)
