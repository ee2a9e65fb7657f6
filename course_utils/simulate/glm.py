"""Ground truth for the GLM chapters: a linear-maze animal and a current-injection neuron.

Two generators, each returning every quantity a chapter needs to check a fitted model
against the truth:

:func:`simulate_linear_maze`
    An animal runs laps along a linear track. Each lap has its own peak speed and the speed
    rises and falls along the track, so speed and position are correlated but not collinear.
    Poisson neurons fire as a function of position, of speed, or of both, with known weights.
:func:`simulate_current_injection`
    A neuron under a noisy current-injection protocol (sweeps of filtered noise around a DC
    step, as in the Allen Cell Types "Noise" stimulus) whose log-rate is the current filtered
    by a known biphasic temporal kernel: a linear-nonlinear-Poisson (LNP) neuron.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from course_utils.validation import check_positive_numbers

NeuronKind = Literal["speed", "position", "both"]
NEURON_KINDS: tuple[str, ...] = ("speed", "position", "both")


@dataclass(frozen=True)
class MazeNeuron:
    """The true tuning of one simulated maze neuron.

    The log firing rate (in log Hz) is
    ``baseline_log_rate + speed_weight * speed
    + field_gain * exp(-(position - field_center_cm)**2 / (2 * field_width_cm**2))``.
    """

    kind: str
    baseline_log_rate: float
    speed_weight: float
    field_center_cm: float
    field_width_cm: float
    field_gain: float

    def position_effect(self, position: np.ndarray) -> np.ndarray:
        """Return the place-field term of the log-rate (zero for a pure speed neuron)."""
        offset = (np.asarray(position, dtype=float) - self.field_center_cm) / self.field_width_cm
        return self.field_gain * np.exp(-0.5 * offset**2)

    def speed_effect(self, speed: np.ndarray) -> np.ndarray:
        """Return the speed term of the log-rate (zero for a pure place cell)."""
        return self.speed_weight * np.asarray(speed, dtype=float)

    def log_rate(self, position: np.ndarray, speed: np.ndarray) -> np.ndarray:
        """Return the true log firing rate (log Hz) at the given position and speed."""
        return self.baseline_log_rate + self.position_effect(position) + self.speed_effect(speed)


@dataclass(frozen=True)
class LinearMazeSimulation:
    """A simulated linear-maze session, binned at ``bin_s``.

    Attributes
    ----------
    t
        Bin centres in seconds, shape ``(n_bins,)``.
    bin_s
        Bin width in seconds.
    position
        Position on the track in cm, shape ``(n_bins,)``.
    speed
        Running speed in cm/s, shape ``(n_bins,)``.
    lap_bounds
        Start and end time (s) of each run along the track, shape ``(n_laps, 2)``.
    counts
        Spike counts per bin, shape ``(n_bins, n_neurons)``.
    spike_times
        Spike times (s) of each neuron.
    neurons
        The true tuning of each neuron.
    track_length_cm
        Length of the track.
    """

    t: np.ndarray
    bin_s: float
    position: np.ndarray
    speed: np.ndarray
    lap_bounds: np.ndarray
    counts: np.ndarray
    spike_times: list[np.ndarray]
    neurons: tuple[MazeNeuron, ...]
    track_length_cm: float

    @property
    def neuron_kinds(self) -> tuple[str, ...]:
        """What each neuron encodes: ``"speed"``, ``"position"`` or ``"both"``."""
        return tuple(n.kind for n in self.neurons)

    @property
    def truth(self) -> dict[str, np.ndarray]:
        """The true parameters as arrays over neurons (one entry per field of MazeNeuron)."""
        names = ("baseline_log_rate", "speed_weight", "field_center_cm", "field_width_cm", "field_gain")
        table = {name: np.array([getattr(n, name) for n in self.neurons]) for name in names}
        table["kind"] = np.array(self.neuron_kinds)
        return table


def _lap_trajectory(
    rng: np.random.Generator,
    duration_s: float,
    bin_s: float,
    track_length_cm: float,
    peak_speed_range: tuple[float, float],
    pause_range_s: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Time, position, speed and lap bounds of back-and-forth runs with a pause at each end.

    Within a lap of duration T the position follows ``L (1 - cos(pi tau)) / 2``, tau = t / T,
    so the speed is zero at the ends and peaks mid-track at ``pi L / (2 T)``; each lap draws
    its own peak speed, which keeps speed from being a function of position alone.
    """
    n_bins = int(round(duration_s / bin_s))
    t = (np.arange(n_bins) + 0.5) * bin_s
    position = np.empty(n_bins)
    speed = np.zeros(n_bins)
    laps = []
    now, at_start = 0.0, True
    while now < duration_s:
        pause = rng.uniform(*pause_range_s)
        in_pause = (t >= now) & (t < now + pause)
        position[in_pause] = 0.0 if at_start else track_length_cm
        now += pause
        peak = rng.uniform(*peak_speed_range)
        lap_s = np.pi * track_length_cm / (2.0 * peak)
        in_lap = (t >= now) & (t < now + lap_s)
        tau = (t[in_lap] - now) / lap_s
        progress = 0.5 * track_length_cm * (1.0 - np.cos(np.pi * tau))
        position[in_lap] = progress if at_start else track_length_cm - progress
        speed[in_lap] = peak * np.sin(np.pi * tau)
        if now + lap_s <= duration_s:
            laps.append((now, now + lap_s))
        now += lap_s
        at_start = not at_start
    return t, position, speed, np.array(laps).reshape(-1, 2)


def _default_neurons(kinds: Sequence[str], track_length_cm: float) -> tuple[MazeNeuron, ...]:
    neurons = []
    centres = np.linspace(0.3, 0.7, max(len(kinds), 1)) * track_length_cm
    for kind, centre in zip(kinds, centres):
        if kind not in NEURON_KINDS:
            raise ValueError(f"Unknown neuron kind {kind!r}; use one of {', '.join(NEURON_KINDS)}.")
        encodes_speed = kind in ("speed", "both")
        encodes_position = kind in ("position", "both")
        neurons.append(
            MazeNeuron(
                kind=kind,
                baseline_log_rate=np.log(1.5),
                speed_weight=0.06 if encodes_speed else 0.0,
                field_center_cm=float(centre),
                field_width_cm=0.08 * track_length_cm,
                field_gain=2.2 if encodes_position else 0.0,
            )
        )
    return tuple(neurons)


def _poisson_spikes(
    rng: np.random.Generator, log_rate: np.ndarray, t: np.ndarray, bin_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson counts per bin and spike times spread uniformly inside each bin."""
    counts = rng.poisson(np.exp(log_rate) * bin_s)
    starts = np.repeat(t - bin_s / 2, counts)
    times = np.sort(starts + rng.uniform(0.0, bin_s, size=starts.size))
    return counts, times


def simulate_linear_maze(
    duration_s: float = 1800.0,
    bin_s: float = 0.02,
    *,
    seed: int = 0,
    kinds: Sequence[str] = ("speed", "position", "both"),
    neurons: Sequence[MazeNeuron] | None = None,
    track_length_cm: float = 100.0,
    peak_speed_range: tuple[float, float] = (15.0, 60.0),
    pause_range_s: tuple[float, float] = (0.5, 2.0),
) -> LinearMazeSimulation:
    """Simulate an animal running laps on a linear track and Poisson neurons tuned to it.

    Parameters
    ----------
    duration_s
        Length of the session in seconds.
    bin_s
        Bin width in seconds; spikes are drawn per bin.
    seed
        Seed of the random generator (trajectory and spikes).
    kinds
        What each default neuron encodes; ignored when ``neurons`` is given. A ``"speed"``
        neuron looks position-tuned in a tuning curve because speed peaks mid-track.
    neurons
        Explicit true tunings, to simulate neurons of your own.
    track_length_cm
        Length of the track.
    peak_speed_range
        Each lap's peak speed is drawn uniformly from this range (cm/s).
    pause_range_s
        Each pause at an end of the track lasts a uniform draw from this range (s).

    Returns
    -------
    LinearMazeSimulation
        Trajectory, spikes and the true tuning of every neuron.

    Raises
    ------
    ValueError
        On non-positive sizes, a bin longer than the session, or an unknown neuron kind.
    """
    check_positive_numbers(duration_s=duration_s, bin_s=bin_s, track_length_cm=track_length_cm)
    if bin_s * 10 > duration_s:
        raise ValueError(f"bin_s={bin_s} is too long for duration_s={duration_s}: use at least 10 bins.")
    if not 0 < peak_speed_range[0] <= peak_speed_range[1]:
        raise ValueError(f"peak_speed_range must be increasing and positive, got {peak_speed_range}.")
    rng = np.random.default_rng(seed)
    t, position, speed, laps = _lap_trajectory(rng, duration_s, bin_s, track_length_cm, peak_speed_range, pause_range_s)
    cells = tuple(neurons) if neurons is not None else _default_neurons(kinds, track_length_cm)
    counts, spike_times = [], []
    for cell in cells:
        c, times = _poisson_spikes(rng, cell.log_rate(position, speed), t, bin_s)
        counts.append(c)
        spike_times.append(times)
    return LinearMazeSimulation(
        t=t,
        bin_s=float(bin_s),
        position=position,
        speed=speed,
        lap_bounds=laps,
        counts=np.stack(counts, axis=1) if counts else np.zeros((t.size, 0), dtype=int),
        spike_times=spike_times,
        neurons=cells,
        track_length_cm=float(track_length_cm),
    )


def biphasic_kernel(
    lags_s: np.ndarray,
    fast_s: float = 0.012,
    slow_s: float = 0.045,
    fast_gain: float = 0.010,
    slow_gain: float = 0.0025,
) -> np.ndarray:
    """A biphasic temporal kernel: a fast excitatory lobe minus a slow inhibitory one.

    Each lobe is an alpha function ``(lag / tau) * exp(1 - lag / tau)`` peaking at ``tau``
    with height ``gain`` (log-rate per pA of current).
    """
    lags = np.asarray(lags_s, dtype=float)

    def alpha(tau: float) -> np.ndarray:
        return (lags / tau) * np.exp(1.0 - lags / tau)

    return fast_gain * alpha(fast_s) - slow_gain * alpha(slow_s)


@dataclass(frozen=True)
class CurrentInjectionSimulation:
    """A simulated current-injection recording, binned at ``bin_s``.

    Attributes
    ----------
    t
        Bin centres in seconds.
    bin_s
        Bin width in seconds.
    current
        Injected current in pA, shape ``(n_bins,)``.
    counts
        Spike counts per bin, shape ``(n_bins,)``.
    spike_times
        Spike times in seconds.
    sweep_bounds
        Start and end (s) of each noise sweep, shape ``(n_sweeps, 2)``.
    kernel
        The true temporal kernel (log-rate per pA) at ``kernel_lags_s``, which start one bin
        in the past: the current in a bin affects the rate from the next bin on.
    kernel_lags_s
        Lags of the kernel in seconds.
    baseline_log_rate
        Log firing rate (log Hz) with zero current.
    """

    t: np.ndarray
    bin_s: float
    current: np.ndarray
    counts: np.ndarray
    spike_times: np.ndarray
    sweep_bounds: np.ndarray
    kernel: np.ndarray
    kernel_lags_s: np.ndarray
    baseline_log_rate: float
    info: dict = field(default_factory=dict)


def _noise_current(
    rng: np.random.Generator,
    t: np.ndarray,
    bin_s: float,
    sweep_bounds: np.ndarray,
    dc_pa: float,
    noise_pa: float,
    correlation_s: float,
) -> np.ndarray:
    """Low-pass filtered Gaussian noise around a DC step inside each sweep, zero outside."""
    white = rng.standard_normal(t.size)
    decay = np.exp(-bin_s / correlation_s)
    smooth = np.empty_like(white)
    state = 0.0
    for i, w in enumerate(white):  # AR(1) filter; a loop over ~1e5 samples is quick enough
        state = decay * state + np.sqrt(1 - decay**2) * w
        smooth[i] = state
    current = np.zeros_like(t)
    for start, end in sweep_bounds:
        inside = (t >= start) & (t < end)
        current[inside] = dc_pa + noise_pa * smooth[inside]
    return current


def simulate_current_injection(
    duration_s: float = 200.0,
    bin_s: float = 0.005,
    *,
    seed: int = 0,
    window_s: float = 0.25,
    sweep_s: float = 10.0,
    gap_s: float = 2.0,
    dc_pa: float = 60.0,
    noise_pa: float = 40.0,
    correlation_s: float = 0.01,
    baseline_rate_hz: float = 4.0,
) -> CurrentInjectionSimulation:
    """Simulate an LNP neuron driven by a noisy injected current.

    Parameters
    ----------
    duration_s
        Length of the recording in seconds (sweeps plus gaps).
    bin_s
        Bin width in seconds.
    seed
        Seed of the random generator.
    window_s
        Length of the true temporal kernel in seconds.
    sweep_s, gap_s
        Duration of each noise sweep and of the gap after it.
    dc_pa, noise_pa, correlation_s
        DC level, standard deviation and correlation time of the injected noise.
    baseline_rate_hz
        Firing rate with no current.

    Returns
    -------
    CurrentInjectionSimulation
        Current, spikes and the true kernel.

    Raises
    ------
    ValueError
        On non-positive sizes or a recording shorter than one sweep.
    """
    check_positive_numbers(
        duration_s=duration_s,
        bin_s=bin_s,
        window_s=window_s,
        sweep_s=sweep_s,
        baseline_rate_hz=baseline_rate_hz,
        correlation_s=correlation_s,
    )
    if duration_s < sweep_s:
        raise ValueError(f"duration_s={duration_s} is shorter than one sweep (sweep_s={sweep_s}).")
    if window_s < 4 * bin_s:
        raise ValueError(f"window_s={window_s} must span at least 4 bins of {bin_s} s.")
    rng = np.random.default_rng(seed)
    n_bins = int(round(duration_s / bin_s))
    t = (np.arange(n_bins) + 0.5) * bin_s
    starts = np.arange(0.0, duration_s - sweep_s + 1e-9, sweep_s + gap_s)
    sweeps = np.stack([starts, starts + sweep_s], axis=1)
    current = _noise_current(rng, t, bin_s, sweeps, dc_pa, noise_pa, correlation_s)
    lags = np.arange(1, int(round(window_s / bin_s)) + 1) * bin_s
    kernel = biphasic_kernel(lags)
    # drive[i] = sum_{j>=1} kernel[j-1] * current[i - j]: strictly causal, as in nemos'
    # convolutional bases, so fitted and true kernels share their lag axis.
    drive = np.convolve(current, np.concatenate([[0.0], kernel]))[:n_bins]
    log_rate = np.log(baseline_rate_hz) + drive
    counts, spike_times = _poisson_spikes(rng, log_rate, t, bin_s)
    return CurrentInjectionSimulation(
        t=t,
        bin_s=float(bin_s),
        current=current,
        counts=counts,
        spike_times=spike_times,
        sweep_bounds=sweeps,
        kernel=kernel,
        kernel_lags_s=lags,
        baseline_log_rate=float(np.log(baseline_rate_hz)),
        info=dict(dc_pa=dc_pa, noise_pa=noise_pa, correlation_s=correlation_s),
    )
