"""Variational autoencoders of chapter 5: dense and convolutional, one model or many at once.

Every model maps a batch ``x`` to ``(x_hat, mu, logvar)``: the decoder's output for a sample
``z = mu + exp(logvar / 2) * eps`` of the approximate posterior (the reparameterization
trick), and the posterior's mean and log-variance. Losses are the caller's (the chapter
writes them out); :func:`gaussian_kl` is the closed-form KL divergence to a standard normal.

:class:`DenseVAE`
    Fully connected encoder and decoder; one hidden layer (an "MLP-VAE") or more ("DNN-VAE").
:class:`ConvVAE2d`
    Small images (e.g. 8×8 digits): two strided convolutions, mirrored by transposed ones.
:class:`ConvVAE1d`
    Voltage traces: 1-D convolutions with 32 then 64 filters, a dense layer to ``mu`` and
    ``logvar``, and the mirrored decoder (dense, then transposed convolutions).
:class:`StackedConvVAE1d`
    Many independent :class:`ConvVAE1d` of different latent sizes trained in one pass:
    grouped convolutions and batched matrix products over a leading model dimension.
    ``member(i)`` returns model ``i`` as a plain :class:`ConvVAE1d`.

Hidden layers use ReLU and He (Kaiming) initialization. The image models return logits
(use a BCE-with-logits loss); :class:`ConvVAE1d` ends in a sigmoid, for traces scaled to
[0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from course_utils.validation import check_positive_ints

__all__ = ["gaussian_kl", "reparameterize", "DenseVAE", "ConvVAE2d", "ConvVAE1d", "StackedConvVAE1d"]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL divergence from ``N(mu, exp(logvar))`` to ``N(0, 1)``, summed over the last axis.

    ``KL = 1/2 * sum(mu² + exp(logvar) - 1 - logvar)``, in nats.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}.")
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Draw ``z = mu + exp(logvar / 2) * eps`` with ``eps ~ N(0, 1)``; gradients flow to both."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def _he_init(module: nn.Module) -> None:
    """He (Kaiming) normal initialization for ReLU layers, zero biases."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


class _VAE(nn.Module):
    """Shared forward pass: encode, sample with the reparameterization trick, decode."""

    latent_size: int

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the posterior mean and log-variance of each input."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map latent codes to the decoder's output."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(x_hat, mu, logvar)``; ``z`` is sampled in training mode, ``mu`` in eval mode."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z), mu, logvar


class DenseVAE(_VAE):
    """A fully connected VAE for flat inputs (e.g. images as vectors of pixels).

    Parameters
    ----------
    n_inputs
        Length of an input vector.
    hidden_sizes
        Widths of the encoder's hidden layers (the decoder mirrors them): one entry for an
        MLP-VAE, two for a DNN-VAE.
    latent_size
        Dimension of the latent code.

    The decoder returns logits, one per input.
    """

    def __init__(self, n_inputs: int, hidden_sizes: Sequence[int], latent_size: int) -> None:
        super().__init__()
        check_positive_ints(n_inputs=n_inputs, latent_size=latent_size)
        if not hidden_sizes:
            raise ValueError("hidden_sizes needs at least one layer width, e.g. (128,).")
        check_positive_ints(**{f"hidden_sizes[{i}]": h for i, h in enumerate(hidden_sizes)})
        self.latent_size = int(latent_size)
        widths = [int(n_inputs), *(int(h) for h in hidden_sizes)]
        encoder: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            encoder += [nn.Linear(a, b), nn.ReLU()]
        self.encoder = nn.Sequential(*encoder)
        self.to_posterior = nn.Linear(widths[-1], 2 * latent_size)
        decoder: list[nn.Module] = []
        back = [latent_size, *widths[:0:-1]]
        for a, b in zip(back[:-1], back[1:]):
            decoder += [nn.Linear(a, b), nn.ReLU()]
        decoder.append(nn.Linear(back[-1], n_inputs))
        self.decoder = nn.Sequential(*decoder)
        self.n_inputs = n_inputs
        _he_init(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            raise ValueError(f"DenseVAE expects inputs of shape (batch, {self.n_inputs}), got {tuple(x.shape)}.")
        mu, logvar = self.to_posterior(self.encoder(x)).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class ConvVAE2d(_VAE):
    """A convolutional VAE for small square images of one channel.

    Parameters
    ----------
    image_size
        Side of the image in pixels; a multiple of 4 (two stride-2 convolutions).
    latent_size
        Dimension of the latent code.
    channels
        Filters of the two convolutions.

    Inputs have shape ``(batch, image_size, image_size)``; the decoder returns logits of
    the same shape.
    """

    def __init__(self, image_size: int, latent_size: int, channels: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        check_positive_ints(image_size=image_size, latent_size=latent_size)
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}.")
        self.latent_size = int(latent_size)
        c1, c2 = channels
        self.image_size, self.inner = image_size, image_size // 4
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.to_posterior = nn.Linear(c2 * self.inner**2, 2 * latent_size)
        self.from_latent = nn.Sequential(nn.Linear(latent_size, c2 * self.inner**2), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, 1, 3, stride=2, padding=1, output_padding=1),
        )
        self.c2 = c2
        _he_init(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 3 or x.shape[1:] != (self.image_size, self.image_size):
            raise ValueError(
                f"ConvVAE2d expects images of shape (batch, {self.image_size}, {self.image_size}), "
                f"got {tuple(x.shape)}."
            )
        mu, logvar = self.to_posterior(self.encoder(x[:, None])).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(-1, self.c2, self.inner, self.inner)
        return self.decoder(h)[:, 0]


def _conv_lengths(n_samples: int, kernel_size: int) -> tuple[int, int]:
    """Lengths after one and two stride-2 convolutions with 'same'-style padding."""
    pad = kernel_size // 2
    first = (n_samples + 2 * pad - kernel_size) // 2 + 1
    second = (first + 2 * pad - kernel_size) // 2 + 1
    return first, second


def _check_trace_args(n_samples: int, kernel_size: int) -> None:
    check_positive_ints(n_samples=n_samples, kernel_size=kernel_size)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (symmetric padding), got {kernel_size}.")
    if n_samples < 4 * kernel_size:
        raise ValueError(
            f"n_samples={n_samples} is too short for kernel_size={kernel_size}: use at least {4 * kernel_size}."
        )


class ConvVAE1d(_VAE):
    """A 1-D convolutional VAE for traces of ``n_samples`` values in [0, 1].

    Encoder: ``Conv1d(1→32, stride 2) → ReLU → Conv1d(32→64, stride 2) → ReLU → flatten →
    Linear → (mu, logvar)``. Decoder, mirrored: ``Linear → ReLU → ConvTranspose1d(64→32) →
    ReLU → ConvTranspose1d(32→1) → sigmoid``, cropped to ``n_samples``.

    Parameters
    ----------
    n_samples
        Length of a trace.
    latent_size
        Dimension of the latent code.
    kernel_size
        Width of every (transposed) convolution; odd.
    channels
        Filters of the two convolutions.

    Inputs have shape ``(batch, n_samples)``; so do the reconstructions.
    """

    def __init__(
        self, n_samples: int, latent_size: int, kernel_size: int = 7, channels: tuple[int, int] = (32, 64)
    ) -> None:
        super().__init__()
        _check_trace_args(n_samples, kernel_size)
        check_positive_ints(latent_size=latent_size)
        self.latent_size = int(latent_size)
        self.n_samples, self.kernel_size, self.channels = n_samples, kernel_size, tuple(channels)
        c1, c2 = channels
        pad = kernel_size // 2
        _, self.inner = _conv_lengths(n_samples, kernel_size)
        self.encoder = nn.Sequential(
            nn.Conv1d(1, c1, kernel_size, stride=2, padding=pad),
            nn.ReLU(),
            nn.Conv1d(c1, c2, kernel_size, stride=2, padding=pad),
            nn.ReLU(),
            nn.Flatten(),
        )
        self.to_posterior = nn.Linear(c2 * self.inner, 2 * latent_size)
        self.from_latent = nn.Sequential(nn.Linear(latent_size, c2 * self.inner), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.ConvTranspose1d(c2, c1, kernel_size, stride=2, padding=pad, output_padding=1),
            nn.ReLU(),
            nn.ConvTranspose1d(c1, 1, kernel_size, stride=2, padding=pad, output_padding=1),
        )
        _he_init(self)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 2 or x.shape[1] != self.n_samples:
            raise ValueError(f"ConvVAE1d expects traces of shape (batch, {self.n_samples}), got {tuple(x.shape)}.")
        mu, logvar = self.to_posterior(self.encoder(x[:, None])).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(-1, self.channels[1], self.inner)
        return torch.sigmoid(self.decoder(h)[:, 0, : self.n_samples])


class StackedConvVAE1d(nn.Module):
    """Independent :class:`ConvVAE1d` models, one per entry of ``latent_sizes``, in one module.

    The models share nothing but the input batch. Convolutions are grouped (group ``i``
    holds model ``i``'s filters) and the dense layers are batched matrix products, so one
    forward pass runs every model, and the gradient of the summed loss of all models is the
    gradient of each model's own loss with respect to its own weights. Every model has room
    for ``max(latent_sizes)`` latent dimensions; those beyond its own size are masked to
    ``mu = 0``, ``logvar = 0`` and ``z = 0``: they carry nothing and cost no KL divergence.

    Parameters
    ----------
    n_samples, kernel_size, channels
        As in :class:`ConvVAE1d`, shared by all models.
    latent_sizes
        Latent dimension of each model.

    ``forward(x)`` takes ``(batch, n_samples)`` and returns ``x_hat`` of shape
    ``(n_models, batch, n_samples)`` and ``mu``, ``logvar`` of shape
    ``(n_models, batch, max(latent_sizes))``.
    """

    def __init__(
        self, n_samples: int, latent_sizes: Sequence[int], kernel_size: int = 7, channels: tuple[int, int] = (32, 64)
    ) -> None:
        super().__init__()
        _check_trace_args(n_samples, kernel_size)
        if not latent_sizes:
            raise ValueError("latent_sizes needs at least one model, e.g. (2, 10, 20).")
        check_positive_ints(**{f"latent_sizes[{i}]": d for i, d in enumerate(latent_sizes)})
        self.latent_sizes = tuple(int(d) for d in latent_sizes)
        self.n_models, self.max_latent = len(self.latent_sizes), max(self.latent_sizes)
        self.n_samples, self.kernel_size, self.channels = n_samples, kernel_size, tuple(channels)
        m, (c1, c2), pad = self.n_models, channels, kernel_size // 2
        _, self.inner = _conv_lengths(n_samples, kernel_size)
        flat = c2 * self.inner
        self.conv1 = nn.Conv1d(m, m * c1, kernel_size, stride=2, padding=pad, groups=m)
        self.conv2 = nn.Conv1d(m * c1, m * c2, kernel_size, stride=2, padding=pad, groups=m)
        self.to_posterior_weight = nn.Parameter(torch.empty(m, flat, 2 * self.max_latent))
        self.to_posterior_bias = nn.Parameter(torch.zeros(m, 2 * self.max_latent))
        self.from_latent_weight = nn.Parameter(torch.empty(m, self.max_latent, flat))
        self.from_latent_bias = nn.Parameter(torch.zeros(m, flat))
        self.deconv1 = nn.ConvTranspose1d(
            m * c2, m * c1, kernel_size, stride=2, padding=pad, output_padding=1, groups=m
        )
        self.deconv2 = nn.ConvTranspose1d(m * c1, m, kernel_size, stride=2, padding=pad, output_padding=1, groups=m)
        mask = torch.zeros(m, self.max_latent)
        for i, size in enumerate(self.latent_sizes):
            mask[i, :size] = 1.0
        self.register_buffer("latent_mask", mask)
        self._init_weights()

    def _init_weights(self) -> None:
        """He initialization with each model's own fan-in, as its :class:`ConvVAE1d` would get."""
        _he_init(self)  # the grouped (transposed) convolutions: fan-in is per group already
        c2 = self.channels[1]
        gain = math.sqrt(2.0)
        with torch.no_grad():
            self.to_posterior_weight.normal_(0.0, gain / math.sqrt(c2 * self.inner))
            for i, size in enumerate(self.latent_sizes):
                self.from_latent_weight[i].normal_(0.0, gain / math.sqrt(size))
        self._zero_masked()

    def _zero_masked(self) -> None:
        """Zero the weights that read or write masked latent dimensions (they never train)."""
        with torch.no_grad():
            keep = self.latent_mask.repeat(1, 2)[:, None, :]
            self.to_posterior_weight.mul_(keep)
            self.to_posterior_bias.mul_(keep[:, 0])
            self.from_latent_weight.mul_(self.latent_mask[:, :, None])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``mu`` and ``logvar`` of every model, shape ``(n_models, batch, max_latent)``."""
        if x.ndim != 2 or x.shape[1] != self.n_samples:
            raise ValueError(
                f"StackedConvVAE1d expects traces of shape (batch, {self.n_samples}), got {tuple(x.shape)}."
            )
        batch = x.shape[0]
        h = x[:, None].expand(batch, self.n_models, self.n_samples)
        h = F.relu(self.conv2(F.relu(self.conv1(h))))  # (batch, m * c2, inner)
        h = h.view(batch, self.n_models, -1).transpose(0, 1)  # (m, batch, c2 * inner)
        out = torch.baddbmm(self.to_posterior_bias[:, None], h, self.to_posterior_weight)
        mu, logvar = out.chunk(2, dim=-1)
        mask = self.latent_mask[:, None]
        return mu * mask, logvar * mask

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Map codes ``(n_models, batch, max_latent)`` to traces ``(n_models, batch, n_samples)``."""
        batch = z.shape[1]
        h = F.relu(torch.baddbmm(self.from_latent_bias[:, None], z, self.from_latent_weight))
        h = h.transpose(0, 1).reshape(batch, self.n_models * self.channels[1], self.inner)
        h = self.deconv2(F.relu(self.deconv1(h)))[:, :, : self.n_samples]
        return torch.sigmoid(h).transpose(0, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(x_hat, mu, logvar)`` of every model; ``z`` is sampled only in training mode."""
        mu, logvar = self.encode(x)
        z = mu + self.latent_mask[:, None] * torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        return self.decode(z), mu, logvar

    def member(self, index: int) -> ConvVAE1d:
        """Return a copy of model ``index`` as a stand-alone :class:`ConvVAE1d` (on the CPU)."""
        if not 0 <= index < self.n_models:
            raise IndexError(f"index must be in [0, {self.n_models}), got {index}.")
        size, (c1, c2) = self.latent_sizes[index], self.channels
        model = ConvVAE1d(self.n_samples, size, self.kernel_size, self.channels)
        rows = torch.cat([torch.arange(size), self.max_latent + torch.arange(size)])
        with torch.no_grad():
            enc1, enc2 = model.encoder[0], model.encoder[2]
            enc1.weight.copy_(self.conv1.weight[index * c1 : (index + 1) * c1])
            enc1.bias.copy_(self.conv1.bias[index * c1 : (index + 1) * c1])
            enc2.weight.copy_(self.conv2.weight[index * c2 : (index + 1) * c2])
            enc2.bias.copy_(self.conv2.bias[index * c2 : (index + 1) * c2])
            model.to_posterior.weight.copy_(self.to_posterior_weight[index][:, rows].T)
            model.to_posterior.bias.copy_(self.to_posterior_bias[index][rows])
            model.from_latent[0].weight.copy_(self.from_latent_weight[index][:size].T)
            model.from_latent[0].bias.copy_(self.from_latent_bias[index])
            dec1, dec2 = model.decoder[0], model.decoder[2]
            # A grouped transposed convolution stores weights as (in, out / groups, k).
            dec1.weight.copy_(self.deconv1.weight[index * c2 : (index + 1) * c2])
            dec1.bias.copy_(self.deconv1.bias[index * c1 : (index + 1) * c1])
            dec2.weight.copy_(self.deconv2.weight[index * c1 : (index + 1) * c1])
            dec2.bias.copy_(self.deconv2.bias[index : index + 1])
        return model.train(self.training)
