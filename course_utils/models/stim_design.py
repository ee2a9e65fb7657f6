r"""Choosing the next photostimulation patterns from a fitted low-rank model (chapter 3).

An experimenter with a diagonal-plus-low-rank AR model (:mod:`course_utils.models.low_rank_ar`)
can ask which groups of neurons to stimulate next. To first order (treating each factor as
known while estimating the other), the error of the model's predicted response to a new
random group has parts that the stimulated patterns control. Collect the patterns seen so
far as the rows of ``S``, and let ``n_j`` count those that contain neuron ``j``:

- **per neuron**: neuron ``j``'s direct responses (the ``k`` diagonals of ``B``, one per lag)
  are learned only from the patterns that contain ``j``: variance ``1 / (n_j + c)``. Its row
  of the input factor ``V_B`` is learned from the sums ``V_B^T u`` over the neurons of each
  pattern: variance ``(S^T S + c I)^{-1}`` per column, so neurons always stimulated together
  cannot be told apart, and an input direction no pattern has probed keeps its prior ``1 / c``;
- **along the input directions**: the network's response ``U_B V_B^T u`` depends on a
  pattern ``u`` only through ``z = V_B^T u``; ``U_B`` is learned from the projections ``z``
  of the patterns seen, with a variance proportional to ``M^{-1}``, ``M = sum z z^T``.

Summed over the neurons and averaged over random test groups of ``g`` neurons out of ``d``
(a neuron is in a test group with probability ``p = g / d``), in units of the noise
variance,

.. math::

    E = \underbrace{p k \sum_j \frac{1}{n_j + c}
        + r \, \mathrm{tr}\big(\Sigma_u (S^\top S + c I)^{-1}\big)}_{\text{per neuron}}
        + \underbrace{d \, \mathrm{tr}(V^\top \Sigma_u V M^{-1})}_{\text{input directions}},
    \qquad \Sigma_u = \mathbb{E}[u u^\top],

with ``r`` the number of input directions (the columns of ``V_{B_s}`` of every lag) and
``c`` a prior count. :func:`choose_patterns` picks, one at a time, the candidate that lowers
``E`` most (a greedy A-optimal design), with either part alone as an option to see which
one matters. This is a simplified design in the spirit of Wagenmaker et al. (2024), who aim
stimulation at the uncertain parts of a low-rank model; it is not their algorithm.

:func:`random_groups`
    Random candidate groups as 0/1 patterns.
:func:`input_directions`
    The estimated input directions: an orthonormal basis of a fitted model's ``V_{B_s}``.
:func:`choose_patterns`
    The greedy design.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from course_utils.models.low_rank_ar import LowRankAR
from course_utils.validation import check_positive_ints

__all__ = ["random_groups", "input_directions", "choose_patterns", "DESIGN_TERMS"]

DESIGN_TERMS = ("neurons", "directions")


def random_groups(n_neurons: int, group_size: int, n_groups: int, rng: np.random.Generator) -> np.ndarray:
    """Random groups of ``group_size`` distinct neurons, as 0/1 patterns of shape ``(n_groups, n_neurons)``.

    Raises
    ------
    ValueError
        If a size is not a positive integer or ``group_size > n_neurons``.
    """
    check_positive_ints(n_neurons=n_neurons, group_size=group_size, n_groups=n_groups)
    if group_size > n_neurons:
        raise ValueError(f"group_size={group_size} exceeds n_neurons={n_neurons}.")
    # The first group_size entries of independent random orderings of each row.
    members = np.argsort(rng.random((n_groups, n_neurons)), axis=1)[:, :group_size]
    patterns = np.zeros((n_groups, n_neurons))
    np.put_along_axis(patterns, members, 1.0, axis=1)
    return patterns


def input_directions(model: LowRankAR, index: int = 0) -> np.ndarray:
    """Orthonormal basis of the input directions one model's network responds to.

    Parameters
    ----------
    model
        A batch of fitted diagonal-plus-low-rank models.
    index
        Which model of the batch.

    Returns
    -------
    numpy.ndarray
        Shape ``(d, n_directions)``: an orthonormal basis of the span of the model's input
        factors ``V_{B_s}`` of every lag (``n_directions`` is at most order x rank).

    Raises
    ------
    ValueError
        On an index outside the batch, or factors that are NaN or all zero.
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < model.n_models:
        raise ValueError(f"index must be an integer from 0 to {model.n_models - 1}, got {index!r}.")
    with torch.no_grad():
        factors = (model.V_B * model.factor_mask)[index].cpu().double()  # (order, d, max_rank)
    if not torch.isfinite(factors).all():
        raise ValueError("V_B contains NaN or inf: the model diverged; refit it with a lower learning rate.")
    columns = factors.permute(1, 0, 2).reshape(factors.shape[1], -1).numpy()  # (d, order * max_rank)
    basis, singular, _ = np.linalg.svd(columns, full_matrices=False)
    if singular[0] == 0:
        raise ValueError("V_B is zero: the model has learned no input direction yet.")
    return basis[:, singular > singular[0] * 1e-6]


def choose_patterns(
    candidates: np.ndarray,
    seen: np.ndarray,
    directions: np.ndarray,
    n_choose: int,
    *,
    order: int = 1,
    terms: Sequence[str] = DESIGN_TERMS,
    prior_count: float = 0.5,
    ridge: float = 1e-3,
) -> np.ndarray:
    """Greedy choice of the candidates that most reduce the expected prediction error ``E``.

    Parameters
    ----------
    candidates
        Candidate patterns, shape ``(n_candidates, d)``, 0/1, all of the same group size.
    seen
        Patterns stimulated so far, shape ``(n_seen, d)`` (may have no rows).
    directions
        Estimated input directions, shape ``(d, r)`` (:func:`input_directions`); ``r`` is
        the one in ``E``.
    n_choose
        How many distinct candidates to choose.
    order
        Number of lags ``k`` of the model (each has its own diagonal of ``B``).
    terms
        Which parts of ``E`` to count: ``"neurons"`` (per-neuron uncertainty),
        ``"directions"`` (uncertainty along the input directions), or both (the default).
    prior_count
        ``c`` in ``E``: the uncertainty of a neuron never stimulated is ``1 / c``.
    ridge
        Added to the diagonal of ``M`` so that it can be inverted before the patterns span
        every direction.

    Returns
    -------
    numpy.ndarray
        Indices into ``candidates``, in the order chosen.

    Raises
    ------
    ValueError
        On shapes that do not match, non-binary or unequal-size candidates, too few
        candidates, an unknown term, or non-positive ``order``, ``prior_count`` or ``ridge``.
    """
    candidates = np.asarray(candidates, dtype=float)
    directions = np.asarray(directions, dtype=float)
    if candidates.ndim != 2 or candidates.shape[0] == 0:
        raise ValueError(f"candidates must have shape (n_candidates, d), got {candidates.shape}.")
    n_candidates, d = candidates.shape
    seen = np.asarray(seen, dtype=float)
    if seen.size == 0:
        seen = np.zeros((0, d))
    if seen.ndim != 2 or seen.shape[1] != d:
        raise ValueError(f"seen must have shape (n_seen, {d}), got {seen.shape}.")
    if directions.ndim != 2 or directions.shape[0] != d:
        raise ValueError(f"directions must have shape ({d}, r), got {directions.shape}.")
    if (
        not np.isin(candidates, (0.0, 1.0)).all()
        or np.unique(candidates.sum(axis=1)).size != 1
        or candidates.sum() == 0
    ):
        raise ValueError("candidates must be 0/1 patterns, all stimulating the same number of neurons.")
    if isinstance(n_choose, bool) or not isinstance(n_choose, (int, np.integer)) or not 1 <= n_choose <= n_candidates:
        raise ValueError(f"n_choose must be an integer from 1 to the {n_candidates} candidates, got {n_choose!r}.")
    check_positive_ints(order=order)
    unknown = set(terms) - set(DESIGN_TERMS)
    if unknown or not terms:
        raise ValueError(f"terms must be a non-empty subset of {DESIGN_TERMS}, got {tuple(terms)}.")
    if not (prior_count > 0 and ridge > 0):
        raise ValueError(f"prior_count and ridge must be positive, got {prior_count} and {ridge}.")

    group_size = int(candidates[0].sum())
    p_in = group_size / d  # chance that a neuron is in a random test group
    p_pair = group_size * (group_size - 1) / (d * (d - 1)) if d > 1 else 0.0  # two given neurons both in it

    def times_sigma_u(vectors: np.ndarray) -> np.ndarray:
        """``vectors @ Sigma_u`` with ``Sigma_u = (p - p_pair) I + p_pair 1 1^T`` (rows are vectors)."""
        return (p_in - p_pair) * vectors + p_pair * vectors.sum(axis=-1, keepdims=True)

    rank = directions.shape[1]
    sigma_test = directions.T @ times_sigma_u(directions.T).T  # V^T Sigma_u V
    counts = seen.sum(axis=0)
    pattern_information = seen.T @ seen + prior_count * np.eye(d)  # S^T S + c I
    z_seen = seen @ directions
    information = z_seen.T @ z_seen + ridge * np.eye(rank)  # M
    z = candidates @ directions  # (n_candidates, r)
    available = np.ones(n_candidates, dtype=bool)
    chosen = []
    for _ in range(n_choose):
        reduction = np.zeros(n_candidates)
        if "neurons" in terms:
            per_neuron = 1 / (counts + prior_count) - 1 / (counts + 1 + prior_count)
            reduction += p_in * order * (candidates @ per_neuron)
            reduction += rank * _trace_reduction(pattern_information, candidates, times_sigma_u)
        if "directions" in terms:
            reduction += d * _trace_reduction(information, z, lambda w: w @ sigma_test)
        reduction[~available] = -np.inf
        best = int(np.argmax(reduction))
        chosen.append(best)
        available[best] = False
        counts = counts + candidates[best]
        pattern_information = pattern_information + np.outer(candidates[best], candidates[best])
        information = information + np.outer(z[best], z[best])
    return np.array(chosen, dtype=int)


def _trace_reduction(
    information: np.ndarray, rows: np.ndarray, times_sigma: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``tr(S I^-1) - tr(S (I + x x^T)^-1)`` for every row ``x`` (Sherman-Morrison).

    It equals ``x^T I^-1 S I^-1 x / (1 + x^T I^-1 x)``; ``times_sigma`` multiplies rows by ``S``.
    """
    solved = np.linalg.solve(information, rows.T).T  # I^-1 x of every row (I is symmetric)
    return np.einsum("nr,nr->n", times_sigma(solved), solved) / (1 + np.einsum("nr,nr->n", solved, rows))
