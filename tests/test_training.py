"""Tests of course_utils.training: device choice and the training loop (CPU only, fast)."""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from course_utils import config, training
from course_utils.training import (
    DeviceUnavailableError,
    GridHistory,
    History,
    TrainingDivergedError,
    fit,
    get_device,
    seed_everything,
)

TRUE_WEIGHT = torch.tensor([[1.5, -2.0, 0.5]])
TRUE_BIAS = 0.3


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def no_device_override(monkeypatch):
    """Run every test on the automatic choice (CPU here), whatever COURSE_DEVICE the shell sets."""
    monkeypatch.delenv(training.DEVICE_ENV, raising=False)


@pytest.fixture
def no_accelerator(monkeypatch):
    """A machine with neither CUDA nor MPS and no COURSE_DEVICE."""
    monkeypatch.delenv(training.DEVICE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.fixture
def fake_cuda(monkeypatch, no_accelerator):
    """A machine that claims one CUDA device (nothing is ever allocated on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


class Scalar(torch.nn.Module):
    """A model with one weight ``w`` (initially ``init``) and no forward computation."""

    def __init__(self, init: float = 0.0) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([init]))


def squared_distance(model: Scalar, batch) -> torch.Tensor:
    """Mean of ``(x - w)**2`` over a batch ``(x,)``: minimal at ``w = mean(x)``."""
    (x,) = batch
    return ((x - model.w) ** 2).mean()


def mse(model: torch.nn.Module, batch) -> torch.Tensor:
    """Mean squared error of a regression batch ``(x, y)``."""
    x, y = batch
    return torch.nn.functional.mse_loss(model(x), y)


def regression_loaders(n: int = 256, batch_size: int = 32, shuffle: bool = True, scale: float = 1.0):
    """Train and validation loaders for ``y = x @ TRUE_WEIGHT.T + TRUE_BIAS + noise``."""
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(2 * n, 3, generator=gen)
    y = scale * (x @ TRUE_WEIGHT.T + TRUE_BIAS + 0.01 * torch.randn(2 * n, 1, generator=gen))
    train = DataLoader(TensorDataset(x[:n], y[:n]), batch_size=batch_size, shuffle=shuffle)
    val = DataLoader(TensorDataset(x[n:], y[n:]), batch_size=batch_size)
    return train, val


def constant_loader(value: float, n: int, batch_size: int) -> DataLoader:
    """Batches ``(x,)`` with every ``x`` equal to ``value``."""
    return DataLoader(TensorDataset(torch.full((n,), value)), batch_size=batch_size)


# --------------------------------------------------------------------------- get_device


def test_cpu_when_no_accelerator(no_accelerator):
    assert get_device() == torch.device("cpu")


def test_cuda_chosen_first_when_available(fake_cuda, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("cuda")
    assert get_device("cuda:0") == torch.device("cuda:0")
    assert get_device(" CUDA ") == torch.device("cuda")


def test_mps_chosen_without_cuda(no_accelerator, monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")
    assert get_device("mps") == torch.device("mps")


def test_env_cpu_overrides_available_cuda(fake_cuda, monkeypatch):
    monkeypatch.setenv(training.DEVICE_ENV, "cpu")
    assert get_device() == torch.device("cpu")


def test_blank_env_means_automatic(no_accelerator, monkeypatch):
    monkeypatch.setenv(training.DEVICE_ENV, "  ")
    assert get_device() == torch.device("cpu")


def test_preferred_overrides_env(no_accelerator, monkeypatch):
    monkeypatch.setenv(training.DEVICE_ENV, "cuda")
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_env_cuda_raises_on_cpu_machine(monkeypatch):
    monkeypatch.setenv(training.DEVICE_ENV, "cuda")
    with pytest.raises(DeviceUnavailableError) as info:
        get_device()
    message = str(info.value)
    assert isinstance(info.value, RuntimeError)
    needles = ("COURSE_DEVICE", "is_available() is False", "Available here: cpu", "CUDA build", "README")
    for needle in needles:
        assert needle in message


def test_missing_cuda_index_raises(fake_cuda):
    with pytest.raises(DeviceUnavailableError, match=r"has 1 CUDA device.*Available here: cpu, cuda:0"):
        get_device("cuda:3")


def test_mps_request_without_mps_raises(no_accelerator):
    with pytest.raises(DeviceUnavailableError, match="MPS is not available"):
        get_device("mps")


@pytest.mark.parametrize("name", ["gpu", "banana", "cuda:x", "meta", "", "cuda:-1"])
def test_nonsense_device_names_raise(no_accelerator, name):
    with pytest.raises(DeviceUnavailableError, match="Available here: cpu"):
        get_device(name)


def test_seed_everything_is_the_config_one():
    assert seed_everything is config.seed_everything


# --------------------------------------------------------------------------- fit: learning


def test_linear_regression_recovers_true_weights():
    seed_everything(0)
    train, val = regression_loaders()
    model = torch.nn.Linear(3, 1)
    history = fit(
        model, train, val, loss_fn=mse, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=30, progress=False
    )
    torch.testing.assert_close(model.weight.detach(), TRUE_WEIGHT, atol=0.01, rtol=0)
    assert model.bias.item() == pytest.approx(TRUE_BIAS, abs=0.01)
    assert history.epochs_run == 30 and not history.stopped_early
    assert history.stop_reason == "completed all 30 epochs"
    metrics = history.metrics
    for series in (history.train_loss, history.val_loss, metrics["lr"], metrics["grad_norm"]):
        assert len(series) == history.epochs_run
    assert history.val_loss[-1] < 2e-4  # the noise variance is 1e-4
    assert history.val_loss[-1] < history.val_loss[0] / 100
    assert history.val_loss[-1] < history.val_loss[1] < history.val_loss[0]
    assert history.best_val_loss == min(history.val_loss) == history.val_loss[history.best_epoch]
    assert history.wall_time_s > 0


def test_losses_are_weighted_by_batch_size():
    # batches [1, 1, 1] and [5] around w = 0: batch losses 1 and 25, dataset mean (3 + 25) / 4 = 7
    model = Scalar()
    loader = DataLoader(TensorDataset(torch.tensor([1.0, 1.0, 1.0, 5.0])), batch_size=3)
    history = fit(
        model,
        loader,
        loader,
        loss_fn=squared_distance,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        epochs=1,
        progress=False,
    )
    assert history.train_loss == [pytest.approx(7.0)]
    assert history.val_loss == [pytest.approx(7.0)]


def test_numpy_numbers_are_accepted():
    model = Scalar()
    loader = constant_loader(1.0, 4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(
        model,
        loader,
        loader,
        loss_fn=squared_distance,
        optimizer=optimizer,
        epochs=np.int64(2),
        early_stopping_patience=np.int32(5),
        min_delta=np.float32(0.0),
        max_grad_norm=np.float64(1.0),
        progress=False,
    )
    assert history.epochs_run == 2 and history.stop_reason == "completed all 2 epochs"


def test_scheduler_is_stepped_once_per_epoch():
    train, _ = regression_loaders()
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, train, loss_fn=mse, optimizer=optimizer, scheduler=scheduler, epochs=3, progress=False)
    assert history.metrics["lr"] == pytest.approx([0.1, 0.05, 0.025])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)


def test_reduce_on_plateau_gets_the_validation_loss():
    model = Scalar()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    loader = constant_loader(1.0, 4, 4)
    flat = lambda model, batch: 0.0 * model.w.sum() + 1.0  # noqa: E731 - a loss that cannot improve
    history = fit(
        model, loader, loader, loss_fn=flat, optimizer=optimizer, scheduler=scheduler, epochs=4, progress=False
    )
    assert history.metrics["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.025])


def test_dict_batches_and_plain_lists_of_batches():
    x = torch.randn(64, 3)
    y = x @ TRUE_WEIGHT.T + TRUE_BIAS
    dict_loader = DataLoader([{"x": xi, "y": yi} for xi, yi in zip(x, y)], batch_size=16)
    seen = []

    def loss_fn(model, batch):
        seen.append(batch["x"].device)
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])

    model = torch.nn.Linear(3, 1)
    list_loader = [{"x": x[i : i + 8], "y": y[i : i + 8]} for i in range(0, 64, 8)]  # any iterable works
    history = fit(
        model,
        dict_loader,
        list_loader,
        loss_fn=loss_fn,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=2,
        progress=False,
    )
    assert history.epochs_run == 2 and len(history.val_loss) == 2
    assert set(seen) == {torch.device("cpu")}


def test_to_device_is_recursive_and_keeps_types():
    Pair = namedtuple("Pair", "a b")
    batch = {"p": Pair(torch.zeros(2), [torch.ones(3), "label"]), "n": 4}
    moved = training._to_device(batch, torch.device("cpu"))
    assert isinstance(moved["p"], Pair) and isinstance(moved["p"].b, list)
    assert moved["p"].b[1] == "label" and moved["n"] == 4
    assert training._batch_size(moved) == 2


def test_progress_bar_shows_losses(capsys):
    model = Scalar()
    loader = constant_loader(1.0, 4, 2)
    fit(
        model,
        loader,
        loader,
        loss_fn=squared_distance,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=2,
        desc="my-run",
    )
    err = capsys.readouterr().err
    assert "my-run" in err and "train=" in err and "val=" in err


def test_seeded_runs_are_reproducible():
    def run(seed):
        seed_everything(seed)
        train, val = regression_loaders(shuffle=True)
        model = torch.nn.Sequential(
            torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        history = fit(model, train, val, loss_fn=mse, optimizer=optimizer, epochs=3, progress=False)
        return history.train_loss, history.val_loss, [p.detach().clone() for p in model.parameters()]

    first, again, other = run(7), run(7), run(8)
    assert first[:2] == again[:2]
    assert all(torch.equal(a, b) for a, b in zip(first[2], again[2]))
    assert first[0] != other[0]


def test_history_as_dict_is_a_plain_copy():
    history = History(
        train_loss=[1.0], val_loss=[2.0], metrics={"lr": [0.1]}, best_epoch=0, best_val_loss=2.0, epochs_run=1
    )
    d = history.as_dict()
    assert d["train_loss"] == [1.0] and d["metrics"] == {"lr": [0.1]} and d["best_epoch"] == 0
    d["metrics"]["lr"].append(0.2)
    assert history.metrics["lr"] == [0.1]


# --------------------------------------------------------------------------- fit: early stopping


def test_early_stopping_on_a_plateau():
    model = Scalar()
    loader = constant_loader(1.0, 8, 4)
    history = fit(
        model,
        loader,
        loader,
        loss_fn=squared_distance,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
        epochs=50,
        early_stopping_patience=3,
        progress=False,
    )
    assert history.stopped_early and history.epochs_run == 4 < 50
    assert history.val_loss == pytest.approx([1.0] * 4) and len(history.train_loss) == 4
    assert history.best_epoch == 0 and "early stopping" in history.stop_reason


def test_min_delta_ignores_tiny_improvements():
    def run(min_delta):
        train, val = regression_loaders(batch_size=256, shuffle=False)  # full-batch gradient descent
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-4)
        return fit(
            model,
            train,
            val,
            loss_fn=mse,
            optimizer=optimizer,
            epochs=6,
            early_stopping_patience=2,
            min_delta=min_delta,
            progress=False,
        )

    strict, lenient = run(0.0), run(1.0)
    assert not strict.stopped_early and strict.epochs_run == 6
    assert all(b < a for a, b in zip(strict.val_loss, strict.val_loss[1:]))
    assert lenient.stopped_early and lenient.epochs_run == 3
    assert lenient.best_epoch == 2  # the best weights are still the lowest validation loss


def scripted_validation(val_losses):
    """A loss_fn whose training loss cannot improve and whose validation losses follow a script."""
    epoch = iter(val_losses)

    def loss_fn(model, batch):
        if model.training:
            return 0.0 * model.w.sum() + 1.0
        return torch.tensor(next(epoch))

    return loss_fn


@pytest.mark.parametrize(
    ("val_losses", "patience", "min_delta", "epochs_run", "best_epoch"),
    [
        ([5, 6, 4, 4.5, 4.2, 4.1, 3], 2, 0.0, 5, 2),  # an improvement resets the patience count
        ([5, 6, 7, 4, 3], 2, 0.0, 3, 0),
        # improvements are counted from the last one larger than min_delta, so slow steady
        # progress (5 -> 4.4 in 3 epochs) still counts
        ([5, 4.8, 4.6, 4.4, 4.3, 4.25, 4.2, 1.0], 3, 0.5, 7, 6),
    ],
)
def test_patience_counts_epochs_since_the_last_improvement(val_losses, patience, min_delta, epochs_run, best_epoch):
    model = Scalar()
    loader = constant_loader(1.0, 2, 2)  # one batch per epoch
    history = fit(
        model,
        loader,
        loader,
        loss_fn=scripted_validation(val_losses),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=len(val_losses),
        early_stopping_patience=patience,
        min_delta=min_delta,
        progress=False,
    )
    assert history.stopped_early
    assert (history.epochs_run, history.best_epoch) == (epochs_run, best_epoch)
    assert history.val_loss == pytest.approx(val_losses[:epochs_run])


@pytest.mark.parametrize("patience", [2, None])
def test_restore_best_weights(patience):
    # training pulls w from 0 towards 5 (w: 1.0, 1.8, 2.44, ...); validation is best at w = 1,
    # reached after the first epoch, then worsens.
    def run(restore_best):
        model = Scalar()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        history = fit(
            model,
            constant_loader(5.0, 4, 4),
            constant_loader(1.0, 4, 4),
            loss_fn=squared_distance,
            optimizer=optimizer,
            epochs=5,
            early_stopping_patience=patience,
            restore_best=restore_best,
            progress=False,
        )
        return model.w.item(), history

    w, history = run(restore_best=True)
    assert history.best_epoch == 0 and history.best_val_loss == pytest.approx(0.0, abs=1e-12)
    assert history.epochs_run == (3 if patience else 5)
    assert w == pytest.approx(1.0, abs=1e-6)
    w_last, _ = run(restore_best=False)
    assert w_last == pytest.approx(2.44 if patience else 5 - 5 * 0.8**5, abs=1e-5)


# --------------------------------------------------------------------------- fit: divergence, clipping


def test_nan_loss_raises_with_history_attached():
    calls = []

    def loss_fn(model, batch):
        loss = mse(model, batch)
        if model.training:
            calls.append(1)
            if len(calls) == 2 * 4 + 2:  # epoch 2 (from 0), batch 1: the 10th training batch
                return loss * float("nan")
        return loss

    train, val = regression_loaders(n=64, batch_size=16)  # 4 batches per epoch
    model = torch.nn.Linear(3, 1)
    with pytest.raises(TrainingDivergedError) as info:
        fit(
            model,
            train,
            val,
            loss_fn=loss_fn,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
            epochs=10,
            progress=False,
        )
    err = info.value
    assert isinstance(err, RuntimeError)
    assert (err.epoch, err.batch) == (2, 1)
    message = str(err)
    for needle in ("training loss is nan", "epoch 3 of 10, batch 2", "learning rate", "max_grad_norm"):
        assert needle in message
    history = err.history
    assert history.epochs_run == 2 and len(history.train_loss) == 2 and len(history.val_loss) == 2
    assert history.stop_reason == "diverged: the training loss is nan in epoch 3 of 10, batch 2"


def test_divergence_restores_the_best_weights():
    def run(epochs, nan_at_call=None):
        calls = []

        def loss_fn(model, batch):
            calls.append(model.training)
            return mse(model, batch) * (math.nan if len(calls) == nan_at_call else 1.0)

        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)
        train, val = regression_loaders(n=64, batch_size=16, shuffle=False)  # 4 batches
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        try:
            history = fit(model, train, val, loss_fn=loss_fn, optimizer=optimizer, epochs=epochs, progress=False)
        except TrainingDivergedError as err:
            history = err.history
        return history, [p.detach().clone() for p in model.parameters()]

    # calls: 4 training + 4 validation batches per epoch; call 18 is epoch 2 (from 0), batch 1
    diverged, weights = run(epochs=10, nan_at_call=2 * 8 + 2)
    completed, best = run(epochs=2)
    assert diverged.epochs_run == 2 and diverged.stop_reason.startswith("diverged")
    assert diverged.val_loss == completed.val_loss and completed.best_epoch == 1
    assert all(torch.equal(a, b) for a, b in zip(weights, best))


def test_exploding_learning_rate_is_a_clear_error():
    train, val = regression_loaders()
    model = torch.nn.Linear(3, 1)
    with pytest.raises(TrainingDivergedError, match="Lower the learning rate") as info:
        fit(
            model,
            train,
            val,
            loss_fn=mse,
            optimizer=torch.optim.SGD(model.parameters(), lr=1e6),
            epochs=20,
            progress=False,
        )
    assert info.value.history is not None and info.value.history.epochs_run < 20


def test_infinite_gradient_is_caught_before_the_step():
    model = Scalar(0.0)
    loss_fn = lambda model, batch: torch.sqrt(model.w).sum()  # noqa: E731 - finite loss, infinite grad
    with pytest.raises(TrainingDivergedError, match="gradient norm is inf"):
        fit(
            model,
            constant_loader(0.0, 2, 2),
            loss_fn=loss_fn,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=2,
            progress=False,
        )
    assert model.w.item() == 0.0  # the update was not applied


def test_non_finite_weights_after_the_last_update_are_caught():
    # one batch, one epoch, no validation: no later loss would reveal the infinite weight
    model = Scalar()
    match = "a weight is NaN or infinite after the updates in epoch 1 of 1"
    with pytest.raises(TrainingDivergedError, match=match):
        fit(
            model,
            constant_loader(0.0, 2, 2),
            loss_fn=lambda m, b: m.w.sum(),
            optimizer=torch.optim.SGD(model.parameters(), lr=math.inf),
            epochs=1,
            progress=False,
        )


def test_max_grad_norm_bounds_the_step():
    # loss 100 * w has gradient 100; clipped to 1, each SGD step moves w by exactly lr = 0.1
    def run(max_grad_norm):
        model = Scalar()
        history = fit(
            model,
            constant_loader(0.0, 6, 2),
            loss_fn=lambda m, b: 100 * m.w.sum(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            max_grad_norm=max_grad_norm,
            progress=False,
        )
        return model.w.item(), history

    w, history = run(1.0)
    assert w == pytest.approx(-0.3, abs=1e-6)
    assert history.metrics["grad_norm"] == [pytest.approx(100.0)]  # recorded before clipping
    assert run(None)[0] == pytest.approx(-30.0, abs=1e-4)


def test_max_grad_norm_bounds_the_gradients_the_optimizer_sees():
    def run(max_grad_norm):
        train, _ = regression_loaders(scale=50.0)
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
        norms = []
        optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: norms.append(
                float(torch.nn.utils.get_total_norm([p.grad for g in opt.param_groups for p in g["params"]]))
            )
        )
        fit(model, train, loss_fn=mse, optimizer=optimizer, epochs=2, max_grad_norm=max_grad_norm, progress=False)
        return norms

    clipped, free = run(0.5), run(None)
    assert len(clipped) == 16 and max(clipped) <= 0.5 * (1 + 1e-5)
    assert max(free) > 10.0  # so the clipping was active


def test_mixed_precision_true_on_cpu_raises():
    model = Scalar()
    loader = constant_loader(1.0, 4, 2)
    kwargs = dict(
        loss_fn=squared_distance,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=1,
        progress=False,
        device="cpu",
    )
    with pytest.raises(ValueError, match="mixed_precision=True needs a CUDA device"):
        fit(model, loader, mixed_precision=True, **kwargs)
    with pytest.raises(ValueError, match="'auto', True or False"):
        fit(model, loader, mixed_precision="yes", **kwargs)


# --------------------------------------------------------------------------- fit: input validation


class _Empty(IterableDataset):
    def __iter__(self):
        return iter(())


def _bad_call(**overrides):
    model = Scalar()
    loader = constant_loader(1.0, 4, 2)
    kwargs = dict(
        model=model,
        train_loader=loader,
        val_loader=loader,
        loss_fn=squared_distance,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        epochs=2,
        progress=False,
    )
    kwargs.update(overrides)
    fit(**kwargs)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        (dict(epochs=0), ValueError, "epochs must be a positive integer"),
        (dict(epochs=-3), ValueError, "epochs must be a positive integer"),
        (dict(epochs=2.5), ValueError, "epochs must be a positive integer"),
        (dict(epochs=True), ValueError, "epochs must be a positive integer"),
        (dict(early_stopping_patience=0), ValueError, "early_stopping_patience must be a positive integer"),
        (dict(early_stopping_patience=1.5), ValueError, "early_stopping_patience"),
        (dict(early_stopping_patience=2, val_loader=None), ValueError, "needs a val_loader"),
        (dict(min_delta=-0.1), ValueError, "min_delta"),
        (dict(max_grad_norm=0.0), ValueError, "max_grad_norm"),
        (dict(max_grad_norm=math.inf), ValueError, "max_grad_norm"),
        (
            dict(train_loader=DataLoader(TensorDataset(torch.zeros(0)), batch_size=2)),
            ValueError,
            "train_loader is empty",
        ),
        (dict(val_loader=[]), ValueError, "val_loader is empty"),
        (dict(train_loader=DataLoader(_Empty(), batch_size=2)), ValueError, "train_loader yielded no batches"),
        (dict(train_loader=3), TypeError, "train_loader must be an iterable"),
        (dict(model="net"), TypeError, "torch.nn.Module"),
        (dict(optimizer="sgd"), TypeError, "torch.optim.Optimizer"),
        (dict(loss_fn=None), TypeError, "loss_fn must be a function"),
        (dict(scheduler=object()), TypeError, r"step\(\)"),
        (dict(device="cuda:7"), DeviceUnavailableError, "Available here"),
        (dict(loss_fn=lambda m, b: m.w.expand(3)), TypeError, "scalar tensor"),
        (dict(loss_fn=lambda m, b: torch.tensor(1.0)), ValueError, "without gradient"),
    ],
)
def test_invalid_arguments_are_clear_errors(overrides, error, match):
    with pytest.raises(error, match=match):
        _bad_call(**overrides)


def test_batched_adam_moves_each_model_as_torch_adam_moves_it_alone():
    from course_utils.training import BatchedAdam

    generator = torch.Generator().manual_seed(3)
    start = torch.randn(3, 4, 2, generator=generator, dtype=torch.float64)
    targets = torch.randn(3, 4, 2, generator=generator, dtype=torch.float64)
    rates = torch.tensor([0.1, 0.01, 0.3], dtype=torch.float64)
    batched = start.clone()
    adam = BatchedAdam([batched])
    active = torch.tensor([True, True, False])
    for _ in range(5):
        weights = batched.clone().requires_grad_(True)
        loss = ((weights - targets) ** 2).sum(dim=(1, 2)) * torch.arange(1, 4)  # a loss per model
        (grad,) = torch.autograd.grad(loss.sum(), [weights])
        adam.step([batched], [grad], rates, active)
    for m in range(2):
        alone = start[m].clone().requires_grad_(True)
        optimizer = torch.optim.Adam([alone], lr=float(rates[m]))
        for _ in range(5):
            optimizer.zero_grad()
            (((alone - targets[m]) ** 2).sum() * (m + 1)).backward()
            optimizer.step()
        torch.testing.assert_close(batched[m], alone.detach())
    torch.testing.assert_close(batched[2], start[2])  # frozen


def test_batched_adam_checks_its_arguments():
    from course_utils.training import BatchedAdam

    with pytest.raises(ValueError, match="at least one"):
        BatchedAdam([])
    with pytest.raises(ValueError, match="betas"):
        BatchedAdam([torch.zeros(2, 1)], betas=(1.0, 0.999))
    adam = BatchedAdam([torch.zeros(2, 1)])
    with pytest.raises(ValueError, match="1 parameter tensors"):
        adam.step([torch.zeros(2, 1), torch.zeros(2)], [torch.zeros(2, 1)], 0.1)


# --------------------------------------------------------------------------- fit: named loss terms


def test_named_loss_terms_are_averaged_per_epoch_like_the_loss():
    model = Scalar(0.0)
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])  # batches of 2, 2 and 1: weights matter

    def loss_with_terms(model: Scalar, batch):
        (x,) = batch
        per_item = (x - model.w) ** 2
        both = torch.stack([x.mean(), 10 * x.mean()])  # a term with one value per "model"
        return per_item.mean(), {"squared": per_item.mean(), "mean_x": x.mean(), "both": both}

    loader = DataLoader(TensorDataset(values), batch_size=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # w stays 0: the terms are known
    history = fit(model, loader, loader, loss_fn=loss_with_terms, optimizer=optimizer, epochs=2, progress=False)
    for log in (history.train_terms, history.val_terms):
        assert log["mean_x"] == pytest.approx([3.0, 3.0])  # the mean over items, not over batches
        assert log["squared"] == pytest.approx([11.0, 11.0])
        assert log["both"] == [pytest.approx([3.0, 30.0])] * 2
    assert history.train_loss == pytest.approx([11.0, 11.0])


@pytest.mark.parametrize(
    "returned, match",
    [
        ((torch.tensor(1.0, requires_grad=True), [1.0]), "terms a dict"),
        ((torch.tensor(1.0, requires_grad=True), {"x": 1.0}), "'x' must be"),
        ((torch.tensor(1.0, requires_grad=True), {"x": torch.ones(2, 2)}), r"1-D tensor.*\(2, 2\)"),
    ],
)
def test_badly_returned_terms_are_named(returned, match):
    model = Scalar()
    with pytest.raises(TypeError, match=match):
        fit(
            model,
            constant_loader(1.0, 4, 2),
            loss_fn=lambda m, b: returned,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            epochs=1,
            progress=False,
        )


def test_grid_history_marks_divergence_and_chooses_each_models_best_step():
    history = GridHistory(3)
    assert history.diverged.tolist() == [False] * 3 and history.diverged_at.tolist() == [-1] * 3
    history.mark_diverged(1, 7, "a weight passed the bound")
    assert history.diverged.tolist() == [False, True, False] and history.diverged_at[1] == 7
    assert history.reasons == ["", "a weight passed the bound", ""]
    with pytest.raises(ValueError, match="train with validation data"):
        history.best_step()
    history.validation = {"mse": np.array([[3.0, 1.0, 2.0], [2.0, 2.0, 1.5], [2.5, 3.0, 1.0]])}
    history.validation_steps = np.array([0, 5, 10])
    assert history.best_step().tolist() == [5, 0, 10]
    with pytest.raises(ValueError, match="n_models"):
        GridHistory(0)
