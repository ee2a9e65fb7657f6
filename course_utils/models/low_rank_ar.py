"""Autoregressive (AR) models of photostimulation responses, closed-form and low-rank (chapter 3).

Every model predicts the next frame of population activity from the last ``k`` frames of
activity ``x`` and stimulation ``u``:

.. math::

    \\hat x_{t+1} = v + \\sum_{s=0}^{k-1} \\left(A_s x_{t-s} + B_s u_{t-s}\\right).

:func:`lag_data`
    Builds the lagged inputs and targets (a :class:`LaggedData`) from ``(T, d)`` arrays.
:func:`least_squares_ar`, :func:`ridge_ar`
    Closed-form fits with full ``A_s`` and ``B_s``: minimum-norm least squares, and ridge
    batched over folds and penalties with one :func:`torch.linalg.solve`. They return
    :class:`ARWeights`.
:class:`FullRankAR`
    The same full-rank model as a ``torch.nn.Module``, to train by gradient descent.
:class:`LowRankAR`
    ``A_s = D_{A_s} + U_{A_s} V_{A_s}^T`` and ``B_s = D_{B_s} + U_{B_s} V_{B_s}^T``, for a
    batch of models along a leading dimension (different ranks and orders handled by masks),
    so that a grid of penalties, ranks and orders trains as one tensor computation.
:func:`compress`, :func:`train_batched`
    Folds of rows compressed to at most ``2kd`` rows each by an SVD (same squared error),
    and Adam on a batch of models at once, each with its own penalty, learning rate and
    fold; every model's validation error is recorded every few steps.
:func:`stimulation_response`, :func:`spectral_radius`
    A model's noiseless response to a stimulation pattern, and its stability.

Losses follow one convention: the squared error summed over neurons and averaged over frames,
plus ``lam`` times the sum of squared weights (the bias ``v`` is never penalized). Reported
errors (``mse``) are averaged over neurons too.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from course_utils.training import BatchedAdam, GridHistory
from course_utils.validation import check_positive_ints

__all__ = [
    "LaggedData",
    "ARWeights",
    "CompressedData",
    "FullRankAR",
    "LowRankAR",
    "lag_data",
    "least_squares_ar",
    "ridge_ar",
    "compress",
    "train_batched",
    "mse",
    "stimulation_response",
    "spectral_radius",
]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class LaggedData:
    """Inputs and targets of a one-step-ahead AR model, one row per predicted frame.

    Attributes
    ----------
    x_lags
        Past activity, shape ``(n_rows, order, n_neurons)``; ``x_lags[:, s]`` is ``x_{t-s}``.
    u_lags
        Past stimulation, same shape; ``u_lags[:, s]`` is ``u_{t-s}``.
    target
        The activity to predict, ``x_{t+1}``, shape ``(n_rows, n_neurons)``.
    frame
        Index of the target frame ``t + 1`` in the recording, shape ``(n_rows,)``.
    """

    x_lags: torch.Tensor
    u_lags: torch.Tensor
    target: torch.Tensor
    frame: torch.Tensor

    @property
    def order(self) -> int:
        """Number of lags ``k``."""
        return int(self.x_lags.shape[1])

    @property
    def n_neurons(self) -> int:
        """Number of neurons ``d``."""
        return int(self.x_lags.shape[2])

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def rows(self, index: torch.Tensor | np.ndarray) -> LaggedData:
        """Return the rows selected by a boolean mask or integer index."""
        index = torch.as_tensor(index, device=self.target.device)
        return LaggedData(self.x_lags[index], self.u_lags[index], self.target[index], self.frame[index])

    def truncate(self, order: int) -> LaggedData:
        """The same rows with only the first ``order`` lags (for a model of lower order)."""
        if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= self.order:
            raise ValueError(f"order must be an integer from 1 to {self.order}, got {order!r}.")
        return LaggedData(self.x_lags[:, :order], self.u_lags[:, :order], self.target, self.frame)

    @staticmethod
    def concatenate(pieces: Sequence[LaggedData]) -> LaggedData:
        """The rows of several recordings (e.g. blocks of trials) one after the other.

        ``frame`` keeps each row's index within its own recording.

        Raises
        ------
        ValueError
            If there is no piece, or the pieces differ in order or number of neurons.
        """
        if not pieces:
            raise ValueError("nothing to concatenate: give at least one LaggedData.")
        shapes = {tuple(piece.x_lags.shape[1:]) for piece in pieces}
        if len(shapes) > 1:
            raise ValueError(f"pieces must share their order and number of neurons, got (order, d) = {sorted(shapes)}.")
        return LaggedData(
            *(torch.cat([getattr(piece, name) for piece in pieces]) for name in ("x_lags", "u_lags", "target", "frame"))
        )

    def design(self) -> torch.Tensor:
        """The design matrix ``[x_t, ..., x_{t-k+1}, u_t, ..., u_{t-k+1}]``, shape ``(n, 2kd)``."""
        n = len(self)
        return torch.cat([self.x_lags.reshape(n, -1), self.u_lags.reshape(n, -1)], dim=1)


def _as_2d_tensor(
    name: str, values: np.ndarray | torch.Tensor, device: torch.device | None, dtype: torch.dtype
) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(values) if not isinstance(values, torch.Tensor) else values)
    if tensor.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (frames x neurons), got shape {tuple(tensor.shape)}.")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or inf: remove or interpolate those frames first.")
    return tensor.to(device=device, dtype=dtype)


def lag_data(
    activity: np.ndarray | torch.Tensor,
    stimulation: np.ndarray | torch.Tensor,
    order: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> LaggedData:
    """Build the lagged inputs and targets of an order-``k`` AR model.

    Parameters
    ----------
    activity, stimulation
        Arrays of shape ``(n_frames, n_neurons)``.
    order
        Number of past frames ``k`` (at least 1).
    device, dtype
        Where and how to store the tensors (e.g. ``course_utils.training.get_device()``).

    Returns
    -------
    LaggedData
        One row per frame ``t + 1`` with ``t >= k - 1``: ``n_frames - k`` rows.

    Raises
    ------
    ValueError
        If the arrays are not 2-D, differ in shape, contain NaN, or are too short for ``order``.
    """
    check_positive_ints(order=order)
    x = _as_2d_tensor("activity", activity, device, dtype)
    u = _as_2d_tensor("stimulation", stimulation, device, dtype)
    if x.shape != u.shape:
        raise ValueError(
            f"activity and stimulation must have the same shape, got {tuple(x.shape)} and {tuple(u.shape)}."
        )
    n_frames = x.shape[0]
    if n_frames <= order:
        raise ValueError(f"{n_frames} frames are too few for order={order}: need at least {order + 1}.")
    t = torch.arange(order - 1, n_frames - 1, device=x.device)
    lags = t[:, None] - torch.arange(order, device=x.device)[None, :]  # (n, k): t, t-1, ...
    return LaggedData(x_lags=x[lags], u_lags=u[lags], target=x[t + 1], frame=t + 1)


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over frames and neurons (over the last two dimensions)."""
    return ((prediction - target) ** 2).mean(dim=(-2, -1))


# --------------------------------------------------------------------------- closed form


@dataclass(frozen=True)
class ARWeights:
    """Full-rank AR weights, possibly batched along leading dimensions ``...``.

    Attributes
    ----------
    A, B
        Shape ``(..., order, d, d)``: ``A[..., s]`` multiplies ``x_{t-s}``.
    bias
        Shape ``(..., d)``.
    """

    A: torch.Tensor
    B: torch.Tensor
    bias: torch.Tensor

    def predict(self, data: LaggedData) -> torch.Tensor:
        """Predicted next frames, shape ``(..., n_rows, d)``."""
        return _predict(self.A, self.B, self.bias, data.x_lags, data.u_lags)

    def select(self, *index: int | slice) -> ARWeights:
        """Index the leading (batch) dimensions, e.g. ``weights.select(fold, lam)``."""
        return ARWeights(self.A[index], self.B[index], self.bias[index])


def _predict(
    A: torch.Tensor, B: torch.Tensor, bias: torch.Tensor, x_lags: torch.Tensor, u_lags: torch.Tensor
) -> torch.Tensor:
    """``v + sum_s A_s x_{t-s} + B_s u_{t-s}`` as one matrix product with the design matrix."""
    n, order, d = x_lags.shape
    design = torch.cat([x_lags.reshape(n, -1), u_lags.reshape(n, -1)], dim=1)  # (n, 2kd)
    weights = torch.cat([A, B], dim=-3).transpose(-1, -2).reshape(*A.shape[:-3], 2 * order * d, d)
    return design @ weights + bias[..., None, :]


def _split_weights(W: torch.Tensor, order: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Design-matrix weights ``(..., 2kd, d)`` to ``A`` and ``B`` of shape ``(..., k, d, d)``."""
    lead = W.shape[:-2]
    blocks = W.reshape(*lead, 2, order, d, d).transpose(-1, -2)  # (..., 2, k, out, in)
    return blocks[..., 0, :, :, :], blocks[..., 1, :, :, :]


def least_squares_ar(data: LaggedData) -> ARWeights:
    """Unregularized least-squares AR fit with full ``A_s`` and ``B_s`` (closed form).

    When the design is rank deficient (a stimulation pattern repeated, so only some
    combinations of inputs are ever seen) this is the *minimum-norm* least-squares solution,
    the limit of ridge regression as the penalty goes to zero, computed with the
    pseudo-inverse.

    Parameters
    ----------
    data
        The training rows.

    Returns
    -------
    ARWeights
        Unbatched weights.
    """
    Z = data.design()
    z_mean, y_mean = Z.mean(dim=0), data.target.mean(dim=0)
    Zc, Yc = Z - z_mean, data.target - y_mean
    # The pseudo-inverse (an SVD) gives the minimum-norm solution on every device. The
    # drivers of torch.linalg.lstsq do not all fit here: the default CPU one (gelsy)
    # misjudged the rank of these designs in our tests, and the CUDA one assumes full rank.
    W = torch.linalg.pinv(Zc) @ Yc
    A, B = _split_weights(W, data.order, data.n_neurons)
    return ARWeights(A, B, y_mean - z_mean @ W)


def ridge_ar(
    data: LaggedData, lambdas: Sequence[float] | torch.Tensor, row_weights: torch.Tensor | None = None
) -> ARWeights:
    """Closed-form ridge AR, batched over folds (row masks) and penalties.

    Minimizes, for each fold ``f`` and penalty ``lam``,
    ``mean_t ||x_{t+1} - x_hat_{t+1}||^2 + lam * (||A||^2 + ||B||^2)`` over the rows with
    weight 1 in ``row_weights[f]``; the bias is not penalized.

    Parameters
    ----------
    data
        All rows.
    lambdas
        Penalties, shape ``(n_lambdas,)``, non-negative.
    row_weights
        Shape ``(n_folds, n_rows)``: which rows (1) each fit uses (0 elsewhere). ``None``
        uses every row in one fit.

    Returns
    -------
    ARWeights
        Batched as ``(n_folds, n_lambdas, ...)`` (``n_folds = 1`` when ``row_weights`` is
        ``None``).

    Raises
    ------
    ValueError
        On negative penalties, row weights of the wrong shape, or a fold without rows.
    """
    device, dtype = data.target.device, data.target.dtype
    lam = torch.as_tensor(lambdas, device=device, dtype=dtype).reshape(-1)
    if (lam < 0).any() or not torch.isfinite(lam).all():
        raise ValueError(f"lambdas must be finite and >= 0, got {lam.tolist()}.")
    if row_weights is None:
        row_weights = torch.ones(1, len(data), device=device, dtype=dtype)
    row_weights = torch.as_tensor(row_weights, device=device, dtype=dtype)
    if row_weights.ndim != 2 or row_weights.shape[1] != len(data):
        raise ValueError(f"row_weights must have shape (n_folds, {len(data)}), got {tuple(row_weights.shape)}.")
    counts = row_weights.sum(dim=1)
    if (counts <= 0).any():
        raise ValueError("a fold has no training rows: check the fold assignment.")
    Z, Y = data.design(), data.target
    z_mean = row_weights @ Z / counts[:, None]  # (F, p)
    y_mean = row_weights @ Y / counts[:, None]  # (F, d)
    # Centred second moments per fold, from weighted sums: G = Z'WZ/n - mean mean'. One fold
    # at a time: a three-operand einsum would hold an (n_folds, n_rows, p) tensor.
    G = torch.empty(len(row_weights), Z.shape[1], Z.shape[1], device=device, dtype=dtype)
    C = torch.empty(len(row_weights), Z.shape[1], Y.shape[1], device=device, dtype=dtype)
    for f, w in enumerate(row_weights):
        weighted = (Z * w[:, None]).T
        G[f], C[f] = weighted @ Z, weighted @ Y
    G = G / counts[:, None, None] - z_mean[:, :, None] * z_mean[:, None, :]
    C = C / counts[:, None, None] - z_mean[:, :, None] * y_mean[:, None, :]
    eye = torch.eye(Z.shape[1], device=device, dtype=dtype)
    systems = G[:, None] + lam[None, :, None, None] * eye  # (F, L, p, p)
    W = torch.linalg.solve(systems, C[:, None].expand(-1, lam.numel(), -1, -1))
    A, B = _split_weights(W, data.order, data.n_neurons)
    bias = y_mean[:, None, :] - torch.einsum("fp,flpd->fld", z_mean, W)
    return ARWeights(A, B, bias)


# --------------------------------------------------------------------------- torch models


class FullRankAR(torch.nn.Module):
    """Full-rank AR model (``A_s``, ``B_s`` dense ``d x d``) trained by gradient descent.

    Parameters
    ----------
    n_neurons, order
        ``d`` and ``k``.
    init_scale
        Standard deviation of the random initial weights (0 starts from zero).
    generator
        Random generator for the initial weights.
    """

    def __init__(
        self, n_neurons: int, order: int, init_scale: float = 0.0, generator: torch.Generator | None = None
    ) -> None:
        super().__init__()
        check_positive_ints(n_neurons=n_neurons, order=order)
        shape = (order, n_neurons, n_neurons)
        self.A = torch.nn.Parameter(init_scale * torch.randn(shape, generator=generator))
        self.B = torch.nn.Parameter(init_scale * torch.randn(shape, generator=generator))
        self.bias = torch.nn.Parameter(torch.zeros(n_neurons))

    def forward(self, x_lags: torch.Tensor, u_lags: torch.Tensor) -> torch.Tensor:
        """Predicted next frames, shape ``(n_rows, d)``."""
        return _predict(self.A, self.B, self.bias, x_lags, u_lags)

    def weights(self) -> ARWeights:
        """The current weights as :class:`ARWeights`."""
        return ARWeights(self.A, self.B, self.bias)

    def penalty(self) -> torch.Tensor:
        """Sum of squared weights (bias excluded)."""
        return (self.A**2).sum() + (self.B**2).sum()


# --------------------------------------------------------------------------- compression


@dataclass(frozen=True)
class CompressedData:
    """Folds of rows compressed to their second moments, for fast batched training.

    The squared error of a linear predictor depends on the rows only through ``Z^T Z``,
    ``Z^T Y`` and ``Y^T Y`` (``Z`` the design matrix, ``Y`` the targets). If ``Z = Q R`` (QR
    decomposition), the ``q <= p`` rows ``(R, Q^T Y)`` give the same squared error up to a
    constant, ``residual``, for every weight matrix: a fold of thousands of frames becomes
    at most ``p = 2kd`` rows. :func:`compress` uses the SVD ``Z = U S V^T`` instead (rows
    ``S V^T`` and ``U^T Y``), which also drops the directions the design never explores.
    Rows are centred on the means of a fold's *training* rows, so the bias
    is implicit (``v = y_mean - z_mean W``).

    Attributes
    ----------
    x_lags, u_lags
        Compressed inputs, shape ``(n_groups, q, order, d)`` (zero-padded to a common ``q``).
    target
        Compressed targets, shape ``(n_groups, q, d)``.
    n_rows
        Number of original rows each group stands for, shape ``(n_groups,)``.
    residual
        Squared error (summed over rows and neurons) that no linear predictor can remove,
        added back when reporting errors, shape ``(n_groups,)``.
    z_mean, y_mean
        The centring: means of the design and of the targets over each group's training rows.
    """

    x_lags: torch.Tensor
    u_lags: torch.Tensor
    target: torch.Tensor
    n_rows: torch.Tensor
    residual: torch.Tensor
    z_mean: torch.Tensor
    y_mean: torch.Tensor

    @property
    def n_groups(self) -> int:
        """Number of groups (folds)."""
        return int(self.target.shape[0])

    def group(self, index: int) -> CompressedData:
        """The data of one group, still with a leading dimension of size 1."""
        sl = slice(index, index + 1)
        return CompressedData(
            self.x_lags[sl],
            self.u_lags[sl],
            self.target[sl],
            self.n_rows[sl],
            self.residual[sl],
            self.z_mean[sl],
            self.y_mean[sl],
        )


def compress(data: LaggedData, rows: torch.Tensor, center_rows: torch.Tensor | None = None) -> CompressedData:
    """Compress groups of rows (e.g. folds) to their second moments (see :class:`CompressedData`).

    Parameters
    ----------
    data
        All rows.
    rows
        Boolean masks, shape ``(n_groups, n_rows)``: the rows of each group.
    center_rows
        Boolean masks of the same shape: the rows whose means centre each group (the fold's
        training rows when compressing its validation rows). ``None``: ``rows`` themselves.

    Returns
    -------
    CompressedData

    Raises
    ------
    ValueError
        If a mask has the wrong shape or selects no row.
    """
    device = data.target.device
    rows = torch.as_tensor(rows, device=device).bool()
    center_rows = rows if center_rows is None else torch.as_tensor(center_rows, device=device).bool()
    for name, mask in (("rows", rows), ("center_rows", center_rows)):
        if mask.ndim != 2 or mask.shape[1] != len(data):
            raise ValueError(f"{name} must have shape (n_groups, {len(data)}), got {tuple(mask.shape)}.")
        if (mask.sum(dim=1) == 0).any():
            raise ValueError(f"{name} selects no row for some group: check the fold assignment.")
    if rows.shape[0] != center_rows.shape[0]:
        raise ValueError("rows and center_rows must have the same number of groups.")
    Z, Y = data.design(), data.target
    p, d, order = Z.shape[1], data.n_neurons, data.order
    n_groups = rows.shape[0]
    z_means = torch.stack([Z[m].mean(dim=0) for m in center_rows])
    y_means = torch.stack([Y[m].mean(dim=0) for m in center_rows])
    pieces = []
    for g in range(n_groups):  # a handful of folds; one SVD each
        Zc, Yc = Z[rows[g]] - z_means[g], Y[rows[g]] - y_means[g]
        # Zc = U S Vh; rows S Vh (inputs) and U^T Yc (targets) keep every squared error.
        # Directions with (numerically) zero singular value carry no data and are dropped:
        # the design has rank below p when few stimulation patterns were used.
        U, S, Vh = torch.linalg.svd(Zc, full_matrices=False)
        keep = S > S[0] * max(Zc.shape) * torch.finfo(Zc.dtype).eps
        UtY = U[:, keep].T @ Yc
        pieces.append((S[keep, None] * Vh[keep], UtY, (Yc**2).sum() - (UtY**2).sum()))
    q = max(piece[0].shape[0] for piece in pieces)
    inputs = torch.zeros(n_groups, q, p, device=device, dtype=Z.dtype)
    targets = torch.zeros(n_groups, q, d, device=device, dtype=Z.dtype)
    for g, (compressed, UtY, _) in enumerate(pieces):  # zero rows pad: they add no error
        inputs[g, : compressed.shape[0]] = compressed
        targets[g, : UtY.shape[0]] = UtY
    residual = torch.stack([piece[2] for piece in pieces])
    lags = inputs.reshape(n_groups, q, 2, order, d)
    return CompressedData(
        lags[:, :, 0], lags[:, :, 1], targets, rows.sum(dim=1).to(Z.dtype), residual.clamp_min(0.0), z_means, y_means
    )


# --------------------------------------------------------------------------- low-rank models


_FACTORS = ("U_A", "V_A", "U_B", "V_B")
_PENALIZED = ("diag_A", "diag_B") + _FACTORS


class LowRankAR(torch.nn.Module):
    """A batch of diagonal-plus-low-rank AR models, ``A_s = D_{A_s} + U_{A_s} V_{A_s}^T``.

    The ``n_models`` models share nothing but the tensors they are stored in: model ``m`` is
    slice ``m`` of every parameter, its rank is ``ranks[m]`` and its order ``orders[m]``
    (factor columns and lags beyond them are masked to zero). The same ``r`` serves ``A`` and
    ``B``. A single model is a batch of one.

    Parameters
    ----------
    n_neurons, order
        ``d`` and the largest order ``k`` (the number of lags of the data).
    ranks
        Rank of each model; its length is the number of models.
    orders
        Order of each model (at most ``order``); ``None``: ``order`` for every model.
    init_scale
        Standard deviation of the random initial factors ("random" initialization; the
        diagonals start at zero). Use :meth:`from_weights` for an SVD initialization.
    generator
        Random generator for the initial factors.

    Attributes
    ----------
    diag_A, diag_B : torch.nn.Parameter
        Shape ``(n_models, order, d)``.
    U_A, V_A, U_B, V_B : torch.nn.Parameter
        Shape ``(n_models, order, d, max_rank)``.
    bias : torch.nn.Parameter
        Shape ``(n_models, d)``.
    """

    def __init__(
        self,
        n_neurons: int,
        order: int,
        ranks: Sequence[int],
        *,
        orders: Sequence[int] | None = None,
        init_scale: float = 0.05,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_positive_ints(n_neurons=n_neurons, order=order)
        ranks_t = torch.as_tensor(list(ranks), dtype=torch.long).reshape(-1)
        if ranks_t.numel() == 0 or (ranks_t < 1).any() or (ranks_t > n_neurons).any():
            raise ValueError(f"ranks must be integers between 1 and n_neurons={n_neurons}, got {list(ranks)}.")
        n_models, max_rank = ranks_t.numel(), int(ranks_t.max())
        orders_t = torch.full((n_models,), order)
        if orders is not None:
            orders_t = torch.as_tensor(list(orders)).reshape(-1)
        if orders_t.numel() != n_models or (orders_t < 1).any() or (orders_t > order).any():
            raise ValueError(
                f"orders needs one value per model ({n_models}), each between 1 and order={order}, "
                f"got {None if orders is None else list(orders)}."
            )
        factor_shape = (n_models, order, n_neurons, max_rank)
        for name in ("diag_A", "diag_B"):
            self.register_parameter(name, torch.nn.Parameter(torch.zeros(n_models, order, n_neurons)))
        for name in _FACTORS:
            values = init_scale * torch.randn(factor_shape, generator=generator)
            self.register_parameter(name, torch.nn.Parameter(values))
        self.bias = torch.nn.Parameter(torch.zeros(n_models, n_neurons))
        rank_mask = (torch.arange(max_rank)[None, :] < ranks_t[:, None]).float()
        lag_mask = (torch.arange(order)[None, :] < orders_t[:, None]).float()
        factor_mask = rank_mask[:, None, None, :] * lag_mask[:, :, None, None]  # (M, k, 1, R)
        self.register_buffer("factor_mask", factor_mask)
        self.register_buffer("diag_mask", lag_mask[:, :, None])  # (M, k, 1)
        self.register_buffer("ranks", ranks_t)
        self.register_buffer("orders", orders_t.long())

    @property
    def n_models(self) -> int:
        """Number of models in the batch."""
        return int(self.ranks.numel())

    @classmethod
    def from_weights(cls, weights: ARWeights, ranks: Sequence[int], orders: Sequence[int] | None = None) -> LowRankAR:
        """Initialize each model from the truncated SVD of full-rank weights ("svd" init).

        ``D`` is the diagonal of each ``A_s`` (``B_s``); ``U`` and ``V`` are the top singular
        vectors of the off-diagonal rest, each scaled by the square root of the singular
        values (a balanced factorization).

        Parameters
        ----------
        weights
            Full-rank weights with one leading batch dimension, ``(n_models, ...)``, or none
            (the same weights for every model).
        ranks, orders
            Rank and order of each model (see :class:`LowRankAR`).

        Returns
        -------
        LowRankAR
            On the device of ``weights``.
        """
        A, B, bias = weights.A.detach(), weights.B.detach(), weights.bias.detach()
        order, d = A.shape[-3], A.shape[-1]
        model = cls(d, order, ranks, orders=orders, init_scale=0.0).to(A.device)
        n_models, max_rank = model.n_models, int(model.ranks.max())
        with torch.no_grad():
            for tag, full in (("A", A), ("B", B)):
                full = full.expand(n_models, order, d, d)
                diag = torch.diagonal(full, dim1=-2, dim2=-1)
                U, S, Vh = torch.linalg.svd(full - torch.diag_embed(diag))
                root = S[..., :max_rank].sqrt()[..., None, :]
                getattr(model, f"diag_{tag}").copy_(diag)
                getattr(model, f"U_{tag}").copy_(U[..., :max_rank] * root)
                getattr(model, f"V_{tag}").copy_(Vh[..., :max_rank, :].transpose(-1, -2) * root)
            model.bias.copy_(bias.expand(n_models, d))
        return model

    def _project(self, lags: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """``V_s^T z_{t-s}`` of every model and lag: ``(G, n, k, d)`` to ``(M, n, k * R)``."""
        n_groups, n, order, d = lags.shape
        per = self.n_models // n_groups
        rank = V.shape[-1]
        V = V.reshape(n_groups, per, order, d, rank)
        # One matrix product per lag, over all models of a group at once.
        out = [lags[:, :, s] @ V[:, :, s].permute(0, 2, 1, 3).reshape(n_groups, d, per * rank) for s in range(order)]
        out = torch.stack(out, dim=2).reshape(n_groups, n, order, per, rank)
        return out.permute(0, 3, 1, 2, 4).reshape(self.n_models, n, order * rank)

    def forward(self, x_lags: torch.Tensor, u_lags: torch.Tensor) -> torch.Tensor:
        """Predicted next frames of every model, shape ``(n_models, n_rows, d)``.

        Parameters
        ----------
        x_lags, u_lags
            Shape ``(n_rows, order, d)``, shared by every model, or ``(n_groups, n_rows,
            order, d)``: models ``g * M / G`` to ``(g + 1) * M / G - 1`` see group ``g``
            (e.g. the folds of :func:`compress`).
        """
        grouped = self.grouped_forward(x_lags, u_lags)
        return grouped.reshape(self.n_models, *grouped.shape[2:]) + self.bias[:, None, :]

    def grouped_forward(self, x_lags: torch.Tensor, u_lags: torch.Tensor) -> torch.Tensor:
        """Predictions without the bias, shape ``(n_groups, n_models / n_groups, n_rows, d)``."""
        if x_lags.ndim == 3:
            x_lags, u_lags = x_lags[None], u_lags[None]
        if x_lags.shape != u_lags.shape or x_lags.ndim != 4:
            raise ValueError(
                f"x_lags and u_lags must have the same shape (n_rows, order, d) or (n_groups, n_rows, "
                f"order, d), got {tuple(x_lags.shape)} and {tuple(u_lags.shape)}."
            )
        n_groups, n, order, d = x_lags.shape
        if self.n_models % n_groups:
            raise ValueError(f"{self.n_models} models cannot be split evenly over {n_groups} data groups.")
        mask = self.factor_mask
        projected = torch.cat([self._project(x_lags, self.V_A * mask), self._project(u_lags, self.V_B * mask)], dim=2)
        U = torch.cat([self.U_A * mask, self.U_B * mask], dim=1)  # (M, 2k, d, R)
        U = U.permute(0, 1, 3, 2).reshape(self.n_models, -1, d)  # (M, 2k * R, d)
        out = (projected @ U).reshape(n_groups, -1, n, d)
        per = self.n_models // n_groups
        diag = torch.cat([self.diag_A, self.diag_B], dim=1) * self.diag_mask.repeat(1, 2, 1)  # (M, 2k, d)
        lags = torch.cat([x_lags, u_lags], dim=2)  # (G, n, 2k, d)
        # The diagonal terms of every lag in one contraction (cheaper than one pass per lag).
        return out + torch.einsum("gnsj,gpsj->gpnj", lags, diag.reshape(n_groups, per, 2 * order, d))

    def penalty(self) -> torch.Tensor:
        """Sum of squared weights of each model (bias excluded), shape ``(n_models,)``."""
        total = torch.zeros(self.n_models, device=self.bias.device, dtype=self.bias.dtype)
        for name in _PENALIZED:
            values = getattr(self, name)
            values = values * (self.factor_mask if name in _FACTORS else self.diag_mask)
            total = total + (values**2).flatten(1).sum(dim=1)
        return total

    def weights(self) -> ARWeights:
        """The full matrices ``A_s``, ``B_s`` of every model, batched ``(n_models, ...)``."""
        mask, diag = self.factor_mask, self.diag_mask
        A = torch.diag_embed(self.diag_A * diag) + (self.U_A * mask) @ (self.V_A * mask).transpose(-1, -2)
        B = torch.diag_embed(self.diag_B * diag) + (self.U_B * mask) @ (self.V_B * mask).transpose(-1, -2)
        return ARWeights(A, B, self.bias)


# --------------------------------------------------------------------------- batched training


def _per_model(
    name: str, value: float | Sequence[float] | torch.Tensor, n_models: int, device: torch.device
) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float32, device=device).reshape(-1)
    if tensor.numel() == 1:
        tensor = tensor.expand(n_models)
    if tensor.numel() != n_models:
        raise ValueError(f"{name} needs one value or one per model ({n_models}), got {tensor.numel()}.")
    if not torch.isfinite(tensor).all() or (tensor < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {tensor.tolist()}.")
    return tensor.clone()


def _squared_error(model: LowRankAR, data: CompressedData) -> torch.Tensor:
    """Total squared error of each model on its group's rows, shape ``(n_models,)``."""
    prediction = model.grouped_forward(data.x_lags, data.u_lags)  # the bias is zero here
    error = ((prediction - data.target[:, None]) ** 2).sum(dim=(2, 3))  # (G, M / G)
    return (error + data.residual[:, None]).reshape(-1)


def train_batched(
    model: LowRankAR,
    train: CompressedData,
    val: CompressedData | None = None,
    *,
    lambdas: float | Sequence[float] | torch.Tensor,
    lr: float | Sequence[float] | torch.Tensor,
    steps: int,
    eval_every: int = 1,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> GridHistory:
    """Train every model of a :class:`LowRankAR` batch at once with full-batch Adam.

    Model ``m`` minimizes its own loss: the mean over its group's training rows of the
    squared error summed over neurons, plus ``lambdas[m]`` times its squared weights. The
    batch trains as one tensor computation: the loss summed over models has, for each
    model's parameters, the gradient of that model's loss alone, and Adam's update of a
    weight depends only on that weight's gradients, so each model follows its own Adam path,
    with its own learning rate ``lr[m]``. The bias is implicit in the centring of the
    compressed rows and is set at the end (``v = y_mean - z_mean W``).

    Parameters
    ----------
    model
        The batch of models, trained in place on the device of ``train``. Its models are
        split evenly over the groups (folds) of ``train``, in order.
    train, val
        Compressed training and validation rows (:func:`compress`), with the same groups;
        ``val`` centred on the training means.
    lambdas, lr
        Penalty and learning rate: one value for every model or one per model.
    steps
        Number of Adam steps; each uses all training rows (one step = one epoch).
    eval_every
        Record the validation error every this many steps (and after the last).
    betas, eps
        Adam's constants.

    Returns
    -------
    GridHistory
        Every model's mean squared error (per neuron and frame): ``train["mse"]`` before each
        step and after the last, ``validation["mse"]`` at ``validation_steps``.

    Raises
    ------
    ValueError
        On bad penalties, learning rates or steps, or groups that do not match.
    FloatingPointError
        If a model's loss becomes NaN or infinite (lower its learning rate).
    """
    check_positive_ints(steps=steps, eval_every=eval_every)
    device = train.target.device
    model.to(device)
    M, d = model.n_models, model.bias.shape[1]
    if M % train.n_groups or (val is not None and val.n_groups != train.n_groups):
        raise ValueError(
            f"{M} models must split evenly over the {train.n_groups} groups of train (and val must "
            "have the same groups)."
        )
    lam, rate = _per_model("lambdas", lambdas, M, device), _per_model("lr", lr, M, device)
    per = M // train.n_groups
    n_train = train.n_rows.repeat_interleave(per)
    n_val = None if val is None else val.n_rows.repeat_interleave(per)
    with torch.no_grad():
        model.bias.zero_()  # centred rows: the bias is implicit
    params = [p for name, p in model.named_parameters() if name != "bias"]
    adam = BatchedAdam(params, betas=betas, eps=eps)
    train_curve, val_curve, val_steps = [], [], []
    start = time.perf_counter()
    for step in range(steps + 1):
        train_error = _squared_error(model, train) / n_train
        train_curve.append(train_error.detach() / d)
        if val is not None and (step % eval_every == 0 or step == steps):
            with torch.no_grad():
                val_curve.append(_squared_error(model, val) / n_val / d)
            val_steps.append(step)
        if step == steps:
            break
        loss = train_error + lam * model.penalty()
        if not torch.isfinite(loss).all():
            bad = torch.nonzero(~torch.isfinite(loss)).flatten().tolist()
            raise FloatingPointError(f"the loss of model(s) {bad} is not finite at step {step}: lower lr.")
        grads = torch.autograd.grad(loss.sum(), params)
        adam.step(params, grads, rate)
    with torch.no_grad():
        W = model.weights()
        z_mean = train.z_mean.repeat_interleave(per, dim=0)
        y_mean = train.y_mean.repeat_interleave(per, dim=0)
        order = W.A.shape[1]
        x_mean = z_mean.reshape(M, 2, order, d)
        implied = torch.einsum("msij,msj->mi", W.A, x_mean[:, 0]) + torch.einsum("msij,msj->mi", W.B, x_mean[:, 1])
        model.bias.copy_(y_mean - implied)
    wall = time.perf_counter() - start
    history = GridHistory(M, train={"mse": torch.stack(train_curve).cpu().numpy()}, updates_run=steps, wall_time_s=wall)
    history.epochs_run = steps  # full batch: one update per pass over the data
    if val is not None:
        history.validation = {"mse": torch.stack(val_curve).cpu().numpy()}
        history.validation_steps = np.array(val_steps, dtype=int)
    return history


# --------------------------------------------------------------------------- analysis


def stimulation_response(weights: ARWeights, patterns: torch.Tensor, n_frames: int, stim_frames: int) -> torch.Tensor:
    """Noiseless response of AR models to stimulating each pattern, from the baseline.

    Parameters
    ----------
    weights
        Weights, batched ``(..., order, d, d)``.
    patterns
        Stimulation patterns, shape ``(n_patterns, d)``.
    n_frames
        Frames to return; frame 0 is the first stimulated frame (still at baseline).
    stim_frames
        Number of stimulated frames.

    Returns
    -------
    torch.Tensor
        Activity relative to the baseline, shape ``(..., n_patterns, n_frames, d)``.
    """
    A, B = weights.A, weights.B
    order, d = A.shape[-3], A.shape[-1]
    patterns = torch.as_tensor(patterns, device=A.device, dtype=A.dtype)
    if patterns.ndim != 2 or patterns.shape[1] != d:
        raise ValueError(f"patterns must have shape (n_patterns, {d}), got {tuple(patterns.shape)}.")
    lead = A.shape[:-3]
    zero = torch.zeros(*lead, patterns.shape[0], d, device=A.device, dtype=A.dtype)
    x = [zero] * order  # x[-1] is the current frame
    frames = [zero]
    for t in range(n_frames - 1):
        drive = zero
        for s in range(order):
            drive = drive + x[-1 - s] @ A[..., s, :, :].transpose(-1, -2)
            if 0 <= t - s < stim_frames:
                drive = drive + patterns @ B[..., s, :, :].transpose(-1, -2)
        x.append(drive)
        frames.append(drive)
    return torch.stack(frames, dim=-2)


def spectral_radius(weights: ARWeights) -> float:
    """Largest absolute eigenvalue of the companion matrix of unbatched weights (< 1: stable)."""
    A = weights.A.detach()
    order, d = A.shape[0], A.shape[-1]
    companion = torch.zeros(order * d, order * d, dtype=A.dtype, device=A.device)
    companion[:d] = torch.cat(list(A), dim=1)
    companion[d:, :-d] = torch.eye((order - 1) * d, dtype=A.dtype, device=A.device)
    return float(torch.linalg.eigvals(companion).abs().max())
