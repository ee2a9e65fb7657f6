"""Tests of the active design of chapter 3: random groups, input directions, the greedy choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.models import low_rank_ar as lrar
from course_utils.models import stim_design


def groups_on(d: int, *members: list[int]) -> np.ndarray:
    patterns = np.zeros((len(members), d))
    for row, neurons in zip(patterns, members):
        row[neurons] = 1.0
    return patterns


def expected_error(
    seen: np.ndarray,
    directions: np.ndarray,
    terms=stim_design.DESIGN_TERMS,
    order: int = 2,
    prior_count: float = 0.5,
    ridge: float = 1e-3,
) -> float:
    """E of the module docstring, computed directly (no rank-one updates)."""
    d, rank = directions.shape
    g = int(seen[0].sum())
    p_in, p_pair = g / d, g * (g - 1) / (d * (d - 1))
    second_moment = (p_in - p_pair) * np.eye(d) + p_pair * np.ones((d, d))  # E[u u^T], random group
    total = 0.0
    if "neurons" in terms:
        total += p_in * order * np.sum(1 / (seen.sum(axis=0) + prior_count))
        total += rank * np.trace(second_moment @ np.linalg.inv(seen.T @ seen + prior_count * np.eye(d)))
    if "directions" in terms:
        z = seen @ directions
        total += d * np.trace(directions.T @ second_moment @ directions @ np.linalg.inv(z.T @ z + ridge * np.eye(rank)))
    return total


def test_second_moment_of_random_groups_is_the_one_E_assumes():
    d, g = 9, 3
    patterns = stim_design.random_groups(d, g, 40_000, np.random.default_rng(7))
    p_in, p_pair = g / d, g * (g - 1) / (d * (d - 1))
    expected = (p_in - p_pair) * np.eye(d) + p_pair * np.ones((d, d))
    np.testing.assert_allclose(patterns.T @ patterns / len(patterns), expected, atol=0.01)


def test_random_groups_have_the_right_size_and_vary():
    patterns = stim_design.random_groups(20, 4, 50, np.random.default_rng(0))
    assert patterns.shape == (50, 20) and set(np.unique(patterns)) == {0.0, 1.0}
    assert (patterns.sum(axis=1) == 4).all()
    assert np.unique(patterns, axis=0).shape[0] > 40
    assert (patterns.sum(axis=0) > 0).all()  # 200 draws reach every neuron
    np.testing.assert_array_equal(patterns, stim_design.random_groups(20, 4, 50, np.random.default_rng(0)))


@pytest.mark.parametrize(
    "args, match",
    [
        ((20, 21, 3), "exceeds"),
        ((20, 0, 3), "group_size"),
        ((20, 4, 1.5), "n_groups"),
    ],
)
def test_random_groups_reject_bad_sizes(args, match):
    with pytest.raises(ValueError, match=match):
        stim_design.random_groups(*args, np.random.default_rng(0))


def test_input_directions_span_the_input_factors_of_every_lag_and_respect_the_rank():
    d = 12
    model = lrar.LowRankAR(d, 2, ranks=[3, 1], generator=torch.Generator().manual_seed(0))
    found = stim_design.input_directions(model, 0)
    assert found.shape == (d, 6)  # two lags of rank 3
    np.testing.assert_allclose(found.T @ found, np.eye(6), atol=1e-10)
    factors = torch.cat([model.V_B[0, 0], model.V_B[0, 1]], dim=1).detach().double().numpy()
    projector = factors @ np.linalg.pinv(factors)
    np.testing.assert_allclose(found @ found.T, projector, atol=1e-8)
    second = stim_design.input_directions(model, 1)  # rank 1: only the first factor column counts
    assert second.shape == (d, 2)
    first_columns = model.V_B[1, :, :, 0].detach().double().numpy().T
    np.testing.assert_allclose(second @ second.T @ first_columns, first_columns, atol=1e-8)


def test_input_directions_reject_bad_models():
    model = lrar.LowRankAR(6, 1, ranks=[2])
    with pytest.raises(ValueError, match="index"):
        stim_design.input_directions(model, 1)
    with torch.no_grad():
        model.V_B.zero_()
    with pytest.raises(ValueError, match="no input direction"):
        stim_design.input_directions(model)
    with torch.no_grad():
        model.V_B.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        stim_design.input_directions(model)


def test_the_per_neuron_term_stimulates_the_neurons_never_stimulated():
    d = 10
    seen = groups_on(d, [0, 1, 2], [0, 1, 3])
    candidates = groups_on(d, [0, 1, 2], [7, 8, 9], [2, 3, 4], [4, 5, 6])
    directions = np.eye(d)[:, :2]
    chosen = stim_design.choose_patterns(candidates, seen, directions, 2, terms=("neurons",))
    assert set(chosen.tolist()) == {1, 3}  # the two groups of unstimulated neurons


def test_the_directions_term_probes_the_least_known_direction():
    d = 10
    v1 = np.r_[np.ones(5), np.zeros(5)] / np.sqrt(5)
    v2 = np.r_[np.zeros(5), np.ones(5)] / np.sqrt(5)
    directions = np.stack([v1, v2], axis=1)
    seen = groups_on(d, [0, 1, 2], [1, 2, 3], [2, 3, 4], [5, 0, 1])  # mostly along v1
    candidates = groups_on(d, [0, 1, 4], [6, 7, 8])
    assert stim_design.choose_patterns(candidates, seen, directions, 1, terms=("directions",)).tolist() == [1]


@pytest.mark.parametrize("terms", [("neurons",), ("directions",), ("neurons", "directions")])
def test_each_greedy_step_takes_the_candidate_that_lowers_E_most(terms):
    rng = np.random.default_rng(2)
    d, rank = 15, 3
    directions, _ = np.linalg.qr(rng.standard_normal((d, rank)))
    seen = stim_design.random_groups(d, 4, 3, rng)
    candidates = stim_design.random_groups(d, 4, 40, rng)
    chosen = stim_design.choose_patterns(candidates, seen, directions, 3, order=2, terms=terms)
    assert np.unique(chosen).size == 3
    for step, index in enumerate(chosen):  # brute force: E after adding each remaining candidate
        remaining = [c for c in range(40) if c not in chosen[:step]]
        errors = {c: expected_error(np.vstack([seen, candidates[c]]), directions, terms) for c in remaining}
        assert index == min(errors, key=errors.get)
        seen = np.vstack([seen, candidates[index]])


def test_choose_patterns_starts_from_nothing_and_can_take_every_candidate():
    candidates = stim_design.random_groups(8, 2, 5, np.random.default_rng(3))
    chosen = stim_design.choose_patterns(candidates, np.zeros((0, 8)), np.eye(8)[:, :2], 5)
    assert sorted(chosen.tolist()) == list(range(5))


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(candidates=np.full((3, 8), 0.5)), "0/1"),
        (dict(candidates=groups_on(8, [0, 1], [2])), "same number"),
        (dict(seen=np.zeros((2, 7))), "seen"),
        (dict(directions=np.zeros((7, 2))), "directions"),
        (dict(n_choose=4), "n_choose"),
        (dict(terms=("neurons", "luck")), "terms"),
        (dict(terms=()), "terms"),
        (dict(prior_count=0.0), "positive"),
        (dict(ridge=-1.0), "positive"),
        (dict(order=0), "order"),
    ],
)
def test_choose_patterns_rejects_bad_input(change, match):
    arguments = (
        dict(
            candidates=groups_on(8, [0, 1], [2, 3], [4, 5]),
            seen=groups_on(8, [0, 1]),
            directions=np.eye(8)[:, :2],
            n_choose=2,
        )
        | change
    )
    with pytest.raises(ValueError, match=match):
        stim_design.choose_patterns(**arguments)
