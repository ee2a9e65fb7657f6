"""Tests of the batched compositional RBM (course_utils.models.crbm), against exact answers.

Exact references: numerical integration over the hidden unit, enumeration of every visible
configuration of a tiny model, finite differences, and closed forms of the penalties.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.integrate as integrate
import scipy.special as special
import torch

from course_utils.models import crbm
from course_utils.models.crbm import BatchedCRBM
from course_utils.training import BatchedAdam

F64 = torch.float64


pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (gamma_plus, gamma_minus, theta_plus, theta_minus, input): the bulk, asymmetric units,
# thresholds that open a gap around 0, and inputs far in either tail.
CASES = [
    (1.0, 1.0, 0.0, 0.0, 0.5),
    (0.5, 2.0, 1.0, -0.5, -1.0),
    (1.0, 1.0, 3.0, 3.0, 0.2),
    (2.0, 0.5, -1.0, 2.0, 1.0),
    (1.0, 1.0, 30.0, 30.0, 0.0),
    (1.0, 1.0, 0.0, 0.0, -40.0),
    (1.5, 0.7, 0.0, 0.0, 40.0),
    (1.0, 1.0, 20.0, -5.0, 3.0),
]


def _t(*values, dtype=F64):
    return [torch.tensor(float(v), dtype=dtype) for v in values]


def _density(gp, gm, tp, tm, inputs):
    """Normalized p(h | I) by direct formula, and the points where it bends."""
    log_z = crbm.drelu_log_partition(*_t(inputs, gp, gm, tp, tm)).item()

    def density(h):
        hp, hm = max(h, 0.0), max(-h, 0.0)
        return np.exp(-(0.5 * gp * hp**2 + 0.5 * gm * hm**2 + tp * hp + tm * hm) + inputs * h - log_z)

    return density, sorted({0.0, (inputs + tm) / gm, (inputs - tp) / gp})


def _integrate(f, points):
    return integrate.quad(f, -150, 150, points=points, limit=2000, epsabs=1e-13)[0]


@pytest.mark.parametrize("case", CASES)
def test_log_partition_and_moments_match_numerical_integration(case):
    gp, gm, tp, tm, inputs = case
    density, points = _density(gp, gm, tp, tm, inputs)
    assert _integrate(density, points) == pytest.approx(1.0, abs=1e-8)
    mean_num = _integrate(lambda h: h * density(h), points)
    var_num = _integrate(lambda h: h * h * density(h), points) - mean_num**2
    mean, var = crbm.drelu_moments(*_t(inputs, gp, gm, tp, tm))
    assert mean.item() == pytest.approx(mean_num, abs=1e-7)
    assert var.item() == pytest.approx(var_num, abs=1e-7)


def test_log_partition_gradients_are_exact():
    gen = torch.Generator().manual_seed(0)
    inputs = (5 * torch.randn(3, 4, 5, generator=gen, dtype=F64)).requires_grad_()
    params = [(torch.rand(3, 1, 5, generator=gen, dtype=F64) + 0.3).requires_grad_() for _ in range(2)]
    params += [(3 * torch.randn(3, 1, 5, generator=gen, dtype=F64)).requires_grad_() for _ in range(2)]
    assert torch.autograd.gradcheck(crbm.drelu_log_partition, (inputs, *params))
    # d Gamma / dI is the conditional mean, also far in the tails.
    far = torch.tensor([-60.0, -15.0, 15.0, 60.0], dtype=F64, requires_grad=True)
    gp, gm, tp, tm = _t(1.0, 2.0, 1.0, -1.0)
    (grad,) = torch.autograd.grad(crbm.drelu_log_partition(far, gp, gm, tp, tm).sum(), far)
    torch.testing.assert_close(grad, crbm.drelu_moments(far.detach(), gp, gm, tp, tm)[0])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ndtri_exp_inverts_log_phi_over_the_whole_range(dtype):
    log_p = np.array([-1e-9, -0.1, -0.69, -5.0, -29.0, -31.0, -80.0, -300.0, -700.0, -2000.0])
    got = crbm.ndtri_exp(torch.tensor(log_p, dtype=dtype)).double().numpy()
    expected = special.ndtri_exp(log_p)
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", CASES)
def test_sampler_draws_from_the_exact_conditional(case, dtype):
    gp, gm, tp, tm, inputs = case
    n = 20_000
    full = [torch.full((n,), float(v), dtype=dtype) for v in (inputs, gp, gm, tp, tm)]
    gen = torch.Generator().manual_seed(1)
    h = crbm.sample_drelu(*full, generator=gen).double().numpy()
    assert np.all(np.isfinite(h))
    density, points = _density(gp, gm, tp, tm, inputs)
    # Exact CDF at the sample's deciles: each must sit at its decile, up to sampling noise
    # (binomial sd sqrt(0.25 / n) = 0.0035; the bound is 5 sd).
    levels = np.linspace(0.1, 0.9, 9)
    for level, q in zip(levels, np.quantile(h, levels)):
        below = [p for p in points if p < q]
        cdf = integrate.quad(density, -150, q, points=below or None, limit=2000)[0]
        assert cdf == pytest.approx(level, abs=0.018), (case, level, q, cdf)


def _tiny_model(n_models=2, n_visible=4, n_hidden=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    model = BatchedCRBM(n_visible, n_hidden, n_models, weight_scale=1.5, dtype=F64, device="cpu")
    model.set_parameters(
        fields=torch.randn(n_models, n_visible, generator=gen, dtype=F64),
        eta=0.6 * (torch.rand(n_models, n_hidden, generator=gen, dtype=F64) - 0.5),
        theta_plus=torch.randn(n_models, n_hidden, generator=gen, dtype=F64),
        theta_minus=torch.randn(n_models, n_hidden, generator=gen, dtype=F64),
    )
    return model


def test_free_energy_is_minus_log_of_the_energy_integrated_over_hidden_units():
    model = _tiny_model(n_models=1, n_visible=3, n_hidden=2)
    grid = torch.linspace(-12, 12, 1201, dtype=F64)
    h1, h2 = torch.meshgrid(grid, grid, indexing="ij")
    h = torch.stack([h1.ravel(), h2.ravel()], dim=-1)[None]  # (1, G, 2)
    step = float(grid[1] - grid[0])
    for v in [(0.0, 0.0, 0.0), (1.0, 0.0, 1.0), (1.0, 1.0, 1.0)]:
        v_rep = torch.tensor(v, dtype=F64).expand(h.shape[1], 3)
        energy = model.energy(v_rep, h)[0]
        log_integral = torch.logsumexp(-energy, 0) + 2 * np.log(step)
        free = model.free_energy(torch.tensor([v], dtype=F64))[0, 0]
        assert (-free).item() == pytest.approx(log_integral.item(), abs=1e-3)


def test_energy_matches_its_definition():
    model = _tiny_model(n_models=2, n_visible=4, n_hidden=3)
    gen = torch.Generator().manual_seed(3)
    v = (torch.rand(5, 4, generator=gen) < 0.5).to(F64)
    h = 2 * torch.randn(2, 5, 3, generator=gen, dtype=F64)
    p = model.to_numpy()
    for m in range(2):
        hp, hm = np.maximum(h[m].numpy(), 0), np.maximum(-h[m].numpy(), 0)
        u = (
            0.5 * p["gamma_plus"][m] * hp**2
            + 0.5 * p["gamma_minus"][m] * hm**2
            + p["theta_plus"][m] * hp
            + p["theta_minus"][m] * hm
        ).sum(1)
        expected = -v.numpy() @ p["fields"][m] + u - np.einsum("bi,ij,bj->b", v.numpy(), p["weights"][m], h[m].numpy())
        np.testing.assert_allclose(model.energy(v, h)[m].numpy(), expected)


def test_gibbs_chains_sample_the_exact_distribution_of_a_tiny_model():
    model = _tiny_model(n_models=2, n_visible=4, n_hidden=3)
    states = torch.tensor(list(itertools.product([0, 1], repeat=4)), dtype=F64)
    exact = torch.softmax(-model.free_energy(states), dim=1).numpy()
    gen = torch.Generator().manual_seed(0)
    v = model.gibbs(model.independent_samples(states, 2000, gen), 20, gen)
    counts = np.zeros((2, 16))
    code = 2 ** np.arange(4)[::-1]
    for _ in range(60):
        v = model.gibbs(v, 1, gen)
        index = (v.numpy() @ code).astype(int)
        for m in range(2):
            counts[m] += np.bincount(index[m], minlength=16)
    empirical = counts / counts.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(empirical, exact, atol=0.01)


def test_effective_couplings_are_the_curvature_of_log_p():
    model = _tiny_model(n_models=1, n_visible=4, n_hidden=3)
    v = torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=F64)
    couplings = model.effective_couplings(v)[0]

    def grad_log_p(x):  # d(-F)/dv, treating v as continuous
        x = x.clone().requires_grad_()
        (g,) = torch.autograd.grad(-model.free_energy(x[None])[0, 0], x)
        return g

    eps = 1e-5
    hess = torch.stack(
        [(grad_log_p(v[0] + eps * e) - grad_log_p(v[0] - eps * e)) / (2 * eps) for e in torch.eye(4, dtype=F64)]
    )
    off = ~torch.eye(4, dtype=torch.bool)
    torch.testing.assert_close(couplings[off], hess[off], rtol=1e-6, atol=1e-6)
    assert torch.all(couplings.diagonal() == 0)


@pytest.mark.parametrize("kind", crbm.PENALTIES)
def test_penalty_value_and_gradient(kind):
    gen = torch.Generator().manual_seed(2)
    weights = torch.randn(3, 7, 4, generator=gen, dtype=F64)
    lam = torch.tensor([0.0, 0.1, 2.0], dtype=F64)
    w = weights.clone().requires_grad_()
    value = crbm.penalty(w, lam, kind)
    (grad,) = torch.autograd.grad(value.sum(), w)
    per_unit = weights.abs().sum(dim=1)  # (M, H)
    if kind == "l1":
        expected_value = lam * weights.abs().sum(dim=(1, 2))
        expected_grad = lam[:, None, None] * weights.sign()
    else:
        expected_value = 0.5 * lam * (per_unit**2).sum(1) / 7
        expected_grad = lam[:, None, None] * per_unit[:, None, :] * weights.sign() / 7
    torch.testing.assert_close(value.detach(), expected_value)
    torch.testing.assert_close(grad, expected_grad)
    # And by central finite differences on one weight.
    eps = 1e-6
    bump = torch.zeros_like(weights)
    bump[2, 3, 1] = eps
    numeric = (crbm.penalty(weights + bump, lam, kind) - crbm.penalty(weights - bump, lam, kind))[2] / (2 * eps)
    assert numeric.item() == pytest.approx(grad[2, 3, 1].item(), rel=1e-6)


def test_penalty_rejects_unknown_kind_and_negative_strength():
    w = torch.zeros(1, 3, 2)
    with pytest.raises(ValueError, match="l1, l2l1"):
        crbm.penalty(w, 0.1, "l2")
    with pytest.raises(ValueError, match=">= 0"):
        crbm.penalty(w, -0.1)


def test_one_batched_update_equals_updating_each_model_alone():
    data = (torch.rand(20, 6, generator=torch.Generator().manual_seed(0)) < 0.3).to(F64)
    chains = (torch.rand(2, 8, 6, generator=torch.Generator().manual_seed(1)) < 0.5).to(F64)
    lam = torch.tensor([0.05, 0.5], dtype=F64)

    def step(model, lam_, chains_):
        adam = BatchedAdam(list(model.parameters().values()))
        active = torch.ones(model.n_models, dtype=torch.bool)
        for _ in range(3):
            crbm._update(model, adam, list(model.parameters()), data, chains_, lam_, "l2l1", 0.01, active)
        return model

    batched = step(_tiny_model(2, 6, 3, seed=5), lam, chains)
    for m in range(2):
        alone = step(_tiny_model(2, 6, 3, seed=5).select([m]), lam[m : m + 1], chains[m : m + 1])
        for name, tensor in batched.parameters().items():
            torch.testing.assert_close(alone.parameters()[name][0], tensor[m])


def test_divergence_freezes_and_marks_a_model_without_stopping_the_others():
    rng = np.random.default_rng(0)
    data = (rng.random((200, 8)) < 0.3).astype(np.uint8)
    model = BatchedCRBM(8, 3, 3, weight_scale=0.1, device="cpu")
    exploded = 5.0 * torch.ones(8, 3)
    model.weights[1] = exploded  # passes the bound at once
    model.weights[2, 0, 0] = float("nan")  # NaN inputs, free energy and gradients
    before = {name: t.clone() for name, t in model.parameters().items()}
    history = crbm.train_crbms(
        model, data, [0.01, 0.01, 0.01], epochs=3, batch_size=50, n_chains=10, weight_bound=4.0, progress=False
    )
    assert history.diverged.tolist() == [False, True, True]
    assert history.diverged_at[1] == 0 and history.diverged_at[2] == 0
    assert "bound" in history.reasons[1] and "NaN" in history.reasons[2]
    # The exploded model kept its parameters of the update where it crossed the bound.
    assert torch.all(model.weights[1].abs() <= 5.1) and not torch.equal(model.weights[1], before["weights"][1])
    # The healthy model trained on, through all the updates, and stays finite.
    assert torch.isfinite(model.weights[0]).all() and not torch.equal(model.weights[0], before["weights"][0])
    assert history.updates_run == 3 * 4 and len(history.train["weight_l1"]) == 3


def test_training_input_is_checked():
    model = BatchedCRBM(5, 2, 2, device="cpu")
    good = np.zeros((10, 5), dtype=np.uint8)
    with pytest.raises(ValueError, match="one value per model"):
        crbm.train_crbms(model, good, [0.1], progress=False)
    with pytest.raises(ValueError, match="only 0 and 1"):
        crbm.train_crbms(model, np.full((10, 5), 0.5), [0.1, 0.1], progress=False)
    with pytest.raises(ValueError, match=r"\(time, 5\)"):
        crbm.train_crbms(model, np.zeros((10, 4)), [0.1, 0.1], progress=False)
    with pytest.raises(ValueError, match="penalty"):
        crbm.train_crbms(model, good, [0.1, 0.1], penalty_kind="l0", progress=False)
    with pytest.raises(ValueError, match="epochs"):
        crbm.train_crbms(model, good, [0.1, 0.1], epochs=0, progress=False)
    with pytest.raises(ValueError, match="visible configurations"):
        model.free_energy(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="eta"):
        model.set_parameters(eta=np.ones((2, 2)))
    with pytest.raises(ValueError, match="n_hidden"):
        BatchedCRBM(5, 0)


def test_training_a_subset_of_parameters_leaves_the_others_untouched():
    rng = np.random.default_rng(1)
    data = (rng.random((200, 6)) < 0.3).astype(np.uint8)
    model = BatchedCRBM(6, 3, 2, weight_scale=0.3, device="cpu")
    weights, eta = model.weights.clone(), model.eta.clone()
    fields = model.fields.clone()
    crbm.train_crbms(
        model,
        data,
        [0.1, 0.1],
        epochs=2,
        batch_size=50,
        n_chains=20,
        gibbs_steps=3,
        trainable=("fields", "theta_plus", "theta_minus"),
        init_fields=False,
        progress=False,
    )
    assert torch.equal(model.weights, weights) and torch.equal(model.eta, eta)
    assert not torch.equal(model.fields, fields) and model.theta_plus.abs().sum() > 0
    with pytest.raises(ValueError, match="trainable"):
        crbm.train_crbms(model, data, [0.1, 0.1], trainable=("bias",), progress=False)


def test_select_sample_and_coupling_subset_shapes():
    model = _tiny_model(n_models=3, n_visible=5, n_hidden=2)
    sub = model.select([2, 0])
    torch.testing.assert_close(sub.weights[0], model.weights[2])
    gen = torch.Generator().manual_seed(0)
    samples = sub.sample(7, 3, burn_in=2, thin=2, generator=gen)
    assert samples.shape == (2, 21, 5) and set(samples.unique().tolist()) <= {0.0, 1.0}
    v = torch.tensor([[1.0, 0, 1, 0, 1], [0, 1, 1, 0, 0]], dtype=F64)
    full = model.effective_couplings(v)
    part = model.effective_couplings(v, neurons=[1, 3, 4])
    torch.testing.assert_close(part, full[:, [1, 3, 4]][:, :, [1, 3, 4]])
