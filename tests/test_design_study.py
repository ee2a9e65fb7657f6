"""Tests of chapter 3's comparison of stimulus designs (course_utils.models.design_study)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.models import design_study
from course_utils.models import low_rank_ar as lrar
from course_utils.models import low_rank_tuning as tuning
from course_utils.simulate.photostim import simulate_photostim, simulate_trial_block

ORDER, RANK = 1, 2
DESIGNS = {"random": None, "active": ("neurons", "directions"), "per-neuron term only": ("neurons",)}
SIZES = dict(n_neurons=12, group_size=3, order=ORDER, n_initial=2, per_round=2, n_rounds=2, n_experiments=2)


@pytest.fixture(scope="module")
def experiment():
    """A small planted system, and the record/refit/score functions chapter 3 passes."""
    sim = simulate_photostim(n_neurons=12, rank=RANK, order=ORDER, n_groups=6, n_heldout_groups=1, group_size=3, seed=0)
    test = lrar.lag_data(*simulate_trial_block(sim.dynamics, sim.patterns[:3], 2, seed=9), ORDER)
    calls = []

    def record(patterns, rng):
        calls.append(len(patterns))
        return lrar.lag_data(*simulate_trial_block(sim.dynamics, patterns, 2, seed=rng), ORDER)

    def refit(datasets):
        everything = lrar.LaggedData.concatenate(datasets)
        owner = torch.cat([torch.full((len(rows),), i) for i, rows in enumerate(datasets)])
        masks = owner[None, :] == torch.arange(len(datasets))[:, None]
        start = tuning.repeat_per_fold(lrar.ridge_ar(everything, [1.0], masks), 1)  # one start per dataset
        model = lrar.LowRankAR.from_weights(start, ranks=[RANK] * len(datasets))
        lrar.train_batched(model, lrar.compress(everything, masks), lambdas=0.1, lr=0.01, steps=5)
        return model

    def score(model):
        with torch.no_grad():
            return lrar.mse(model(test.x_lags, test.u_lags), test.target).numpy()

    return dict(record=record, refit=refit, score=score), calls


def run(functions, **changes):
    return design_study.compare_designs(DESIGNS, **functions, **{**SIZES, "n_candidates": 6, "seed": 4, **changes})


def test_every_design_starts_alike_and_grows_by_its_rounds(experiment):
    functions, calls = experiment
    calls.clear()
    study = run(functions)
    assert study.design_names == tuple(DESIGNS)
    assert study.mse.shape == study.unstimulated.shape == (3, 2, 3)
    assert study.groups_seen.tolist() == [2, 4, 6]
    assert np.isfinite(study.mse).all() and (study.mse > 0).all()
    for experiment_index in range(2):
        first = study.patterns[experiment_index, "random"][:2]
        for name in DESIGNS:
            chosen = study.patterns[experiment_index, name]
            assert chosen.shape == (6, 12) and (chosen.sum(axis=1) == 3).all()
            np.testing.assert_array_equal(chosen[:2], first)  # the common start
    # The common start is recorded once per repeat, then each design's picks once per round.
    assert calls == [2, 2] + [2] * (2 * 2 * 3)
    # Round 0: the same trials and fit for every design (float32 batches differ in rounding only).
    np.testing.assert_allclose(study.mse[0], np.repeat(study.mse[0][:, :1], 3, axis=1), rtol=1e-3)
    assert not np.allclose(study.mse[-1], np.repeat(study.mse[-1][:, :1], 3, axis=1), rtol=1e-3)


def test_the_study_follows_its_seed_and_summarizes_against_random(experiment):
    functions, _ = experiment
    first, again, other = run(functions), run(functions), run(functions, seed=5)
    np.testing.assert_allclose(first.mse, again.mse, rtol=1e-5)
    assert not np.allclose(first.mse, other.mse)
    gains = first.gain_over("random")
    assert gains["random"] == 0
    mean = first.mean_mse()
    assert gains["active"] == pytest.approx(100 * np.mean(1 - mean[1:, 1] / mean[1:, 0]))
    assert first.groups_to_match("random") <= 6  # random reaches its own final error at the latest there


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(n_candidates=1), "at least per_round"),
        (dict(n_rounds=0), "n_rounds"),
        (dict(group_size=1.5), "group_size"),
    ],
)
def test_impossible_studies_are_refused(experiment, changes, match):
    functions, _ = experiment
    with pytest.raises(ValueError, match=match):
        run(functions, **changes)
    with pytest.raises(ValueError, match="'random'"):
        design_study.compare_designs({"active": DESIGNS["active"]}, **functions, **SIZES, n_candidates=6, seed=0)
