"""A whole grid of penalty strengths fitted as one nemos ``PopulationGLM`` (chapter 2).

A population GLM's loss is a sum over neurons of each neuron's own mean negative
log-likelihood, and a per-weight penalty adds one term per weight: no term couples two
neurons. Fitting neurons ``n`` at strengths ``a_1 … a_K`` is therefore the same problem as
fitting ``K`` copies of the population side by side, copy ``k`` with the strengths of ``a_k``.
One optimization then replaces ``K``, and nemos compiles one program instead of one per
strength (compiling, not iterating, is most of a small fit's time on a CPU).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import nemos as nmo
import numpy as np


class GLMWeights(NamedTuple):
    """The weights of one strength of a grid; predicts like a fitted ``PopulationGLM``."""

    coef_: np.ndarray
    """Weights ``[feature, neuron]``."""
    intercept_: np.ndarray
    """Intercepts ``[neuron]``."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Mean count per bin, ``exp(X @ coef_ + intercept_)``, shape ``[bin, neuron]``."""
        return np.exp(np.asarray(X) @ self.coef_ + self.intercept_)


def fit_strength_grid(
    make_glm: Callable[[np.ndarray], nmo.glm.PopulationGLM],
    strengths: Sequence[np.ndarray],
    X: np.ndarray,
    Y: np.ndarray,
) -> list[GLMWeights]:
    """Fit one population GLM per strength array, all in a single optimization.

    Parameters
    ----------
    make_glm
        Builds an unfitted ``PopulationGLM`` (exponential link) from a strength array of
        shape ``[feature, neuron × K]``; use a regularizer whose penalty is a sum over
        weights (``Ridge``, ``Lasso``), never one that couples neurons.
    strengths
        ``K`` strength arrays, each of shape ``[feature, neuron]``: the value nemos's
        ``regularizer_strength`` would receive for that fit alone.
    X
        Design matrix ``[bin, feature]``, finite.
    Y
        Counts ``[bin, neuron]``, finite and non-negative.

    Returns
    -------
    list of GLMWeights
        One entry per strength, in the order given.

    Raises
    ------
    ValueError
        If the shapes disagree, a strength array has the wrong shape, or the data are not
        finite.
    """
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
        raise ValueError(
            f"X must be [bin, feature] and Y [bin, neuron] with as many bins; got {X.shape} and {Y.shape}."
        )
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError(
            "X and Y must be finite: drop the bins with NaN (e.g. the first history window) before fitting."
        )
    if len(strengths) == 0:
        raise ValueError("Give at least one strength array.")
    n_features, n_neurons = X.shape[1], Y.shape[1]
    for strength in strengths:
        if np.shape(strength) != (n_features, n_neurons):
            raise ValueError(
                f"Each strength array must have shape [feature, neuron] = "
                f"{(n_features, n_neurons)}; got {np.shape(strength)}."
            )
    n_fits = len(strengths)
    stacked_strength = np.concatenate([np.asarray(s, dtype=float) for s in strengths], axis=1)
    model = make_glm(stacked_strength).fit(X, np.tile(Y, n_fits))
    coef = np.asarray(model.coef_).reshape(n_features, n_fits, n_neurons)
    intercept = np.asarray(model.intercept_).reshape(n_fits, n_neurons)
    return [GLMWeights(coef[:, k].copy(), intercept[k].copy()) for k in range(n_fits)]
