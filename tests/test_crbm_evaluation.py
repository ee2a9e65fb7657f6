"""Tests of the cRBM evaluation scores in course_utils.models.crbm_evaluation (chapter 4)."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.models import crbm_evaluation


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_statistics_match_direct_formulas(rng):
    v = (rng.random((500, 6)) < 0.3).astype(float)
    h = rng.normal(size=(500, 4))
    stats = crbm_evaluation.crbm_statistics(v, h)
    assert set(stats) == set(crbm_evaluation.CRBM_STATISTICS)
    np.testing.assert_allclose(stats["v"], v.mean(0))
    np.testing.assert_allclose(stats["h"], h.mean(0))
    np.testing.assert_allclose(stats["vh"], np.cov(v.T, h.T, bias=True)[: v.shape[1], v.shape[1] :])
    cov_v = np.cov(v.T, bias=True)
    np.testing.assert_allclose(stats["vv"], cov_v[np.triu_indices(6, 1)])
    assert stats["vv"].shape == (15,) and stats["hh"].shape == (6,)
    np.testing.assert_allclose(stats["hh"], np.cov(h.T, bias=True)[np.triu_indices(4, 1)])


def test_conditional_means_give_the_hidden_statistics_of_samples(rng):
    # h | v independent across units with mean m(v): <h_mu h_nu>_c off the diagonal and
    # <v_i h_mu> are the same from samples and from conditional means (here with large T).
    T = 200_000
    v = (rng.random((T, 3)) < 0.4).astype(float)
    mean_h = np.column_stack([v[:, 0] + v[:, 1], 2 * v[:, 1] - v[:, 2]])
    sampled_h = mean_h + rng.normal(scale=1.5, size=mean_h.shape)
    a = crbm_evaluation.crbm_statistics(v, mean_h)
    b = crbm_evaluation.crbm_statistics(v, sampled_h)
    for key in ("h", "vh", "hh"):
        np.testing.assert_allclose(a[key], b[key], atol=0.02)


def test_shuffled_rmse_is_the_average_over_permutations(rng):
    reference = rng.normal(1.0, 2.0, size=7)
    values = rng.normal(0.5, 1.0, size=7)
    brute = np.mean([np.mean((reference - rng.permutation(values)) ** 2) for _ in range(20_000)])
    assert crbm_evaluation.shuffled_rmse(reference, values) ** 2 == pytest.approx(brute, rel=2e-2)
    # A constant statistic has nothing to shuffle: its shuffle is exact.
    assert crbm_evaluation.shuffled_rmse(np.ones(4), np.ones(4)) == 0.0
    with pytest.raises(ValueError, match="same number"):
        crbm_evaluation.shuffled_rmse(np.ones(3), np.ones(4))


def test_nrmse_reference_points():
    assert crbm_evaluation.nrmse(0.2, 0.2, 0.6) == 0.0
    assert crbm_evaluation.nrmse(0.6, 0.2, 0.6) == 1.0
    assert crbm_evaluation.nrmse(0.1, 0.2, 0.6) == pytest.approx(-0.25)
    assert np.isnan(crbm_evaluation.nrmse(0.3, 0.5, 0.5))  # shuffled no worse than the data: undefined
    assert np.isnan(crbm_evaluation.nrmse(np.nan, 0.1, 0.5))


def test_crbm_nrmse_is_zero_for_the_training_data_and_one_for_shuffled_statistics(rng):
    v = (rng.random((3000, 6)) < np.linspace(0.05, 0.5, 6)).astype(float)
    v[:, 1] = np.maximum(v[:, 1], v[:, 0])  # a correlated pair
    mixing = np.array([[1.0, 0.0, 0.3], [0.5, 2.0, 0.0], [0.0, -1.0, 1.5]])
    stats = lambda x: crbm_evaluation.crbm_statistics(x, x[:, :3] @ mixing)  # noqa: E731
    train, test = stats(v[:2000]), stats(v[2000:])
    as_train = crbm_evaluation.crbm_nrmse(train, test, train)
    assert all(as_train[key] == pytest.approx(0.0, abs=1e-12) for key in crbm_evaluation.CRBM_STATISTICS)
    # A "model" with the training statistics in shuffled places scores 1 on average.
    scores = [
        crbm_evaluation.crbm_nrmse(
            {k: rng.permutation(train[k].ravel()).reshape(train[k].shape) for k in train}, test, train
        )
        for _ in range(300)
    ]
    for key in crbm_evaluation.CRBM_STATISTICS:
        assert np.mean([s[key] ** 2 for s in scores]) ** 0.5 == pytest.approx(1.0, abs=0.15)
    with pytest.raises(ValueError, match="no 'hh'"):
        crbm_evaluation.crbm_nrmse({k: train[k] for k in ("v", "h", "vh", "vv")}, test, train)


def test_error_norm_leaves_out_the_hidden_means_and_bad_model_rule():
    scores = {"v": 0.3, "h": 5.0, "vh": 0.0, "vv": 0.4, "hh": 0.0}
    assert crbm_evaluation.NORM_STATISTICS == ("v", "vh", "vv", "hh")
    assert crbm_evaluation.error_norm(scores) == pytest.approx(0.5)
    assert crbm_evaluation.is_bad_model(scores)  # h > 1 makes it bad, although its norm is good
    assert not crbm_evaluation.is_bad_model({**scores, "h": 0.9})
    assert crbm_evaluation.is_bad_model({**scores, "h": np.nan})
    assert np.isnan(crbm_evaluation.error_norm({**scores, "vv": np.nan}))


def test_assembly_overlap_finds_the_planted_assembly(rng):
    membership = np.zeros((3, 30), bool)
    membership[0, :10] = membership[1, 10:20] = membership[2, 15:30] = True
    weights = np.zeros((30, 4))
    weights[:10, 0] = 1.0  # unit 0 = assembly 0 exactly
    weights[10:20, 1] = -0.5  # unit 1 = assembly 1, negative sign
    weights[:, 2] = rng.normal(size=30)  # unit 2 = noise; unit 3 = all zero
    overlap = crbm_evaluation.assembly_overlap(weights, membership)
    assert overlap.shape == (3, 4)
    assert overlap[0, 0] == pytest.approx(1.0) and overlap[1, 1] == pytest.approx(1.0)
    assert overlap[0, 1] == 0.0 and np.all(overlap[:, 3] == 0.0)
    best = crbm_evaluation.best_match_overlap(weights, membership)
    np.testing.assert_allclose(best[:2], 1.0)
    assert 0 < best[2] < 0.9
    with pytest.raises(ValueError, match="same N"):
        crbm_evaluation.assembly_overlap(weights[:20], membership)


def test_matrix_nrmse(rng):
    a = rng.normal(size=(40, 40))
    a = a + a.T
    assert crbm_evaluation.matrix_nrmse(a, a) == 0.0
    b = rng.normal(size=(40, 40))
    assert crbm_evaluation.matrix_nrmse(a, b + b.T) == pytest.approx(1.0, abs=0.1)
    assert crbm_evaluation.matrix_nrmse(a, a + 0.1 * (b + b.T)) < 0.2
    with pytest.raises(ValueError, match="square"):
        crbm_evaluation.matrix_nrmse(a, a[:, :30])


@pytest.mark.parametrize(
    "visible, hidden, match",
    [
        (np.zeros((10, 3)), np.zeros((9, 2)), "same number of time points"),
        (np.zeros(10), np.zeros((10, 2)), "2-D|time, units"),
        (np.full((10, 3), np.nan), np.zeros((10, 2)), "NaN"),
    ],
)
def test_statistics_reject_bad_input(visible, hidden, match):
    with pytest.raises(ValueError, match=match):
        crbm_evaluation.crbm_statistics(visible, hidden)


def _scoring_problem():
    import torch

    from course_utils.models.crbm import BatchedCRBM
    from course_utils.simulate.assemblies import simulate_assemblies

    data = simulate_assemblies(n_neurons=12, n_assemblies=2, n_timepoints=600, seed=1).activity  # correlated pairs
    model = BatchedCRBM(12, 3, 4, weight_scale=0.5, device="cpu")
    plan = crbm_evaluation.SamplingPlan(n_chains=5, n_samples=20, burn_in=10, thin=2)
    return torch, model, data[:400], data[400:], plan


def test_score_models_samples_and_scores_each_model_as_the_steps_do_by_hand():
    torch, model, train, reference, plan = _scoring_problem()
    scores, stats = crbm_evaluation.score_models(
        model, train, reference, plan, torch.Generator().manual_seed(3), keep_statistics=True
    )
    generator = torch.Generator().manual_seed(3)  # the same steps, written out
    start = model.independent_samples(train, plan.n_chains, generator)
    samples = model.sample(plan.n_chains, plan.n_samples, burn_in=10, thin=2, start=start, generator=generator)
    for m in range(model.n_models):
        by_hand = {
            name: crbm_evaluation.crbm_statistics(v[m] if name == "model" else v, model.hidden_moments(v)[0][m].numpy())
            for name, v in (("model", samples), ("reference", reference), ("train", train))
        }
        expected = crbm_evaluation.crbm_nrmse(by_hand["model"], by_hand["reference"], by_hand["train"])
        assert scores[m] == pytest.approx(expected, nan_ok=True)  # hh of 3 units can be undefined
        np.testing.assert_allclose(stats[m]["reference"]["vv"], by_hand["reference"]["vv"])


def test_score_models_skips_models_as_nan_and_chunks_without_changing_which_are_scored():
    torch, model, train, reference, plan = _scoring_problem()
    scores, stats = crbm_evaluation.score_models(
        model, train, reference, plan, torch.Generator().manual_seed(0), models=[0, 2, 3], chunk=2
    )
    assert stats == []  # only kept when asked
    assert all(np.isnan(list(scores[1].values())))
    assert crbm_evaluation.is_bad_model(scores[1])
    for m in (0, 2, 3):
        assert set(scores[m]) == set(crbm_evaluation.CRBM_STATISTICS)
        assert np.isfinite([scores[m][key] for key in ("v", "vh", "vv")]).all()


@pytest.mark.parametrize(
    ("options", "match"),
    [(dict(n_chains=0), "n_chains"), (dict(burn_in=-1), "burn_in"), (dict(thin=1.5), "thin")],
)
def test_a_sampling_plan_refuses_impossible_counts(options, match):
    with pytest.raises(ValueError, match=match):
        crbm_evaluation.SamplingPlan(**{**dict(n_chains=2, n_samples=3, burn_in=0, thin=1), **options})
