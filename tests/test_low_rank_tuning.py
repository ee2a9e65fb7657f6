"""Tests of chapter 3's leakage-free cross-validation (course_utils.models.low_rank_tuning)."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from course_utils.data import load_photostim
from course_utils.models import low_rank_ar as lrar
from course_utils.models import low_rank_tuning as tuning

SMALL = dict(n_neurons=16, rank=2, order=2, n_groups=12, n_heldout_groups=3, group_size=4, n_repeats=3)
K_MAX = 3


@pytest.fixture(scope="module")
def session():
    return load_photostim(seed=11, **SMALL)


def _setup(session, n_folds=3, seed=0):
    data = lrar.lag_data(session.activity, session.stimulation, K_MAX)
    frames = tuning.frame_patterns(session.activity.shape[0], session.trial_onsets, session.trial_pattern)
    windows = tuning.window_patterns(data.frame.numpy(), K_MAX, frames)
    n_patterns = session.patterns.shape[0]
    train = np.setdiff1d(np.arange(n_patterns), session.heldout_patterns)
    pattern_fold = tuning.assign_folds(
        train, session.heldout_patterns, n_patterns, n_folds, np.random.default_rng(seed)
    )
    return data, windows, pattern_fold


def test_frame_patterns_mark_the_lead_in_and_each_trial():
    frames = tuning.frame_patterns(10, np.array([2, 5, 8]), np.array([4, 0, 4]))
    assert frames.tolist() == [tuning.FREE] * 2 + [4, 4, 4, 0, 0, 0, 4, 4]
    with pytest.raises(ValueError, match="increasing"):
        tuning.frame_patterns(10, np.array([5, 2]), np.array([0, 1]))


def test_windows_hold_the_lags_then_the_target():
    frames = np.array([tuning.FREE, 0, 0, 1, 1])
    windows = tuning.window_patterns(np.array([2, 4]), 2, frames)
    assert windows.tolist() == [[tuning.FREE, 0, 0], [0, 1, 1]]
    with pytest.raises(ValueError, match="outside the recording"):
        tuning.window_patterns(np.array([1]), 2, frames)


def test_no_fitted_row_reads_a_held_out_frame(session):
    _, windows, pattern_fold = _setup(session)
    masks = tuning.fold_masks(windows, pattern_fold)
    label = np.where(windows >= 0, pattern_fold[np.clip(windows, 0, None)], tuning.FREE)
    for f in range(3):
        assert not np.isin(label[masks.fit[f]], [f, tuning.TEST]).any()
        assert (label[masks.val[f], -1] == f).all()
        assert not (masks.fit[f] & masks.val[f]).any()
    assert not (label[masks.train] == tuning.TEST).any()
    assert (label[masks.test, -1] == tuning.TEST).all()
    # The rule removes rows that whole groups alone would keep: the starts of trials after
    # a held-out trial.
    assert masks.n_dropped > 0
    naive = masks.train[None] & ~masks.val
    assert (masks.fit <= naive).all()


def test_fold_masks_reject_a_single_fold(session):
    _, windows, pattern_fold = _setup(session)
    one_fold = np.where(pattern_fold >= 0, 0, pattern_fold)
    with pytest.raises(ValueError, match="two folds"):
        tuning.fold_masks(windows, one_fold)
    with pytest.raises(ValueError, match="cannot fill"):
        tuning.assign_folds(np.arange(2), np.arange(2, 4), 4, 3, np.random.default_rng(0))


def _perturb_frames(session, patterns, rng):
    """A copy of the session whose activity is replaced by noise in the trials of `patterns`."""
    frames = tuning.frame_patterns(session.activity.shape[0], session.trial_onsets, session.trial_pattern)
    activity = session.activity.copy()
    hit = np.isin(frames, patterns)
    activity[hit] = rng.normal(0, 5, size=(hit.sum(), activity.shape[1]))
    return replace(session, activity=activity)


def test_a_folds_nested_start_never_sees_that_fold(session):
    data, windows, pattern_fold = _setup(session)
    lambdas = np.logspace(-3, 1, 5)
    starts, chosen = tuning.nested_ridge_starts(data, windows, pattern_fold, lambdas)
    assert starts.A.shape[:2] == (3, 1) and chosen.shape == (3,)
    fold0 = np.flatnonzero(pattern_fold == 0)
    changed = _perturb_frames(session, fold0, np.random.default_rng(1))
    data2 = lrar.lag_data(changed.activity, changed.stimulation, K_MAX)
    starts2, chosen2 = tuning.nested_ridge_starts(data2, windows, pattern_fold, lambdas)
    assert chosen2[0] == chosen[0]
    torch.testing.assert_close(starts2.A[0], starts.A[0])
    torch.testing.assert_close(starts2.B[0], starts.B[0])
    assert not torch.allclose(starts2.A[1], starts.A[1])  # fold 1 trains on fold 0's trials


GRID = dict(
    orders=(1, 2, 3),
    ranks=(1, 2, 3),
    lambdas=(1e-3, 1e-2),
    ridge_lambdas=np.logspace(-3, 1, 5),
    lr=0.05,
    steps=40,
    eval_every=10,
    n_folds=3,
)


def test_tuning_never_reads_the_test_trials(session):
    first = tuning.tune_low_rank(session, rng=np.random.default_rng(0), **GRID)
    assert first.order in GRID["orders"] and first.rank in GRID["ranks"] and 1 <= first.epochs <= GRID["steps"]
    assert set(first.test_mse) == {"least squares", "ridge", "low rank", "true model"}
    assert first.gain == pytest.approx(1 - first.test_mse["low rank"] / first.test_mse["least squares"])
    changed = _perturb_frames(session, session.heldout_patterns, np.random.default_rng(2))
    second = tuning.tune_low_rank(changed, rng=np.random.default_rng(0), **GRID)
    chosen = ("order", "rank", "lam", "epochs", "ridge_lambda", "ridge_order", "least_squares_order")
    assert [getattr(second, name) for name in chosen] == [getattr(first, name) for name in chosen]
    assert second.test_mse["low rank"] != first.test_mse["low rank"]  # only the scores moved


def test_random_initialization_runs_the_same_protocol(session):
    result = tuning.tune_low_rank(session, init="random", rng=np.random.default_rng(0), **GRID)
    assert result.order in GRID["orders"] and np.isfinite(list(result.test_mse.values())).all()


def test_tuning_rejects_an_unknown_initialization(session):
    with pytest.raises(ValueError, match="init"):
        tuning.tune_low_rank(session, init="zeros", rng=np.random.default_rng(0), **GRID)
