"""Tests of the AR models of chapter 3 against known answers: closed forms, compression, batching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.models import low_rank_ar as lrar
from course_utils.simulate.photostim import simulate_photostim

torch.set_default_dtype(torch.float32)


def random_data(n: int = 300, d: int = 6, order: int = 2, seed: int = 0) -> lrar.LaggedData:
    rng = np.random.default_rng(seed)
    return lrar.lag_data(rng.standard_normal((n, d)), rng.standard_normal((n, d)), order, dtype=torch.float64)


def weights_like(data: lrar.LaggedData, seed: int = 1) -> lrar.ARWeights:
    g = torch.Generator().manual_seed(seed)
    shape = (data.order, data.n_neurons, data.n_neurons)
    return lrar.ARWeights(
        0.3 * torch.randn(shape, generator=g, dtype=torch.float64),
        0.3 * torch.randn(shape, generator=g, dtype=torch.float64),
        torch.randn(data.n_neurons, generator=g, dtype=torch.float64),
    )


@pytest.fixture(scope="module")
def experiment():
    """A small simulated experiment, its lagged rows, and train/validation masks by group."""
    sim = simulate_photostim(
        n_neurons=20, rank=2, order=2, n_groups=12, n_heldout_groups=3, group_size=4, n_repeats=4, seed=3
    )
    data = lrar.lag_data(sim.activity, sim.stimulation, 2)
    trial = np.searchsorted(sim.trial_onsets, data.frame.numpy(), side="right") - 1
    group = np.where(trial >= 0, sim.trial_group[np.clip(trial, 0, None)], -1)
    val = np.isin(group, sim.heldout_groups)
    train = (group >= 0) & ~val
    return sim, data, torch.as_tensor(train), torch.as_tensor(val)


# --------------------------------------------------------------------------- lagged data


def test_lag_data_aligns_lags_and_targets():
    x = np.arange(40.0).reshape(10, 4)
    u = -x
    data = lrar.lag_data(x, u, 3)
    assert len(data) == 7 and data.order == 3 and data.n_neurons == 4
    row = 2  # predicts frame 5 from frames 4, 3, 2
    assert int(data.frame[row]) == 5
    np.testing.assert_array_equal(data.target[row].numpy(), x[5])
    for s in range(3):
        np.testing.assert_array_equal(data.x_lags[row, s].numpy(), x[4 - s])
        np.testing.assert_array_equal(data.u_lags[row, s].numpy(), u[4 - s])
    short = data.truncate(1)
    assert short.x_lags.shape == (7, 1, 4) and torch.equal(short.target, data.target)
    assert data.design().shape == (7, 24)


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.ones(10), np.ones(10), 1), "2-D"),
        ((np.ones((10, 3)), np.ones((10, 4)), 1), "same shape"),
        ((np.full((10, 3), np.nan), np.ones((10, 3)), 1), "NaN"),
        ((np.ones((3, 3)), np.ones((3, 3)), 3), "too few"),
        ((np.ones((10, 3)), np.ones((10, 3)), 0), "order must be a positive integer"),
    ],
)
def test_lag_data_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        lrar.lag_data(*args)


# --------------------------------------------------------------------------- closed forms


def test_least_squares_recovers_noiseless_weights():
    data = random_data()
    true = weights_like(data)
    data = lrar.LaggedData(data.x_lags, data.u_lags, true.predict(data), data.frame)
    fit = lrar.least_squares_ar(data)
    for name in ("A", "B", "bias"):
        torch.testing.assert_close(getattr(fit, name), getattr(true, name), atol=1e-8, rtol=0)


def test_least_squares_is_minimum_norm_when_inputs_repeat(experiment):
    sim, data, train, _ = experiment
    rows = data.rows(train)
    fit = lrar.least_squares_ar(rows)
    never = np.flatnonzero(~sim.stimulation[: int(rows.frame.max()) + 1].any(axis=0))
    never_columns = fit.B[..., never] if never.size else torch.zeros(0)
    assert torch.all(never_columns.abs() < 1e-4)  # inputs never seen get no weight
    Z = rows.design()
    expected = torch.linalg.pinv(Z - Z.mean(0)) @ (rows.target - rows.target.mean(0))
    got = torch.cat([fit.A, fit.B], dim=0).transpose(-1, -2).reshape(-1, 20)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_ridge_matches_the_normal_equations_per_fold_and_penalty():
    data = random_data(n=200)
    lambdas = [0.0, 0.5, 3.0]
    folds = torch.zeros(2, len(data), dtype=torch.float64)
    folds[0, :120], folds[1, 80:] = 1, 1
    fit = lrar.ridge_ar(data, lambdas, folds)
    assert fit.A.shape == (2, 3, 2, 6, 6)
    Z, Y = data.design().numpy(), data.target.numpy()
    for f in range(2):
        rows = folds[f].bool().numpy()
        Zf, Yf = Z[rows] - Z[rows].mean(0), Y[rows] - Y[rows].mean(0)
        for i, lam in enumerate(lambdas):
            W = np.linalg.solve(Zf.T @ Zf / rows.sum() + lam * np.eye(Z.shape[1]), Zf.T @ Yf / rows.sum())
            got = fit.select(f, i)
            np.testing.assert_allclose(torch.cat([got.A, got.B]).transpose(-1, -2).reshape(-1, 6).numpy(), W, atol=1e-8)
            pred = got.predict(data).numpy()[rows]
            np.testing.assert_allclose(pred.mean(0), Y[rows].mean(0), atol=1e-8)  # unpenalized bias


def test_ridge_rejects_bad_arguments():
    data = random_data(n=50)
    with pytest.raises(ValueError, match=">= 0"):
        lrar.ridge_ar(data, [-1.0])
    with pytest.raises(ValueError, match="row_weights must have shape"):
        lrar.ridge_ar(data, [1.0], torch.ones(2, 3))
    with pytest.raises(ValueError, match="no training rows"):
        lrar.ridge_ar(data, [1.0], torch.zeros(1, len(data)))


# --------------------------------------------------------------------------- compression


def test_compressed_rows_keep_every_squared_error(experiment):
    _, data, train, val = experiment
    fit_rows = torch.stack([train, train & (torch.arange(len(data)) % 2 == 0)])
    val_rows = torch.stack([val, val])
    train_c = lrar.compress(data, fit_rows)
    val_c = lrar.compress(data, val_rows, center_rows=fit_rows)
    assert train_c.x_lags.shape[1] < int(train.sum())  # far fewer rows than frames
    model = lrar.LowRankAR(20, 2, [1, 3, 2, 4], generator=torch.Generator().manual_seed(0), init_scale=0.3)
    with torch.no_grad():
        model.diag_A.normal_(0, 0.3)
        model.diag_B.normal_(0, 0.3)
    compressed_train = lrar._squared_error(model, train_c).detach()
    compressed_val = lrar._squared_error(model, val_c).detach()
    W = model.weights()
    for m in range(4):
        g = m // 2
        w = W.select(m)
        bias = train_c.y_mean[g] - (torch.cat([w.A, w.B], 0).transpose(-1, -2).reshape(-1, 20).T @ train_c.z_mean[g])
        centred = lrar.ARWeights(w.A, w.B, bias)
        for rows, value in ((fit_rows[g], compressed_train[m]), (val_rows[g], compressed_val[m])):
            raw = ((centred.predict(data.rows(rows)) - data.rows(rows).target) ** 2).sum()
            torch.testing.assert_close(value, raw.detach(), rtol=1e-4, atol=1e-3)


def test_compress_rejects_empty_groups(experiment):
    _, data, train, _ = experiment
    with pytest.raises(ValueError, match="selects no row"):
        lrar.compress(data, torch.stack([train, torch.zeros_like(train)]))
    with pytest.raises(ValueError, match="must have shape"):
        lrar.compress(data, train)


# --------------------------------------------------------------------------- low-rank models


def test_low_rank_forward_matches_its_weights_and_masks():
    data = random_data(n=40, d=7, order=3)
    model = lrar.LowRankAR(
        7, 3, ranks=[1, 2, 3], orders=[3, 1, 2], init_scale=0.4, generator=torch.Generator().manual_seed(2)
    ).double()
    with torch.no_grad():
        model.diag_A.normal_()
        model.diag_B.normal_()
        model.bias.normal_()
    W = model.weights()
    torch.testing.assert_close(model(data.x_lags, data.u_lags), W.predict(data))
    for m, (rank, order) in enumerate(zip([1, 2, 3], [3, 1, 2])):
        A = W.A[m]
        assert torch.all(A[order:] == 0) and torch.all(W.B[m, order:] == 0)
        low_rank = A[:order] - torch.diag_embed(model.diag_A[m, :order])
        assert int(torch.linalg.matrix_rank(low_rank[0])) == rank
    manual = sum(
        (getattr(model, name) ** 2).sum(dim=tuple(range(1, getattr(model, name).ndim))) for name in ("diag_A", "diag_B")
    )
    assert torch.all(
        model.penalty()
        <= manual + sum((getattr(model, n) ** 2).flatten(1).sum(1) for n in ("U_A", "V_A", "U_B", "V_B"))
    )


def test_svd_initialization_is_exact_for_diagonal_plus_low_rank_weights():
    g = torch.Generator().manual_seed(0)
    d, order, rank = 8, 2, 2
    diag = torch.randn(order, d, generator=g)
    U, V = torch.randn(order, d, rank, generator=g), torch.randn(order, d, rank, generator=g)
    full = torch.diag_embed(diag) + U @ V.transpose(-1, -2)
    # The off-diagonal part of U V^T is what the SVD sees: make U V^T vanish on the diagonal.
    full = full - torch.diag_embed(torch.diagonal(U @ V.transpose(-1, -2), dim1=-2, dim2=-1))
    weights = lrar.ARWeights(full, 2 * full, torch.zeros(d))
    off_rank = int(torch.linalg.matrix_rank(full[0] - torch.diag_embed(torch.diagonal(full[0]))))
    model = lrar.LowRankAR.from_weights(weights, ranks=[off_rank, 1])
    torch.testing.assert_close(model.weights().A[0], full, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(model.weights().A[1], full, atol=1e-3)  # rank 1 is an approximation


def test_batched_training_equals_training_each_model_alone(experiment):
    _, data, train, val = experiment
    folds = torch.stack([train, train])
    vals = torch.stack([val, val])
    train_c, val_c = lrar.compress(data, folds), lrar.compress(data, vals, center_rows=folds)
    start = lrar.ridge_ar(data.rows(train), [0.1]).select(0, 0)
    ranks, lambdas, rates = [1, 3, 2, 2], [1e-3, 1e-2, 0.0, 1e-1], [0.05, 0.01, 0.02, 0.1]
    batch = lrar.LowRankAR.from_weights(start, ranks)
    history = lrar.train_batched(batch, train_c, val_c, lambdas=lambdas, lr=rates, steps=15, eval_every=4)
    assert history.validation["mse"].shape == (5, 4) and history.validation_steps.tolist() == [0, 4, 8, 12, 15]
    assert history.train["mse"].shape == (16, 4)
    for m in range(4):
        alone = lrar.LowRankAR.from_weights(start, [ranks[m]])
        h = lrar.train_batched(
            alone, train_c.group(m // 2), val_c.group(m // 2), lambdas=lambdas[m], lr=rates[m], steps=15, eval_every=4
        )
        for name, values in alone.named_parameters():
            columns = ranks[m] if name.startswith(("U_", "V_")) else None  # the model's own rank
            torch.testing.assert_close(
                values[0][..., :columns], getattr(batch, name)[m][..., :columns], atol=1e-5, rtol=1e-4
            )
        np.testing.assert_allclose(h.validation["mse"][:, 0], history.validation["mse"][:, m], rtol=1e-4)


def test_training_recovers_the_planted_model(experiment):
    sim, data, train, val = experiment
    train_c, val_c = lrar.compress(data, train[None]), lrar.compress(data, val[None], center_rows=train[None])
    start = lrar.ridge_ar(data.rows(train), [0.1]).select(0, 0)
    model = lrar.LowRankAR.from_weights(start, [2])
    history = lrar.train_batched(model, train_c, val_c, lambdas=1e-3, lr=0.05, steps=150)
    assert history.validation["mse"][-1, 0] < history.validation["mse"][0, 0]
    truth = lrar.ARWeights(
        *(torch.as_tensor(a, dtype=torch.float32) for a in (sim.dynamics.A, sim.dynamics.B, sim.dynamics.bias))
    )
    heldout = data.rows(val)
    truth_mse = float(lrar.mse(truth.predict(heldout), heldout.target))
    model_mse = float(lrar.mse(model(heldout.x_lags, heldout.u_lags)[0].detach(), heldout.target))
    least_squares = float(lrar.mse(lrar.least_squares_ar(data.rows(train)).predict(heldout), heldout.target))
    assert model_mse < least_squares  # structure beats the full model on new patterns
    assert model_mse < 1.5 * truth_mse
    # The bias set after training makes raw predictions match the compressed error.
    assert model_mse == pytest.approx(float(history.validation["mse"][-1, 0]), rel=1e-3)
    # Closer to the true matrices than least squares, by far for the dynamics A.
    fitted = model.weights().select(0)
    for name, at_most in (("A", 0.2), ("B", 0.6)):
        true = getattr(sim.dynamics, name)
        error = np.linalg.norm(getattr(fitted, name).detach().numpy() - true) / np.linalg.norm(true)
        ls_error = np.linalg.norm(getattr(lrar.least_squares_ar(data.rows(train)), name).numpy() - true)
        assert error < at_most and error < 0.7 * ls_error / np.linalg.norm(true), (name, error)


def test_train_batched_rejects_bad_arguments(experiment):
    _, data, train, val = experiment
    train_c = lrar.compress(data, torch.stack([train, train]))
    model = lrar.LowRankAR(20, 2, [1, 2, 3])
    with pytest.raises(ValueError, match="split evenly"):
        lrar.train_batched(model, train_c, lambdas=0.1, lr=0.01, steps=2)
    model = lrar.LowRankAR(20, 2, [1, 2])
    with pytest.raises(ValueError, match="one per model"):
        lrar.train_batched(model, train_c, lambdas=[0.1, 0.2, 0.3], lr=0.01, steps=2)
    with pytest.raises(ValueError, match=">= 0"):
        lrar.train_batched(model, train_c, lambdas=0.1, lr=-1.0, steps=2)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        lrar.train_batched(model, train_c, lambdas=0.1, lr=0.01, steps=0)
    with pytest.raises(FloatingPointError, match="lower lr"):
        lrar.train_batched(model, train_c, lambdas=0.0, lr=1e30, steps=5)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(ranks=[]), "ranks must be integers"),
        (dict(ranks=[0]), "ranks must be integers"),
        (dict(ranks=[1], orders=[3]), "orders needs one value per model"),
    ],
)
def test_low_rank_model_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lrar.LowRankAR(5, 2, **kwargs)


# --------------------------------------------------------------------------- analysis


def test_stimulation_response_matches_the_simulator(experiment):
    sim = experiment[0]
    truth = lrar.ARWeights(
        *(torch.as_tensor(a, dtype=torch.float64) for a in (sim.dynamics.A, sim.dynamics.B, sim.dynamics.bias))
    )
    patterns = torch.as_tensor(sim.patterns[:3])
    got = lrar.stimulation_response(truth, patterns, 10, sim.stim_frames)
    np.testing.assert_allclose(got.numpy(), sim.dynamics.response(sim.patterns[:3], 10, sim.stim_frames), atol=1e-10)
    batched = lrar.ARWeights(
        truth.A[None].repeat(2, 1, 1, 1), truth.B[None].repeat(2, 1, 1, 1), truth.bias[None].repeat(2, 1)
    )
    assert lrar.stimulation_response(batched, patterns, 10, 3).shape == (2, 3, 10, 20)
    assert lrar.spectral_radius(truth) == pytest.approx(sim.dynamics.spectral_radius(), rel=1e-6)
    with pytest.raises(ValueError, match="patterns must have shape"):
        lrar.stimulation_response(truth, torch.ones(3, 5), 10, 3)


def test_full_rank_model_predicts_like_its_weights():
    data = random_data(n=30, d=5)
    model = lrar.FullRankAR(5, 2, init_scale=0.2, generator=torch.Generator().manual_seed(0)).double()
    torch.testing.assert_close(model(data.x_lags, data.u_lags), model.weights().predict(data))
    with torch.no_grad():
        assert float(model.penalty()) == pytest.approx(float((model.A**2).sum() + (model.B**2).sum()))


def test_concatenated_blocks_keep_every_row_in_order():
    first, second = random_data(40, seed=1), random_data(30, seed=2)
    both = lrar.LaggedData.concatenate([first, second])
    assert len(both) == len(first) + len(second)
    torch.testing.assert_close(both.rows(torch.arange(len(first), len(both))).x_lags, second.x_lags)
    torch.testing.assert_close(both.target[: len(first)], first.target)
    torch.testing.assert_close(both.frame, torch.cat([first.frame, second.frame]))  # frames stay per recording
    with pytest.raises(ValueError, match="order"):
        lrar.LaggedData.concatenate([first, first.truncate(1)])
    with pytest.raises(ValueError, match="at least one"):
        lrar.LaggedData.concatenate([])
