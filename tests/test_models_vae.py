"""Tests of the VAEs of chapter 5: shapes, the KL formula, and that a stack is independent models."""

from __future__ import annotations

import math

import pytest
import torch

from course_utils.models import vae


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_gaussian_kl_matches_the_definition():
    mu = torch.tensor([[0.0, 1.0], [0.5, -2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [-1.0, 0.3]])
    expected = []
    for m_row, lv_row in zip(mu, logvar):
        total = 0.0
        for m, lv in zip(m_row.tolist(), lv_row.tolist()):
            q = torch.distributions.Normal(m, math.exp(0.5 * lv))
            total += float(torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)))
        expected.append(total)
    torch.testing.assert_close(vae.gaussian_kl(mu, logvar), torch.tensor(expected))
    assert float(vae.gaussian_kl(torch.zeros(3), torch.zeros(3))) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        vae.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 2))


def test_reparameterize_has_the_right_moments_and_gradients():
    mu = torch.full((20_000, 1), 2.0, requires_grad=True)
    logvar = torch.full((20_000, 1), math.log(0.25), requires_grad=True)
    z = vae.reparameterize(mu, logvar)
    assert float(z.detach().mean()) == pytest.approx(2.0, abs=0.02)
    assert float(z.detach().std()) == pytest.approx(0.5, abs=0.02)
    z.sum().backward()
    assert mu.grad is not None and logvar.grad is not None


@pytest.mark.parametrize(
    ("model", "x"),
    [
        (vae.DenseVAE(64, (32,), 3), torch.rand(5, 64)),
        (vae.DenseVAE(64, (32, 16), 3), torch.rand(5, 64)),
        (vae.ConvVAE2d(8, 3), torch.rand(5, 8, 8)),
        (vae.ConvVAE1d(250, 3, kernel_size=5), torch.rand(5, 250)),
        (vae.ConvVAE1d(101, 3, kernel_size=7), torch.rand(5, 101)),
    ],
    ids=["mlp", "dnn", "conv2d", "conv1d", "conv1d-odd-length"],
)
def test_models_return_reconstructions_and_posteriors_of_the_right_shape(model, x):
    x_hat, mu, logvar = model(x)
    assert x_hat.shape == x.shape
    assert mu.shape == logvar.shape == (5, 3)
    model.eval()
    first, second = model(x)[0], model(x)[0]
    torch.testing.assert_close(first, second)  # evaluation decodes the mean: deterministic


def test_conv1d_output_is_a_scaled_trace():
    with torch.no_grad():
        x_hat = vae.ConvVAE1d(64, 2, kernel_size=5)(torch.rand(4, 64))[0]
    assert float(x_hat.min()) >= 0 and float(x_hat.max()) <= 1


def test_he_initialization():
    model = vae.DenseVAE(400, (300,), 2)
    weight = model.encoder[0].weight
    assert float(weight.detach().std()) == pytest.approx(math.sqrt(2 / 400), rel=0.05)
    assert float(model.encoder[0].bias.detach().abs().max()) == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="shape"):
        vae.ConvVAE1d(64, 2, kernel_size=5)(torch.rand(4, 65))
    with pytest.raises(ValueError, match="odd"):
        vae.ConvVAE1d(64, 2, kernel_size=4)
    with pytest.raises(ValueError, match="multiple of 4"):
        vae.ConvVAE2d(10, 2)
    with pytest.raises(ValueError, match="latent_size"):
        vae.DenseVAE(64, (32,), 0)
    with pytest.raises(ValueError, match="at least one model"):
        vae.StackedConvVAE1d(64, ())
    with pytest.raises(ValueError, match="shape"):
        vae.StackedConvVAE1d(64, (2, 3), kernel_size=5)(torch.rand(4, 63))


# --------------------------------------------------------------------------- the stack


@pytest.fixture
def stack() -> vae.StackedConvVAE1d:
    return vae.StackedConvVAE1d(60, (2, 5, 3), kernel_size=5)


def test_stack_shapes_and_masked_latents(stack):
    x_hat, mu, logvar = stack(torch.rand(4, 60))
    assert x_hat.shape == (3, 4, 60) and mu.shape == logvar.shape == (3, 4, 5)
    assert float(mu[0, :, 2:].detach().abs().max()) == 0.0 and float(logvar[2, :, 3:].detach().abs().max()) == 0.0
    # Masked dimensions cost no KL: the KL of model 0 is that of its first two latents.
    torch.testing.assert_close(vae.gaussian_kl(mu[0], logvar[0]), vae.gaussian_kl(mu[0, :, :2], logvar[0, :, :2]))


def test_each_member_is_the_same_model_as_a_plain_conv_vae(stack):
    stack.eval()
    x = torch.rand(6, 60)
    x_hat, mu, logvar = stack(x)
    for i, size in enumerate(stack.latent_sizes):
        member = stack.member(i).eval()
        assert isinstance(member, vae.ConvVAE1d) and member.latent_size == size
        m_hat, m_mu, m_logvar = member(x)
        torch.testing.assert_close(m_mu, mu[i, :, :size], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(m_logvar, logvar[i, :, :size], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(m_hat, x_hat[i], atol=1e-5, rtol=1e-5)
        # The decoders agree too, away from the encoder's codes.
        z = torch.randn(3, size)
        padded = torch.zeros(stack.n_models, 3, stack.max_latent)
        padded[i, :, :size] = z
        torch.testing.assert_close(member.decode(z), stack.decode(padded)[i], atol=1e-5, rtol=1e-5)


def test_models_of_a_stack_learn_independently(stack):
    """The gradient of one model's loss touches only that model's weights."""
    x = torch.rand(4, 60)
    x_hat, mu, logvar = stack(x)
    loss_of_model_1 = (x_hat[1] - x).pow(2).sum() + vae.gaussian_kl(mu[1], logvar[1]).sum()
    loss_of_model_1.backward()
    c1, c2 = stack.channels
    checks = {
        "conv1.weight": (0, c1),
        "conv2.weight": (0, c2),
        "deconv1.weight": (0, c2),
        "deconv2.weight": (0, c1),
        "to_posterior_weight": None,
        "from_latent_weight": None,
    }
    grads = dict(stack.named_parameters())
    for name, rows in checks.items():
        grad = grads[name].grad
        if rows is None:  # a leading model dimension
            assert float(grad[0].abs().max()) == 0 and float(grad[2].abs().max()) == 0, name
            assert float(grad[1].abs().max()) > 0, name
        else:
            per = rows[1]
            assert float(grad[:per].abs().max()) == 0 and float(grad[2 * per :].abs().max()) == 0, name
            assert float(grad[per : 2 * per].abs().max()) > 0, name


def test_stack_initialization_matches_each_members_fan_in():
    stack = vae.StackedConvVAE1d(200, (2, 20), kernel_size=5)
    assert float(stack.from_latent_weight[0, :2].detach().std()) == pytest.approx(math.sqrt(2 / 2), rel=0.1)
    assert float(stack.from_latent_weight[1].detach().std()) == pytest.approx(math.sqrt(2 / 20), rel=0.1)
    assert float(stack.from_latent_weight[0, 2:].detach().abs().max()) == 0.0  # masked rows stay zero


def test_a_stack_trains(stack):
    x = torch.rand(32, 60) * 0.2 + 0.4
    optimizer = torch.optim.NAdam(stack.parameters(), lr=3e-3, weight_decay=1e-4, decoupled_weight_decay=True)
    losses = []
    for _ in range(40):
        x_hat, mu, logvar = stack(x)
        loss = ((x_hat - x).pow(2).sum(-1) + vae.gaussian_kl(mu, logvar)).mean(1).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert float(stack.from_latent_weight[0, 2:].detach().abs().max()) == 0.0  # masked weights never train
