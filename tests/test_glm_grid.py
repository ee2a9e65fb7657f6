"""A grid of strengths fitted as one PopulationGLM equals one fit per strength."""

from __future__ import annotations

import nemos as nmo
import numpy as np
import pytest

from course_utils.models.glm_grid import GLMWeights, fit_strength_grid


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(800, 5))
    weights = rng.normal(scale=0.3, size=(5, 3))
    Y = rng.poisson(np.exp(X @ weights - 1.0)).astype(float)
    return X, Y


def ridge(strength):
    return nmo.glm.PopulationGLM(
        regularizer="Ridge", regularizer_strength=strength, solver_name="BFGS", solver_kwargs=dict(maxiter=2000)
    )


def test_stacked_fit_equals_one_fit_per_strength(population):
    X, Y = population
    pattern = np.ones((5, 3))
    pattern[0] = 0.0  # one unpenalized feature, as chapter 2 leaves the heading alone
    strengths = [a * pattern for a in (0.001, 0.1, 1.0)]
    stacked = fit_strength_grid(ridge, strengths, X, Y)
    assert len(stacked) == 3 and all(isinstance(w, GLMWeights) for w in stacked)
    for strength, weights in zip(strengths, stacked):
        alone = ridge(strength).fit(X, Y)
        np.testing.assert_allclose(weights.coef_, np.asarray(alone.coef_), atol=2e-3)
        np.testing.assert_allclose(weights.predict(X), np.asarray(alone.predict(X)), rtol=5e-3)
    # the strengths really differ: the strongest penalty shrinks the penalized weights most
    assert np.abs(stacked[2].coef_[1:]).sum() < np.abs(stacked[0].coef_[1:]).sum()


def test_bad_shapes_and_values_are_refused(population):
    X, Y = population
    good = [np.ones((5, 3))]
    with pytest.raises(ValueError, match="shape"):
        fit_strength_grid(ridge, [np.ones((5, 2))], X, Y)
    with pytest.raises(ValueError, match="as many bins"):
        fit_strength_grid(ridge, good, X[:-1], Y)
    with pytest.raises(ValueError, match="finite"):
        fit_strength_grid(ridge, good, np.where(X > 2, np.nan, X), Y)
    with pytest.raises(ValueError, match="at least one"):
        fit_strength_grid(ridge, [], X, Y)


@pytest.mark.slow
def test_stacked_grid_at_the_chapter_shape_equals_separate_fits():
    """Chapter 2's shape: 126 features, 20 neurons, 7 strengths (140 stacked columns)."""
    rng = np.random.default_rng(11)
    n_bins, n_features, n_neurons = 3000, 126, 20
    X = rng.normal(size=(n_bins, n_features))
    weights = rng.normal(scale=0.05, size=(n_features, n_neurons))
    Y = rng.poisson(np.exp(X @ weights - 1.5)).astype(float)
    pattern = np.ones((n_features, n_neurons))
    pattern[:6] = 0.0  # unpenalized, as the chapter's heading features
    alphas = (0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4)
    strengths = [alpha / n_bins * pattern for alpha in alphas]

    def lbfgs_ridge(strength):
        return nmo.glm.PopulationGLM(
            regularizer="Ridge", regularizer_strength=strength, solver_name="LBFGS", solver_kwargs=dict(maxiter=3000)
        )

    stacked = fit_strength_grid(lbfgs_ridge, strengths, X, Y)
    for strength, weights_k in zip(strengths, stacked):
        alone = lbfgs_ridge(strength).fit(X, Y)
        rate_alone = np.asarray(alone.predict(X))
        np.testing.assert_allclose(weights_k.predict(X), rate_alone, rtol=1e-2)
        # the same optimum: log-likelihoods agree far below any difference between strengths
        gap = abs(
            np.mean(Y * np.log(weights_k.predict(X)) - weights_k.predict(X))
            - np.mean(Y * np.log(rate_alone) - rate_alone)
        )
        assert gap < 1e-5, gap
