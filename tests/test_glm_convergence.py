"""The Newton decrement says how far a fitted Poisson GLM is from its optimum, in nats."""

from __future__ import annotations

import nemos as nmo
import numpy as np
import pytest
from sklearn.linear_model import PoissonRegressor

from course_utils.models.glm_convergence import DEFAULT_TOLERANCE_NATS, is_converged, model_decrement, newton_decrement


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(1500, 4))
    weights = np.array([[0.4, -0.2], [0.0, 0.3], [-0.3, 0.0], [0.1, 0.1]])
    Y = rng.poisson(np.exp(X @ weights - 0.5)).astype(float)
    return X, Y


def newton_optimum(X, Y, alpha=0.0):
    """Weights and intercepts from scikit-learn's Newton solver (its alpha is nemos's λ)."""
    fits = [PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=200).fit(X, y) for y in Y.T]
    return np.column_stack([f.coef_ for f in fits]), np.array([f.intercept_ for f in fits])


def test_zero_at_the_optimum_of_an_independent_solver(population):
    X, Y = population
    coef, intercept = newton_optimum(X, Y)
    assert newton_decrement(X, Y, coef, intercept).max() < 1e-8
    strength = 0.05
    coef, intercept = newton_optimum(X, Y, alpha=strength)
    decrement = newton_decrement(X, Y, coef, intercept, penalty="ridge", strength=strength)
    assert decrement.max() < 1e-8
    # the same weights are not the optimum of the unpenalized problem
    assert newton_decrement(X, Y, coef, intercept).min() > 1e-3


def test_equals_the_quadratic_distance_near_the_optimum(population):
    X, Y = population
    coef, intercept = newton_optimum(X, Y)
    step = np.array([0.01, -0.02, 0.015, 0.0])
    decrement = newton_decrement(X, Y, coef + step[:, None], intercept)
    X_ones = np.column_stack([np.ones(len(X)), X])
    for neuron in range(2):
        theta = np.concatenate([[intercept[neuron]], coef[:, neuron]])
        fisher = X_ones.T @ (np.exp(X_ones @ theta)[:, None] * X_ones)
        expected = 0.5 * np.concatenate([[0.0], step]) @ fisher @ np.concatenate([[0.0], step])
        np.testing.assert_allclose(decrement[neuron], expected, rtol=0.05)


@pytest.mark.parametrize("penalty", ["lasso", "group_lasso"])
def test_sparse_penalties_accept_zero_weights_whose_gradient_they_absorb(population, penalty):
    X, Y = population
    coef = np.zeros((4, 2))
    intercept = np.log(Y.mean(axis=0))  # the optimum once every weight is zero
    mask = np.zeros((4, 4, 2))  # two groups of two features per neuron
    mask[0, :2, 0], mask[1, 2:, 0], mask[2, :2, 1], mask[3, 2:, 1] = 1.0, 1.0, 1.0, 1.0
    strong, weak = 10.0, 1e-4  # strong absorbs every gradient; weak absorbs none
    kwargs = dict(penalty=penalty, group_mask=mask if penalty == "group_lasso" else None)
    assert newton_decrement(X, Y, coef, intercept, strength=strong, **kwargs).max() < 1e-12
    assert newton_decrement(X, Y, coef, intercept, strength=weak, **kwargs).min() > 1e-3


def test_reads_the_penalty_from_a_fitted_nemos_model(population):
    X, Y = population
    strength = 0.05 * np.ones((4, 2))
    model = nmo.glm.PopulationGLM(regularizer="Ridge", regularizer_strength=strength, solver_name="BFGS").fit(X, Y)
    direct = newton_decrement(X, Y, model.coef_, model.intercept_, penalty="ridge", strength=strength)
    np.testing.assert_allclose(model_decrement(model, X, Y), direct, rtol=1e-4)  # float32 strength
    assert is_converged(direct) and direct.max() <= DEFAULT_TOLERANCE_NATS
    mask = np.zeros((2, 4, 2))
    mask[0, :, 0], mask[1, :, 1] = 1.0, 1.0  # one group per neuron
    group = nmo.glm.PopulationGLM(
        regularizer=nmo.regularizer.GroupLasso(mask=mask),
        regularizer_strength=0.01,
        solver_name="ProximalGradient",
        solver_kwargs=dict(tol=1e-7, maxiter=20000),
    ).fit(X, Y)
    assert is_converged(model_decrement(group, X, Y))
    with pytest.raises(ValueError, match="not fitted"):
        model_decrement(nmo.glm.PopulationGLM(), X, Y)


def test_bad_input_is_refused(population):
    X, Y = population
    coef, intercept = np.zeros((4, 2)), np.zeros(2)
    with pytest.raises(ValueError, match="penalty must be"):
        newton_decrement(X, Y, coef, intercept, penalty="elastic")
    with pytest.raises(ValueError, match="must agree"):
        newton_decrement(X, Y, np.zeros((3, 2)), intercept)
    with pytest.raises(ValueError, match="one value per neuron"):
        newton_decrement(X, Y, coef, np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        newton_decrement(X, Y, np.full((4, 2), np.nan), intercept)
    with pytest.raises(ValueError, match="needs group_mask"):
        newton_decrement(X, Y, coef, intercept, penalty="group_lasso", strength=0.1)
    with pytest.raises(ValueError, match="one strength"):
        newton_decrement(
            X, Y, coef, intercept, penalty="group_lasso", strength=np.ones((4, 2)), group_mask=np.ones((1, 4, 2))
        )
    with pytest.raises(ValueError, match="within one neuron"):
        newton_decrement(X, Y, coef, intercept, penalty="group_lasso", strength=0.1, group_mask=np.ones((1, 4, 2)))
    assert not is_converged([0.0, np.nan])


def _penalized_nll(theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Total Poisson negative log-likelihood (without log y!) and its gradient; theta = (b, w)."""
    eta = theta[0] + X @ theta[1:]
    rate = np.exp(eta)
    value = float(np.sum(rate - y * eta))
    residual = rate - y
    return value, np.concatenate([[residual.sum()], X.T @ residual])


def independent_lasso(X: np.ndarray, y: np.ndarray, total_strength: float) -> np.ndarray:
    """argmin of -log-likelihood + total_strength * sum|w| by L-BFGS-B on w = u - v, u, v >= 0.

    A different algorithm (a bound-constrained quasi-Newton method on a smooth reformulation)
    from nemos's proximal gradient, so agreement is evidence that both reached the optimum.
    """
    from scipy.optimize import minimize

    p = X.shape[1]

    def objective(z):
        theta = np.concatenate([[z[0]], z[1 : p + 1] - z[p + 1 :]])
        value, gradient = _penalized_nll(theta, X, y)
        penalty = total_strength * z[1:].sum()
        grad = np.concatenate([[gradient[0]], gradient[1:] + total_strength, -gradient[1:] + total_strength])
        return value + penalty, grad

    start = np.concatenate([[np.log(y.mean())], np.zeros(2 * p)])
    bounds = [(None, None)] + [(0.0, None)] * (2 * p)
    result = minimize(
        objective, start, jac=True, method="L-BFGS-B", bounds=bounds, options=dict(maxiter=5000, ftol=1e-15, gtol=1e-10)
    )
    return np.concatenate([[result.x[0]], result.x[1 : p + 1] - result.x[p + 1 :]])


def test_a_nemos_lasso_fit_is_the_optimum_an_independent_solver_finds(population):
    """Chapter 2's sparse fits are judged by the Newton decrement; here a second algorithm
    confirms one such fit: the same weights, the same zeros and the same objective."""
    X, Y = population
    strength = 0.05  # nemos's regularizer_strength: alpha / T
    model = nmo.glm.PopulationGLM(
        regularizer="Lasso",
        regularizer_strength=strength,
        solver_name="ProximalGradient",
        solver_kwargs=dict(tol=1e-9, maxiter=50000),
    ).fit(X, Y)
    coef, intercept = np.asarray(model.coef_, dtype=float), np.asarray(model.intercept_, dtype=float)
    assert is_converged(model_decrement(model, X, Y))
    for neuron in range(Y.shape[1]):
        theta = independent_lasso(X, Y[:, neuron], strength * len(X))
        np.testing.assert_allclose(coef[:, neuron], theta[1:], atol=2e-3)
        np.testing.assert_allclose(intercept[neuron], theta[0], atol=2e-3)
        assert np.array_equal(np.abs(coef[:, neuron]) < 1e-6, np.abs(theta[1:]) < 1e-6), "the same zeros"
        nemos_objective = _penalized_nll(np.concatenate([[intercept[neuron]], coef[:, neuron]]), X, Y[:, neuron])[0]
        scipy_objective = _penalized_nll(theta, X, Y[:, neuron])[0]
        penalty = strength * len(X) * np.abs(np.stack([coef[:, neuron], theta[1:]])).sum(axis=1)
        assert nemos_objective + penalty[0] == pytest.approx(scipy_objective + penalty[1], abs=1e-3)
    assert (np.abs(coef) < 1e-6).any(), "the strength zeroes some weights, so the kink is exercised"
