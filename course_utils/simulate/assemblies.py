"""Ground truth for chapter 4: binarized activity of neurons driven by planted assemblies.

:func:`simulate_assemblies` draws ``n_assemblies`` sparse, overlapping assemblies (each neuron
belongs to one, two or three of them), switches each assembly on and off in time with a
two-state Markov chain (a fraction of them is active at any moment, and an active assembly
tends to stay active), and lets each neuron fire in a time bin with a small baseline
probability, raised by every active assembly it belongs to (a noisy OR). The result is split
into a chronological training segment and a test segment that follows it, so that the
persistence in time never leaks training samples into the test set.

The simulation knows which neurons form each assembly (``membership``) and when each one is
active (``assembly_activity``): a model's hidden units can be checked against them.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["AssemblySimulation", "simulate_assemblies"]


@dataclass(frozen=True, eq=False)
class AssemblySimulation:
    """Binarized activity of a population driven by planted assemblies.

    Attributes
    ----------
    activity : numpy.ndarray
        ``(n_timepoints, n_neurons)`` array of 0/1 (``uint8``): neuron ``i`` active in bin ``t``.
    membership : numpy.ndarray
        ``(n_assemblies, n_neurons)`` boolean: which neurons belong to each assembly.
    assembly_activity : numpy.ndarray
        ``(n_timepoints, n_assemblies)`` boolean: which assemblies are active in each bin.
    baseline : numpy.ndarray
        ``(n_neurons,)`` firing probability per bin with no assembly active.
    drive : numpy.ndarray
        ``(n_assemblies, n_neurons)`` probability that an active assembly makes a member fire
        (zero for non-members).
    n_train : int
        Number of leading time bins that form the training segment; the rest is the test set.
    seed : int
        Seed of the simulation.
    """

    activity: np.ndarray
    membership: np.ndarray
    assembly_activity: np.ndarray
    baseline: np.ndarray
    drive: np.ndarray
    n_train: int
    seed: int

    @property
    def train(self) -> np.ndarray:
        """The training segment, the first ``n_train`` time bins."""
        return self.activity[: self.n_train]

    @property
    def test(self) -> np.ndarray:
        """The test segment, every time bin after the training segment."""
        return self.activity[self.n_train :]

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return int(self.activity.shape[1])

    @property
    def n_assemblies(self) -> int:
        """Number of planted assemblies."""
        return int(self.membership.shape[0])

    def firing_probability(self) -> np.ndarray:
        """Return the true firing probability of every neuron in every bin, ``(T, N)``."""
        silent = np.ones(self.activity.shape)
        for k in range(self.n_assemblies):
            on = self.assembly_activity[:, k, None]
            silent *= np.where(on, 1.0 - self.drive[k], 1.0)
        return 1.0 - (1.0 - self.baseline) * silent


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_range(name: str, value: object, low: float, high: float) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}.") from None
    if not (low <= a <= b <= high):
        raise ValueError(f"{name} must satisfy {low} <= low <= high <= {high}, got {value!r}.")
    return a, b


def _draw_membership(
    n_neurons: int, n_assemblies: int, per_neuron_probs: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Each neuron joins 1, 2 or 3 distinct assemblies; every assembly gets members."""
    membership = np.zeros((n_assemblies, n_neurons), dtype=bool)
    counts = rng.choice(np.arange(1, per_neuron_probs.size + 1), size=n_neurons, p=per_neuron_probs)
    counts = np.minimum(counts, n_assemblies)
    for i, count in enumerate(counts):
        membership[rng.choice(n_assemblies, size=count, replace=False), i] = True
    # A neuron of a crowded assembly moves to an empty one, so no assembly is left empty.
    for k in np.flatnonzero(~membership.any(axis=1)):
        donor = int(np.argmax(membership.sum(axis=1)))
        i = rng.choice(np.flatnonzero(membership[donor]))
        membership[donor, i], membership[k, i] = False, True
    return membership


def _markov_switching(
    n_timepoints: int,
    n_assemblies: int,
    active_fraction: float,
    mean_duration: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """On/off states of independent two-state Markov chains, started at stationarity."""
    p_off = 1.0 / mean_duration
    p_on = p_off * active_fraction / (1.0 - active_fraction)
    states = np.empty((n_timepoints, n_assemblies), dtype=bool)
    states[0] = rng.random(n_assemblies) < active_fraction
    draws = rng.random((n_timepoints, n_assemblies))
    for t in range(1, n_timepoints):
        states[t] = np.where(states[t - 1], draws[t] >= p_off, draws[t] < p_on)
    return states


def simulate_assemblies(
    n_neurons: int = 200,
    n_assemblies: int = 10,
    n_timepoints: int = 5000,
    *,
    active_fraction: float = 0.1,
    mean_duration: float = 4.0,
    baseline: tuple[float, float] = (0.01, 0.05),
    drive: tuple[float, float] = (0.5, 0.9),
    assemblies_per_neuron: tuple[float, float, float] = (0.5, 0.3, 0.2),
    train_fraction: float = 0.8,
    seed: int = 0,
) -> AssemblySimulation:
    """Simulate binarized population activity generated by planted sparse assemblies.

    Parameters
    ----------
    n_neurons, n_assemblies, n_timepoints
        Population size, number of assemblies (at least 1) and number of time bins.
    active_fraction
        Stationary probability that an assembly is active in a bin (strictly between 0 and 1).
    mean_duration
        Mean number of consecutive bins an assembly stays active (at least 1): the
        persistence in time.
    baseline
        Range ``(low, high)`` of the per-bin firing probability of each neuron with no
        assembly active, drawn uniformly per neuron.
    drive
        Range ``(low, high)`` of the probability that an active assembly makes a member fire,
        drawn uniformly per neuron and assembly.
    assemblies_per_neuron
        Probabilities that a neuron belongs to 1, 2 or 3 assemblies (they must sum to 1).
    train_fraction
        Fraction of the bins, from the start, in the training segment (the test segment
        follows it in time).
    seed
        Seed of the random generator.

    Returns
    -------
    AssemblySimulation
        Activity, the planted truth, and the chronological train/test split.

    Raises
    ------
    ValueError
        If a size is not a positive integer, a probability or range is out of bounds, or
        the split leaves fewer than 2 bins in either segment.
    """
    n_neurons = _check_positive_int("n_neurons", n_neurons, 2)
    n_assemblies = _check_positive_int("n_assemblies", n_assemblies)
    n_timepoints = _check_positive_int("n_timepoints", n_timepoints, 4)
    _check_positive_int("seed", seed, 0)
    if not 0.0 < float(active_fraction) < 1.0:
        raise ValueError(f"active_fraction must be strictly between 0 and 1, got {active_fraction!r}.")
    if not float(mean_duration) >= 1.0:
        raise ValueError(f"mean_duration must be >= 1 bin, got {mean_duration!r}.")
    p_on = float(active_fraction) / (1.0 - float(active_fraction)) / float(mean_duration)
    if p_on > 1.0:
        raise ValueError(
            f"active_fraction={active_fraction} with mean_duration={mean_duration} needs a switch-on "
            "probability above 1: lengthen mean_duration or lower active_fraction."
        )
    base_low, base_high = _check_range("baseline", baseline, 0.0, 1.0)
    drive_low, drive_high = _check_range("drive", drive, 0.0, 1.0)
    probs = np.asarray(assemblies_per_neuron, dtype=float)
    if probs.ndim != 1 or not 1 <= probs.size <= 3 or np.any(probs < 0) or not np.isclose(probs.sum(), 1):
        raise ValueError(
            "assemblies_per_neuron must hold 1 to 3 non-negative probabilities (for 1, 2, 3 "
            f"assemblies per neuron) that sum to 1, got {assemblies_per_neuron!r}."
        )
    n_train = int(round(float(train_fraction) * n_timepoints))
    if not 2 <= n_train <= n_timepoints - 2:
        raise ValueError(
            f"train_fraction={train_fraction!r} of {n_timepoints} bins leaves fewer than 2 bins in the "
            "training or the test segment: use a fraction between 0 and 1 and enough bins."
        )

    rng = np.random.default_rng(seed)
    membership = _draw_membership(n_neurons, n_assemblies, probs / probs.sum(), rng)
    base = rng.uniform(base_low, base_high, n_neurons)
    gains = np.where(membership, rng.uniform(drive_low, drive_high, membership.shape), 0.0)
    states = _markov_switching(n_timepoints, n_assemblies, float(active_fraction), float(mean_duration), rng)
    # Noisy OR: a neuron stays silent only if the baseline and every active assembly fail.
    silent = (1.0 - base) * np.exp(states.astype(float) @ np.log1p(-np.minimum(gains, 1 - 1e-12)))
    activity = (rng.random((n_timepoints, n_neurons)) < 1.0 - silent).astype(np.uint8)
    return AssemblySimulation(
        activity=activity,
        membership=membership,
        assembly_activity=states,
        baseline=base,
        drive=gains,
        n_train=n_train,
        seed=int(seed),
    )
