"""How well a compositional RBM reproduces its data (chapter 4): five statistics and their nRMSE.

A cRBM is judged, as in the seed study (van der Plas et al. 2023), by how close five
statistics of its samples come to those of held-out data, each normalized between the
training data (0) and a shuffle of them (1), and by how well its hidden units match the
assemblies planted in a simulation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from course_utils.metrics import rmse
from course_utils.validation import check_ints, check_positive_ints

if TYPE_CHECKING:
    import torch

    from course_utils.models.crbm import BatchedCRBM

ArrayLike = np.ndarray

#: The five statistics compared between data and a cRBM, by key.
CRBM_STATISTICS: tuple[str, ...] = ("v", "h", "vh", "vv", "hh")
#: Their names in formulas.
CRBM_STATISTIC_LABELS: dict[str, str] = {
    "v": r"$\langle v_i \rangle$",
    "h": r"$\langle h_\mu \rangle$",
    "vh": r"$\langle v_i h_\mu \rangle_c$",
    "vv": r"$\langle v_i v_j \rangle_c$",
    "hh": r"$\langle h_\mu h_\nu \rangle_c$",
}
#: The four statistics of the error norm: ``<h_mu>`` is left out (it has one entry per hidden
#: unit, so its RMSE rests on a handful of numbers and is the noisiest of the five).
NORM_STATISTICS: tuple[str, ...] = ("v", "vh", "vv", "hh")
#: A model is good when the L2 norm of its four nRMSEs is at most this.
GOOD_NORM = 0.55


def _as_finite_2d(name: str, values: ArrayLike) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"{name} must be a (time, units) array with at least 2 time points, got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf; check the model or the data.")
    return array


def _upper_covariance(x: np.ndarray) -> np.ndarray:
    """Off-diagonal upper triangle of the covariance of the columns of ``x`` (divisor T)."""
    centred = x - x.mean(axis=0)
    cov = centred.T @ centred / x.shape[0]
    return cov[np.triu_indices(cov.shape[0], k=1)]


def crbm_statistics(visible: ArrayLike, hidden: ArrayLike) -> dict[str, np.ndarray]:
    """The five statistics of a cRBM's evaluation, from visible and hidden activity.

    Parameters
    ----------
    visible
        ``(T, N)`` visible configurations: data, or samples of a model.
    hidden
        ``(T, H)`` hidden activity for the same time points: the model's conditional means
        ``E[h | v]`` (what a model sees in the data), or sampled ``h``. Conditional means give
        the same expectations with less noise, also for ``hh``: given ``v`` the hidden units
        are independent, so their off-diagonal covariance comes from ``E[h | v]`` alone.

    Returns
    -------
    dict
        ``"v"``: ``(N,)`` means; ``"h"``: ``(H,)`` means; ``"vh"``: ``(N, H)`` connected
        ``<v_i h_mu> - <v_i><h_mu>`` (the raw moment is dominated by the product of the means,
        which the first two statistics already score);
        ``"vv"``: connected ``<v_i v_j> - <v_i><v_j>`` for ``i < j``, flattened;
        ``"hh"``: connected ``<h_mu h_nu> - <h_mu><h_nu>`` for ``mu < nu``, flattened.

    Raises
    ------
    ValueError
        If an array is not 2-D, has NaN, or the two disagree on the number of time points.
    """
    v = _as_finite_2d("visible", visible)
    h = _as_finite_2d("hidden", hidden)
    if v.shape[0] != h.shape[0]:
        raise ValueError(
            f"visible and hidden must have the same number of time points, got {v.shape[0]} and {h.shape[0]}."
        )
    v_mean, h_mean = v.mean(axis=0), h.mean(axis=0)
    return {
        "v": v_mean,
        "h": h_mean,
        "vh": v.T @ h / v.shape[0] - np.outer(v_mean, h_mean),
        "vv": _upper_covariance(v),
        "hh": _upper_covariance(h),
    }


def shuffled_rmse(reference: ArrayLike, values: ArrayLike) -> float:
    """RMSE between ``reference`` and ``values`` with the entries of ``values`` shuffled.

    The expectation over every permutation, in closed form (no random draw):
    ``sqrt(mean(r**2) - 2 mean(r) mean(v) + mean(v**2))``. It is the error of a "model" that
    has the right values in the wrong places: the right firing rates on the wrong neurons,
    the right correlations on the wrong pairs.
    """
    r, v = np.asarray(reference, dtype=float).ravel(), np.asarray(values, dtype=float).ravel()
    if r.shape != v.shape:
        raise ValueError(f"arrays must have the same number of entries, got {r.size} and {v.size}.")
    if r.size == 0:
        raise ValueError("arrays are empty: there is nothing to compare.")
    return float(np.sqrt(max(np.mean(r**2) - 2 * r.mean() * v.mean() + np.mean(v**2), 0.0)))


def nrmse(rmse_model: float, rmse_opt: float, rmse_shuffled: float) -> float:
    """Normalized RMSE ``(RMSE - RMSE_opt) / (RMSE_shuffled - RMSE_opt)``.

    0 means the model is as close to the test data as the training data are; 1 means it is no
    closer than shuffled statistics. Negative values (closer than the training data) are
    possible.

    Returns
    -------
    float
        The score, or NaN when an input is NaN or when ``RMSE_shuffled <= RMSE_opt``: then
        the statistic cannot tell the data from their shuffle and the score is undefined.
    """
    values = np.array([rmse_model, rmse_opt, rmse_shuffled], dtype=float)
    if np.any(np.isnan(values)) or not values[2] > values[1]:
        return float("nan")
    return float((values[0] - values[1]) / (values[2] - values[1]))


def crbm_nrmse(
    model: dict[str, np.ndarray],
    test: dict[str, np.ndarray],
    train: dict[str, np.ndarray],
) -> dict[str, float]:
    """nRMSE of each of the five statistics (:func:`crbm_statistics` dicts).

    ``RMSE`` compares the model's statistics with the test data's; ``RMSE_opt`` the training
    data's with the test data's; ``RMSE_shuffled`` the training data's, shuffled across
    entries (:func:`shuffled_rmse`), with the test data's. For the statistics with hidden
    units, both data sets are seen through the same model (its ``E[h | v]``).
    """
    scores = {}
    for key in CRBM_STATISTICS:
        for name, stats in (("model", model), ("test", test), ("train", train)):
            if key not in stats:
                raise ValueError(f"the {name} statistics have no {key!r}: build them with crbm_statistics().")
        scores[key] = nrmse(
            rmse(model[key], test[key]), rmse(train[key], test[key]), shuffled_rmse(test[key], train[key])
        )
    return scores


def error_norm(scores: dict[str, float], statistics: tuple[str, ...] = NORM_STATISTICS) -> float:
    """L2 norm of the nRMSEs of ``statistics`` (NaN if any of them is NaN)."""
    return float(np.sqrt(np.sum(np.square([scores[key] for key in statistics]))))


def is_bad_model(scores: dict[str, float]) -> bool:
    """A model is bad when any of its nRMSEs is above 1 or NaN."""
    values = np.array([scores[key] for key in CRBM_STATISTICS], dtype=float)
    return bool(np.any(np.isnan(values)) or np.any(values > 1.0))


def assembly_overlap(weights: ArrayLike, membership: ArrayLike) -> np.ndarray:
    """Cosine similarity between each planted assembly and each hidden unit's weights.

    Parameters
    ----------
    weights
        ``(N, H)`` weights of one model; their absolute values are compared, since a dReLU
        unit can carry an assembly on either sign.
    membership
        ``(K, N)`` boolean: the neurons of each planted assembly.

    Returns
    -------
    numpy.ndarray
        ``(K, H)`` overlaps in [0, 1] (0 for a hidden unit whose weights are all zero).
    """
    w = np.abs(np.asarray(weights, dtype=float))
    m = np.asarray(membership, dtype=float)
    if w.ndim != 2 or m.ndim != 2 or m.shape[1] != w.shape[0]:
        raise ValueError(f"weights must be (N, H) and membership (K, N) with the same N, got {w.shape} and {m.shape}.")
    if not np.all(np.isfinite(w)):
        raise ValueError("weights contain NaN or inf.")
    norms = np.linalg.norm(m, axis=1)[:, None] * np.linalg.norm(w, axis=0)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (m @ w) / norms, 0.0)


def best_match_overlap(weights: ArrayLike, membership: ArrayLike) -> np.ndarray:
    """For each planted assembly, the overlap of the hidden unit that matches it best, ``(K,)``."""
    return assembly_overlap(weights, membership).max(axis=1)


def matrix_nrmse(a: ArrayLike, b: ArrayLike) -> float:
    """How different two square matrices are: 0 identical, about 1 as different as a shuffle.

    ``RMSE(a, b) / RMSE_shuffled(a, b)`` over the off-diagonal upper triangles, where the
    shuffle permutes the entries of ``b`` (:func:`shuffled_rmse`).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 2 or x.shape != y.shape or x.shape[0] != x.shape[1] or x.shape[0] < 3:
        raise ValueError(f"a and b must be square matrices of the same size (at least 3), got {x.shape} and {y.shape}.")
    upper = np.triu_indices(x.shape[0], k=1)
    xa, ya = x[upper], y[upper]
    return nrmse(rmse(xa, ya), 0.0, shuffled_rmse(xa, ya))


@dataclass(frozen=True)
class SamplingPlan:
    """How a cRBM is sampled to be scored: fresh chains, burn-in, then thinned samples.

    Attributes
    ----------
    n_chains
        Chains per model, started from independent neurons with the training data's rates.
    n_samples
        Samples kept per chain.
    burn_in
        Gibbs steps discarded before the first kept sample.
    thin
        Gibbs steps between kept samples.
    """

    n_chains: int
    n_samples: int
    burn_in: int
    thin: int

    def __post_init__(self) -> None:
        check_positive_ints(n_chains=self.n_chains, n_samples=self.n_samples, thin=self.thin)
        check_ints(minimum=0, burn_in=self.burn_in)


def score_models(
    batch: BatchedCRBM,
    train: np.ndarray,
    reference: np.ndarray,
    plan: SamplingPlan,
    generator: torch.Generator,
    *,
    models: Sequence[int] | None = None,
    chunk: int | None = None,
    keep_statistics: bool = False,
) -> tuple[list[dict[str, float]], list[dict[str, dict[str, np.ndarray]]]]:
    """Sample models of ``batch`` and score the five nRMSEs of each against ``reference``.

    Parameters
    ----------
    batch
        The trained cRBMs.
    train
        ``(T, N)`` training activity: the chains' starting rates, and ``RMSE_opt``'s and
        ``RMSE_shuffled``'s reference (:func:`crbm_nrmse`).
    reference
        ``(T', N)`` activity the models are judged against (validation or test block).
    plan
        How each model is sampled.
    generator
        The torch generator of the chains (on the batch's device).
    models
        Which models to score (default: all). The others, e.g. models that diverged, get NaN
        nRMSEs, which :func:`is_bad_model` counts as bad.
    chunk
        Models sampled at once (default: all), to bound memory.
    keep_statistics
        Also return each scored model's statistics (model, reference and training), e.g.
        for identity plots; they hold ``N^2`` numbers per model and set.

    Returns
    -------
    scores
        Per model of ``batch``, its nRMSE per statistic (:data:`CRBM_STATISTICS`).
    statistics
        Per scored model (in the order of ``models``), ``{"model", "reference", "train"}``
        statistics dicts; empty unless ``keep_statistics``.
    """
    selected = list(range(batch.n_models)) if models is None else [int(m) for m in models]
    if chunk is not None:
        check_positive_ints(chunk=chunk)
    n_chunks = 1 if chunk is None else max(1, -(-len(selected) // chunk))
    scores = [dict.fromkeys(CRBM_STATISTICS, float("nan")) for _ in range(batch.n_models)]
    kept: list[dict[str, dict[str, np.ndarray]]] = []
    for group in np.array_split(np.asarray(selected, dtype=int), n_chunks):
        if group.size == 0:
            continue
        part = batch.select(group.tolist())
        start = part.independent_samples(train, plan.n_chains, generator)
        samples = part.sample(
            plan.n_chains, plan.n_samples, burn_in=plan.burn_in, thin=plan.thin, start=start, generator=generator
        )
        sets = {"model": samples, "reference": reference, "train": train}
        hidden = {name: part.hidden_moments(v)[0].cpu().numpy() for name, v in sets.items()}
        samples = samples.cpu().numpy()
        for position, m in enumerate(group.tolist()):
            stats = {
                name: crbm_statistics(samples[position] if name == "model" else v, hidden[name][position])
                for name, v in sets.items()
            }
            scores[m] = crbm_nrmse(stats["model"], stats["reference"], stats["train"])
            if keep_statistics:
                kept.append(stats)
    return scores, kept
