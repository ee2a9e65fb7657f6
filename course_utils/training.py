"""Device choice and the course's torch training loop.

:func:`get_device`
    CUDA, then Apple MPS, then CPU; ``COURSE_DEVICE`` overrides the choice.
:func:`fit`
    One loop for every torch model of the course: the model and the loss are the caller's,
    through ``loss_fn(model, batch) -> scalar tensor``. It validates each epoch, stops early,
    restores the best weights, clips gradients, uses mixed precision on CUDA and stops with
    :class:`TrainingDivergedError` (history attached) when a loss or gradient turns NaN.
:class:`History`
    What :func:`fit` returns: per-epoch losses and metrics, the best epoch, why it stopped.
:class:`BatchedAdam`
    Adam for many models held in one set of tensors (leading dimension: the model), each
    with its own learning rate, for the chapters that train a whole grid at once.
:class:`GridHistory`
    What such a grid's trainers return (chapter 3's low-rank AR models, chapter 4's cRBMs):
    per-model records, one column per model, and which models diverged.

Epochs and batches are counted from 0 in every attribute (``history.val_loss[best_epoch]``
is the best validation loss); error messages count from 1, as people do.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from course_utils.config import seed_everything
from course_utils.validation import check_ints, check_positive_ints, check_positive_numbers

__all__ = [
    "DEVICE_ENV",
    "DeviceUnavailableError",
    "TrainingDivergedError",
    "History",
    "BatchedAdam",
    "GridHistory",
    "get_device",
    "seed_everything",
    "fit",
]

DEVICE_ENV = "COURSE_DEVICE"
_DEVICE_TYPES = ("cpu", "cuda", "mps")

#: ``loss_fn(model, batch)``: the batch's scalar loss, or the loss and its named terms.
LossFn = Callable[[torch.nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, Mapping[str, torch.Tensor]]"]


class DeviceUnavailableError(RuntimeError):
    """The requested torch device is unknown or not present on this machine."""


class TrainingDivergedError(RuntimeError):
    """A loss, gradient norm or weight became NaN or infinite during :func:`fit`.

    Attributes
    ----------
    epoch : int
        Epoch (from 0) in which it happened.
    batch : int or None
        Batch (from 0) in which it happened; ``None`` when found after the epoch's batches.
    reason : str
        What went wrong and where, e.g. ``"the training loss is nan in epoch 3 of 10, batch 2"``.
    history : History or None
        The history of the completed epochs, attached by :func:`fit`.
    """

    def __init__(self, reason: str, epoch: int, batch: int | None = None) -> None:
        super().__init__(
            f"Training diverged: {reason}. Lower the learning rate, or set max_grad_norm (e.g. 1.0) "
            "to clip the gradients; the history of the completed epochs is in err.history."
        )
        self.reason = reason
        self.epoch = epoch
        self.batch = batch
        self.history: History | None = None


# --------------------------------------------------------------------------- devices


def get_device(preferred: str | torch.device | None = None) -> torch.device:
    """Return the torch device to train on.

    Parameters
    ----------
    preferred
        A device such as ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``. When ``None``,
        the environment variable ``COURSE_DEVICE`` is used if set, otherwise the first
        available of CUDA, Apple MPS and CPU.

    Returns
    -------
    torch.device
        The device; nothing is allocated on it.

    Raises
    ------
    DeviceUnavailableError
        If the requested device is not a device name or is not available here.
    """
    if preferred is not None:
        return _check_device(preferred, "the argument preferred")
    requested = os.environ.get(DEVICE_ENV, "").strip()
    if requested:
        return _check_device(requested, f"the environment variable {DEVICE_ENV}")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    """Return whether Apple's MPS backend is usable."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _available_devices() -> list[str]:
    """Return the names of the devices present on this machine."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    return names


def _unavailable(problem: str, source: str) -> DeviceUnavailableError:
    """Build the error for a device that cannot be used, with what to do about it."""
    return DeviceUnavailableError(
        f"{problem} (requested by {source}). Available here: {', '.join(_available_devices())}. "
        f"Ask for one of those, or unset {DEVICE_ENV} (and pass no device) to let the course "
        "choose; to train on an NVIDIA GPU, install a CUDA build of torch (see the README)."
    )


def _check_device(requested: str | torch.device, source: str) -> torch.device:
    """Parse a requested device and check that it exists on this machine."""
    text = str(requested).strip().lower()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in _DEVICE_TYPES:
        raise _unavailable(f"{text!r} is not a device the course uses (cpu, cuda, cuda:N, mps)", source)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise _unavailable(f"{text!r} was requested but torch.cuda.is_available() is False", source)
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            problem = f"{text!r} was requested but this machine has {count} CUDA device(s)"
            raise _unavailable(problem, source)
    if device.type == "mps" and (not _mps_available() or device.index not in (None, 0)):
        raise _unavailable(f"{text!r} was requested but Apple MPS is not available", source)
    return torch.device("cpu") if device.type == "cpu" else device


# --------------------------------------------------------------------------- history


@dataclass
class History:
    """What :func:`fit` records, one entry per completed epoch.

    Attributes
    ----------
    train_loss, val_loss
        Mean loss per epoch (batch means weighted by batch size); ``val_loss`` stays empty
        without a validation loader.
    metrics
        Other per-epoch values: ``"lr"`` (learning rate of the first parameter group during
        the epoch) and ``"grad_norm"`` (mean gradient norm before clipping).
    train_terms, val_terms
        The named terms ``loss_fn`` returned beside the loss (e.g. a VAE's reconstruction
        error and KL), each averaged over the epoch's batches like the loss: per epoch a
        float, or a list of floats for a term with one value per model (a stacked grid).
    best_epoch, best_val_loss
        Epoch (from 0) with the lowest validation loss and that loss; ``None`` without one.
    stopped_early
        Whether early stopping ended the run.
    stop_reason
        Why the run ended, in words.
    epochs_run
        Number of completed epochs, the length of each per-epoch list.
    wall_time_s
        Wall-clock duration of the run in seconds.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    train_terms: dict[str, list[float | list[float]]] = field(default_factory=dict)
    val_terms: dict[str, list[float | list[float]]] = field(default_factory=dict)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    stopped_early: bool = False
    stop_reason: str = ""
    epochs_run: int = 0
    wall_time_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the history as plain (deep-copied) dicts and lists, e.g. to save as JSON."""
        return asdict(self)


@dataclass
class GridHistory:
    """What a trainer of a grid of models (one tensor computation, one model per column) records.

    :class:`History` follows one loop's losses epoch by epoch; here every record holds one
    value per model, and models can diverge one by one.

    Attributes
    ----------
    n_models
        Number of models in the grid.
    train
        Training records by name, each ``(n_records, n_models)``: chapter 3's ``"mse"``
        before each update and after the last; chapter 4's ``"weight_l1"`` and
        ``"free_energy_gap"`` after each epoch.
    validation
        Validation records by name, each ``(len(validation_steps), n_models)``; empty
        without validation data.
    validation_steps
        Updates done when each validation record was taken.
    diverged
        ``(n_models,)`` whether training stopped the model because it diverged; its
        parameters are then the last finite ones.
    diverged_at
        ``(n_models,)`` update (from 0) at which each model diverged, ``-1`` for the others.
    reasons
        Why each model diverged (empty for the others).
    epochs_run, updates_run
        Completed passes over the data and parameter updates.
    wall_time_s
        Training time in seconds.
    """

    n_models: int
    train: dict[str, np.ndarray] = field(default_factory=dict)
    validation: dict[str, np.ndarray] = field(default_factory=dict)
    validation_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    diverged: np.ndarray = field(init=False)
    diverged_at: np.ndarray = field(init=False)
    reasons: list[str] = field(init=False)
    epochs_run: int = 0
    updates_run: int = 0
    wall_time_s: float = 0.0

    def __post_init__(self) -> None:
        check_positive_ints(n_models=self.n_models)
        self.diverged = np.zeros(self.n_models, dtype=bool)
        self.diverged_at = np.full(self.n_models, -1)
        self.reasons = [""] * self.n_models

    def mark_diverged(self, model: int, update: int, reason: str) -> None:
        """Record that ``model`` diverged at ``update``, and why.

        Parameters
        ----------
        model
            Index of the model in the grid.
        update
            Parameter update (from 0) at which it diverged.
        reason
            Why, in words.
        """
        self.diverged[model] = True
        self.diverged_at[model] = update
        self.reasons[model] = reason

    def best_step(self, name: str = "mse") -> np.ndarray:
        """The update with each model's lowest validation ``name``, shape ``(n_models,)``.

        Raises
        ------
        ValueError
            If no validation record of that name was taken.
        """
        if name not in self.validation:
            raise ValueError(
                f"No validation record {name!r} (recorded: {', '.join(self.validation) or 'none'}): "
                "train with validation data to choose a step."
            )
        return self.validation_steps[np.argmin(self.validation[name], axis=0)]


# --------------------------------------------------------------------------- batched Adam


class BatchedAdam:
    """Adam for a batch of models whose parameters share tensors along their first dimension.

    Summing the models' losses gives each model's parameters the gradient of that model's
    loss alone, and Adam works element by element, so one step of this optimizer is one
    independent Adam step per model: models with different penalties or learning rates can
    train as one tensor computation. Unlike ``torch.optim.Adam`` it takes a learning rate per
    model, and it can freeze models (e.g. those that diverged) without touching the others.

    Parameters
    ----------
    params
        The tensors that will be updated, each of shape ``(n_models, ...)``; they fix the
        shapes of Adam's moment estimates.
    betas, eps
        Adam's constants, as in ``torch.optim.Adam``.
    """

    def __init__(
        self, params: Sequence[torch.Tensor], *, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        if not params:
            raise ValueError("BatchedAdam needs at least one parameter tensor.")
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}.")
        check_positive_numbers(eps=eps)
        self.betas, self.eps, self.step_count = betas, eps, 0
        self.first = [torch.zeros_like(p) for p in params]
        self.second = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(
        self,
        params: Sequence[torch.Tensor],
        grads: Sequence[torch.Tensor],
        lr: float | torch.Tensor,
        active: torch.Tensor | None = None,
    ) -> None:
        """Update ``params`` in place from their ``grads``.

        Parameters
        ----------
        params, grads
            The tensors given at construction (same order) and their gradients.
        lr
            One learning rate for every model, or a ``(n_models,)`` tensor of them.
        active
            Optional ``(n_models,)`` boolean mask: the models marked ``False`` do not move
            (their moment estimates still advance, so a model cannot be re-activated later
            with a consistent state).
        """
        if len(params) != len(self.first) or len(grads) != len(params):
            raise ValueError(
                f"step needs the {len(self.first)} parameter tensors given at construction "
                f"and one gradient each, got {len(params)} and {len(grads)}."
            )
        self.step_count += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.step_count, 1 - beta2**self.step_count
        for p, g, m1, m2 in zip(params, grads, self.first, self.second):
            m1.mul_(beta1).add_(g, alpha=1 - beta1)
            m2.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            update = (m1 / correction1) / ((m2 / correction2).sqrt() + self.eps)
            per_model = [-1, *([1] * (p.ndim - 1))]
            rate = lr.reshape(per_model) if isinstance(lr, torch.Tensor) else lr
            step = rate * update
            if active is not None:
                step = step * active.reshape(per_model).to(p.dtype)
            p.sub_(step)


# --------------------------------------------------------------------------- batches


def _to_device(batch: Any, device: torch.device) -> Any:
    """Move the tensors of a batch (nested tuples, lists, dicts) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: _to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_to_device(value, device) for value in batch))
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to_device(value, device) for value in batch)
    return batch


def _batch_size(batch: Any) -> int | None:
    """Return the leading dimension of the first tensor in a batch, or ``None``."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim > 0 else None
    if isinstance(batch, dict):
        batch = list(batch.values())
    if not isinstance(batch, (tuple, list)):
        return None
    sizes = (_batch_size(value) for value in batch)
    return next((size for size in sizes if size is not None), None)


def _weighted_mean(values: list[float], sizes: list[int | None]) -> float:
    """Mean of per-batch values weighted by batch size (equal weights when unknown)."""
    weights = [1 if size is None else size for size in sizes]
    return math.fsum(v * w for v, w in zip(values, weights)) / sum(weights)


class _TermSums:
    """Batch-size-weighted sums of named loss terms over one epoch.

    The sums stay tensors on the training device until the epoch ends: a Python object per
    batch and term, kept for the whole run, fragments the C heap between the large blocks of
    each training step (chapter 5's peak memory once grew by a gigabyte that way).
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.weight = 0.0

    def add(self, terms: Mapping[str, torch.Tensor], size: int | None) -> None:
        weight = 1.0 if size is None else float(size)
        for name, value in terms.items():
            value = value.detach().to(torch.float64) * weight
            self.sums[name] = value if name not in self.sums else self.sums[name] + value
        self.weight += weight

    def means(self) -> dict[str, float | list[float]]:
        return {name: (total / self.weight).cpu().tolist() for name, total in self.sums.items()}


def _split_terms(output: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split what ``loss_fn`` returned into the loss and its named terms (checked)."""
    if not isinstance(output, tuple):
        return output, {}
    if len(output) != 2 or not isinstance(output[1], Mapping):
        raise TypeError("loss_fn must return a scalar tensor, or (loss, terms) with terms a dict of tensors.")
    loss, terms = output
    for name, value in terms.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor) or value.ndim > 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else ""
            raise TypeError(
                f"loss term {name!r} must be named by a string and be a scalar or 1-D tensor (one value "
                f"per model), got {type(value).__name__}{shape}."
            )
    return loss, dict(terms)


# --------------------------------------------------------------------------- one run


def _diverged(what: str, epoch: int, batch: int | None, epochs: int) -> TrainingDivergedError:
    """Build the error for a non-finite loss, gradient or weight."""
    where = f"epoch {epoch + 1} of {epochs}" + ("" if batch is None else f", batch {batch + 1}")
    return TrainingDivergedError(f"{what} in {where}", epoch, batch)


@dataclass
class _Run:
    """The state of one call to :func:`fit`, so that each step stays a short method."""

    model: torch.nn.Module
    loss_fn: LossFn
    optimizer: torch.optim.Optimizer
    device: torch.device
    epochs: int
    max_grad_norm: float | None
    scaler: torch.amp.GradScaler | None
    patience: int | None
    min_delta: float
    keep_best: bool
    history: History = field(default_factory=History)
    best_state: dict[str, Any] | None = None
    reference: float = math.inf  # validation loss at the last improvement larger than min_delta
    wait: int = 0

    def autocast(self) -> contextlib.AbstractContextManager:
        """Return float16 autocast when mixed precision is on, else a no-op context."""
        if self.scaler is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=torch.float16)

    def loss(
        self, batch: Any, epoch: int, index: int, phase: str
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], int | None]:
        """Compute ``loss_fn`` on one batch; check that the loss is a finite scalar."""
        batch = _to_device(batch, self.device)
        with self.autocast():
            loss, terms = _split_terms(self.loss_fn(self.model, batch))
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"loss_fn must return a scalar tensor (e.g. loss.mean()), got {loss!r:.80}.")
        if not torch.isfinite(loss):
            raise _diverged(f"the {phase} loss is {loss.item()}", epoch, index, self.epochs)
        return loss, terms, _batch_size(batch)

    def step(self, loss: torch.Tensor, epoch: int, index: int) -> float:
        """Back-propagate, clip, check the gradient norm and step; return the norm before clipping."""
        if not loss.requires_grad:
            raise ValueError("loss_fn returned a tensor without gradient: compute it from the model's output.")
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        groups = self.optimizer.param_groups
        params = [p for group in groups for p in group["params"] if p.grad is not None]
        if not params:
            norm = 0.0
        elif self.max_grad_norm is None:
            norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
        else:
            norm = float(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm))
        if self.scaler is not None:  # the scaler skips steps with inf/NaN gradients itself
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif not math.isfinite(norm):
            raise _diverged(f"the gradient norm is {norm}", epoch, index, self.epochs)
        else:
            self.optimizer.step()
        return norm

    def train_epoch(self, loader: Any, epoch: int) -> tuple[float, float]:
        """Train one epoch; return the mean training loss and the mean finite gradient norm."""
        self.model.train()
        losses, sizes, norms, terms = [], [], [], _TermSums()
        for index, batch in enumerate(loader):
            loss, batch_terms, size = self.loss(batch, epoch, index, "training")
            norms.append(self.step(loss, epoch, index))
            losses.append(loss.item())
            sizes.append(size)
            terms.add(batch_terms, size)
        if not losses:
            raise ValueError("train_loader yielded no batches.")
        finite = [norm for norm in norms if math.isfinite(norm)]
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise _diverged("a weight is NaN or infinite after the updates", epoch, None, self.epochs)
        _append_terms(self.history.train_terms, terms.means())
        return _weighted_mean(losses, sizes), (sum(finite) / len(finite) if finite else math.nan)

    def evaluate(self, loader: Any, epoch: int) -> float:
        """Return the mean validation loss, without gradients and in eval mode."""
        self.model.eval()
        losses, sizes, terms = [], [], _TermSums()
        with torch.no_grad():
            for index, batch in enumerate(loader):
                loss, batch_terms, size = self.loss(batch, epoch, index, "validation")
                losses.append(loss.item())
                sizes.append(size)
                terms.add(batch_terms, size)
        if not losses:
            raise ValueError("val_loader yielded no batches.")
        _append_terms(self.history.val_terms, terms.means())
        return _weighted_mean(losses, sizes)

    def track(self, val: float, epoch: int) -> bool:
        """Record the best epoch and return whether patience has run out."""
        history = self.history
        if history.best_val_loss is None or val < history.best_val_loss:
            history.best_epoch, history.best_val_loss = epoch, val
            if self.keep_best:
                self.best_state = copy.deepcopy(self.model.state_dict())
        if val < self.reference - self.min_delta:
            self.reference, self.wait = val, 0
        else:
            self.wait += 1
        return self.patience is not None and self.wait >= self.patience

    def restore(self) -> None:
        """Load the best weights, if they were kept."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)


def _append_terms(log: dict[str, list], means: dict[str, float | list[float]]) -> None:
    for name, value in means.items():
        log.setdefault(name, []).append(value)


# --------------------------------------------------------------------------- checks


def _check_loader(name: str, loader: Any) -> None:
    """Raise ValueError if a loader is not iterable or is known to be empty."""
    if not hasattr(loader, "__iter__"):
        raise TypeError(f"{name} must be an iterable of batches (e.g. a DataLoader), got {type(loader).__name__}.")
    try:
        empty = len(loader) == 0
    except TypeError:  # iterable datasets have no length; checked while iterating
        return
    if empty:
        raise ValueError(f"{name} is empty: check the dataset size and batch_size (drop_last?).")


def _check_fit_args(model: Any, loss_fn: Any, optimizer: Any, kwargs: dict[str, Any]) -> None:
    """Validate the arguments of :func:`fit` with messages that say what to pass instead."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if not callable(loss_fn):
        raise TypeError("loss_fn must be a function loss_fn(model, batch) -> scalar tensor or (loss, terms).")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}.")
    check_positive_ints(epochs=kwargs["epochs"])
    check_ints(allow_none=True, early_stopping_patience=kwargs["patience"])
    if kwargs["patience"] is not None and kwargs["val_loader"] is None:
        raise ValueError("early_stopping_patience needs a val_loader: early stopping watches the validation loss.")
    min_delta, clip = kwargs["min_delta"], kwargs["max_grad_norm"]
    if not isinstance(min_delta, numbers.Real) or not 0 <= min_delta < math.inf:
        raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}.")
    if clip is not None and (not isinstance(clip, numbers.Real) or not 0 < clip < math.inf):
        raise ValueError(f"max_grad_norm must be a finite number > 0 or None, got {clip!r}.")
    scheduler = kwargs["scheduler"]
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError("scheduler must have a step() method (a torch.optim.lr_scheduler object) or be None.")
    _check_loader("train_loader", kwargs["train_loader"])
    if kwargs["val_loader"] is not None:
        _check_loader("val_loader", kwargs["val_loader"])


def _use_amp(mixed_precision: bool | str, device: torch.device) -> bool:
    """Resolve ``mixed_precision`` ("auto", True, False) for a device."""
    if isinstance(mixed_precision, str) and mixed_precision == "auto":
        return device.type == "cuda"
    if not isinstance(mixed_precision, bool):
        raise ValueError(f"mixed_precision must be 'auto', True or False, got {mixed_precision!r}.")
    if mixed_precision and device.type != "cuda":
        raise ValueError(
            f"mixed_precision=True needs a CUDA device, but training runs on {device}. "
            "Use mixed_precision='auto' (float16 on CUDA, float32 elsewhere) or False."
        )
    return mixed_precision


# --------------------------------------------------------------------------- fit


def fit(
    model: torch.nn.Module,
    train_loader: Any,
    val_loader: Any = None,
    *,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    scheduler: Any = None,
    device: str | torch.device | None = None,
    early_stopping_patience: int | None = None,
    min_delta: float = 0.0,
    max_grad_norm: float | None = None,
    mixed_precision: bool | str = "auto",
    progress: bool = True,
    restore_best: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` by minimizing ``loss_fn`` over ``train_loader`` for up to ``epochs`` epochs.

    Parameters
    ----------
    model
        The model; it is moved to ``device`` in place (build the optimizer on its parameters).
    train_loader, val_loader
        Iterables of batches, e.g. DataLoaders. A batch is whatever they yield; its tensors
        (also inside tuples, lists and dicts) are moved to ``device``. Without ``val_loader``
        there is no validation, early stopping or best-weight restoring.
    loss_fn
        ``loss_fn(model, batch)`` returns the mean loss of the batch as a scalar tensor, or
        ``(loss, terms)`` with ``terms`` a dict of named scalar (or per-model 1-D) tensors,
        such as the reconstruction error and the KL of a VAE: each is averaged per epoch
        into ``History.train_terms`` and ``History.val_terms``.
    optimizer
        A torch optimizer over the model's parameters.
    epochs
        Maximum number of passes over ``train_loader``.
    scheduler
        Learning-rate scheduler, stepped once per epoch; ``ReduceLROnPlateau`` is given the
        validation loss (the training loss without validation).
    device
        Passed to :func:`get_device`; ``None`` chooses automatically.
    early_stopping_patience
        Stop after this many epochs in a row without the validation loss falling more than
        ``min_delta`` below its value at the last such improvement; ``None`` never stops early.
    min_delta
        Smallest decrease of the validation loss that counts as an improvement for patience.
    max_grad_norm
        Clip the total gradient norm to this value before each step; ``None`` does not clip.
    mixed_precision
        ``"auto"``: float16 autocast with a gradient scaler on CUDA, float32 elsewhere;
        ``True`` requires CUDA; ``False`` always float32.
    progress
        Show a tqdm bar over epochs with the latest losses.
    restore_best
        At the end (also when an error such as divergence stops training), load the weights
        of the epoch with the lowest validation loss.
    desc
        Label of the progress bar.

    Returns
    -------
    History
        Per-epoch losses and metrics, the best epoch and why training stopped.

    Raises
    ------
    TrainingDivergedError
        If a loss, gradient norm or weight is NaN or infinite; ``err.history`` holds the
        completed epochs.
    DeviceUnavailableError
        If ``device`` is not available.
    TypeError, ValueError
        If an argument is invalid.
    """
    _check_fit_args(
        model,
        loss_fn,
        optimizer,
        dict(
            epochs=epochs,
            patience=early_stopping_patience,
            min_delta=min_delta,
            max_grad_norm=max_grad_norm,
            scheduler=scheduler,
            train_loader=train_loader,
            val_loader=val_loader,
        ),
    )
    device = get_device(device)
    amp = _use_amp(mixed_precision, device)
    run = _Run(
        model=model.to(device),
        loss_fn=loss_fn,
        optimizer=optimizer,
        device=device,
        epochs=int(epochs),
        max_grad_norm=None if max_grad_norm is None else float(max_grad_norm),
        scaler=torch.amp.GradScaler("cuda") if amp else None,
        min_delta=float(min_delta),
        patience=None if early_stopping_patience is None else int(early_stopping_patience),
        keep_best=restore_best,
    )
    start = time.perf_counter()
    with tqdm(range(run.epochs), desc=desc, disable=not progress, unit="epoch") as bar:
        try:
            _epochs(run, bar, train_loader, val_loader, scheduler)
        except TrainingDivergedError as err:
            run.history.stop_reason = f"diverged: {err.reason}"
            err.history = run.history
            raise
        finally:
            run.history.wall_time_s = time.perf_counter() - start
            run.restore()
    return run.history


def _epochs(run: _Run, bar: Any, train_loader: Any, val_loader: Any, scheduler: Any) -> None:
    """Run the epochs of :func:`fit`, recording each one in ``run.history``."""
    history = run.history
    for epoch in bar:
        lr = run.optimizer.param_groups[0]["lr"]
        train, grad_norm = run.train_epoch(train_loader, epoch)
        val = None if val_loader is None else run.evaluate(val_loader, epoch)
        history.train_loss.append(train)
        history.metrics.setdefault("lr", []).append(float(lr))
        history.metrics.setdefault("grad_norm", []).append(grad_norm)
        history.epochs_run += 1
        stop = False
        if val is not None:
            history.val_loss.append(val)
            stop = run.track(val, epoch)
        bar.set_postfix(train=f"{train:.4g}", **({} if val is None else {"val": f"{val:.4g}"}))
        if stop:
            history.stopped_early = True
            history.stop_reason = (
                f"early stopping: no validation improvement larger than {run.min_delta:g} for "
                f"{run.patience} epochs (best epoch {history.best_epoch})"
            )
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(train if val is None else val)
        elif scheduler is not None:
            scheduler.step()
    history.stop_reason = f"completed all {run.epochs} epochs"
