"""Leakage-free cross-validation of low-rank AR models on whole stimulation groups (chapter 3).

A row of an order-``k`` AR model predicts frame ``t + 1`` from frames ``t, ..., t - k + 1``:
it *reads* ``k + 1`` frames. A row belongs to the trial of its target frame, but its lags
reach back into the previous trial. When that trial is held out (a validation fold or the
test set), a training row whose window reaches it has been fitted to held-out frames.
:func:`fold_masks` drops those rows from training, fold by fold, and keeps the test set's
frames out of every row used to fit or to choose anything.

:func:`nested_ridge_starts` chooses the ridge penalty of each fold's SVD start inside that
fold's training groups only (nested cross-validation), so the start of a fold never depends
on the fold it is scored on. :func:`tune_low_rank` runs chapter 3's whole protocol on one
session (order, then penalty × rank × epochs, then a refit with the same training routine)
so that it can be repeated over independently drawn planted systems.

scikit-learn's ``GroupKFold`` assigns whole groups to folds but knows nothing of the rows'
windows; the window rule is what this module adds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from course_utils.models import low_rank_ar as lrar
from course_utils.validation import check_positive_ints

__all__ = [
    "FoldMasks",
    "TuningResult",
    "frame_patterns",
    "window_patterns",
    "fold_masks",
    "assign_folds",
    "least_squares_cv",
    "nested_ridge_starts",
    "fold_curves",
    "repeat_per_fold",
    "tune_low_rank",
]

TEST = -1  #: fold label of the held-out test patterns
FREE = -2  #: label of frames outside every trial (the lead-in): anyone may read them


@dataclass(frozen=True)
class FoldMasks:
    """Boolean row masks of a cross-validation over whole stimulation patterns.

    Attributes
    ----------
    fit
        ``(n_folds, n_rows)``: the rows each fold trains on. Their targets lie in the other
        folds' trials, and no frame they read lies in the fold's own trials or the test set's.
    val
        ``(n_folds, n_rows)``: the rows each fold is scored on (targets in its trials, no frame
        read from the test set).
    train
        ``(n_rows,)``: every training row, for the final refit (no frame read from the test set).
    test
        ``(n_rows,)``: rows whose target lies in a test trial.
    """

    fit: np.ndarray
    val: np.ndarray
    train: np.ndarray
    test: np.ndarray

    @property
    def n_dropped(self) -> int:
        """Training rows that fold training leaves out because their window reads held-out frames."""
        eligible = self.train[None, :] & ~self.val
        return int((eligible & ~self.fit).sum())


def frame_patterns(n_frames: int, trial_onsets: np.ndarray, trial_pattern: np.ndarray) -> np.ndarray:
    """The pattern stimulated in the trial of each frame (``FREE`` before the first trial).

    Parameters
    ----------
    n_frames
        Length of the recording.
    trial_onsets, trial_pattern
        First frame and pattern of each trial, in time order.

    Returns
    -------
    numpy.ndarray
        Integer array of shape ``(n_frames,)``.
    """
    onsets = np.asarray(trial_onsets)
    if onsets.ndim != 1 or onsets.size != np.size(trial_pattern) or np.any(np.diff(onsets) <= 0):
        raise ValueError("trial_onsets must be increasing and match trial_pattern in length.")
    trial = np.searchsorted(onsets, np.arange(n_frames), side="right") - 1
    return np.where(trial >= 0, np.asarray(trial_pattern)[np.clip(trial, 0, None)], FREE)


def window_patterns(target_frames: np.ndarray, order: int, frame_pattern: np.ndarray) -> np.ndarray:
    """The pattern of every frame each row reads: its ``order`` lags, then its target.

    Parameters
    ----------
    target_frames
        Target frame of each row, shape ``(n_rows,)`` (``LaggedData.frame``).
    order
        Number of lags ``k`` of the rows (use the largest order tried).
    frame_pattern
        Output of :func:`frame_patterns`.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_rows, order + 1)``; the last column is the row's own pattern.
    """
    check_positive_ints(order=order)
    frames = np.asarray(target_frames)[:, None] + np.arange(-order, 1)[None, :]
    if frames.min() < 0 or frames.max() >= frame_pattern.size:
        raise ValueError("a row reads a frame outside the recording: check order and target_frames.")
    return np.asarray(frame_pattern)[frames]


def assign_folds(
    train_patterns: np.ndarray, test_patterns: np.ndarray, n_patterns: int, n_folds: int, rng: np.random.Generator
) -> np.ndarray:
    """Deal the training patterns into ``n_folds`` folds at random; label test patterns ``TEST``.

    Returns
    -------
    numpy.ndarray
        Fold of each pattern, shape ``(n_patterns,)``; patterns in neither set get ``FREE``.
    """
    check_positive_ints(n_folds=n_folds)
    if np.size(train_patterns) < n_folds:
        raise ValueError(f"{np.size(train_patterns)} training patterns cannot fill {n_folds} folds.")
    fold = np.full(n_patterns, FREE)
    fold[np.asarray(test_patterns, dtype=int)] = TEST
    fold[rng.permutation(np.asarray(train_patterns, dtype=int))] = np.arange(np.size(train_patterns)) % n_folds
    return fold


def fold_masks(windows: np.ndarray, pattern_fold: np.ndarray) -> FoldMasks:
    """Row masks of a cross-validation in which no fitted row reads a held-out frame.

    Parameters
    ----------
    windows
        Output of :func:`window_patterns`.
    pattern_fold
        Fold of each pattern (0, 1, ...), ``TEST`` for test patterns, ``FREE`` for patterns
        no row should be scored on (the lead-in's label).

    Returns
    -------
    FoldMasks
    """
    pattern_fold = np.asarray(pattern_fold)
    labels = np.where(windows >= 0, pattern_fold[np.clip(windows, 0, None)], FREE)
    target = labels[:, -1]
    n_folds = int(pattern_fold.max()) + 1
    if n_folds < 2:
        raise ValueError("give at least two folds of training patterns.")
    reads_test = (labels == TEST).any(axis=1)
    train = (target >= 0) & ~reads_test
    fit = np.stack([train & (target != f) & ~(labels == f).any(axis=1) for f in range(n_folds)])
    val = np.stack([(target == f) & ~reads_test for f in range(n_folds)])
    if (fit.sum(axis=1) == 0).any() or (val.sum(axis=1) == 0).any():
        raise ValueError("a fold has no training or no validation rows: use fewer folds or more patterns.")
    return FoldMasks(fit=fit, val=val, train=train, test=target == TEST)


def _inner_folds(pattern_fold: np.ndarray, outer: int, n_inner: int) -> np.ndarray:
    """Folds inside outer fold ``outer``'s training patterns; that fold is held out like the test set.

    The outer training patterns are dealt afresh into ``n_inner`` folds (in turn, by pattern
    index: the outer folds were dealt at random already), so each inner fit sees
    ``(n_inner - 1) / n_inner`` of them, as an outer fit sees of all training patterns.
    """
    inner = np.where(pattern_fold == outer, TEST, pattern_fold)
    training = np.flatnonzero(inner >= 0)
    inner[training] = np.arange(training.size) % n_inner
    return inner


def fold_curves(weights: lrar.ARWeights, data: lrar.LaggedData, rows: np.ndarray) -> np.ndarray:
    """Validation MSE of fold-batched weights ``(n_folds, n_models, ...)``: ``(n_folds, n_models)``."""
    out = []
    for f, mask in enumerate(rows):
        fold_rows = data.rows(torch.as_tensor(mask, device=data.target.device))
        out.append(lrar.mse(weights.select(f).predict(fold_rows), fold_rows.target).cpu().numpy())
    return np.stack(out)


def least_squares_cv(data: lrar.LaggedData, masks: FoldMasks) -> float:
    """Validation MSE of least squares, averaged over the folds of ``masks``."""
    device = data.target.device
    errors = []
    for fit, val in zip(masks.fit, masks.val):
        weights = lrar.least_squares_ar(data.rows(torch.as_tensor(fit, device=device)))
        val_rows = data.rows(torch.as_tensor(val, device=device))
        errors.append(float(lrar.mse(weights.predict(val_rows), val_rows.target)))
    return float(np.mean(errors))


def nested_ridge_starts(
    data: lrar.LaggedData, windows: np.ndarray, pattern_fold: np.ndarray, lambdas: Sequence[float]
) -> tuple[lrar.ARWeights, np.ndarray]:
    """Each fold's ridge fit, its penalty chosen by cross-validation inside that fold's training patterns.

    For outer fold ``f``, the training patterns of ``f`` are dealt into as many inner folds
    as there are outer folds and cross-validated (with the window rule of :func:`fold_masks`,
    fold ``f`` held out like the test set); the penalty with the lowest mean inner
    validation MSE is chosen, and ridge is refitted with it on fold ``f``'s training rows.

    Returns
    -------
    tuple
        Weights batched ``(n_folds, 1, ...)`` and the penalty chosen for each fold.
    """
    outer = fold_masks(windows, pattern_fold)
    n_folds = outer.fit.shape[0]
    device = data.target.device
    chosen = np.empty(n_folds)
    for f in range(n_folds):
        inner = fold_masks(windows, _inner_folds(pattern_fold, f, n_folds))
        fits = lrar.ridge_ar(data, lambdas, torch.as_tensor(inner.fit, device=device))
        chosen[f] = lambdas[int(np.argmin(fold_curves(fits, data, inner.val).mean(axis=0)))]
    pieces = [
        lrar.ridge_ar(data, [chosen[f]], torch.as_tensor(outer.fit[f : f + 1], device=device)) for f in range(n_folds)
    ]
    weights = lrar.ARWeights(*(torch.cat([getattr(p, n) for p in pieces]) for n in ("A", "B", "bias")))
    return weights, chosen


def repeat_per_fold(weights: lrar.ARWeights, per_fold: int) -> lrar.ARWeights:
    """Repeat each fold's weights ``(n_folds, 1, ...)`` for the ``per_fold`` models of that fold."""
    return lrar.ARWeights(*(w[:, 0].repeat_interleave(per_fold, dim=0) for w in (weights.A, weights.B, weights.bias)))


@dataclass(frozen=True)
class TuningResult:
    """What :func:`tune_low_rank` chose and measured on one session.

    Attributes
    ----------
    order, rank, lam, epochs
        The chosen order, rank, L2 penalty and number of Adam steps.
    ridge_lambda
        Penalty of the ridge baseline (and, at the low-rank order, of the refit's SVD start).
    ridge_order, least_squares_order
        The orders the baselines' own cross-validation chose.
    test_mse
        Held-out MSE by model: ``"least squares"``, ``"ridge"``, ``"low rank"``, ``"true model"``
        (the last only for simulated sessions).
    """

    order: int
    rank: int
    lam: float
    epochs: int
    ridge_lambda: float
    ridge_order: int
    least_squares_order: int
    test_mse: dict[str, float]

    @property
    def gain(self) -> float:
        """Relative reduction of the held-out MSE, low rank against least squares."""
        return 1.0 - self.test_mse["low rank"] / self.test_mse["least squares"]


def tune_low_rank(
    session,
    *,
    orders: Sequence[int],
    ranks: Sequence[int],
    lambdas: Sequence[float],
    ridge_lambdas: Sequence[float],
    lr: float,
    steps: int,
    eval_every: int,
    n_folds: int,
    init: str = "svd",
    rng: np.random.Generator,
    device: torch.device | str = "cpu",
) -> TuningResult:
    """Chapter 3's protocol on one session, from folds to held-out errors.

    1. Folds of whole training patterns (:func:`fold_masks`); least squares and ridge
       cross-validated per order (ridge over its penalties too).
    2. The order: flexible low-rank models (largest rank, middle penalty) per order.
    3. Penalty × rank at that order, the epochs read off the validation curves; with
       ``init="svd"`` each fold's start from :func:`nested_ridge_starts`.
    4. The chosen model refitted on every training row with :func:`lrar.train_batched`, the
       routine that tuned it, and scored on the test patterns with least squares and ridge,
       each at the order its own cross-validation chose.

    Parameters
    ----------
    session
        A :class:`course_utils.data.PhotostimSession`.
    orders, ranks, lambdas, ridge_lambdas
        The grids.
    lr, init
        Adam's learning rate and the initialization (``"svd"`` or ``"random"``), held fixed.
    steps, eval_every
        Adam steps per model and how often the validation error is read.
    n_folds
        Folds of training patterns (at least 2), outer and inner.
    rng
        Generator for the folds (and the random initialization).
    device
        Torch device.

    Returns
    -------
    TuningResult
    """
    if init not in ("svd", "random"):
        raise ValueError(f"init must be 'svd' or 'random', got {init!r}.")
    k_max = max(orders)
    activity, stimulation = session.activity, session.stimulation
    data = lrar.lag_data(activity, stimulation, k_max, device=device)
    frame_pattern = frame_patterns(activity.shape[0], session.trial_onsets, session.trial_pattern)
    windows = window_patterns(data.frame.cpu().numpy(), k_max, frame_pattern)
    n_patterns = session.patterns.shape[0]
    train_patterns = np.setdiff1d(np.arange(n_patterns), session.heldout_patterns)
    pattern_fold = assign_folds(train_patterns, session.heldout_patterns, n_patterns, n_folds, rng)
    masks = fold_masks(windows, pattern_fold)
    as_tensor = lambda mask: torch.as_tensor(mask, device=data.target.device)  # noqa: E731

    ridge_cv = {
        k: fold_curves(
            lrar.ridge_ar(data.truncate(k), ridge_lambdas, as_tensor(masks.fit)), data.truncate(k), masks.val
        ).mean(axis=0)
        for k in orders
    }

    def grid_search(
        k: int, configs: list[tuple[float, int]], model_orders: list[int] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Validation curves (checkpoints, configs) averaged over folds, and their steps."""
        data_k = data if model_orders is not None else data.truncate(k)
        per = len(configs)
        ranks_all = [r for _, r in configs] * n_folds
        if init == "svd":
            starts, _ = nested_ridge_starts(data_k, windows, pattern_fold, ridge_lambdas)
            model = lrar.LowRankAR.from_weights(
                repeat_per_fold(starts, per),
                ranks=ranks_all,
                orders=None if model_orders is None else model_orders * n_folds,
            )
        else:
            model = lrar.LowRankAR(
                data_k.n_neurons,
                data_k.order,
                ranks_all,
                init_scale=0.05,
                orders=None if model_orders is None else model_orders * n_folds,
                generator=torch.Generator().manual_seed(int(rng.integers(2**31))),
            ).to(device)
        history = lrar.train_batched(
            model,
            lrar.compress(data_k, as_tensor(masks.fit)),
            lrar.compress(data_k, as_tensor(masks.val), center_rows=as_tensor(masks.fit)),
            lambdas=[lam for lam, _ in configs] * n_folds,
            lr=lr,
            steps=steps,
            eval_every=eval_every,
        )
        curves = history.validation["mse"].reshape(len(history.validation_steps), n_folds, per).mean(axis=1)
        return curves, history.validation_steps

    middle = float(lambdas[len(lambdas) // 2])
    order_curves, _ = grid_search(k_max, [(middle, max(ranks))] * len(orders), list(orders))
    order = int(orders[int(np.argmin(order_curves.min(axis=0)))])
    configs = [(float(lam), int(rank)) for lam in lambdas for rank in ranks]
    curves, val_steps = grid_search(order, configs, None)
    best = int(np.argmin(curves.min(axis=0)))
    lam, rank = configs[best]
    epochs = max(int(val_steps[np.argmin(curves[:, best])]), 1)

    # The baselines at the orders their own cross-validation chose.
    ridge_order = min(orders, key=lambda k: ridge_cv[k].min())
    ridge_lambda = float(ridge_lambdas[int(np.argmin(ridge_cv[ridge_order]))])
    least_squares_order = min(orders, key=lambda k: least_squares_cv(data.truncate(k), masks))
    rows = {
        k: (data.truncate(k).rows(as_tensor(masks.train)), data.truncate(k).rows(as_tensor(masks.test)))
        for k in {order, ridge_order, least_squares_order}
    }

    def score(weights: lrar.ARWeights, k: int) -> float:
        test_rows = rows[k][1]
        return float(lrar.mse(weights.predict(test_rows).detach(), test_rows.target))

    if init == "svd":
        start_lambda = float(ridge_lambdas[int(np.argmin(ridge_cv[order]))])
        final = lrar.LowRankAR.from_weights(lrar.ridge_ar(rows[order][0], [start_lambda]).select(0), ranks=[rank])
    else:
        final = lrar.LowRankAR(
            data.n_neurons,
            order,
            [rank],
            init_scale=0.05,
            generator=torch.Generator().manual_seed(int(rng.integers(2**31))),
        ).to(device)
    lrar.train_batched(
        final, lrar.compress(data.truncate(order), as_tensor(masks.train[None])), lambdas=lam, lr=lr, steps=epochs
    )
    test_mse = {
        "least squares": score(lrar.least_squares_ar(rows[least_squares_order][0]), least_squares_order),
        "ridge": score(lrar.ridge_ar(rows[ridge_order][0], [ridge_lambda]).select(0, 0), ridge_order),
        "low rank": score(final.weights().select(0), order),
    }
    truth = getattr(session, "truth", None)
    if truth is not None and truth.dynamics.order <= k_max:
        dyn = truth.dynamics
        true_weights = lrar.ARWeights(
            *(torch.as_tensor(a, dtype=torch.float32, device=device) for a in (dyn.A, dyn.B, dyn.bias))
        )
        true_rows = data.truncate(dyn.order).rows(as_tensor(masks.test))
        test_mse["true model"] = float(lrar.mse(true_weights.predict(true_rows), true_rows.target))
    return TuningResult(
        order=order,
        rank=int(rank),
        lam=float(lam),
        epochs=epochs,
        ridge_lambda=ridge_lambda,
        ridge_order=int(ridge_order),
        least_squares_order=int(least_squares_order),
        test_mse=test_mse,
    )
