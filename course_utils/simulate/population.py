"""Ground truth for chapter 2: a coupled population of head-direction neurons.

:func:`simulate_head_direction_population` draws a heading that wanders smoothly around the
circle and a population of Poisson neurons, each tuned to one preferred direction, whose
log-rate also sums

- its own spike history through a *self* filter (refractoriness),
- the recent spikes of the neurons that project onto it, each through a *coupling* filter
  of known shape, on a sparse random graph (most pairs are not coupled),
- a slow fluctuation of excitability of its own, as real recordings drift.

Every filter is known, so a fitted coupling model can be checked filter by filter and edge by
edge against the truth. All arrays that pair two neurons are indexed ``[post, pre]``: row
``i`` holds what neuron ``i`` receives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from course_utils.validation import check_positive_numbers


@dataclass(frozen=True)
class HeadDirectionPopulation:
    """A simulated head-direction population, binned at ``bin_s``.

    Attributes
    ----------
    t
        Bin centres in seconds, shape ``(n_bins,)``.
    bin_s
        Bin width in seconds.
    heading
        Head direction in radians, in ``[0, 2 pi)``, shape ``(n_bins,)``.
    counts
        Spike counts per bin, shape ``(n_bins, n_neurons)``.
    spike_times
        Spike times (s) of each neuron.
    preferred_direction
        Each neuron's preferred heading (rad), shape ``(n_neurons,)``.
    peak_rate_hz
        Firing rate at the preferred heading without history, coupling or drift.
    concentration
        Sharpness of each tuning curve: the heading term of the log-rate is
        ``concentration * (cos(heading - preferred_direction) - 1)``.
    adjacency
        True where neuron ``pre`` projects onto neuron ``post``, shape
        ``(n_neurons, n_neurons)`` indexed ``[post, pre]``; the diagonal is False.
    coupling_weight
        Signed peak of each coupling filter (log-rate), zero where there is no edge.
    filters
        Every history filter, shape ``(n_neurons, n_neurons, n_lags)`` indexed
        ``[post, pre, lag]``: the diagonal holds the self filters, off-diagonal entries the
        coupling filters (zero where there is no edge).
    filter_lags_s
        Lags of the filters, ``bin_s, 2 bin_s, ...``: a spike affects the rate from the next
        bin on (strictly causal, as nemos' convolutional bases are).
    drift
        The slow excitability fluctuation of each neuron (log-rate), ``(n_bins, n_neurons)``.
    """

    t: np.ndarray
    bin_s: float
    heading: np.ndarray
    counts: np.ndarray
    spike_times: list[np.ndarray]
    preferred_direction: np.ndarray
    peak_rate_hz: np.ndarray
    concentration: np.ndarray
    adjacency: np.ndarray
    coupling_weight: np.ndarray
    filters: np.ndarray
    filter_lags_s: np.ndarray
    drift: np.ndarray

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return int(self.counts.shape[1])

    @property
    def window_size(self) -> int:
        """Length of the history filters in bins."""
        return int(self.filter_lags_s.size)

    @property
    def self_filters(self) -> np.ndarray:
        """Each neuron's self (spike-history) filter, shape ``(n_neurons, n_lags)``."""
        return self.filters[np.arange(self.n_neurons), np.arange(self.n_neurons)]

    def tuning_log_rate(self, heading: np.ndarray) -> np.ndarray:
        """Log firing rate (log Hz) from the heading alone, shape ``(len(heading), n_neurons)``."""
        angle = np.asarray(heading, dtype=float)[:, None] - self.preferred_direction[None, :]
        return np.log(self.peak_rate_hz)[None, :] + self.concentration[None, :] * (np.cos(angle) - 1.0)


def alpha_filter(lags_s: np.ndarray, peak: float, tau_s: float) -> np.ndarray:
    """An alpha-function filter ``peak * (lag / tau) * exp(1 - lag / tau)``, largest at ``tau_s``."""
    lags = np.asarray(lags_s, dtype=float)
    return peak * (lags / tau_s) * np.exp(1.0 - lags / tau_s)


def exponential_filter(lags_s: np.ndarray, amplitude: float, tau_s: float) -> np.ndarray:
    """A decaying exponential filter ``amplitude * exp(-lag / tau)``."""
    return amplitude * np.exp(-np.asarray(lags_s, dtype=float) / tau_s)


def random_coupling_graph(
    n_neurons: int,
    edge_probability: float,
    weight_range: tuple[float, float],
    inhibitory_fraction: float,
    *,
    seed: int | np.random.Generator,
) -> np.ndarray:
    """Draw a sparse signed coupling matrix ``[post, pre]`` with an empty diagonal.

    Each ordered pair is coupled with probability ``edge_probability``; the weight's magnitude
    is uniform in ``weight_range`` and it is negative with probability ``inhibitory_fraction``.
    At least one edge is drawn, so edge recovery is always defined. ``seed`` is a seed or a
    generator whose stream to continue.
    """
    rng = np.random.default_rng(seed)
    off_diagonal = ~np.eye(n_neurons, dtype=bool)
    edges = (rng.uniform(size=(n_neurons, n_neurons)) < edge_probability) & off_diagonal
    if not edges.any():
        candidates = np.argwhere(off_diagonal)
        edges[tuple(candidates[rng.integers(len(candidates))])] = True
    magnitude = rng.uniform(*weight_range, size=edges.shape)
    sign = np.where(rng.uniform(size=edges.shape) < inhibitory_fraction, -1.0, 1.0)
    return np.where(edges, sign * magnitude, 0.0)


def _ornstein_uhlenbeck(
    rng: np.random.Generator, n_bins: int, n_series: int, sd: float, tau_s: float, bin_s: float
) -> np.ndarray:
    """Stationary OU processes with standard deviation ``sd`` and time constant ``tau_s``."""
    decay = np.exp(-bin_s / tau_s)
    noise = rng.standard_normal((n_bins, n_series)) * sd * np.sqrt(1.0 - decay**2)
    out = np.empty((n_bins, n_series))
    state = rng.standard_normal(n_series) * sd
    for k in range(n_bins):  # a first-order recursion; ~1e5 steps take a fraction of a second
        state = decay * state + noise[k]
        out[k] = state
    return out


def _check_range(name: str, bounds: tuple[float, float]) -> None:
    low, high = bounds
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {bounds!r}.")


def simulate_head_direction_population(
    duration_s: float = 180.0,
    bin_s: float = 0.02,
    *,
    seed: int = 0,
    n_neurons: int = 20,
    edge_probability: float = 0.15,
    coupling_range: tuple[float, float] = (0.3, 0.6),
    inhibitory_fraction: float = 0.4,
    coupling_tau_s: float = 0.04,
    self_amplitude: float = -3.0,
    self_tau_s: float = 0.04,
    window_s: float = 0.3,
    peak_rate_range_hz: tuple[float, float] = (15.0, 35.0),
    concentration_range: tuple[float, float] = (1.5, 3.0),
    angular_speed_sd: float = 1.5,
    angular_tau_s: float = 0.5,
    drift_sd: float = 0.3,
    drift_tau_s: float = 30.0,
    max_rate_hz: float = 200.0,
) -> HeadDirectionPopulation:
    """Simulate head-direction neurons coupled on a sparse graph, with known filters.

    Parameters
    ----------
    duration_s
        Length of the recording in seconds.
    bin_s
        Bin width in seconds; spikes are drawn per bin.
    seed
        Seed of the random generators. The network (graph, tuning) depends on the seed alone,
        so recordings of different durations with one seed come from the same network.
    n_neurons
        Number of neurons; preferred directions tile the circle (with jitter).
    edge_probability
        Probability that neuron ``pre`` projects onto neuron ``post``, for each ordered pair.
        Each neuron receives about ``edge_probability * n_neurons`` inputs: the defaults keep
        rates plausible for a few tens of neurons (checked up to 40 for the chapter's seed);
        for larger populations lower it, or ``coupling_range``, if rates run away.
    coupling_range
        Range of the magnitude of a coupling filter's peak (log-rate).
    inhibitory_fraction
        Fraction of the edges that are inhibitory (negative filters).
    coupling_tau_s
        Lag at which every coupling filter (an alpha function) peaks.
    self_amplitude, self_tau_s
        Each neuron's self filter is ``self_amplitude * exp(-lag / self_tau_s)``.
    window_s
        Length of all history filters.
    peak_rate_range_hz
        Each neuron's rate at its preferred heading is drawn uniformly from this range.
    concentration_range
        Each tuning curve's sharpness is drawn uniformly from this range.
    angular_speed_sd, angular_tau_s
        The head's angular velocity is an Ornstein-Uhlenbeck process with this standard
        deviation (rad/s) and time constant.
    drift_sd, drift_tau_s
        Each neuron's slow excitability fluctuation (log-rate) is an Ornstein-Uhlenbeck
        process with this standard deviation and time constant; ``drift_sd=0`` turns it off.
    max_rate_hz
        Ceiling of the instantaneous rate, which keeps strongly excitatory graphs from
        running away.

    Returns
    -------
    HeadDirectionPopulation
        Heading, spikes and every true parameter.

    Raises
    ------
    ValueError
        On non-positive sizes, a window shorter than two bins, a recording shorter than ten
        windows, a probability outside ``[0, 1]`` or a badly ordered range.
    """
    check_positive_numbers(
        duration_s=duration_s,
        bin_s=bin_s,
        window_s=window_s,
        coupling_tau_s=coupling_tau_s,
        self_tau_s=self_tau_s,
        angular_tau_s=angular_tau_s,
        drift_tau_s=drift_tau_s,
        max_rate_hz=max_rate_hz,
    )
    if isinstance(n_neurons, bool) or not isinstance(n_neurons, (int, np.integer)) or n_neurons < 2:
        raise ValueError(f"n_neurons must be an integer of at least 2, got {n_neurons!r}.")
    for name, p in (("edge_probability", edge_probability), ("inhibitory_fraction", inhibitory_fraction)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {p!r}.")
    if not (np.isfinite(angular_speed_sd) and angular_speed_sd >= 0 and np.isfinite(drift_sd) and drift_sd >= 0):
        raise ValueError("angular_speed_sd and drift_sd must be finite and non-negative.")
    _check_range("coupling_range", coupling_range)
    _check_range("peak_rate_range_hz", peak_rate_range_hz)
    _check_range("concentration_range", concentration_range)
    n_lags = int(round(window_s / bin_s))
    if n_lags < 2:
        raise ValueError(f"window_s={window_s} must span at least 2 bins of {bin_s} s.")
    n_bins = int(round(duration_s / bin_s))
    if n_bins < 10 * n_lags:
        raise ValueError(f"duration_s={duration_s} is too short for window_s={window_s}: use at least ten windows.")

    # Two independent streams: the same seed gives the same network for any duration.
    network_rng, rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    n = int(n_neurons)
    spacing = 2 * np.pi / n
    preferred = np.mod(np.arange(n) * spacing + network_rng.uniform(-0.25, 0.25, n) * spacing, 2 * np.pi)
    peak_rate = network_rng.uniform(*peak_rate_range_hz, size=n)
    concentration = network_rng.uniform(*concentration_range, size=n)
    weights = random_coupling_graph(n, edge_probability, coupling_range, inhibitory_fraction, seed=network_rng)

    t = (np.arange(n_bins) + 0.5) * bin_s
    angular_velocity = _ornstein_uhlenbeck(rng, n_bins, 1, angular_speed_sd, angular_tau_s, bin_s)[:, 0]
    heading = np.mod(rng.uniform(0, 2 * np.pi) + np.cumsum(angular_velocity) * bin_s, 2 * np.pi)

    lags = np.arange(1, n_lags + 1) * bin_s
    shape = alpha_filter(lags, 1.0, coupling_tau_s)
    filters = weights[:, :, None] * shape[None, None, :]
    filters[np.arange(n), np.arange(n)] = exponential_filter(lags, self_amplitude, self_tau_s)

    drift = _ornstein_uhlenbeck(rng, n_bins, n, drift_sd, drift_tau_s, bin_s) if drift_sd > 0 else np.zeros((n_bins, n))
    angle = heading[:, None] - preferred[None, :]
    external = np.log(peak_rate)[None, :] + concentration[None, :] * (np.cos(angle) - 1.0) + drift
    counts = _run_network(rng, external, filters, bin_s, max_rate_hz)

    spike_times = []
    for k in range(n):
        starts = np.repeat(t - bin_s / 2, counts[:, k])
        spike_times.append(np.sort(starts + rng.uniform(0.0, bin_s, size=starts.size)))
    return HeadDirectionPopulation(
        t=t,
        bin_s=float(bin_s),
        heading=heading,
        counts=counts,
        spike_times=spike_times,
        preferred_direction=preferred,
        peak_rate_hz=peak_rate,
        concentration=concentration,
        adjacency=weights != 0,
        coupling_weight=weights,
        filters=filters,
        filter_lags_s=lags,
        drift=drift,
    )


def _run_network(
    rng: np.random.Generator, external: np.ndarray, filters: np.ndarray, bin_s: float, max_rate_hz: float
) -> np.ndarray:
    """Draw Poisson counts bin by bin: log-rate = external drive + filtered past counts."""
    n_bins, n = external.shape
    n_lags = filters.shape[2]
    # kernel[post, lag, pre], so that kernel . history sums over the recent past of every pre
    kernel = np.ascontiguousarray(filters.transpose(0, 2, 1)).reshape(n, n_lags * n)
    history = np.zeros((n_lags, n))  # row 0 is the most recent bin
    counts = np.zeros((n_bins, n), dtype=np.int64)
    log_ceiling = np.log(max_rate_hz * bin_s)
    log_bin = np.log(bin_s)
    for k in range(n_bins):
        log_mean = np.minimum(external[k] + log_bin + kernel @ history.ravel(), log_ceiling)
        counts[k] = rng.poisson(np.exp(log_mean))
        history = np.roll(history, 1, axis=0)
        history[0] = counts[k]
    return counts
