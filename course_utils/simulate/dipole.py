"""Evoked dipoles of a cortical column (hnn-core): ERP drives, a planted target, an RMSE objective.

Chapter 6 fits the second proximal drive of hnn-core's cortical-column model to an evoked
dipole. This module holds what the chapter needs but does not teach line by line:

:func:`import_hnn_core`
    Import hnn-core and NEURON once, with NEURON's graphics off, and return what they printed.
:data:`ERP_DRIVES` and :func:`add_erp_drives`
    The three evoked drives of hnn-core's "optimize evoked" example (proximal 1, distal,
    proximal 2), hand-tuned values, with the second proximal drive left as a parameter.
:func:`simulate_planted_dipole`
    A target dipole simulated with known (planted) proximal-2 parameters plus noise, sampled
    like the MEG recording, so that a fit can be checked against the truth.
:class:`DipoleObjective`
    The RMSE between a target and the trial-averaged, scaled and smoothed simulated dipole,
    as hnn-core's ``Optimizer`` computes it, with every simulated trial cached and counted.
:func:`stratified_normal_draws` and :func:`fix_drive_times`
    Trials at chosen standard-normal draws instead of random ones (stratified sampling of
    the drive times), which :class:`DipoleObjective` uses with ``draws="stratified"``.
:class:`SimulationCounter`
    Counts every simulation run while it is active (a whole chapter, say).

Simulations run on hnn-core's active parallel backend: wrap calls in
``with hnn_core.JoblibBackend(n_jobs=...)`` to spread trials over cores.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from course_utils.validation import check_ints, check_numbers, check_positive_ints, check_positive_numbers

#: The three parameters of the second proximal drive, in the order the chapter uses.
PARAM_NAMES: tuple[str, ...] = ("evprox2_mu", "evprox2_sigma", "evprox2_ampa_L5_pyramidal")
#: The planted truth of the simulated target: the second proximal drive of HNN's ERP
#: tutorial parameter set (hnn-core's ``add_erp_drives_to_jones_model``).
PLANTED_PARAMS: Mapping[str, float] = MappingProxyType(
    {"evprox2_mu": 137.12, "evprox2_sigma": 8.33, "evprox2_ampa_L5_pyramidal": 0.684}
)
#: hnn-core's example's scale factor for the full 10 x 10 column.
FULL_COLUMN_SCALE = 3000.0
FULL_COLUMN_MESH = (10, 10)
#: The drive-time seed of a simulated target: far from the model's (hnn-core's default, 2)
#: so that the target's trials draw their drive times independently of the model's, as a
#: recording's would. hnn-core seeds drive cell ``i`` (its index within its drive) on trial
#: ``k`` with ``event_seed + i + k * n``, ``n`` the network's cell count, so seeds a million
#: apart never meet for any realistic number of trials.
TARGET_EVENT_SEED = 1_000_002
#: Sampling of the MEG recording (yes_trial_S1_ERP_all_avg.txt): 103 samples, about 600 Hz.
TARGET_TIMES_MS: np.ndarray = np.linspace(0.0, 169.8259311846297, 103)
TARGET_TIMES_MS.flags.writeable = False

_SYNAPTIC_DELAYS_PROXIMAL = {"L2_basket": 0.1, "L2_pyramidal": 0.1, "L5_basket": 1.0, "L5_pyramidal": 1.0}
#: The evoked drives of hnn-core's "optimize simulated evoked response parameters" example:
#: one drive cell each, connected to every cell (``cell_specific=False``), one spike per
#: trial at a Gaussian time (mean ``mu``, s.d. ``sigma``, in ms); weights in uS. The second
#: proximal drive's ``mu``, ``sigma`` and AMPA weight onto L5 pyramidal cells are the
#: parameters the chapter fits; its other values are fixed here.
ERP_DRIVES: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "evprox1": MappingProxyType(
            dict(
                mu=26.61,
                sigma=2.47,
                location="proximal",
                weights_ampa={
                    "L2_basket": 0.08831,
                    "L2_pyramidal": 0.01525,
                    "L5_basket": 0.19934,
                    "L5_pyramidal": 0.00865,
                },
                weights_nmda=None,
                synaptic_delays=_SYNAPTIC_DELAYS_PROXIMAL,
            )
        ),
        "evdist1": MappingProxyType(
            dict(
                mu=63.53,
                sigma=3.85,
                location="distal",
                weights_ampa={"L2_basket": 0.006562, "L2_pyramidal": 0.000007, "L5_pyramidal": 0.142300},
                weights_nmda={"L2_basket": 0.019482, "L2_pyramidal": 0.004317, "L5_pyramidal": 0.080074},
                synaptic_delays={"L2_basket": 0.1, "L2_pyramidal": 0.1, "L5_pyramidal": 0.1},
            )
        ),
        "evprox2": MappingProxyType(
            dict(
                mu=None,
                sigma=None,
                location="proximal",
                weights_ampa={
                    "L2_basket": 0.000003,
                    "L2_pyramidal": 1.438840,
                    "L5_basket": 0.008958,
                    "L5_pyramidal": None,
                },
                weights_nmda=None,
                synaptic_delays=_SYNAPTIC_DELAYS_PROXIMAL,
            )
        ),
    }
)


def import_hnn_core() -> list[str]:
    """Import hnn-core (and NEURON) and return the lines they printed while importing.

    NEURON is told not to start its own graphics (``NEURON_MODULE_OPTIONS=-nogui``, unless
    the variable is already set): the course never opens NEURON windows, and without a
    display NEURON would print a warning in every process that imports it, including each
    parallel worker. hnn-core prints a survey invitation the first time it is imported
    after installation; that text is captured and returned rather than printed.

    Returns
    -------
    list of str
        The non-empty lines printed to Python's stdout during the import (empty when
        hnn-core was already imported).
    """
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        import hnn_core  # noqa: F401  (imported for its side effects, once)
    return [line.strip() for line in buffer.getvalue().splitlines() if line.strip()]


def scale_factor_for(mesh_shape: tuple[int, int]) -> float:
    """Dipole scale factor for a column of ``mesh_shape`` pyramidal cells per layer.

    The dipole is a sum over pyramidal cells, so a smaller column gives a proportionally
    smaller dipole. The factor keeps hnn-core's 3000 for the full 10 x 10 column and grows
    by the ratio of cell counts for a reduced one (3 x 3: about 33 333).

    Parameters
    ----------
    mesh_shape
        ``(n_x, n_y)`` grid of pyramidal cells per layer, positive integers.

    Returns
    -------
    float
        ``3000 * 100 / (n_x * n_y)``.

    Raises
    ------
    ValueError
        If ``mesh_shape`` is not two positive integers.
    """
    mesh_shape = _check_mesh(mesh_shape)
    full = FULL_COLUMN_MESH[0] * FULL_COLUMN_MESH[1]
    return FULL_COLUMN_SCALE * full / (mesh_shape[0] * mesh_shape[1])


def check_params(params: Mapping[str, float]) -> dict[str, float]:
    """Validate a proximal-2 parameter set and return it as plain floats.

    Parameters
    ----------
    params
        Keys :data:`PARAM_NAMES`: ``evprox2_mu`` (ms), ``evprox2_sigma`` (ms, positive),
        ``evprox2_ampa_L5_pyramidal`` (uS, non-negative).

    Returns
    -------
    dict
        The same values as Python floats, in the order of :data:`PARAM_NAMES`.

    Raises
    ------
    ValueError
        If a key is missing or unknown, a value is not finite, ``sigma`` is not positive
        or the weight is negative.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping with keys {PARAM_NAMES}, got {params!r}.")
    missing = [name for name in PARAM_NAMES if name not in params]
    unknown = [name for name in params if name not in PARAM_NAMES]
    if missing or unknown:
        raise ValueError(
            f"params must have exactly the keys {', '.join(PARAM_NAMES)}; "
            f"missing: {missing or 'none'}, unknown: {unknown or 'none'}."
        )
    values = {}
    for name in PARAM_NAMES:
        try:
            value = float(params[name])
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {params[name]!r}.") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}.")
        values[name] = value
    if values["evprox2_sigma"] <= 0:
        raise ValueError(f"evprox2_sigma must be positive (ms), got {values['evprox2_sigma']}.")
    if values["evprox2_ampa_L5_pyramidal"] < 0:
        raise ValueError(
            f"evprox2_ampa_L5_pyramidal must be non-negative (uS), got {values['evprox2_ampa_L5_pyramidal']}."
        )
    return values


def add_erp_drives(net: Any, params: Mapping[str, float], *, event_seed: int = 2) -> None:
    """Add the three evoked drives of :data:`ERP_DRIVES` to ``net``, in place.

    Parameters
    ----------
    net
        An hnn-core ``Network`` without drives named ``evprox1``, ``evdist1``, ``evprox2``
        (e.g. a fresh ``neymotin_2020_model()``).
    params
        The second proximal drive's ``mu``, ``sigma`` and L5 pyramidal AMPA weight, keys
        :data:`PARAM_NAMES` (see :func:`check_params`).
    event_seed
        hnn-core's seed of the drive times (its default, 2, as in hnn-core's example). Trial
        ``k`` draws its times from seed ``event_seed + k * n_gids`` (plus the drive cell's
        index within its drive, 0 for these one-cell drives), so the three drives draw the
        same standard-normal value on each trial, and two networks with the same seed and
        size share their random drive times trial by trial.

    Raises
    ------
    ValueError
        If ``params`` is invalid, ``event_seed`` is not a non-negative integer, or ``net``
        already has one of the drives.
    """
    values = check_params(params)
    check_ints(minimum=0, event_seed=event_seed)
    present = [name for name in ERP_DRIVES if name in net.external_drives]
    if present:
        raise ValueError(
            f"The network already has the drive(s) {present}: pass a network without ERP "
            "drives (a fresh neymotin_2020_model(), or the copy hnn-core's Optimizer makes)."
        )
    for name, spec in ERP_DRIVES.items():
        spec = dict(spec)
        weights_ampa = dict(spec["weights_ampa"])
        if name == "evprox2":
            spec["mu"] = values["evprox2_mu"]
            spec["sigma"] = values["evprox2_sigma"]
            weights_ampa["L5_pyramidal"] = values["evprox2_ampa_L5_pyramidal"]
        net.add_evoked_drive(
            name,
            mu=spec["mu"],
            sigma=spec["sigma"],
            numspikes=1,
            location=spec["location"],
            weights_ampa=weights_ampa,
            weights_nmda=None if spec["weights_nmda"] is None else dict(spec["weights_nmda"]),
            synaptic_delays=dict(spec["synaptic_delays"]),
            n_drive_cells=1,
            cell_specific=False,
            event_seed=int(event_seed),
        )


class SimulationCounter:
    """Counts the trials :func:`simulate_dipole_trials` runs while the counter is active.

    Chapter 6 starts one at its top and compares what it counted, at its end, with the plan
    the full-scale estimate is built on (:mod:`course_utils.simulate.dipole_plan`). Use it as
    a context manager, or call :meth:`start` and :meth:`stop` (a notebook spans cells); starts
    nest, and the counter stops counting when every start has had its stop. Only simulations
    run in this process are counted: runs sent to other processes (a loky or Dask sweep) are
    not. The counters listening live in a class attribute, the one piece of state the package
    keeps outside ``config``, and it is empty unless a counter was started.

    Attributes
    ----------
    calls
        Calls of :func:`simulate_dipole_trials`.
    trials
        Trials simulated in all.
    one_trial_calls
        Calls that simulated a single trial (they run alone, on one core).
    """

    _active: list[SimulationCounter] = []  # noqa: RUF012 (the counters listening, normally none)

    def __init__(self) -> None:
        self.calls = 0
        self.trials = 0
        self.one_trial_calls = 0
        self._depth = 0

    def start(self) -> SimulationCounter:
        """Begin counting (again, if nested); return the counter."""
        self._depth += 1
        if self not in SimulationCounter._active:
            SimulationCounter._active.append(self)
        return self

    def stop(self) -> SimulationCounter:
        """End one :meth:`start`; after the last, stop counting (the counts stay). Return the counter."""
        self._depth = max(0, self._depth - 1)
        if self._depth == 0 and self in SimulationCounter._active:
            SimulationCounter._active.remove(self)
        return self

    def __enter__(self) -> SimulationCounter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, n_trials: int) -> None:
        self.calls += 1
        self.trials += n_trials
        self.one_trial_calls += n_trials == 1

    @classmethod
    def record(cls, n_trials: int) -> None:
        """Count one call of ``n_trials`` trials on every active counter (run by this module's
        simulations; a batch spread over worker processes is counted once, here)."""
        for counter in cls._active:
            counter._record(n_trials)


def simulate_dipole_trials(
    net: Any, *, n_trials: int, tstop: float, dt: float, scale_factor: float, smooth_ms: float
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate ``n_trials`` trials of ``net`` and return their scaled, smoothed dipoles.

    Runs on hnn-core's active backend (``with JoblibBackend(n_jobs=...)`` spreads the trials
    over processes); progress messages are off.

    Parameters
    ----------
    net
        An hnn-core ``Network`` with its drives.
    n_trials
        Number of trials, a positive integer.
    tstop, dt
        Simulated duration and integration step, in ms.
    scale_factor
        Multiplies the dipole (see :func:`scale_factor_for`).
    smooth_ms
        Length (ms) of the Hamming window hnn-core smooths with; 0 for none.

    Returns
    -------
    times : numpy.ndarray
        Simulation times in ms, shape ``(n_times,)``.
    trials : numpy.ndarray
        The aggregate dipole of each trial after scaling and smoothing, in nAm, shape
        ``(n_trials, n_times)``.

    Raises
    ------
    ValueError
        If a size or step is not positive.
    """
    check_positive_ints(n_trials=n_trials)
    check_positive_numbers(tstop=tstop, dt=dt, scale_factor=scale_factor)
    check_numbers(inclusive=True, unit="ms", smooth_ms=smooth_ms)
    result = _run_trials(net, n_trials=n_trials, tstop=tstop, dt=dt, scale_factor=scale_factor, smooth_ms=smooth_ms)
    SimulationCounter.record(int(n_trials))
    return result


def _run_trials(
    net: Any, *, n_trials: int, tstop: float, dt: float, scale_factor: float, smooth_ms: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`simulate_dipole_trials` without the checks and the counting."""
    import_hnn_core()
    from hnn_core import simulate_dipole

    dipoles = simulate_dipole(net, tstop=float(tstop), dt=float(dt), n_trials=int(n_trials), verbose=False)
    trials = []
    for dipole in dipoles:  # the order of hnn-core's Optimizer: scale, then smooth
        dipole.scale(scale_factor)
        if smooth_ms > 0:
            dipole.smooth(smooth_ms)
        trials.append(np.asarray(dipole.data["agg"], dtype=float))
    return np.asarray(dipoles[0].times, dtype=float), np.stack(trials)


def stratified_normal_draws(n_draws: int) -> np.ndarray:
    """``n_draws`` standard-normal values placed at the normal's quantiles, not at random.

    Draw ``i`` is the quantile at ``(i + 1/2) / n_draws`` (midpoint stratification), and the
    draws are then rescaled so that their root mean square is exactly 1: their mean is 0 and
    their root-mean-square deviation 1, as the distribution's are. This is stratified
    sampling with each stratum's point fixed at its middle: a deterministic equal-weight
    quadrature (the midpoint rule), not a random sample. An average over trials at these
    draws has no sampling noise and gives the same answer every time; its error is the
    quadrature's, which thins the tails (the fourth moment of 4 draws is about 1.7, the
    normal's 3).

    Parameters
    ----------
    n_draws
        How many draws, a positive integer (one draw is the median, 0).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_draws,)``, increasing, symmetric about 0.

    Raises
    ------
    ValueError
        If ``n_draws`` is not a positive integer.
    """
    import scipy.stats

    check_positive_ints(n_draws=n_draws)
    draws = scipy.stats.norm.ppf((np.arange(n_draws) + 0.5) / n_draws)
    if n_draws > 1:
        draws = draws / np.sqrt(np.mean(draws**2))
    return draws


def fix_drive_times(net: Any, z: float) -> None:
    """Make every evoked drive of ``net`` arrive at ``mu + sigma * z`` on every trial, in place.

    :func:`add_erp_drives`'s drives send one spike per trial at ``mu + sigma z``, with the
    same standard-normal ``z`` for all three drives on a trial (they share their seed). This
    sets each drive's ``mu`` to ``mu + sigma * z`` and its ``sigma`` to 0 (hnn-core then
    draws exactly ``mu``), so a one-trial simulation of ``net`` is the trial whose draw was
    ``z``.

    Parameters
    ----------
    net
        An hnn-core ``Network`` whose drives are all evoked, one drive cell each, one spike
        per trial, shared by the cells (as :func:`add_erp_drives` makes them).
    z
        The standard-normal draw, a finite number.

    Raises
    ------
    ValueError
        If ``z`` is not finite, a drive is of another kind (its times could not be fixed
        by one draw), or the drives have different ``event_seed`` values (their random
        times would then be independent, not moved together by one ``z``).
    """
    check_numbers(minimum=-math.inf, z=z)
    seeds = {drive["event_seed"] for drive in net.external_drives.values()}
    if len(seeds) > 1:
        raise ValueError(
            f"The drives have different event seeds ({sorted(seeds)}): their random times are "
            "independent, so one draw z cannot stand for a trial. Give them one event_seed."
        )
    for name, drive in net.external_drives.items():
        dynamics = drive["dynamics"]
        one_volley = (
            drive["type"] == "evoked"
            and drive["n_drive_cells"] == 1
            and not drive["cell_specific"]
            and dynamics.get("numspikes") == 1
        )
        if not one_volley:
            raise ValueError(
                f"Drive {name!r} is not an evoked drive of one cell and one spike per trial "
                "(add_erp_drives's kind): its times cannot be fixed by one standard-normal draw."
            )
        dynamics["mu"] = float(dynamics["mu"] + dynamics["sigma"] * z)
        dynamics["sigma"] = 0.0


def _simulate_at_draw(
    net: Any, z: float, *, tstop: float, dt: float, scale_factor: float, smooth_ms: float
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One trial of ``net`` with its drives fixed at draw ``z``: times, processed dipole, spike times.

    Module-level so that joblib can send it to worker processes.
    """
    fix_drive_times(net, z)
    times, trials = _run_trials(net, n_trials=1, tstop=tstop, dt=dt, scale_factor=scale_factor, smooth_ms=smooth_ms)
    return times, trials[0], {name: trials_events[0] for name, trials_events in _drive_events(net).items()}


def _drive_events(net: Any) -> dict[str, list[np.ndarray]]:
    """Each drive's spike times on each trial ``net`` simulated, its drive cells' spikes together.

    hnn-core keeps them, per trial and drive cell, on the network it simulated (the public
    ``external_drives[name]["events"]``).
    """
    return {
        name: [np.concatenate([np.asarray(cell, dtype=float) for cell in trial]) for trial in drive["events"]]
        for name, drive in net.external_drives.items()
    }


def sample_at(times: np.ndarray, sim_times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sample a simulated trace at given times by linear interpolation.

    Parameters
    ----------
    times
        Where to sample, in ms, within ``sim_times``'s span.
    sim_times, values
        The simulation's time grid (ms, increasing) and the trace on it, same length.

    Returns
    -------
    numpy.ndarray
        ``values`` at ``times``, shape of ``times``.

    Raises
    ------
    ValueError
        If the shapes differ or a time lies outside the simulation by more than half a step
        (a target longer than the simulation cannot be compared).
    """
    times = np.asarray(times, dtype=float)
    sim_times = np.asarray(sim_times, dtype=float)
    values = np.asarray(values, dtype=float)
    if sim_times.shape != values.shape or sim_times.ndim != 1 or sim_times.size < 2:
        raise ValueError(f"sim_times and values must be 1-D of one length, got {sim_times.shape} and {values.shape}.")
    half_step = 0.5 * float(np.min(np.diff(sim_times)))
    if times.min() < sim_times[0] - half_step or times.max() > sim_times[-1] + half_step:
        raise ValueError(
            f"The target spans {times.min():g} to {times.max():g} ms but the simulation "
            f"{sim_times[0]:g} to {sim_times[-1]:g} ms: simulate up to the target's last time "
            "(tstop) or crop the target."
        )
    return np.interp(times, sim_times, values)


@dataclass(frozen=True, eq=False)
class PlantedDipole:
    """An evoked dipole simulated with known proximal-2 parameters, plus noise.

    Attributes
    ----------
    times
        Sample times in ms, shape ``(n_samples,)`` (:data:`TARGET_TIMES_MS` by default).
    dipole
        The noisy target in nAm: ``clean + noise``.
    clean
        The trial-averaged, scaled, smoothed dipole before noise, in nAm.
    params
        The planted parameters (keys :data:`PARAM_NAMES`).
    noise_sd
        Standard deviation of the added white Gaussian noise, in nAm.
    n_trials, mesh_shape, dt, scale_factor, smooth_ms, event_seed
        How the target was simulated.
    """

    times: np.ndarray
    dipole: np.ndarray
    clean: np.ndarray
    params: Mapping[str, float]
    noise_sd: float
    n_trials: int
    mesh_shape: tuple[int, int]
    dt: float
    scale_factor: float
    smooth_ms: float
    event_seed: int


def simulate_planted_dipole(
    params: Mapping[str, float],
    *,
    mesh_shape: tuple[int, int] = (3, 3),
    n_trials: int = 4,
    dt: float = 0.05,
    smooth_ms: float = 30.0,
    scale_factor: float | None = None,
    noise_fraction: float = 0.05,
    times: Sequence[float] | None = None,
    event_seed: int = TARGET_EVENT_SEED,
    seed: int = 0,
) -> PlantedDipole:
    """Simulate a target dipole from planted proximal-2 parameters, then add noise.

    The column is ``neymotin_2020_model(mesh_shape=mesh_shape)`` with the drives of
    :func:`add_erp_drives`; ``n_trials`` trials are scaled, smoothed and averaged, sampled
    at ``times`` by linear interpolation (:func:`sample_at`, as :class:`DipoleObjective`
    samples the model), and white Gaussian noise of standard deviation
    ``noise_fraction`` times the clean dipole's peak-to-peak range is added.

    Parameters
    ----------
    params
        The planted parameters, keys :data:`PARAM_NAMES`.
    mesh_shape
        Pyramidal cells per layer, ``(n_x, n_y)``; (10, 10) is the full column.
    n_trials
        Trials averaged into the target.
    dt
        Integration step in ms.
    smooth_ms
        Hamming smoothing window in ms.
    scale_factor
        Dipole scale factor; ``None`` uses :func:`scale_factor_for` of ``mesh_shape``.
    noise_fraction
        Noise standard deviation as a fraction of the clean peak-to-peak range (>= 0).
    times
        Sample times in ms, increasing, within the simulation (default
        :data:`TARGET_TIMES_MS`, the recording's sampling); the simulation runs to the last.
    event_seed
        Seed of the drive times (see :func:`add_erp_drives`). The default,
        :data:`TARGET_EVENT_SEED`, draws them independently of a model simulated with
        hnn-core's default seed, as for a recording; passing the model's seed (2) makes
        target and model share their drive times trial by trial (common random numbers).
    seed
        Seed of the added noise.

    Returns
    -------
    PlantedDipole
        The noisy target, the clean dipole and how it was made.

    Raises
    ------
    ValueError
        For invalid parameters, sizes, times or noise level.
    """
    import_hnn_core()
    from hnn_core import neymotin_2020_model

    values = check_params(params)
    mesh_shape = _check_mesh(mesh_shape)
    check_positive_ints(n_trials=n_trials)
    if not (math.isfinite(noise_fraction) and noise_fraction >= 0):
        raise ValueError(f"noise_fraction must be a non-negative number, got {noise_fraction!r}.")
    sample_times = np.array(TARGET_TIMES_MS if times is None else times, dtype=float)
    if sample_times.ndim != 1 or sample_times.size < 2 or not np.all(np.isfinite(sample_times)):
        raise ValueError("times must be a 1-D array of at least two finite sample times (ms).")
    if np.any(np.diff(sample_times) <= 0) or sample_times[0] < 0:
        raise ValueError("times must be non-negative and strictly increasing (ms).")
    factor = scale_factor_for(mesh_shape) if scale_factor is None else float(scale_factor)

    net = neymotin_2020_model(mesh_shape=mesh_shape)
    add_erp_drives(net, values, event_seed=event_seed)
    sim_times, trials = simulate_dipole_trials(
        net, n_trials=n_trials, tstop=float(sample_times[-1]), dt=dt, scale_factor=factor, smooth_ms=smooth_ms
    )
    clean = sample_at(sample_times, sim_times, trials.mean(axis=0))
    noise_sd = float(noise_fraction * np.ptp(clean))
    noise = np.random.default_rng(seed).normal(0.0, noise_sd, size=clean.shape)
    for array in (sample_times, clean):
        array.flags.writeable = False
    dipole = clean + noise
    dipole.flags.writeable = False
    return PlantedDipole(
        times=sample_times,
        dipole=dipole,
        clean=clean,
        params=MappingProxyType(values),
        noise_sd=noise_sd,
        n_trials=int(n_trials),
        mesh_shape=mesh_shape,
        dt=float(dt),
        scale_factor=factor,
        smooth_ms=float(smooth_ms),
        event_seed=int(event_seed),
    )


class DipoleObjective:
    """RMSE between a target dipole and the simulated one, with simulations cached.

    For a parameter set the network is copied, ``set_params`` applied, ``n_trials`` trials
    simulated, each scaled then smoothed, averaged, sampled at the target's times by linear
    interpolation (:func:`sample_at`) and compared with the target by the root mean square
    over its samples. This is the computation of hnn-core's ``Optimizer`` with
    ``obj_fun="dipole_rmse"`` except for one step: hnn-core resamples the simulation with
    ``scipy.signal.resample`` (a Fourier method that treats the trace as periodic, so a trace
    that ends far from where it starts rings near both ends) and leaves out the last target
    sample. Interpolation is exact at the smoothed trace's resolution and is what
    :func:`simulate_planted_dipole` uses, so target and model are sampled alike. Each trial
    of a parameter set is simulated once and kept, so repeated points, and averages over
    fewer trials, cost nothing.

    Parameters
    ----------
    net
        The hnn-core ``Network`` without the fitted drives (``set_params`` adds them).
    set_params
        ``set_params(net, params) -> None``, as for hnn-core's ``Optimizer``.
    target_times, target_dipole
        The target's sample times (ms, increasing) and values (nAm), same length.
    n_trials
        Trials averaged per evaluation (the default of :meth:`rmse`).
    dt
        Integration step in ms.
    scale_factor
        Dipole scale factor (see :func:`scale_factor_for`).
    smooth_ms
        Hamming smoothing window in ms.
    tstop
        Simulated duration in ms; default: the last target time.
    draws
        How a parameter set's trials draw their drive times. ``"random"`` (hnn-core's way):
        ``simulate_dipole`` draws them from the drives' seeds, so the average is a Monte
        Carlo estimate of the expected dipole. ``"stratified"``: trial ``i`` of ``n`` is
        simulated at the draw :func:`stratified_normal_draws` gives (:func:`fix_drive_times`),
        so the average has no sampling noise (a quadrature error remains), and the first
        ``n`` trials change with ``n``. Stratified draws need ``set_params`` to add drives
        of :func:`add_erp_drives`'s kind.
    n_jobs
        Processes the stratified trials are spread over (joblib); random trials use
        hnn-core's active backend instead.

    Attributes
    ----------
    history
        ``(params, rmse)`` of every call, in order; ``len(history)`` counts evaluations.
    n_simulations
        Trials actually simulated so far (cache misses).
    """

    def __init__(
        self,
        net: Any,
        set_params: Callable[[Any, dict[str, float]], None],
        target_times: Sequence[float],
        target_dipole: Sequence[float],
        *,
        n_trials: int,
        dt: float,
        scale_factor: float,
        smooth_ms: float,
        tstop: float | None = None,
        draws: str = "random",
        n_jobs: int = 1,
    ) -> None:
        times = np.asarray(target_times, dtype=float)
        values = np.asarray(target_dipole, dtype=float)
        if times.ndim != 1 or values.shape != times.shape or times.size < 2:
            raise ValueError(
                "target_times and target_dipole must be 1-D arrays of the same length (>= 2); "
                f"got shapes {times.shape} and {values.shape}."
            )
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(values))):
            raise ValueError("The target holds NaN or infinite values: clean or crop it first.")
        if np.any(np.diff(times) <= 0):
            raise ValueError("target_times must be strictly increasing (ms).")
        if not callable(set_params):
            raise ValueError("set_params must be a function set_params(net, params).")
        check_positive_ints(n_trials=n_trials, n_jobs=n_jobs)
        if draws not in ("random", "stratified"):
            raise ValueError(f"draws must be 'random' or 'stratified', got {draws!r}.")
        self.draws = draws
        self.n_jobs = int(n_jobs)
        self.net = net
        self.set_params = set_params
        self.target_times = times
        self.target_dipole = values
        self.n_trials = int(n_trials)
        self.dt = float(dt)
        self.scale_factor = float(scale_factor)
        self.smooth_ms = float(smooth_ms)
        self.tstop = float(times[-1] if tstop is None else tstop)
        self.history: list[tuple[dict[str, float], float]] = []
        self.n_simulations = 0
        self._trials: dict[tuple[float, ...], np.ndarray] = {}
        self._events: dict[tuple[float, ...], dict[str, list[np.ndarray]]] = {}
        self._times: np.ndarray | None = None

    # ------------------------------------------------------------------ simulations

    def trials(self, params: Mapping[str, float], n_trials: int | None = None) -> np.ndarray:
        """Return the first ``n_trials`` processed trials at ``params``, simulating as needed.

        Parameters
        ----------
        params
            Parameter set, keys :data:`PARAM_NAMES`.
        n_trials
            How many trials (default: ``self.n_trials``).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_trials, n_times)``, in nAm, on the simulation's time grid
            (:attr:`times`). With random draws, trial ``k`` is the same whatever ``n_trials``
            is asked for; with stratified draws, the trials are those at the ``n_trials``
            draws of :func:`stratified_normal_draws`.
        """
        values = check_params(params)
        n_trials = self.n_trials if n_trials is None else n_trials
        check_positive_ints(n_trials=n_trials)
        key = self._key(values)
        if self.draws == "stratified":
            return self._stratified_trials(values, key, n_trials)
        cached = self._trials.get(key)
        if cached is None or cached.shape[0] < n_trials:
            net = self.net.copy()
            self.set_params(net, dict(values))
            times, trials = simulate_dipole_trials(
                net,
                n_trials=n_trials,
                tstop=self.tstop,
                dt=self.dt,
                scale_factor=self.scale_factor,
                smooth_ms=self.smooth_ms,
            )
            self.n_simulations += n_trials
            self._times = times
            self._trials[key] = trials
            self._events[key] = _drive_events(net)
            cached = trials
        return cached[:n_trials]

    def _stratified_trials(self, values: dict[str, float], key: tuple[float, ...], n_trials: int) -> np.ndarray:
        """The trials at the ``n_trials`` stratified draws, simulated over ``n_jobs`` processes."""
        from joblib import Parallel, delayed

        stratified_key = (*key, n_trials)
        if stratified_key not in self._trials:
            net = self.net.copy()
            self.set_params(net, dict(values))
            settings = dict(tstop=self.tstop, dt=self.dt, scale_factor=self.scale_factor, smooth_ms=self.smooth_ms)
            draws = stratified_normal_draws(n_trials)
            fix_drive_times(net.copy(), 0.0)  # a drive of another kind fails here, not in a worker
            runs = Parallel(n_jobs=min(self.n_jobs, n_trials))(
                delayed(_simulate_at_draw)(net.copy(), float(z), **settings) for z in draws
            )
            SimulationCounter.record(n_trials)
            self.n_simulations += n_trials
            self._times = runs[0][0]
            self._trials[stratified_key] = np.stack([trial for _, trial, _ in runs])
            self._events[stratified_key] = {name: [events[name] for _, _, events in runs] for name in runs[0][2]}
        return self._trials[stratified_key]

    @staticmethod
    def _key(params: Mapping[str, float]) -> tuple[float, ...]:
        """The cache key of a parameter set: its values, rounded, in :data:`PARAM_NAMES` order."""
        values = check_params(params)
        return tuple(round(values[name], 10) for name in PARAM_NAMES)

    def drive_times(self, params: Mapping[str, float], drive: str) -> list[np.ndarray]:
        """The spike times (ms) ``drive``'s cells sent on each trial simulated at ``params``.

        Parameters
        ----------
        params
            A parameter set already simulated (evaluate it first; with stratified draws,
            with the objective's ``n_trials``).
        drive
            The drive's name, e.g. ``"evprox2"``.

        Returns
        -------
        list of numpy.ndarray
            One array per trial, the spikes of all the drive's cells.

        Raises
        ------
        KeyError
            If ``params`` was not simulated, or the network has no such drive.
        """
        key = self._key(params)
        if self.draws == "stratified":
            key = (*key, self.n_trials)
        if key not in self._events:
            raise KeyError(f"No simulation at {dict(params)}: evaluate it first (objective(params)).")
        events = self._events[key]
        if drive not in events:
            raise KeyError(f"No drive {drive!r}; the network has {', '.join(sorted(events))}.")
        return events[drive]

    @property
    def times(self) -> np.ndarray:
        """The simulation's time grid in ms (after the first simulation)."""
        if self._times is None:
            raise RuntimeError("No simulation has run yet: evaluate a parameter set first.")
        return self._times

    def average(self, params: Mapping[str, float], n_trials: int | None = None) -> np.ndarray:
        """Return the trial-averaged processed dipole at ``params`` (nAm, on :attr:`times`)."""
        return self.trials(params, n_trials).mean(axis=0)

    def rmse(self, params: Mapping[str, float], n_trials: int | None = None) -> float:
        """Return the RMSE (nAm) of the ``n_trials``-average at ``params`` to the target.

        Not recorded in :attr:`history`; use a call (``objective(params)``) for that.
        """
        average = self.average(params, n_trials)
        sampled = sample_at(self.target_times, self.times, average)
        return float(np.sqrt(np.mean((sampled - self.target_dipole) ** 2)))

    def __call__(self, params: Mapping[str, float] | Sequence[float]) -> float:
        """Evaluate the RMSE at ``params`` (a mapping, or values in :data:`PARAM_NAMES`
        order) with ``n_trials`` trials, and record it in :attr:`history`."""
        if not isinstance(params, Mapping):
            params = self.as_params(params)
        value = self.rmse(params)
        self.history.append((check_params(params), value))
        return value

    @staticmethod
    def as_params(vector: Sequence[float]) -> dict[str, float]:
        """Turn values in :data:`PARAM_NAMES` order into a parameter mapping."""
        vector = np.asarray(vector, dtype=float).ravel()
        if vector.size != len(PARAM_NAMES):
            raise ValueError(f"Expected {len(PARAM_NAMES)} values ({', '.join(PARAM_NAMES)}), got {vector.size}.")
        return dict(zip(PARAM_NAMES, (float(v) for v in vector)))

    # ------------------------------------------------------------------ hnn-core

    def hnn_obj_fun(
        self, to_params: Callable[[dict[str, float]], Mapping[str, float]] | None = None
    ) -> Callable[..., float | list[float]]:
        """Return this objective as an ``obj_fun`` for hnn-core's ``Optimizer``.

        The function has the signature hnn-core calls user objectives with. It maps the
        optimizer's vector through ``update_params`` (the order of the Optimizer's
        ``initial_params``), evaluates :meth:`__call__` (so the Optimizer's calls land in
        :attr:`history` and share the cache), appends the value to hnn-core's
        ``obj_values``, and keeps hnn-core's ``best`` record (cobyla) up to date. A batch
        of vectors (CMA-ES asks for a population at once) returns a list. The network and
        ``set_params`` the Optimizer passes are not used: this objective simulates its own,
        so give the Optimizer the same ones.

        Parameters
        ----------
        to_params
            Maps the optimizer's parameter dict to the model's (keys :data:`PARAM_NAMES`),
            for an optimizer that works in other coordinates (e.g. each parameter rescaled
            to [0, 1]); ``None`` when the optimizer's parameters are the model's.
        """

        def obj_fun(
            initial_net,
            initial_params,
            set_params,
            predicted_params,
            update_params,
            obj_values,
            tstop,
            obj_fun_kwargs,
            best=None,
        ):
            batch = np.asarray(predicted_params, dtype=float)
            rows = batch.reshape(-1, len(initial_params))
            convert = (lambda p: p) if to_params is None else to_params
            values = [self(convert(update_params(initial_params, list(row)))) for row in rows]
            if best is not None:
                for row, value in zip(rows, values):
                    if value < best["obj"]:
                        best["obj"], best["params"] = value, list(row)
            result: float | list[float] = values if batch.ndim == 2 else values[0]
            obj_values.append(result)
            return result

        return obj_fun


def _check_mesh(mesh_shape: tuple[int, int]) -> tuple[int, int]:
    if (
        not isinstance(mesh_shape, (tuple, list))
        or len(mesh_shape) != 2
        or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in mesh_shape)
    ):
        raise ValueError(f"mesh_shape must be two positive integers (n_x, n_y), got {mesh_shape!r}.")
    return int(mesh_shape[0]), int(mesh_shape[1])
