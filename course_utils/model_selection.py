"""Cross-validation folds for time series whose features look back in time (chapter 2).

A row of a GLM with history features holds the counts of the ``gap`` bins before its own.
With blocked folds, the training rows just after a validation block therefore *contain* the
validation block's last counts as features, and the validation rows just after a training
block contain training counts. To keep the two apart, :func:`blocked_folds` scores each
validation block without its ``gap`` bins next to a training block: no validation count
that is scored is ever seen in training, as a target or as a feature. Every fold trains on
the same number of bins, so a penalty strength per bin (nemos's ``regularizer_strength``)
means the same total strength in every fold.

scikit-learn's ``TimeSeriesSplit(gap=…)`` leaves a gap but only trains on the past, with
folds of growing size; ``KFold(shuffle=False)`` cuts blocks but leaves no gap.
"""

from __future__ import annotations

import numpy as np

from course_utils.validation import check_ints, check_positive_ints

__all__ = ["blocked_folds"]


def blocked_folds(n_bins: int, n_folds: int, gap: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous folds with a gap: (training bins, validation bins) of each fold.

    Parameters
    ----------
    n_bins
        Number of bins (rows) to split; a multiple of ``n_folds`` keeps every fold's
        training set the same size.
    n_folds
        Number of folds, at least 2.
    gap
        Bins left unscored at each end of a validation block that touches a training block:
        the history window of the features (0 for no gap).

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        For each fold, the training bins (every bin outside its block) and the validation
        bins (its block without the gaps), as sorted integer indices. Pass the list as
        ``cv=`` to scikit-learn's ``GridSearchCV`` or ``cross_validate``.

    Raises
    ------
    ValueError
        If the counts are not positive integers, ``n_folds < 2``, ``gap`` is negative, or a
        block is too short to keep a validation bin after its gaps.
    """
    check_positive_ints(n_bins=n_bins, n_folds=n_folds)
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}.")
    check_ints(minimum=0, gap=gap)
    edges = np.linspace(0, n_bins, n_folds + 1).round().astype(int)
    bins = np.arange(n_bins)
    folds = []
    for k in range(n_folds):
        start, stop = int(edges[k]), int(edges[k + 1])
        first = start + (gap if k > 0 else 0)
        last = stop - (gap if k < n_folds - 1 else 0)
        if last <= first:
            raise ValueError(
                f"Fold {k} has {stop - start} bins, too few for a gap of {gap} "
                f"on each side: use fewer folds or a longer recording."
            )
        training = np.concatenate([bins[:start], bins[stop:]])
        folds.append((training, bins[first:last]))
    return folds
