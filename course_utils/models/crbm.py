"""Compositional restricted Boltzmann machines (cRBMs), many trained at once.

A cRBM has binary visible units ``v_i`` in {0, 1} with fields ``g_i`` and real hidden units
``h_mu`` with the double-ReLU (dReLU) potential

.. math::

    U(h) = \\tfrac12 \\gamma_+ h_+^2 + \\tfrac12 \\gamma_- h_-^2 + \\theta_+ h_+ + \\theta_- h_-,
    \\qquad h_+ = \\max(h, 0),\\; h_- = \\max(-h, 0),

and the energy
:math:`E(v, h) = -\\sum_i g_i v_i + \\sum_\\mu U_\\mu(h_\\mu) - \\sum_{i\\mu} w_{i\\mu} v_i h_\\mu`
(Tubiana & Monasson 2017; dReLU: Tubiana, Cocco & Monasson 2019). Both ``h_+`` and ``h_-``
are non-negative, so positive thresholds ``theta_+`` and ``theta_-`` both hold a hidden unit
near zero until its input is strong.

Every tensor carries a leading **model dimension** ``M``: ``M`` cRBMs with the same sizes but
their own parameters, penalty strength and seed train as one tensor computation
(:func:`train_crbms`), on a CPU or a GPU alike.

The pieces, each exact:

:func:`drelu_log_partition`, :func:`drelu_moments`, :func:`sample_drelu`
    The hidden unit's conditional distribution given its input ``I``: a mixture of two
    truncated Gaussians, in a numerically stable log-space form (``erfc`` and, deep in the
    tail, Laplace's continued fraction for the Mills ratio; an inverse normal CDF that works
    from the log of the probability) with exact closed-form gradients.
:class:`BatchedCRBM`
    Energy, free energy, conditional sampling in both directions, Gibbs chains, effective
    couplings between visible units.
:func:`penalty`
    The L1 penalty ``lam * sum|w|`` and the L2L1 penalty
    ``lam / (2N) * sum_mu (sum_i |w_i mu|)^2`` (``N`` visible units).
:func:`train_crbms`
    Persistent contrastive divergence with Adam over all models at once (optionally on a
    subset of the parameters, e.g. a final calibration of fields and thresholds). A model
    whose parameters turn NaN or whose weights pass a bound is frozen at its last finite
    parameters and marked in ``history.diverged``; the others train on.

The scale of a dReLU unit is not fixed by the likelihood: ``h -> s h`` together with
``w -> w / s``, ``gamma -> gamma / s**2`` and ``theta -> theta / s`` leaves the model
unchanged, so a penalty on ``w`` alone could be dodged by growing ``h``. The trained models
therefore fix the gauge with ``gamma_+ = 1 / (1 + eta)`` and ``gamma_- = 1 / (1 - eta)``
(the harmonic mean of the two curvatures is 1) and learn ``eta``, ``theta_+`` and
``theta_-``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from course_utils.training import BatchedAdam, GridHistory, get_device
from course_utils.validation import check_positive_ints, check_positive_numbers

__all__ = [
    "PENALTIES",
    "BatchedCRBM",
    "drelu_log_partition",
    "drelu_moments",
    "drelu_potential",
    "sample_drelu",
    "ndtri_exp",
    "penalty",
    "train_crbms",
]

PENALTIES: tuple[str, ...] = ("l1", "l2l1")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_ETA_LIMIT = 0.95  # keeps both curvatures finite: gamma_- = 1 / (1 - eta) <= 20


# --------------------------------------------------------------------------- Gaussian tails


_FAR_TAIL = -12.0  # below this, Phi(a) leaves float32's range: use the continued fraction
_CF_LEVELS = 10  # Laplace's continued fraction at |a| >= 12: relative error below 1e-12
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)


def _mills_far(x: torch.Tensor) -> torch.Tensor:
    """Mills ratio ``Phi(-x) / phi(x)`` for ``x >= 12`` by Laplace's continued fraction."""
    acc = x
    for k in range(_CF_LEVELS, 0, -1):
        acc = x + k / acc
    return 1.0 / acc


def _log_scaled_ndtr(a: torch.Tensor) -> torch.Tensor:
    """Return ``a**2 / 2 + log Phi(a)`` without overflow or cancellation, for any ``a``.

    ``erfc`` (fast, and accurate down to ``a = -12`` in float32) covers most values; further
    in the tail ``Phi(a) = phi(a) * Mills(-a)`` by a continued fraction. Not differentiable
    by autograd: :class:`_DReLULogPartition` supplies the exact gradients.
    """
    near = torch.clamp(a, min=_FAR_TAIL)
    value = 0.5 * near**2 + torch.log(0.5 * torch.erfc(near * -_INV_SQRT_2))
    far = a < _FAR_TAIL
    if bool(far.any()):
        value = value.masked_scatter(far, torch.log(_mills_far(-a[far])) - _HALF_LOG_2PI)
    return value


def _log_ndtr(a: torch.Tensor) -> torch.Tensor:
    """Return ``log Phi(a)`` (as :func:`torch.special.log_ndtr`, several times faster)."""
    return _log_scaled_ndtr(a) - 0.5 * a**2


def _mills(a: torch.Tensor) -> torch.Tensor:
    """Return the inverse Mills ratio ``phi(a) / Phi(a)``, stable for very negative ``a``."""
    return torch.exp(-_HALF_LOG_2PI - _log_scaled_ndtr(a))


def ndtri_exp(log_p: torch.Tensor, newton_steps: int = 4) -> torch.Tensor:
    """Inverse of the standard normal CDF from the log of the probability.

    Returns ``x`` with ``log Phi(x) = log_p``. Probabilities near 1 use ``expm1``;
    probabilities too small to hold in the dtype (``log_p < -30``) start from the
    asymptotic expansion of the tail and are refined by Newton steps on ``log Phi``.

    Parameters
    ----------
    log_p
        Log-probabilities, ``<= 0``.
    newton_steps
        Newton iterations in the far tail (quadratic convergence: 4 reach float64 precision).

    Returns
    -------
    torch.Tensor
        The quantiles, same shape and dtype.
    """
    log_p = torch.clamp(log_p, max=0.0)
    tail = log_p < -30.0
    mid = torch.clamp(log_p, min=-30.0)
    lower = mid < math.log(0.5)
    # Below 1/2 invert p itself; above, invert 1 - p (exact through expm1) and flip the sign.
    quantile = torch.special.ndtri(torch.where(lower, torch.exp(mid), -torch.expm1(mid)))
    x = torch.where(lower, quantile, -quantile)
    if bool(tail.any()):
        target = log_p[tail]
        t = -2.0 * target
        x_tail = -torch.sqrt(t - torch.log(t) - math.log(2.0 * math.pi))
        for _ in range(newton_steps):
            x_tail = x_tail - (_log_ndtr(x_tail) - target) / _mills(x_tail)
        x = x.masked_scatter(tail, x_tail)
    return x


# --------------------------------------------------------------------------- dReLU unit


@dataclass(frozen=True)
class _Halves:
    """The two truncated Gaussians of p(h | I), elementwise.

    ``a_*`` are the standardized truncation points (the positive half is
    ``h = sd_plus * (a_plus + z)`` with ``z > -a_plus``, the negative half
    ``h = -sd_minus * (a_minus + z)`` with ``z > -a_minus``), ``l_*`` are
    ``a**2 / 2 + log Phi(a)`` and ``log_mass_*`` the log-integrals of ``exp(-U(h) + I h)`` over
    each half.
    """

    a_plus: torch.Tensor
    a_minus: torch.Tensor
    sd_plus: torch.Tensor
    sd_minus: torch.Tensor
    l_plus: torch.Tensor
    l_minus: torch.Tensor

    @property
    def log_mass_plus(self) -> torch.Tensor:
        return self.l_plus + _HALF_LOG_2PI + torch.log(self.sd_plus)

    @property
    def log_mass_minus(self) -> torch.Tensor:
        return self.l_minus + _HALF_LOG_2PI + torch.log(self.sd_minus)

    def p_plus(self) -> torch.Tensor:
        """Probability that ``h > 0``."""
        return torch.sigmoid(self.log_mass_plus - self.log_mass_minus)

    def half_moments(self) -> tuple[torch.Tensor, ...]:
        """``E[h | h > 0]``, ``E[h^2 | h > 0]``, ``E[h | h < 0]``, ``E[h^2 | h < 0]``."""
        r_plus = torch.exp(-_HALF_LOG_2PI - self.l_plus)  # phi(a) / Phi(a)
        r_minus = torch.exp(-_HALF_LOG_2PI - self.l_minus)
        mean_plus = self.sd_plus * (self.a_plus + r_plus)
        mean_minus = -self.sd_minus * (self.a_minus + r_minus)
        second_plus = self.sd_plus**2 * torch.clamp(1.0 + self.a_plus * (self.a_plus + r_plus), min=0.0)
        second_minus = self.sd_minus**2 * torch.clamp(1.0 + self.a_minus * (self.a_minus + r_minus), min=0.0)
        return mean_plus, second_plus, mean_minus, second_minus


def _halves(
    inputs: torch.Tensor,
    gamma_plus: torch.Tensor,
    gamma_minus: torch.Tensor,
    theta_plus: torch.Tensor,
    theta_minus: torch.Tensor,
) -> _Halves:
    sd_plus, sd_minus = torch.rsqrt(gamma_plus), torch.rsqrt(gamma_minus)
    a_plus = (inputs - theta_plus) * sd_plus
    a_minus = -(inputs + theta_minus) * sd_minus
    return _Halves(a_plus, a_minus, sd_plus, sd_minus, _log_scaled_ndtr(a_plus), _log_scaled_ndtr(a_minus))


class _DReLULogPartition(torch.autograd.Function):
    """``Gamma(I)`` with its exact gradients: ``dGamma/dI = E[h]``,
    ``dGamma/dtheta_+ = -E[h_+]``, ``dGamma/dtheta_- = -E[h_-]``,
    ``dGamma/dgamma_+ = -E[h_+^2] / 2``, ``dGamma/dgamma_- = -E[h_-^2] / 2``."""

    @staticmethod
    def forward(ctx, inputs, gamma_plus, gamma_minus, theta_plus, theta_minus):  # noqa: D102
        halves = _halves(inputs, gamma_plus, gamma_minus, theta_plus, theta_minus)
        if any(ctx.needs_input_grad):
            ctx.save_for_backward(halves.p_plus(), *halves.half_moments())
        return torch.logaddexp(halves.log_mass_plus, halves.log_mass_minus)

    @staticmethod
    def backward(ctx, grad):  # noqa: D102
        p_plus, mean_plus, second_plus, mean_minus, second_minus = ctx.saved_tensors
        plus = grad * p_plus
        minus = grad - plus
        return (
            plus * mean_plus + minus * mean_minus,  # I
            -0.5 * plus * second_plus,  # gamma_+
            -0.5 * minus * second_minus,  # gamma_-
            -plus * mean_plus,  # theta_+: E[h_+] = p_+ E[h | h > 0]
            minus * mean_minus,  # theta_-: E[h_-] = -p_- E[h | h < 0]
        )


def drelu_potential(
    h: torch.Tensor,
    gamma_plus: torch.Tensor,
    gamma_minus: torch.Tensor,
    theta_plus: torch.Tensor,
    theta_minus: torch.Tensor,
) -> torch.Tensor:
    """Return the dReLU potential ``U(h)``, elementwise (parameters broadcast against ``h``)."""
    h_plus, h_minus = torch.clamp(h, min=0.0), torch.clamp(-h, min=0.0)
    return 0.5 * gamma_plus * h_plus**2 + 0.5 * gamma_minus * h_minus**2 + theta_plus * h_plus + theta_minus * h_minus


def drelu_log_partition(
    inputs: torch.Tensor,
    gamma_plus: torch.Tensor,
    gamma_minus: torch.Tensor,
    theta_plus: torch.Tensor,
    theta_minus: torch.Tensor,
) -> torch.Tensor:
    """Return the cumulant generating function ``Gamma(I) = log int exp(-U(h) + I h) dh``.

    Parameters
    ----------
    inputs
        Inputs ``I`` to the hidden units; the parameters broadcast against them.
    gamma_plus, gamma_minus
        Curvatures (> 0) of the positive and negative halves.
    theta_plus, theta_minus
        Thresholds of the two halves.

    Returns
    -------
    torch.Tensor
        ``Gamma(I)``, differentiable in every argument (exact closed-form gradients).
    """
    return _DReLULogPartition.apply(*torch.broadcast_tensors(inputs, gamma_plus, gamma_minus, theta_plus, theta_minus))


def drelu_moments(
    inputs: torch.Tensor,
    gamma_plus: torch.Tensor,
    gamma_minus: torch.Tensor,
    theta_plus: torch.Tensor,
    theta_minus: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the mean and the variance of ``h`` given its input ``I``.

    The mean is ``Gamma'(I)`` and the variance ``Gamma''(I)``, computed in closed form from
    the two truncated Gaussians and their weights.
    """
    halves = _halves(inputs, gamma_plus, gamma_minus, theta_plus, theta_minus)
    p_plus = halves.p_plus()
    mean_plus, second_plus, mean_minus, second_minus = halves.half_moments()
    mean = p_plus * mean_plus + (1.0 - p_plus) * mean_minus
    second = p_plus * second_plus + (1.0 - p_plus) * second_minus
    return mean, torch.clamp(second - mean**2, min=0.0)


def sample_drelu(
    inputs: torch.Tensor,
    gamma_plus: torch.Tensor,
    gamma_minus: torch.Tensor,
    theta_plus: torch.Tensor,
    theta_minus: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``h ~ p(h | I)`` exactly: pick a half by its mass, then invert its truncated CDF.

    The positive half is a Gaussian of mean ``(I - theta_+) / gamma_+`` and variance
    ``1 / gamma_+`` restricted to ``h > 0``; the negative half has mean
    ``(I + theta_-) / gamma_-``, variance ``1 / gamma_-``, restricted to ``h < 0``. Both are
    sampled by the inverse CDF computed from log-probabilities (:func:`ndtri_exp`), so the
    draw stays exact however far in the tail the truncation point lies.
    """
    halves = _halves(inputs, gamma_plus, gamma_minus, theta_plus, theta_minus)
    shape, dtype, device = halves.a_plus.shape, halves.a_plus.dtype, halves.a_plus.device
    choose_plus = torch.rand(shape, generator=generator, dtype=dtype, device=device) < halves.p_plus()
    # 1 - U lies in (0, 1]: its log is finite.
    log_u = torch.log1p(-torch.rand(shape, generator=generator, dtype=dtype, device=device))
    a = torch.where(choose_plus, halves.a_plus, halves.a_minus)
    log_phi = torch.where(choose_plus, halves.l_plus, halves.l_minus) - 0.5 * a**2  # log Phi(a)
    # z ~ N(0, 1) restricted to z > -a: P(Z > z) = u P(Z > -a), i.e. Phi(-z) = u Phi(a).
    z = -ndtri_exp(log_u + log_phi)
    h_plus = torch.clamp(halves.sd_plus * (halves.a_plus + z), min=0.0)
    h_minus = torch.clamp(-halves.sd_minus * (halves.a_minus + z), max=0.0)
    return torch.where(choose_plus, h_plus, h_minus)


# --------------------------------------------------------------------------- penalty


def penalty(weights: torch.Tensor, lam: torch.Tensor | float, kind: str = "l1") -> torch.Tensor:
    """Return the sparsity penalty of each model's weights.

    Parameters
    ----------
    weights
        ``(M, N, H)`` weights (visible x hidden) of ``M`` models, or ``(N, H)`` for one.
    lam
        Penalty strength: a number, or one value per model (shape ``(M,)``).
    kind
        ``"l1"``: ``lam * sum_{i,mu} |w_i mu|``. ``"l2l1"``:
        ``lam / (2 N) * sum_mu (sum_i |w_i mu|)^2`` for ``N`` visible units: each weight is
        taxed in proportion to its hidden unit's total weight, so the penalty spares a unit's
        first strong weights and resists the ones that would make it dense. The division by
        ``N`` ties the tax to the unit's *mean* absolute weight (the gradient on one weight is
        ``lam`` times it), so a value of ``lam`` carries over better between recordings of
        different sizes.

    Returns
    -------
    torch.Tensor
        ``(M,)`` penalties (a scalar for one model).

    Raises
    ------
    ValueError
        If ``kind`` is unknown or ``lam`` is negative.
    """
    if kind not in PENALTIES:
        raise ValueError(f"penalty kind must be one of {', '.join(PENALTIES)}, got {kind!r}.")
    lam = torch.as_tensor(lam, dtype=weights.dtype, device=weights.device)
    if torch.any(lam < 0):
        raise ValueError("the penalty strength lam must be >= 0.")
    per_unit = weights.abs().sum(dim=-2)  # (M, H): sum over visible units
    if kind == "l1":
        return lam * per_unit.sum(dim=-1)
    return 0.5 * lam * (per_unit**2).sum(dim=-1) / weights.shape[-2]


# --------------------------------------------------------------------------- the model


def _as_float_tensor(value: object, name: str, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=dtype, device=device)
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} contains NaN or inf.")
    return tensor


class BatchedCRBM:
    """``M`` cRBMs with binary visible units and dReLU hidden units, as one set of tensors.

    Parameters
    ----------
    n_visible, n_hidden
        Numbers of visible units ``N`` and hidden units ``H``.
    n_models
        Number of models ``M`` in the batch.
    seeds
        One seed per model for its initial weights (default ``0 .. M-1``): a model's
        initialisation does not depend on the other models of the batch.
    weight_scale
        Standard deviation of the initial weights.
    device
        Torch device, chosen by :func:`course_utils.training.get_device` when ``None``.
    dtype
        Floating-point type of the parameters.

    Attributes
    ----------
    fields : torch.Tensor
        ``(M, N)`` visible fields ``g``.
    weights : torch.Tensor
        ``(M, N, H)`` couplings ``w``.
    eta, theta_plus, theta_minus : torch.Tensor
        ``(M, H)`` hidden-unit parameters; ``gamma_+ = 1 / (1 + eta)``,
        ``gamma_- = 1 / (1 - eta)``.
    """

    def __init__(
        self,
        n_visible: int,
        n_hidden: int,
        n_models: int = 1,
        *,
        seeds: Sequence[int] | None = None,
        weight_scale: float = 0.01,
        device: str | torch.device | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        check_positive_ints(n_visible=n_visible, n_hidden=n_hidden, n_models=n_models)
        seeds = list(range(n_models)) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != n_models:
            raise ValueError(f"seeds must hold one seed per model ({n_models}), got {len(seeds)}.")
        if not weight_scale >= 0:
            raise ValueError(f"weight_scale must be >= 0, got {weight_scale!r}.")
        self.device = get_device(device)
        self.dtype = dtype
        self.seeds = seeds
        weights = torch.stack(
            [
                torch.randn(n_visible, n_hidden, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
                for s in seeds
            ]
        )
        self.weights = (weight_scale * weights).to(dtype=dtype, device=self.device)
        zeros = torch.zeros(n_models, n_hidden, dtype=dtype, device=self.device)
        self.fields = torch.zeros(n_models, n_visible, dtype=dtype, device=self.device)
        self.eta, self.theta_plus, self.theta_minus = zeros.clone(), zeros.clone(), zeros.clone()

    # -- sizes and parameters --------------------------------------------------------

    @property
    def n_models(self) -> int:
        """Number of models ``M``."""
        return int(self.weights.shape[0])

    @property
    def n_visible(self) -> int:
        """Number of visible units ``N``."""
        return int(self.weights.shape[1])

    @property
    def n_hidden(self) -> int:
        """Number of hidden units ``H``."""
        return int(self.weights.shape[2])

    def parameters(self) -> dict[str, torch.Tensor]:
        """Return the trainable tensors by name (the same objects, not copies)."""
        return {
            "fields": self.fields,
            "weights": self.weights,
            "eta": self.eta,
            "theta_plus": self.theta_plus,
            "theta_minus": self.theta_minus,
        }

    def set_parameters(self, **values: object) -> BatchedCRBM:
        """Replace parameters by name (arrays or tensors of the same shape); return ``self``."""
        current = self.parameters()
        for name, value in values.items():
            if name not in current:
                raise ValueError(f"unknown parameter {name!r}; known: {', '.join(current)}.")
            tensor = _as_float_tensor(value, name, self.dtype, self.device)
            if tensor.shape != current[name].shape:
                raise ValueError(f"{name} must have shape {tuple(current[name].shape)}, got {tuple(tensor.shape)}.")
            if name == "eta" and torch.any(tensor.abs() >= 1):
                raise ValueError("eta must lie strictly between -1 and 1 (both curvatures positive).")
            setattr(self, name, tensor.clone())
        return self

    def select(self, models: Sequence[int] | slice) -> BatchedCRBM:
        """Return a new batch holding copies of the chosen models."""
        index = torch.arange(self.n_models)[models] if isinstance(models, slice) else torch.as_tensor(list(models))
        if index.numel() == 0:
            raise ValueError("select needs at least one model.")
        new = BatchedCRBM.__new__(BatchedCRBM)
        new.device, new.dtype = self.device, self.dtype
        new.seeds = [self.seeds[int(i)] for i in index]
        index = index.to(self.device)
        for name, tensor in self.parameters().items():
            setattr(new, name, tensor[index].clone())
        return new

    def gammas(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the curvatures ``(gamma_+, gamma_-)``, each ``(M, H)``."""
        return 1.0 / (1.0 + self.eta), 1.0 / (1.0 - self.eta)

    def _hidden_params(self) -> tuple[torch.Tensor, ...]:
        gamma_plus, gamma_minus = self.gammas()
        return tuple(p[:, None, :] for p in (gamma_plus, gamma_minus, self.theta_plus, self.theta_minus))

    # -- inputs and checks -------------------------------------------------------------

    def _visible(self, v: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Check visible configurations and return them as ``(M, B, N)`` or ``(B, N)`` tensors."""
        v = torch.as_tensor(v, device=self.device).to(self.dtype)
        if v.ndim not in (2, 3) or v.shape[-1] != self.n_visible or (v.ndim == 3 and v.shape[0] != self.n_models):
            raise ValueError(
                f"visible configurations must be (batch, {self.n_visible}) or ({self.n_models}, batch, "
                f"{self.n_visible}), got {tuple(v.shape)}."
            )
        return v

    def _field_term(self, v: torch.Tensor) -> torch.Tensor:
        """Return ``sum_i g_i v_i`` for every model, ``(M, B)``."""
        if v.ndim == 2:
            return torch.einsum("bn,mn->mb", v, self.fields)
        return torch.einsum("mbn,mn->mb", v, self.fields)

    def hidden_inputs(self, v: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Return ``I_mu = sum_i w_i mu v_i`` for every model, ``(M, B, H)``."""
        return torch.matmul(self._visible(v), self.weights)

    # -- energies ------------------------------------------------------------------------

    def energy(self, v: torch.Tensor | np.ndarray, h: torch.Tensor) -> torch.Tensor:
        """Return ``E(v, h)`` for every model, ``(M, B)``; ``h`` is ``(M, B, H)``."""
        v = self._visible(v)
        potential = drelu_potential(h, *self._hidden_params()).sum(-1)
        coupling = (self.hidden_inputs(v) * h).sum(-1)
        return -self._field_term(v) + potential - coupling

    def free_energy(self, v: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Return ``F(v) = -log int exp(-E(v, h)) dh`` for every model, ``(M, B)``."""
        v = self._visible(v)
        log_partition = drelu_log_partition(self.hidden_inputs(v), *self._hidden_params())
        return -self._field_term(v) - log_partition.sum(-1)

    # -- conditionals ----------------------------------------------------------------------

    def hidden_moments(self, v: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the mean and variance of ``h`` given ``v``, each ``(M, B, H)``."""
        return drelu_moments(self.hidden_inputs(v), *self._hidden_params())

    def sample_hidden(self, v: torch.Tensor | np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``h ~ p(h | v)`` exactly, ``(M, B, H)``."""
        return sample_drelu(self.hidden_inputs(v), *self._hidden_params(), generator=generator)

    def visible_probability(self, h: torch.Tensor) -> torch.Tensor:
        """Return ``p(v_i = 1 | h) = sigmoid(g_i + sum_mu w_i mu h_mu)``, ``(M, B, N)``."""
        return torch.sigmoid(self.fields[:, None, :] + torch.matmul(h, self.weights.transpose(1, 2)))

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``v ~ p(v | h)``, ``(M, B, N)`` of 0/1 in the model's dtype."""
        p = self.visible_probability(h)
        return (torch.rand(p.shape, generator=generator, dtype=p.dtype, device=p.device) < p).to(self.dtype)

    def gibbs(self, v: torch.Tensor, n_steps: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Run ``n_steps`` of block Gibbs sampling ``v -> h -> v`` from ``v`` (``(M, B, N)``)."""
        v = self._visible(v)
        with torch.no_grad():
            for _ in range(int(n_steps)):
                v = self.sample_visible(self.sample_hidden(v, generator), generator)
        return v

    def independent_samples(
        self, data: torch.Tensor | np.ndarray, n_chains: int, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Return ``(M, n_chains, N)`` draws of independent neurons with the data's mean rates."""
        rate = self._visible(data).mean(dim=-2).clamp(1e-3, 1 - 1e-3)
        rate = rate.expand(self.n_models, self.n_visible) if rate.ndim == 1 else rate
        shape = (self.n_models, int(n_chains), self.n_visible)
        return (torch.rand(shape, generator=generator, dtype=self.dtype, device=self.device) < rate[:, None, :]).to(
            self.dtype
        )

    def sample(
        self,
        n_chains: int,
        n_samples: int,
        *,
        burn_in: int = 200,
        thin: int = 10,
        start: torch.Tensor | np.ndarray | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw visible samples from every model with Gibbs chains after a burn-in.

        Parameters
        ----------
        n_chains
            Independent chains per model.
        n_samples
            Samples kept per chain, one every ``thin`` steps after ``burn_in`` steps.
        burn_in, thin
            Gibbs steps discarded first, and steps between kept samples.
        start
            Starting configurations ``(M, n_chains, N)`` or ``(n_chains, N)``; by default
            uniform random 0/1.
        generator
            Torch random generator (on the model's device).

        Returns
        -------
        torch.Tensor
            ``(M, n_chains * n_samples, N)`` visible samples.
        """
        if start is None:
            shape = (self.n_models, int(n_chains), self.n_visible)
            v = (torch.rand(shape, generator=generator, device=self.device) < 0.5).to(self.dtype)
        else:
            v = self._visible(start)
            v = v.expand(self.n_models, *v.shape) if v.ndim == 2 else v
        v = self.gibbs(v, burn_in, generator)
        kept = []
        for _ in range(int(n_samples)):
            v = self.gibbs(v, thin, generator)
            kept.append(v)
        return torch.cat(kept, dim=1)

    # -- interpretation ----------------------------------------------------------------------

    def effective_couplings(self, v: torch.Tensor | np.ndarray, neurons: Sequence[int] | None = None) -> torch.Tensor:
        """Return the effective couplings between visible units, ``(M, n, n)``.

        ``J_ij = sum_mu w_i mu w_j mu <Var(h_mu | v)>``, the curvature of
        ``log P(v)`` in ``v_i`` and ``v_j`` averaged over the configurations ``v`` (usually
        the data); the diagonal is set to zero.

        Parameters
        ----------
        v
            ``(B, N)`` configurations to average over.
        neurons
            Indices of the visible units to return (all ``N`` when ``None``): a subset keeps
            the ``(M, n, n)`` result small for large populations.
        """
        index = torch.arange(self.n_visible) if neurons is None else torch.as_tensor(list(neurons))
        weights = self.weights[:, index.to(self.device), :]
        with torch.no_grad():
            _, variance = self.hidden_moments(v)
            scale = variance.mean(dim=1)  # (M, H)
            couplings = torch.matmul(weights * scale[:, None, :], weights.transpose(1, 2))
            couplings.diagonal(dim1=1, dim2=2).zero_()
        return couplings

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Return every parameter, and the curvatures, as NumPy arrays."""
        gamma_plus, gamma_minus = self.gammas()
        out = {name: t.detach().cpu().numpy() for name, t in self.parameters().items()}
        out.update(gamma_plus=gamma_plus.cpu().numpy(), gamma_minus=gamma_minus.cpu().numpy())
        return out


# --------------------------------------------------------------------------- training


def _check_data(data: object, n_visible: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    array = np.asarray(data)
    if array.ndim != 2 or array.shape[1] != n_visible:
        raise ValueError(f"data must be a (time, {n_visible}) array of 0/1, got shape {array.shape}.")
    if array.shape[0] < 2:
        raise ValueError("data must hold at least 2 time points.")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(
            "data must hold only 0 and 1 (binarized activity); binarize it first, e.g. activity > threshold."
        )
    return torch.as_tensor(array.astype(np.float32), dtype=dtype, device=device)


def _check_sweep_args(
    model: BatchedCRBM,
    lambdas: object,
    penalty_kind: str,
    ints: dict[str, object],
    lr: float,
    lr_final: float,
    weight_bound: float,
) -> np.ndarray:
    lam = np.atleast_1d(np.asarray(lambdas, dtype=float))
    if lam.shape != (model.n_models,):
        raise ValueError(f"lambdas must hold one value per model ({model.n_models}), got shape {lam.shape}.")
    if not np.all(np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError("lambdas must be finite and >= 0.")
    if penalty_kind not in PENALTIES:
        raise ValueError(f"penalty must be one of {', '.join(PENALTIES)}, got {penalty_kind!r}.")
    check_positive_ints(**ints)
    check_positive_numbers(lr=lr, lr_final=lr_final, weight_bound=weight_bound)
    return lam


def train_crbms(
    model: BatchedCRBM,
    data: np.ndarray | torch.Tensor,
    lambdas: Sequence[float] | np.ndarray,
    *,
    penalty_kind: str = "l1",
    epochs: int = 20,
    batch_size: int = 100,
    n_chains: int = 100,
    gibbs_steps: int = 1,
    lr: float = 0.01,
    lr_final: float = 0.001,
    weight_bound: float = 50.0,
    trainable: Sequence[str] | None = None,
    init_fields: bool = True,
    seed: int = 0,
    progress: bool = True,
) -> GridHistory:
    """Train every model of ``model`` in place by persistent contrastive divergence with Adam.

    All models see the same minibatches of ``data``; each has its own penalty strength,
    initial weights (its seed), persistent chains and Adam statistics. Their losses are summed,
    so the gradient of a model depends on that model alone, and Adam works elementwise:
    training the batch is training each model on its own, in one tensor computation.

    Parameters
    ----------
    model
        The batch of cRBMs, changed in place. Its fields start at the log-odds of the data's
        mean rates.
    data
        ``(T, N)`` binary training activity.
    lambdas
        ``(M,)`` penalty strength of each model.
    penalty_kind
        ``"l1"`` or ``"l2l1"`` (see :func:`penalty`).
    epochs, batch_size
        Passes over the shuffled data, and time points per minibatch.
    n_chains, gibbs_steps
        Persistent chains per model, and Gibbs steps of each chain per update.
    lr, lr_final
        Adam's step size, decayed geometrically from ``lr`` to ``lr_final`` over training.
    weight_bound
        A model whose largest ``|w|`` passes this value has exploded: it is frozen and marked.
    trainable
        Names of the parameters to train (see :meth:`BatchedCRBM.parameters`); all when
        ``None``. Training only ``("fields", "theta_plus", "theta_minus")`` with long chains
        matches the mean activities of both layers for fixed weights: the likelihood is concave
        in the fields, not in the thresholds (they enter as a difference of convex terms).
    init_fields
        Start the fields at the log-odds of the data's mean rates (``False`` keeps them).
    seed
        Seed of the minibatch order and of the chains' random draws.
    progress
        Show a tqdm bar over epochs.

    Returns
    -------
    GridHistory
        Divergence marks, and per epoch ``train["weight_l1"]`` (mean absolute weight) and
        ``train["free_energy_gap"]`` (mean of ``F(data) - F(chains)`` over the epoch's updates:
        the PCD objective without the penalty, near zero when the chains track the model).

    Raises
    ------
    ValueError
        If the data are not binary ``(T, N)`` or an argument is out of range.
    """
    lam = _check_sweep_args(
        model,
        lambdas,
        penalty_kind,
        dict(epochs=epochs, batch_size=batch_size, n_chains=n_chains, gibbs_steps=gibbs_steps),
        lr,
        lr_final,
        weight_bound,
    )
    x = _check_data(data, model.n_visible, model.dtype, model.device)
    generator = torch.Generator(device=model.device).manual_seed(int(seed))
    order_rng = np.random.default_rng(seed)
    lam_t = torch.as_tensor(lam, dtype=model.dtype, device=model.device)
    names = list(model.parameters()) if trainable is None else list(trainable)
    unknown = set(names) - set(model.parameters())
    if unknown or not names:
        raise ValueError(f"trainable must name parameters among {', '.join(model.parameters())}, got {trainable!r}.")
    if init_fields:
        rate = x.mean(0).clamp(1e-3, 1 - 1e-3)
        model.fields = torch.log(rate / (1 - rate)).expand(model.n_models, -1).clone()
    chains = model.independent_samples(x, n_chains, generator)

    M = model.n_models
    history = GridHistory(M)
    weight_l1, free_energy_gap = [], []
    active = torch.ones(M, dtype=torch.bool, device=model.device)
    adam = BatchedAdam([model.parameters()[name] for name in names])
    n_batches = max(1, x.shape[0] // batch_size)
    total = epochs * n_batches
    start = time.perf_counter()
    with tqdm(range(epochs), desc="cRBM sweep", disable=not progress, unit="epoch") as bar:
        for _ in bar:
            order = torch.as_tensor(order_rng.permutation(x.shape[0]), device=model.device)
            gaps = torch.zeros(M, dtype=torch.float64, device=model.device)
            for b in range(n_batches):
                batch = x[order[b * batch_size : (b + 1) * batch_size]]
                chains = model.gibbs(chains, gibbs_steps, generator)
                step_lr = lr * (lr_final / lr) ** (history.updates_run / max(1, total - 1))
                gap, nonfinite = _update(model, adam, names, batch, chains, lam_t, penalty_kind, step_lr, active)
                gaps += torch.where(nonfinite, 0.0, gap.detach().double())
                _mark_divergence(model, history, active, nonfinite, weight_bound, history.updates_run)
                history.updates_run += 1
            history.epochs_run += 1
            weight_l1.append(model.weights.abs().mean(dim=(1, 2)).cpu().numpy())
            free_energy_gap.append((gaps / n_batches).cpu().numpy())
            bar.set_postfix(diverged=int(history.diverged.sum()))
    history.wall_time_s = time.perf_counter() - start
    history.train = {"weight_l1": np.stack(weight_l1), "free_energy_gap": np.stack(free_energy_gap)}
    return history


def _update(
    model: BatchedCRBM,
    adam: BatchedAdam,
    names: Sequence[str],
    batch: torch.Tensor,
    chains: torch.Tensor,
    lam: torch.Tensor,
    penalty_kind: str,
    lr: float,
    active: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One PCD step for all models.

    Returns each model's ``F(data) - F(chains)`` and a mask of the models whose objective or
    updated parameters are NaN or infinite; those keep their parameters from before the step.
    """
    params = {name: model.parameters()[name] for name in names}
    previous = {name: p.detach().clone() for name, p in params.items()}
    for p in params.values():
        p.requires_grad_(True)
    gap = model.free_energy(batch).mean(1) - model.free_energy(chains).mean(1)
    loss = gap + penalty(model.weights, lam, penalty_kind) if "weights" in params else gap
    grads = torch.autograd.grad(loss.sum(), list(params.values()))
    with torch.no_grad():
        for p in params.values():
            p.requires_grad_(False)
        adam.step(list(params.values()), grads, lr, active)
        model.eta.clamp_(-_ETA_LIMIT, _ETA_LIMIT)
        nonfinite = ~_finite_per_model(model) | ~torch.isfinite(gap)
        if nonfinite.any():
            for name, p in params.items():
                p[nonfinite] = previous[name][nonfinite]
    return gap.detach(), nonfinite


def _finite_per_model(model: BatchedCRBM) -> torch.Tensor:
    finite = torch.ones(model.n_models, dtype=torch.bool, device=model.device)
    for p in model.parameters().values():
        finite &= torch.isfinite(p).flatten(1).all(1)
    return finite


def _mark_divergence(
    model: BatchedCRBM,
    history: GridHistory,
    active: torch.Tensor,
    nonfinite: torch.Tensor,
    weight_bound: float,
    update: int,
) -> None:
    """Freeze (``active[m] = False``) and mark the models that diverged in this update."""
    exploded = model.weights.abs().flatten(1).amax(1) > weight_bound
    newly = (exploded | nonfinite) & active
    if not newly.any():
        return
    active &= ~newly
    for m in torch.nonzero(newly).flatten().tolist():
        reason = (
            f"a parameter or the objective became NaN or infinite at update {update}"
            if bool(nonfinite[m])
            else f"a weight passed the bound {weight_bound:g} at update {update}"
        )
        history.mark_diverged(m, update, reason)
