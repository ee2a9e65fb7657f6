"""Scores shared by the chapters.

Every score takes plain arrays, checks their shapes and values, and says clearly what was
wrong when the input cannot be scored.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from course_utils.validation import check_positive_ints

ArrayLike = np.ndarray


def _as_checked_pair(counts: ArrayLike, rate: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(counts, dtype=float)
    mu = np.asarray(rate, dtype=float)
    if y.shape != mu.shape:
        raise ValueError(f"counts and predicted rate must have the same shape, got {y.shape} and {mu.shape}.")
    if y.size == 0:
        raise ValueError("counts are empty: there is nothing to score.")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(mu))):
        raise ValueError("counts or predicted rate contain NaN or inf; check the model's fit.")
    if np.any(y < 0) or np.any(y != np.round(y)):
        raise ValueError("counts must be non-negative integers (spike counts per bin).")
    if np.any(mu < 0):
        raise ValueError("predicted rate must be non-negative (expected spike count per bin).")
    return y, mu


def poisson_log_likelihood(counts: ArrayLike, rate: ArrayLike) -> float:
    """Mean Poisson log-likelihood per bin, in nats, including the ``log(y!)`` term.

    Parameters
    ----------
    counts
        Observed spike counts per bin.
    rate
        Predicted mean count per bin (same shape); a zero rate where a spike occurred gives
        ``-inf``.

    Returns
    -------
    float
        ``mean(y log(mu) - mu - log(y!))``.
    """
    y, mu = _as_checked_pair(counts, rate)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y > 0, y * np.log(mu), 0.0) - mu - gammaln(y + 1)
    return float(np.mean(terms))


def pseudo_r2(counts: ArrayLike, rate: ArrayLike, null_rate: ArrayLike | float | None = None) -> float:
    """McFadden's pseudo-R² of a Poisson model: ``1 - LL(model) / LL(null)``.

    Parameters
    ----------
    counts
        Observed spike counts per bin.
    rate
        The model's predicted mean count per bin.
    null_rate
        The null model's predicted count per bin; by default the mean of ``counts``
        (a constant-rate model). Pass the training-set mean when scoring held-out data.

    Returns
    -------
    float
        0 for a model no better than the null, 1 for a perfect model; negative on held-out
        data when the model is worse than the null.
    """
    y, mu = _as_checked_pair(counts, rate)
    if null_rate is None:
        null = np.full(y.shape, y.mean())
    else:
        null = np.broadcast_to(np.asarray(null_rate, dtype=float), y.shape)
    ll_model = poisson_log_likelihood(y, mu)
    ll_null = poisson_log_likelihood(y, null)
    if ll_null == 0:
        raise ValueError("The null model's log-likelihood is 0 (all counts zero?): pseudo-R² is undefined.")
    return float(1.0 - ll_model / ll_null)


def pearson_r(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson correlation of two equally shaped arrays (flattened), with shape and NaN checks."""
    x = np.asarray(a, dtype=float).ravel()
    z = np.asarray(b, dtype=float).ravel()
    if x.shape != z.shape:
        raise ValueError(f"Arrays must have the same number of elements, got {x.size} and {z.size}.")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(z))):
        raise ValueError("Inputs contain NaN or inf.")
    if x.std() == 0 or z.std() == 0:
        raise ValueError("A constant array has no correlation.")
    return float(np.corrcoef(x, z)[0, 1])


def rmse(a: ArrayLike, b: ArrayLike) -> float:
    """Root-mean-square difference of two equally shaped arrays."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"arrays must have the same shape, got {x.shape} and {y.shape}.")
    if x.size == 0:
        raise ValueError("arrays are empty: there is nothing to compare.")
    return float(np.sqrt(np.mean((x - y) ** 2)))


def separated(worse: ArrayLike, better: ArrayLike) -> bool:
    """Whether every value of ``worse`` is larger than every value of ``better``.

    The complete separation of two small samples, e.g. the scores of a handful of training
    seeds at two settings: the strictest rank rule, and the only one that two sets of three
    seeds can pass at a one-sided 5 % level (:func:`separation_chance`). Ties do not count as
    separated; ``inf`` may mark a failed run (worst of all), so two failed runs tie.

    Parameters
    ----------
    worse, better
        The two samples (higher is worse), each with at least one value.

    Raises
    ------
    ValueError
        If a sample is empty or holds NaN.
    """
    a, b = np.asarray(worse, dtype=float).ravel(), np.asarray(better, dtype=float).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one value.")
    if np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("a sample holds NaN: mark a failed run with inf (the worst value), not NaN.")
    return bool(a.min() > b.max())


def separation_chance(n_worse: int, n_better: int) -> float:
    """Chance that two samples of these sizes are completely separated in a given direction
    when both come from the same continuous distribution: ``1 / C(n_worse + n_better, n_worse)``
    (1/20 for three against three), the p-value of :func:`separated` as a rank test."""
    check_positive_ints(n_worse=n_worse, n_better=n_better)
    return 1.0 / math.comb(n_worse + n_better, n_worse)


def _standardized_rows(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean(axis=-1, keepdims=True)
    scale = np.linalg.norm(centred, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(scale > 0, centred / scale, np.nan)


def mantel_test(
    matrices: ArrayLike, reference: ArrayLike, n_permutations: int = 999, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of square matrices with a reference matrix, and its Mantel permutation p-value.

    The entries of a matrix over pairs of neurons are not independent (each neuron sits in
    many pairs), so the usual standard error of a correlation understates chance. The Mantel
    test builds chance by relabelling the neurons of ``reference`` (the same permutation of
    its rows and columns) and recomputing the correlation.

    Parameters
    ----------
    matrices
        ``(k, k)`` or ``(M, k, k)`` symmetric matrices (e.g. models' couplings); their upper
        triangles (diagonal excluded) are compared.
    reference
        ``(k, k)`` symmetric matrix, e.g. how many planted assemblies each pair shares.
    n_permutations
        Relabellings drawn; the smallest possible p-value is ``1 / (n_permutations + 1)``.
    seed
        Seed of the relabellings.

    Returns
    -------
    r, p : numpy.ndarray
        ``(M,)`` Pearson correlations (NaN for a constant matrix) and one-sided p-values
        ``(1 + #{null r >= r}) / (n_permutations + 1)`` (1 for a constant matrix).

    Raises
    ------
    ValueError
        If the shapes disagree, a matrix is smaller than 3 × 3, the reference is constant or
        anything holds NaN or inf.
    """
    check_positive_ints(n_permutations=n_permutations)
    stack = np.asarray(matrices, dtype=float)
    stack = stack[None] if stack.ndim == 2 else stack
    ref = np.asarray(reference, dtype=float)
    k = ref.shape[0]
    if ref.ndim != 2 or ref.shape != (k, k) or k < 3 or stack.ndim != 3 or stack.shape[1:] != (k, k):
        raise ValueError(
            f"matrices must be (k, k) or (M, k, k) and reference (k, k), k >= 3; got {stack.shape} and {ref.shape}."
        )
    if not (np.all(np.isfinite(stack)) and np.all(np.isfinite(ref))):
        raise ValueError("the matrices contain NaN or inf.")
    upper = np.triu_indices(k, k=1)
    candidates = _standardized_rows(stack[:, upper[0], upper[1]])  # (M, P)
    target = _standardized_rows(ref[upper])
    if np.isnan(target).any():
        raise ValueError("the reference is constant over its pairs: nothing to correlate with.")
    rng = np.random.default_rng(seed)
    null = np.empty((candidates.shape[0], n_permutations))
    chunk = max(1, 2**22 // upper[0].size)  # relabellings at a time: about 32 MB of pairs
    for first in range(0, n_permutations, chunk):
        orders = [rng.permutation(k) for _ in range(min(chunk, n_permutations - first))]
        relabelled = np.stack([ref[np.ix_(order, order)][upper] for order in orders])
        null[:, first : first + len(orders)] = candidates @ _standardized_rows(relabelled).T
    r = candidates @ target
    exceed = (null >= r[:, None] - 1e-12).sum(axis=1)
    p = np.where(np.isnan(r), 1.0, (1 + exceed) / (n_permutations + 1))
    return r, p
