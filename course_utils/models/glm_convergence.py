"""Did a penalized Poisson GLM fit reach its optimum? The Newton decrement says, in nats.

A solver stops when its own tolerance is met, and a tolerance is not the optimum. What a
learner wants to know is how far the fitted weights are from the optimum, in the units the
chapter reasons in. For a smooth concave objective the *Newton decrement* answers that: with
``g`` the gradient and ``H`` the Hessian of the negative total log-likelihood (plus penalty)
at the fitted weights, the optimum is about ``g^T H^{-1} g / 2`` nats better, and the
weights are ``sqrt(g^T H^{-1} g)`` standard errors (in the Fisher metric) away from it.

For the lasso and the group lasso the penalty has a kink at zero; there ``g`` is the
smallest element of the subdifferential (zero for a zeroed weight whose gradient the
penalty can absorb), and ``H`` is the Hessian of the smooth part on the weights that are
not zero. The objective is the one nemos minimizes, multiplied by the number of bins:
``-sum_t log p(y_t) + penalty * T`` per neuron, with nemos's penalties
(ridge ``strength/2 · w²``, lasso ``strength · |w|``, group lasso
``strength · sqrt(p_g) · ||w_g||``) and ``regularizer_strength = alpha / T``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

Penalty = Literal["none", "ridge", "lasso", "group_lasso"]
PENALTIES: tuple[str, ...] = ("none", "ridge", "lasso", "group_lasso")
#: A fit is converged when the optimum is at most this many nats (of total penalized
#: log-likelihood, per neuron) better: its weights are then within
#: ``sqrt(2 * 0.01) ≈ 0.14`` standard errors of the optimum, jointly.
DEFAULT_TOLERANCE_NATS = 0.01


def _smallest_subgradient(
    gradient: np.ndarray,
    weights: np.ndarray,
    penalty: str,
    strength: np.ndarray,
    groups: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The penalized objective's smallest subgradient and the mask of free weights."""
    free = np.ones_like(weights, dtype=bool)
    if penalty in ("none", "ridge"):
        return gradient + (strength * weights if penalty == "ridge" else 0.0), free
    if penalty == "lasso":
        nonzero = weights != 0
        absorbed = np.sign(gradient) * np.maximum(np.abs(gradient) - strength, 0.0)
        subgradient = np.where(nonzero, gradient + strength * np.sign(weights), absorbed)
        return subgradient, nonzero | (strength == 0)
    subgradient = gradient.copy()
    for group in groups:
        members = group.astype(bool)
        if not members.any():
            continue
        size_weight = strength[0] * np.sqrt(members.sum())
        group_weights, group_gradient = weights[members], gradient[members]
        norm = np.linalg.norm(group_weights)
        if norm > 0:
            subgradient[members] = group_gradient + size_weight * group_weights / norm
        else:
            gradient_norm = np.linalg.norm(group_gradient)
            shrink = max(gradient_norm - size_weight, 0.0) / gradient_norm if gradient_norm else 0.0
            subgradient[members] = shrink * group_gradient
            free[members] = False
    return subgradient, free


def newton_decrement(
    X: ArrayLike,
    Y: ArrayLike,
    coef: ArrayLike,
    intercept: ArrayLike,
    *,
    penalty: Penalty = "none",
    strength: ArrayLike | float = 0.0,
    group_mask: ArrayLike | None = None,
) -> np.ndarray:
    """How many nats a fitted Poisson population GLM is from its optimum, per neuron.

    Parameters
    ----------
    X
        Design matrix ``[bin, feature]`` the model was fitted on.
    Y
        Counts ``[bin, neuron]``.
    coef, intercept
        Fitted weights ``[feature, neuron]`` and intercepts ``[neuron]`` (exponential link).
    penalty
        ``"none"``, ``"ridge"``, ``"lasso"`` or ``"group_lasso"``.
    strength
        nemos's ``regularizer_strength`` (on the *mean* loss): a number, or an array shaped
        like ``coef`` for ridge and lasso. For the group lasso, one number.
    group_mask
        For the group lasso, nemos's mask ``[group, feature, neuron]``; each group within one
        neuron (one column of ``coef``).

    Returns
    -------
    numpy.ndarray
        ``g^T H^{-1} g / 2`` per neuron, in nats of total penalized log-likelihood; the
        second-order estimate of how much better the optimum is.

    Raises
    ------
    ValueError
        On an unknown penalty, shapes that disagree, or values that are not finite.
    """
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}.")
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    coef, intercept = np.asarray(coef, dtype=float), np.asarray(intercept, dtype=float)
    if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y) or coef.shape != (X.shape[1], Y.shape[1]):
        raise ValueError(
            f"X [bin, feature], Y [bin, neuron] and coef [feature, neuron] must agree; "
            f"got {X.shape}, {Y.shape} and {coef.shape}."
        )
    if intercept.shape != (Y.shape[1],):
        raise ValueError(f"intercept must have one value per neuron, got shape {intercept.shape}.")
    if not all(np.isfinite(a).all() for a in (X, Y, coef, intercept)):
        raise ValueError(
            "X, Y and the fitted parameters must be finite (a NaN weight means the "
            "fit failed: refit, e.g. with float64 or a smaller step)."
        )
    if penalty == "group_lasso":
        if np.ndim(strength) != 0:
            raise ValueError("The group lasso takes one strength (a number), as nemos does.")
        if group_mask is None:
            raise ValueError("The group lasso needs group_mask [group, feature, neuron].")
        group_mask = np.asarray(group_mask, dtype=float)
        if group_mask.shape[1:] != coef.shape:
            raise ValueError(f"group_mask must be [group, {coef.shape[0]}, {coef.shape[1]}], got {group_mask.shape}.")
        if ((group_mask != 0).any(axis=1).sum(axis=1) > 1).any():
            raise ValueError(
                "Each group must lie within one neuron's weights (nemos would "
                "couple the neurons of a group spanning several)."
            )
    strength = np.broadcast_to(np.asarray(strength, dtype=float), coef.shape)
    n_bins = len(X)
    X_ones = np.column_stack([np.ones(n_bins), X])
    decrement = np.empty(Y.shape[1])
    for neuron in range(Y.shape[1]):
        theta = np.concatenate([[intercept[neuron]], coef[:, neuron]])
        rate = np.exp(X_ones @ theta)
        gradient = X_ones.T @ (rate - Y[:, neuron])  # of the negative total log-likelihood
        groups = None if group_mask is None else group_mask[:, :, neuron]
        weight_subgradient, free = _smallest_subgradient(
            gradient[1:], coef[:, neuron], penalty, strength[:, neuron] * n_bins, groups
        )
        subgradient = np.concatenate([gradient[:1], weight_subgradient])
        free = np.concatenate([[True], free])
        hessian = X_ones[:, free].T @ (rate[:, None] * X_ones[:, free])
        if penalty == "ridge":
            hessian[1:, 1:] += np.diag(strength[free[1:], neuron] * n_bins)
        if penalty == "group_lasso":
            # the group norm's curvature on the free groups (it is not linear there)
            for group in groups:
                members = group.astype(bool) & free[1:]
                norm = np.linalg.norm(coef[members, neuron])
                if norm == 0:
                    continue
                unit = coef[members, neuron] / norm
                block = (
                    strength[0, neuron]
                    * n_bins
                    * np.sqrt(members.sum())
                    / norm
                    * (np.eye(members.sum()) - np.outer(unit, unit))
                )
                index = np.flatnonzero(members[free[1:]]) + 1
                hessian[np.ix_(index, index)] += block
        free_part = subgradient[free]
        step = np.linalg.lstsq(hessian, free_part, rcond=None)[0]
        # a zeroed weight whose gradient the penalty cannot absorb: its excess gradient,
        # measured with the curvature of that weight alone
        fixed = ~free
        curvature = np.einsum("tk,t,tk->k", X_ones[:, fixed], rate, X_ones[:, fixed])
        excess = np.sum(subgradient[fixed] ** 2 / np.maximum(curvature, 1e-300))
        decrement[neuron] = 0.5 * (free_part @ step + excess)
    return decrement


def is_converged(decrement: ArrayLike, tolerance: float = DEFAULT_TOLERANCE_NATS) -> bool:
    """Whether every neuron's Newton decrement is within ``tolerance`` nats."""
    decrement = np.asarray(decrement, dtype=float)
    return bool(np.isfinite(decrement).all() and (decrement <= tolerance).all())


_PENALTY_OF_REGULARIZER = {"UnRegularized": "none", "Ridge": "ridge", "Lasso": "lasso", "GroupLasso": "group_lasso"}


def model_decrement(model: object, X: ArrayLike, Y: ArrayLike) -> np.ndarray:
    """:func:`newton_decrement` of a fitted nemos ``PopulationGLM``, penalty read from it.

    Parameters
    ----------
    model
        A fitted ``nemos.glm.PopulationGLM`` with the exponential link and an
        ``UnRegularized``, ``Ridge``, ``Lasso`` or ``GroupLasso`` regularizer.
    X, Y
        The design matrix and counts it was fitted on.

    Returns
    -------
    numpy.ndarray
        Nats from the optimum, per neuron.

    Raises
    ------
    ValueError
        If the model is not fitted or its regularizer is not one of the four.
    """
    if getattr(model, "coef_", None) is None:
        raise ValueError("The model is not fitted: call model.fit(X, Y) first.")
    name = type(model.regularizer).__name__
    if name not in _PENALTY_OF_REGULARIZER:
        raise ValueError(f"No Newton decrement for a {name} regularizer; use one of {sorted(_PENALTY_OF_REGULARIZER)}.")
    penalty = _PENALTY_OF_REGULARIZER[name]
    strength = 0.0 if penalty == "none" else np.asarray(model.regularizer_strength, dtype=float)
    mask = getattr(model.regularizer, "mask", None) if penalty == "group_lasso" else None
    mask = getattr(mask, "coef", mask)  # a fitted model keeps the mask as a parameter tree
    return newton_decrement(
        X,
        Y,
        model.coef_,
        model.intercept_,
        penalty=penalty,
        strength=strength,
        group_mask=None if mask is None else np.asarray(mask),
    )
