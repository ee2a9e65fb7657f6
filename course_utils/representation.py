"""What a learned code holds about known generating factors (chapter 5).

Two scores of a representation ``codes`` (one row per example) against the factors that
generated the examples (one column per factor), both usable only where the factors are
known, as in a simulation:

:func:`probe_r2`
    How well a regression *probe* predicts each factor from the codes, by cross-validated R²:
    a quadratic ridge probe (standardize, all degree-2 terms, ridge with its penalty chosen
    by leave-one-out inside each training fold) or a k-nearest-neighbours probe (a fixed k). The first
    measures quadratic decodability, the second any smooth one.
:func:`mutual_information_gap`
    The mutual information gap (MIG) of Chen et al. (2018), estimated the way
    disentanglement_lib does (Locatello et al. 2019): each code dimension and each factor
    is discretized, and the plug-in mutual information of the binned values is used. Chen
    et al.'s original estimate integrates over the encoder's full posterior ``q(z | x)``;
    this one reads only a point per example (e.g. the posterior mean). Bins here hold equal
    counts (quantiles) rather than disentanglement_lib's equal widths, so that a few
    extreme codes do not empty most bins.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mutual_info_score
from sklearn.model_selection import KFold, cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PolynomialFeatures, StandardScaler

from course_utils.validation import check_ints

__all__ = ["PROBES", "quantile_bins", "mutual_information_gap", "probe_r2"]

#: The probes :func:`probe_r2` knows.
PROBES: tuple[str, ...] = ("quadratic", "knn")


def _as_table(name: str, values: ArrayLike, n_rows: int | None = None) -> np.ndarray:
    """``values`` as a finite 2-D float array (a 1-D one becomes one column)."""
    table = np.asarray(values, dtype=float)
    if table.ndim == 1:
        table = table[:, None]
    if table.ndim != 2 or table.shape[0] < 2:
        raise ValueError(f"{name} must have shape (n_examples, n_columns), got {table.shape}.")
    if n_rows is not None and table.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {table.shape[0]} rows but the codes have {n_rows}: pass one row per example to both."
        )
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{name} contains NaN or inf: drop or fix those examples first.")
    return table


def quantile_bins(values: ArrayLike, n_bins: int = 10) -> np.ndarray:
    """Bin index (0 to ``n_bins - 1``) of each value, bins holding equal counts.

    Parameters
    ----------
    values
        One value per example, shape ``(n_examples,)``.
    n_bins
        Number of bins; ties at a bin edge go to the upper bin.

    Returns
    -------
    numpy.ndarray
        Integer bin indices, shape ``(n_examples,)``.
    """
    array = _as_table("values", values)
    if array.shape[1] != 1:
        raise ValueError(f"values must be one-dimensional, got shape {np.shape(values)}.")
    check_ints(minimum=2, n_bins=n_bins)
    column = array[:, 0]
    edges = np.quantile(column, np.linspace(0.0, 1.0, n_bins + 1)[1:-1])
    return np.searchsorted(edges, column, side="right")


def mutual_information_gap(codes: ArrayLike, factors: ArrayLike, n_bins: int = 10) -> float:
    """Discretized MIG of ``codes`` for ``factors``, averaged over factors.

    For each factor ``v``, with ``I`` the plug-in mutual information of binned values (nats),
    the gap is ``(I(z_best; v) - I(z_second; v)) / H(v)``: the most informative code
    dimension's lead over the runner-up, as a fraction of the factor's entropy. It is near 1
    when every factor has a code dimension of its own and near 0 when none stands out
    (a factor spread over several dimensions, or carried by none). The plug-in estimate is
    biased upwards by about ``(n_bins - 1)² / (2 n)`` nats, which lifts the runner-up most:
    expect a little below 1 for a perfect code and a little above 0 for a mixed one.

    Parameters
    ----------
    codes
        One point of the code per example (e.g. posterior means), shape
        ``(n_examples, n_dimensions)`` with at least two dimensions.
    factors
        The generating factors, shape ``(n_examples, n_factors)``.
    n_bins
        Equal-count bins per variable.

    Returns
    -------
    float
        The mean gap over factors.
    """
    code_table = _as_table("codes", codes)
    if code_table.shape[1] < 2:
        raise ValueError(
            "The MIG compares the best code dimension with the second best: codes "
            f"need at least two dimensions, got {code_table.shape[1]}."
        )
    factor_table = _as_table("factors", factors, code_table.shape[0])
    if code_table.shape[0] < 5 * n_bins:
        raise ValueError(
            f"{code_table.shape[0]} examples are too few for {n_bins} bins: use at least {5 * n_bins} or fewer bins."
        )
    binned_codes = [quantile_bins(column, n_bins) for column in code_table.T]
    gaps = []
    for factor in factor_table.T:
        binned = quantile_bins(factor, n_bins)
        entropy = mutual_info_score(binned, binned)
        if entropy == 0:
            raise ValueError("A factor is constant: it has no information to share with the code.")
        information = np.sort([mutual_info_score(binned, code) for code in binned_codes])[::-1]
        gaps.append((information[0] - information[1]) / entropy)
    return float(np.mean(gaps))


def probe_r2(
    codes: ArrayLike,
    target: ArrayLike,
    probe: str = "quadratic",
    *,
    n_neighbors: int = 10,
    n_folds: int = 5,
    seed: int = 0,
) -> float:
    """Cross-validated R² of a probe that predicts ``target`` from ``codes``.

    Parameters
    ----------
    codes
        Predictors, shape ``(n_examples, n_dimensions)``.
    target
        One factor, shape ``(n_examples,)``.
    probe
        ``"quadratic"``: standardize, all degree-2 terms, standardize, ridge with its
        penalty chosen among 15 values from 1e-4 to 1e3 by leave-one-out inside each training
        fold. ``"knn"``: standardize, then average the target of the ``n_neighbors`` nearest
        training examples (fixed, not tuned, so no inner folds are needed).
    n_neighbors
        Neighbours of the kNN probe.
    n_folds
        Folds (shuffled with ``seed``); the R² is their mean.
    seed
        Seed of the shuffle.

    Returns
    -------
    float
        The mean R² over the outer folds (1 is perfect, 0 is the mean's, below 0 worse).
    """
    table = _as_table("codes", codes)
    y = _as_table("target", target, table.shape[0])
    if y.shape[1] != 1:
        raise ValueError(f"target must be one factor, shape (n_examples,), got {np.shape(target)}.")
    if probe == "quadratic":
        model = make_pipeline(
            StandardScaler(), PolynomialFeatures(2), StandardScaler(), RidgeCV(alphas=np.logspace(-4, 3, 15))
        )
    elif probe == "knn":
        training_size = table.shape[0] * (n_folds - 1) // n_folds
        if n_neighbors >= training_size:
            raise ValueError(
                f"{table.shape[0]} examples are too few for a kNN probe with "
                f"{n_neighbors} neighbours in {n_folds} folds: pass fewer neighbours "
                "or use the quadratic probe."
            )
        model = make_pipeline(StandardScaler(), KNeighborsRegressor(n_neighbors=n_neighbors))
    else:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}.")
    folds = KFold(n_folds, shuffle=True, random_state=seed)
    return float(cross_val_score(model, table, y[:, 0], cv=folds, scoring="r2").mean())
