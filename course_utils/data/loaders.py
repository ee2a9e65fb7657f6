"""Loaders of each chapter's data as pynapple objects: simulated ground truth or the real file.

Both sources return the same fields with the same types, so a chapter switches between them
with one argument. Conventions shared by every loader:

- ``units`` holds all the spikes of the session; ``epochs`` says which part to analyse;
  the behavioural or stimulus series (``position``, ``current``) are restricted to ``epochs``,
  which is their ``time_support``.
- ``truth`` is the simulation object (with the true parameters) or ``None`` for real data.

:func:`load_photostim` (chapter 3) is the exception: its recordings are not public, so its
sources are ``"simulated"`` and ``"user"`` (your own arrays), and it returns frame-indexed
arrays, the unit of its autoregressive models.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pynapple as nap

from course_utils.data.download import fetch
from course_utils.data.errors import DatasetFormatError
from course_utils.simulate.glm import (
    CurrentInjectionSimulation,
    LinearMazeSimulation,
    simulate_current_injection,
    simulate_linear_maze,
)
from course_utils.simulate.population import (
    HeadDirectionPopulation,
    simulate_head_direction_population,
)
from course_utils.validation import check_ints

SOURCES: tuple[str, ...] = ("simulated", "real")
PYRAMIDAL = "pE"
NOISE_TAG = "Noise 1"
AMPERE_TO_PICOAMPERE = 1e12


@dataclass(frozen=True, eq=False)
class PlaceCellSession:
    """Hippocampal units and linear position on a track.

    Attributes
    ----------
    units
        Spike times of every unit; metadata column ``cell_type`` (``"pE"`` for pyramidal
        cells; the real recording also holds interneurons).
    position
        Linear position in cm, restricted to ``epochs``.
    epochs
        The runs along the track (the ``time_support`` of ``position``).
    source
        ``"simulated"`` or ``"real"``.
    truth
        The :class:`~course_utils.simulate.glm.LinearMazeSimulation` behind simulated data
        (speed, true tuning, ``neuron_kinds``), ``None`` for real data.
    """

    units: nap.TsGroup
    position: nap.Tsd
    epochs: nap.IntervalSet
    source: str
    truth: LinearMazeSimulation | None


@dataclass(frozen=True, eq=False)
class CurrentInjectionSession:
    """A neuron's spikes under injected current.

    Attributes
    ----------
    units
        Spike times of the recorded neuron(s) over the whole recording.
    current
        Injected current in pA, restricted to ``epochs``.
    epochs
        The noise sweeps (``"Noise 1"`` in the Allen recording), the ``time_support`` of
        ``current``.
    source
        ``"simulated"`` or ``"real"``.
    truth
        The :class:`~course_utils.simulate.glm.CurrentInjectionSimulation` behind simulated
        data (true kernel and baseline), ``None`` for real data.
    """

    units: nap.TsGroup
    current: nap.Tsd
    epochs: nap.IntervalSet
    source: str
    truth: CurrentInjectionSimulation | None


def load_place_cells(
    source: str = "simulated", *, seed: int = 0, duration_s: float = 1800.0, bin_s: float = 0.02
) -> PlaceCellSession:
    """Load place cells on a linear track: simulated ground truth or Grosmark & Buzsaki 2016.

    Parameters
    ----------
    source
        ``"simulated"`` (default, offline, with the truth) or ``"real"`` (dataset
        ``place_cells``, fetched and verified on first use).
    seed, duration_s, bin_s
        Seed, length (s) and bin width (s) of the simulation; ignored for real data.

    Returns
    -------
    PlaceCellSession
        ``units``, ``position`` (cm), ``epochs`` (runs along the track), ``source``, ``truth``.

    Raises
    ------
    ValueError
        If ``source`` is neither ``"simulated"`` nor ``"real"``.
    DataFetchError
        For real data, if the packaged file is missing or altered (``ChecksumError``:
        reinstall the package).
    DatasetFormatError
        If the real file lacks ``units`` (with ``cell_type``), ``position`` or ``trials``.
    """
    if _check_source(source) == "simulated":
        return _simulated_place_cells(seed, duration_s, bin_s)
    path = fetch("place_cells")
    with _open_nwb(path) as data:
        units = _get(data, "units", nap.TsGroup, path)
        _require_column(units, "cell_type", "units", path)
        trials = _get(data, "trials", nap.IntervalSet, path)
        position = _get(data, "position", nap.Tsd, path).restrict(trials)
    return PlaceCellSession(units, position, position.time_support, "real", None)


def load_current_injection(
    source: str = "simulated", *, seed: int = 0, duration_s: float = 200.0, bin_s: float = 0.005
) -> CurrentInjectionSession:
    """Load a neuron under noisy current injection: simulated LNP neuron or Allen 478498617.

    Parameters
    ----------
    source
        ``"simulated"`` (default, offline, with the true kernel) or ``"real"`` (dataset
        ``current_injection``, fetched and verified on first use; its "Noise 1" sweeps).
    seed, duration_s, bin_s
        Seed, length (s) and bin width (s) of the simulation; ignored for real data.

    Returns
    -------
    CurrentInjectionSession
        ``units``, ``current`` (pA), ``epochs`` (noise sweeps), ``source``, ``truth``.

    Raises
    ------
    ValueError
        If ``source`` is neither ``"simulated"`` nor ``"real"``.
    DataFetchError
        For real data, if the packaged file is missing or altered (``ChecksumError``:
        reinstall the package).
    DatasetFormatError
        If the real file lacks ``units``, ``stimulus`` or ``epochs`` tagged "Noise 1".
    """
    if _check_source(source) == "simulated":
        return _simulated_current_injection(seed, duration_s, bin_s)
    path = fetch("current_injection")
    with _open_nwb(path) as data:
        units = _get(data, "units", nap.TsGroup, path)
        table = _get(data, "epochs", nap.IntervalSet, path)
        _require_column(table, "tags", "epochs", path)
        stimulus = _get(data, "stimulus", nap.Tsd, path)
        is_noise = np.array([_has_tag(tags, NOISE_TAG) for tags in table.tags], dtype=bool)
        if not is_noise.any():
            found = sorted({str(tag) for tags in table.tags for tag in np.atleast_1d(tags)})
            raise DatasetFormatError(
                f"{path.name}: no epoch is tagged {NOISE_TAG!r} (tags found: {', '.join(found)}). "
                f"{_refetch_advice(path)}"
            )
        epochs = nap.IntervalSet(start=table.start[is_noise], end=table.end[is_noise])
        current = stimulus.restrict(epochs) * AMPERE_TO_PICOAMPERE
    return CurrentInjectionSession(units, current, epochs, "real", None)


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(
            f"source must be 'simulated' (ground truth, works offline) or 'real' (downloads "
            f"the recording once), got {source!r}."
        )
    return source


def _simulated_place_cells(seed: int, duration_s: float, bin_s: float) -> PlaceCellSession:
    sim = simulate_linear_maze(duration_s, bin_s, seed)
    session = nap.IntervalSet(start=0.0, end=sim.t[-1] + sim.bin_s / 2)
    units = nap.TsGroup(
        {i: nap.Ts(t=times) for i, times in enumerate(sim.spike_times)},
        time_support=session,
        metadata={"cell_type": np.full(len(sim.spike_times), PYRAMIDAL)},
    )
    runs = nap.IntervalSet(start=sim.lap_bounds[:, 0], end=sim.lap_bounds[:, 1])
    position = nap.Tsd(t=sim.t, d=sim.position, time_support=session).restrict(runs)
    return PlaceCellSession(units, position, position.time_support, "simulated", sim)


def _simulated_current_injection(seed: int, duration_s: float, bin_s: float) -> CurrentInjectionSession:
    sim = simulate_current_injection(duration_s, bin_s, seed)
    session = nap.IntervalSet(start=0.0, end=sim.t[-1] + sim.bin_s / 2)
    units = nap.TsGroup({0: nap.Ts(t=sim.spike_times)}, time_support=session)
    sweeps = nap.IntervalSet(start=sim.sweep_bounds[:, 0], end=sim.sweep_bounds[:, 1])
    current = nap.Tsd(t=sim.t, d=sim.current, time_support=session).restrict(sweeps)
    return CurrentInjectionSession(units, current, current.time_support, "simulated", sim)


WAKE_TAG = "wake"
HEAD_DIRECTION_NUCLEUS = "adn"


@dataclass(frozen=True, eq=False)
class HeadDirectionSession:
    """Head-direction units and the head's direction during wakefulness.

    Attributes
    ----------
    units
        Spike times of every unit over the whole session; metadata column ``location``
        (``"adn"``, the anterodorsal thalamic nucleus, for head-direction cells; the real
        recording also holds units from elsewhere in the thalamus).
    heading
        Head direction in radians (``[0, 2 pi)``), restricted to ``epochs``.
    epochs
        The wake epochs (``"wake"`` in the recording; the whole session when simulated),
        the ``time_support`` of ``heading``.
    source
        ``"simulated"`` or ``"real"``.
    truth
        The :class:`~course_utils.simulate.population.HeadDirectionPopulation` behind
        simulated data (tuning, coupling graph and filters), ``None`` for real data.
    """

    units: nap.TsGroup
    heading: nap.Tsd
    epochs: nap.IntervalSet
    source: str
    truth: HeadDirectionPopulation | None


def load_head_direction(
    source: str = "simulated",
    *,
    seed: int = 0,
    duration_s: float = 180.0,
    bin_s: float = 0.02,
    n_neurons: int = 20,
) -> HeadDirectionSession:
    """Load head-direction cells: a simulated coupled population or Peyrache et al. 2015.

    Parameters
    ----------
    source
        ``"simulated"`` (default, offline, with the true coupling graph) or ``"real"``
        (dataset ``head_direction``, ``Mouse32-140822.nwb``, fetched and verified on first
        use; its wake epochs and the head direction ``ry``).
    seed, duration_s, bin_s, n_neurons
        Seed, length (s), bin width (s) and size of the simulated population (see
        :func:`~course_utils.simulate.population.simulate_head_direction_population`);
        ignored for real data.

    Returns
    -------
    HeadDirectionSession
        ``units``, ``heading`` (rad), ``epochs`` (wake), ``source``, ``truth``.

    Raises
    ------
    ValueError
        If ``source`` is neither ``"simulated"`` nor ``"real"``.
    DataFetchError
        For real data, if the packaged file is missing or altered (``ChecksumError``:
        reinstall the package).
    DatasetFormatError
        If the real file lacks ``units`` (with ``location``), ``ry`` or ``epochs`` tagged
        "wake".
    """
    if _check_source(source) == "simulated":
        return _simulated_head_direction(seed, duration_s, bin_s, n_neurons)
    path = fetch("head_direction")
    with _open_nwb(path) as data:
        units = _get(data, "units", nap.TsGroup, path)
        _require_column(units, "location", "units", path)
        table = _get(data, "epochs", nap.IntervalSet, path)
        _require_column(table, "tags", "epochs", path)
        is_wake = np.array([_has_tag(tags, WAKE_TAG) for tags in table.tags], dtype=bool)
        if not is_wake.any():
            found = sorted({str(tag) for tags in table.tags for tag in np.atleast_1d(tags)})
            raise DatasetFormatError(
                f"{path.name}: no epoch is tagged {WAKE_TAG!r} (tags found: {', '.join(found)}). "
                f"{_refetch_advice(path)}"
            )
        epochs = nap.IntervalSet(start=table.start[is_wake], end=table.end[is_wake])
        heading = _get(data, "ry", nap.Tsd, path).restrict(epochs)
    return HeadDirectionSession(units, heading, heading.time_support, "real", None)


def _simulated_head_direction(seed: int, duration_s: float, bin_s: float, n_neurons: int) -> HeadDirectionSession:
    sim = simulate_head_direction_population(duration_s, bin_s, seed, n_neurons=n_neurons)
    session = nap.IntervalSet(start=0.0, end=sim.t[-1] + sim.bin_s / 2)
    units = nap.TsGroup(
        {i: nap.Ts(t=times) for i, times in enumerate(sim.spike_times)},
        time_support=session,
        metadata={"location": np.full(sim.n_neurons, HEAD_DIRECTION_NUCLEUS)},
    )
    heading = nap.Tsd(t=sim.t, d=sim.heading, time_support=session)
    return HeadDirectionSession(units, heading, session, "simulated", sim)


@contextlib.contextmanager
def _open_nwb(path: Path) -> Iterator[Any]:
    """Open an NWB file with pynapple and close it on exit (extract what you need inside)."""
    with warnings.catch_warnings():
        # hdmf's notice that the file carries its own copy of the NWB schema: harmless.
        warnings.filterwarnings("ignore", message="Ignoring cached namespace")
        data = nap.load_file(str(path))
    try:
        yield data
    finally:
        data.close()


def _get(data: Any, key: str, expected: type, path: Path) -> Any:
    if key not in data.keys():
        raise DatasetFormatError(
            f"{path.name} has no {key!r} (it has: {', '.join(sorted(data.keys()))}). {_refetch_advice(path)}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynapple warns, then returns the raw NWB object
        value = data[key]
    if not isinstance(value, expected):
        raise DatasetFormatError(
            f"{path.name}: {key!r} should read as a pynapple {expected.__name__}, got "
            f"{type(value).__name__}. {_refetch_advice(path)}"
        )
    return value


def _require_column(obj: Any, column: str, key: str, path: Path) -> None:
    if column not in obj.metadata_columns:
        raise DatasetFormatError(
            f"{path.name}: {key!r} has no metadata column {column!r} (it has: "
            f"{', '.join(obj.metadata_columns) or 'none'}). {_refetch_advice(path)}"
        )


def _has_tag(tags: Any, tag: str) -> bool:
    # NWB stores each epoch's tags as a list of strings; some conversions store one string.
    if isinstance(tags, str):
        return tags == tag
    return tag in [str(t) for t in np.atleast_1d(tags)]


def _refetch_advice(path: Path) -> str:
    return (
        f"This is not the file the course expects: delete {path} and fetch it again; if the "
        "error persists, the registry points at a different file: report it."
    )


# --------------------------------------------------------------------------- evoked dipole


@dataclass(frozen=True, eq=False)
class EvokedDipole:
    """An evoked current dipole: one time course, as HNN's text files hold it.

    Attributes
    ----------
    times
        Sample times in ms, strictly increasing, shape ``(n_samples,)``.
    dipole
        Current dipole moment in nAm, shape ``(n_samples,)``.
    source
        ``"simulated"``, ``"real"``, or the path of the file that was read.
    truth
        The :class:`~course_utils.simulate.dipole.PlantedDipole` behind simulated data
        (planted parameters, clean dipole, noise level), ``None`` otherwise.
    """

    times: np.ndarray
    dipole: np.ndarray
    source: str
    truth: Any | None


def load_evoked_dipole(
    source: str | Path = "simulated",
    *,
    params: dict[str, float] | None = None,
    mesh_shape: tuple[int, int] = (3, 3),
    n_trials: int = 4,
    dt: float = 0.05,
    noise_fraction: float = 0.02,
    event_seed: int | None = None,
    seed: int = 0,
) -> EvokedDipole:
    """Load an evoked dipole: simulated with planted parameters, the MEG recording, or a file.

    Parameters
    ----------
    source
        ``"simulated"`` (default, offline, with the truth): hnn-core's column with the
        drives of :func:`course_utils.simulate.dipole.add_erp_drives`, sampled like the
        recording, plus noise (this runs hnn-core simulations, on its active backend).
        ``"real"``: dataset ``evoked_dipole`` (HNN's ``yes_trial_S1_ERP_all_avg.txt``),
        which ships with the package under its license notice and is verified by its
        sha256 (no download). Anything else is read as the path of your own
        file in the same format: whitespace-separated text, column 1 time (ms), column 2
        dipole (nAm); a file of four columns (time, aggregate, L2, L5), as hnn-core writes,
        is read too, keeping the aggregate.
    params
        Planted proximal-2 parameters (keys of
        :data:`course_utils.simulate.dipole.PARAM_NAMES`); default
        :data:`~course_utils.simulate.dipole.PLANTED_PARAMS`. Simulated data only.
    mesh_shape, n_trials, dt, noise_fraction, event_seed, seed
        Column size, trials averaged, integration step (ms), noise level (fraction of the
        peak-to-peak range), drive-time seed (``None``: independent of the model's, as for a
        recording) and noise seed of the simulation (see
        :func:`~course_utils.simulate.dipole.simulate_planted_dipole`). Simulated data only.

    Returns
    -------
    EvokedDipole
        ``times`` (ms), ``dipole`` (nAm), ``source``, ``truth``.

    Raises
    ------
    FileNotFoundError
        If ``source`` is neither ``"simulated"`` nor ``"real"`` and no such file exists.
    DataFetchError
        For real data, if the packaged file is missing or altered (``ChecksumError``:
        reinstall the package).
    DatasetFormatError
        If a file is not two (or four) columns of finite numbers with increasing times.
    """
    if isinstance(source, str) and source == "simulated":
        from course_utils.simulate.dipole import (
            PLANTED_PARAMS,
            TARGET_EVENT_SEED,
            simulate_planted_dipole,
        )

        planted = simulate_planted_dipole(
            PLANTED_PARAMS if params is None else params,
            mesh_shape=mesh_shape,
            n_trials=n_trials,
            dt=dt,
            noise_fraction=noise_fraction,
            seed=seed,
            event_seed=TARGET_EVENT_SEED if event_seed is None else event_seed,
        )
        return EvokedDipole(planted.times, planted.dipole, "simulated", planted)
    if isinstance(source, str) and source == "real":
        path = fetch("evoked_dipole")
        times, dipole = _read_dipole_text(path, _refetch_advice(path))
        return EvokedDipole(times, dipole, "real", None)
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"No file {str(source)!r}. source must be 'simulated' (works offline), 'real' "
            "(the MEG recording, shipped with the course) or the path of your own dipole file: text, "
            "column 1 time (ms), column 2 dipole (nAm)."
        )
    advice = (
        "Expected whitespace-separated text: column 1 time (ms), column 2 dipole (nAm), "
        "one sample per line, as in HNN's yes_trial_S1_ERP_all_avg.txt."
    )
    times, dipole = _read_dipole_text(path, advice)
    return EvokedDipole(times, dipole, str(path), None)


def _read_dipole_text(path: Path, advice: str) -> tuple[np.ndarray, np.ndarray]:
    """Read HNN's dipole text format; return read-only (times, dipole) arrays."""
    try:
        table = np.loadtxt(path, dtype=float, ndmin=2)
    except ValueError as exc:
        raise DatasetFormatError(f"{path.name} could not be read as numbers ({exc}). {advice}") from None
    if table.shape[1] not in (2, 4) or table.shape[0] < 2:
        raise DatasetFormatError(
            f"{path.name} has {table.shape[0]} rows of {table.shape[1]} columns; a dipole file "
            f"has at least two rows of 2 (or 4) columns. {advice}"
        )
    if not np.all(np.isfinite(table[:, :2])):
        raise DatasetFormatError(f"{path.name} holds NaN or infinite values. {advice}")
    times, dipole = table[:, 0].copy(), table[:, 1].copy()
    if np.any(np.diff(times) <= 0):
        raise DatasetFormatError(f"{path.name}: the times (column 1) must increase. {advice}")
    times.flags.writeable = False
    dipole.flags.writeable = False
    return times, dipole


# --------------------------------------------------------------------------- photostimulation

PHOTOSTIM_SOURCES: tuple[str, ...] = ("simulated", "user")


@dataclass(frozen=True, eq=False)
class PhotostimSession:
    """A photostimulation experiment: population activity and the stimulation, frame by frame.

    Unlike the other loaders this one returns plain arrays indexed by imaging frame: the
    autoregressive models of chapter 3 work in frames, not seconds.

    Attributes
    ----------
    activity
        Activity of each neuron in each frame (e.g. dF/F), shape ``(n_frames, n_neurons)``.
    stimulation
        Photostimulation delivered to each neuron in each frame (0 where none), same shape.
    trial_onsets
        First stimulated frame of each trial (a stimulation bout), increasing.
    trial_pattern
        Which pattern each trial stimulated: an index into ``patterns``.
    patterns
        The distinct stimulation patterns, shape ``(n_patterns, n_neurons)``.
    heldout_patterns
        Patterns whose trials are kept out of every fit, as a test set.
    stim_frames
        Number of consecutive stimulated frames per trial (the median over trials).
    trial_frames
        Frames from one onset to the next (the median).
    source
        ``"simulated"`` or ``"user"``.
    truth
        The :class:`~course_utils.simulate.photostim.PhotostimSimulation` behind simulated
        data, ``None`` for your own arrays.
    """

    activity: np.ndarray
    stimulation: np.ndarray
    trial_onsets: np.ndarray
    trial_pattern: np.ndarray
    patterns: np.ndarray
    heldout_patterns: np.ndarray
    stim_frames: int
    trial_frames: int
    source: str
    truth: Any | None


def load_photostim(
    source: str = "simulated",
    arrays: Any = None,
    *,
    seed: int = 0,
    n_heldout_patterns: int | None = None,
    **simulation_options: Any,
) -> PhotostimSession:
    """Load a photostimulation experiment: simulated ground truth or your own arrays.

    The recordings of Wagenmaker et al. (2024) are not public, so there is no ``"real"``
    source: bring your own recording as two arrays of the same shape.

    Parameters
    ----------
    source
        ``"simulated"`` (default; :func:`course_utils.simulate.photostim.simulate_photostim`,
        with the truth attached) or ``"user"`` (your ``arrays``).
    arrays
        For ``source="user"``: ``(activity, stimulation)`` or a mapping with those keys, each
        of shape ``(n_frames, n_neurons)``, finite; ``stimulation`` is non-negative, zero
        where nothing is stimulated, and every trial stimulates one pattern for a few frames.
    seed
        Seed of the simulation, and of the choice of held-out patterns for your arrays.
    n_heldout_patterns
        For ``source="user"``: how many patterns to hold out (default: a fifth, at least 1).
        The simulation holds out its own ``n_heldout_groups``.
    **simulation_options
        For ``source="simulated"``: passed to ``simulate_photostim`` (``n_neurons``, ``rank``,
        ``order``, ``n_groups``, ``n_heldout_groups``, ``group_size``, ``n_repeats``, ...).

    Returns
    -------
    PhotostimSession

    Raises
    ------
    ValueError
        If ``source`` is unknown (including ``"real"``: there is no public copy), if arrays
        are missing for ``"user"`` or given for ``"simulated"``, or if the arrays have the
        wrong shape, contain NaN or inf, negative stimulation, or fewer than two patterns.
    """
    if source not in PHOTOSTIM_SOURCES:
        hint = (
            " There is no public copy of the photostimulation recordings of Wagenmaker et al. "
            "(2024): load your own with source='user', arrays=(activity, stimulation)."
        )
        raise ValueError(f"source must be 'simulated' or 'user', got {source!r}.{hint if source == 'real' else ''}")
    if source == "simulated":
        if arrays is not None:
            raise ValueError("arrays are only read with source='user'; the simulated source makes its own.")
        from course_utils.simulate.photostim import simulate_photostim

        sim = simulate_photostim(seed=seed, **simulation_options)
        return PhotostimSession(
            activity=sim.activity,
            stimulation=sim.stimulation,
            trial_onsets=sim.trial_onsets,
            trial_pattern=sim.trial_group,
            patterns=sim.patterns,
            heldout_patterns=sim.heldout_groups,
            stim_frames=sim.stim_frames,
            trial_frames=sim.trial_frames,
            source="simulated",
            truth=sim,
        )
    if simulation_options:
        raise ValueError(f"options {sorted(simulation_options)} only apply to source='simulated'.")
    activity, stimulation = _photostim_arrays(arrays)
    onsets, pattern_of_trial, patterns, stim_frames = _stimulation_trials(stimulation)
    n_patterns = patterns.shape[0]
    if n_patterns < 2:
        raise ValueError(
            f"stimulation holds {n_patterns} distinct pattern(s); at least 2 are needed to hold "
            "one out. Check that each trial's stimulation is a pattern repeated over a few frames."
        )
    if n_heldout_patterns is None:
        n_heldout_patterns = max(1, n_patterns // 5)
    if (
        isinstance(n_heldout_patterns, bool)
        or not isinstance(n_heldout_patterns, (int, np.integer))
        or not 1 <= n_heldout_patterns < n_patterns
    ):
        raise ValueError(
            f"n_heldout_patterns must be an integer from 1 to {n_patterns - 1} (there are "
            f"{n_patterns} patterns), got {n_heldout_patterns!r}."
        )
    heldout = np.sort(np.random.default_rng(seed).choice(n_patterns, n_heldout_patterns, replace=False))
    trial_frames = int(np.median(np.diff(onsets))) if onsets.size > 1 else int(activity.shape[0] - onsets[0])
    return PhotostimSession(
        activity, stimulation, onsets, pattern_of_trial, patterns, heldout, stim_frames, trial_frames, "user", None
    )


def _photostim_arrays(arrays: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a user's ``(activity, stimulation)``; return them as float arrays."""
    if arrays is None:
        raise ValueError("source='user' needs arrays=(activity, stimulation), each of shape (n_frames, n_neurons).")
    if isinstance(arrays, dict):
        missing = {"activity", "stimulation"} - set(arrays)
        if missing:
            raise ValueError(f"arrays is missing {sorted(missing)}: give 'activity' and 'stimulation'.")
        arrays = (arrays["activity"], arrays["stimulation"])
    if not isinstance(arrays, (tuple, list)) or len(arrays) != 2:
        raise ValueError("arrays must be (activity, stimulation) or a dict with those two keys.")
    checked = []
    for name, values in zip(("activity", "stimulation"), arrays):
        try:
            values = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a numeric array: {error}") from None
        if values.ndim != 2 or min(values.shape) == 0:
            raise ValueError(f"{name} must be 2-D, (n_frames, n_neurons), got shape {values.shape}.")
        bad = ~np.isfinite(values)
        if bad.any():
            frames = np.flatnonzero(bad.any(axis=1))
            raise ValueError(
                f"{name} has {int(bad.sum())} NaN or inf value(s), first in frame {frames[0]} "
                f"({frames.size} frame(s) affected). Interpolate them or drop those frames (from "
                "both arrays) before loading."
            )
        checked.append(values)
    activity, stimulation = checked
    if activity.shape != stimulation.shape:
        raise ValueError(
            f"activity and stimulation must have the same shape (n_frames, n_neurons), got "
            f"{activity.shape} and {stimulation.shape}. If one is (n_neurons, n_frames), transpose it."
        )
    if (stimulation < 0).any():
        raise ValueError("stimulation must be non-negative (0 where a neuron is not stimulated).")
    return activity, stimulation


def _stimulation_trials(stimulation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Find the trials (bouts of one pattern) in a stimulation array.

    Returns the onset of each bout, its pattern index, the distinct patterns and the median
    bout length. A bout starts where the pattern changes to a non-zero one.
    """
    active = stimulation.any(axis=1)
    changed = np.ones(stimulation.shape[0], dtype=bool)
    changed[1:] = (stimulation[1:] != stimulation[:-1]).any(axis=1)
    onsets = np.flatnonzero(active & changed)
    if onsets.size == 0:
        raise ValueError("stimulation is zero everywhere: there are no trials to learn responses from.")
    patterns, pattern_of_trial = np.unique(stimulation[onsets], axis=0, return_inverse=True)
    ends = np.append(onsets[1:], stimulation.shape[0])
    lengths = [int(np.argmin(np.append(active[start:end], False))) for start, end in zip(onsets, ends)]
    return onsets, pattern_of_trial.reshape(-1), patterns, int(np.median(lengths))


# --------------------------------------------------------------------------- assemblies

ASSEMBLY_SOURCES: tuple[str, ...] = ("simulated", "user")
#: Where the recordings of van der Plas et al. (eLife 2023) are published (large files).
ZEBRAFISH_DATA_URL = "https://gin.g-node.org/vdplasthijs/cRBM_zebrafish_spontaneous_data"


@dataclass(frozen=True, eq=False)
class AssemblyData:
    """Binarized population activity split in time into training, validation and test blocks.

    Attributes
    ----------
    train
        ``(n_train, n_neurons)`` array of 0/1 (``uint8``), the first part of the recording.
    test
        ``(n_test, n_neurons)`` array of 0/1, the last part.
    source
        ``"simulated"`` or ``"user"``.
    truth
        The :class:`~course_utils.simulate.assemblies.AssemblySimulation` behind simulated data
        (planted assemblies and their activity), ``None`` for your own data.
    validation
        ``(n_validation, n_neurons)`` array of 0/1 between the two (empty without a
        ``validation_fraction``): where hyperparameters are chosen.
    """

    train: np.ndarray
    test: np.ndarray
    source: str
    truth: Any
    validation: np.ndarray | None = None

    @property
    def n_neurons(self) -> int:
        """Number of neurons (visible units)."""
        return int(self.train.shape[1])


def _split_blocks(
    array: np.ndarray, train_fraction: float, validation_fraction: float, gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a (time, neurons) array into training, validation and test blocks, ``gap`` bins apart."""
    if not 0.0 < float(train_fraction) < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction!r}.")
    if not 0.0 <= float(validation_fraction) < 1.0 - float(train_fraction):
        raise ValueError(
            f"validation_fraction must be >= 0 and leave room for a test block after "
            f"train_fraction={train_fraction}, got {validation_fraction!r}."
        )
    check_ints(minimum=0, gap=gap)
    n_time = array.shape[0]
    n_train = int(round(float(train_fraction) * n_time))
    n_validation = int(round(float(validation_fraction) * n_time))
    start_validation = n_train + gap if n_validation else n_train
    start_test = start_validation + n_validation + gap
    if n_train < 2 or n_time - start_test < 2 or (validation_fraction and n_validation < 2):
        hint = " Is it transposed? Rows must be time points." if array.shape[1] > n_time else ""
        raise ValueError(
            f"activity has {n_time} time points: too few for the blocks asked for (train_fraction="
            f"{train_fraction}, validation_fraction={validation_fraction}, gap={gap}), each of at "
            f"least 2.{hint}"
        )
    return (array[:n_train], array[start_validation : start_validation + n_validation], array[start_test:])


def _check_binary_activity(activity: Any, train_fraction: float) -> tuple[np.ndarray, int]:
    """Validate a user's (time x neurons) binary array; return it as uint8 and the split."""
    try:
        array = np.asarray(activity)
    except Exception as error:  # noqa: BLE001 (anything that is not array-like)
        raise ValueError(f"activity must be a (time, neurons) array of 0/1; could not read it ({error}).") from None
    if array.ndim != 2:
        raise ValueError(
            f"activity must be a 2-D (time, neurons) array, got {array.ndim} dimension(s) of shape {array.shape}."
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"activity must hold numbers (0/1 or booleans), got dtype {array.dtype}.")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError("activity contains NaN or inf: fill or drop those time points first.")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(
            "activity must be binary (0/1): binarize it first, e.g. spikes = (deconvolved > threshold), "
            "or events = (dff > k * noise_sd), and pass the result."
        )
    n_time, n_neurons = array.shape
    if n_neurons < 2:
        raise ValueError(f"activity needs at least 2 neurons (columns), got {n_neurons}.")
    if not 0.0 < float(train_fraction) < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction!r}.")
    n_train = int(round(float(train_fraction) * n_time))
    if n_train < 2 or n_time - n_train < 2:
        hint = " Is it transposed? Rows must be time points." if n_neurons > n_time else ""
        raise ValueError(
            f"activity has {n_time} time points: too few for a training and a test segment of at "
            f"least 2 each with train_fraction={train_fraction}.{hint}"
        )
    return array.astype(np.uint8), n_train


def load_assemblies(
    source: str = "simulated",
    activity: Any = None,
    *,
    train_fraction: float = 0.8,
    validation_fraction: float = 0.0,
    gap: int = 0,
    seed: int = 0,
    **simulation_options: Any,
) -> AssemblyData:
    """Load binarized population activity: planted assemblies, or your own recording.

    The zebrafish recordings of van der Plas et al. (eLife 2023), about 40,000 neurons each,
    are published at :data:`ZEBRAFISH_DATA_URL`; they are large and not needed to learn the
    method. To use them (or any recording), binarize the activity yourself and pass it with
    ``source="user"``.

    Parameters
    ----------
    source
        ``"simulated"`` (default; :func:`course_utils.simulate.assemblies.simulate_assemblies`,
        with the planted truth) or ``"user"`` (your ``activity``).
    activity
        For ``source="user"``: a ``(time, neurons)`` array of 0/1 or booleans.
    train_fraction
        Fraction of the time points, from the start, used for training; the test segment
        follows it in time, so that slow fluctuations do not leak from one to the other.
    validation_fraction
        Fraction of the time points, after the training block, kept for choosing
        hyperparameters (``data.validation``); the test block comes last. 0: none.
    gap
        Time bins dropped between consecutive blocks, so that activity that lasts a few
        bins (an assembly's event) does not straddle two of them.
    seed
        Seed of the simulation.
    **simulation_options
        For ``source="simulated"``: passed to ``simulate_assemblies`` (``n_neurons``,
        ``n_assemblies``, ``n_timepoints``, ``active_fraction``, ``mean_duration``, ...).

    Returns
    -------
    AssemblyData
        ``train``, ``test``, ``source`` and ``truth``.

    Raises
    ------
    ValueError
        If ``source`` is unknown, ``activity`` is missing for ``"user"`` or given for
        ``"simulated"``, or the array is not 2-D, not binary, has NaN, or is too short to split.
    """
    if source not in ASSEMBLY_SOURCES:
        hint = (
            f" The zebrafish recordings are not downloaded by the course: get them from "
            f"{ZEBRAFISH_DATA_URL}, binarize them, and pass source='user', activity=<array>."
        )
        raise ValueError(f"source must be 'simulated' or 'user', got {source!r}.{hint if source == 'real' else ''}")
    if source == "simulated":
        if activity is not None:
            raise ValueError("activity is only read with source='user'; the simulated source makes its own.")
        from course_utils.simulate.assemblies import simulate_assemblies

        sim = simulate_assemblies(train_fraction=train_fraction, seed=seed, **simulation_options)
        if not validation_fraction and not gap:
            return AssemblyData(
                train=sim.train, test=sim.test, source="simulated", truth=sim, validation=sim.activity[:0]
            )
        train, validation, test = _split_blocks(sim.activity, train_fraction, validation_fraction, gap)
        return AssemblyData(train=train, test=test, source="simulated", truth=sim, validation=validation)
    if activity is None:
        raise ValueError("source='user' needs your data: pass activity=<(time, neurons) array of 0/1>.")
    if simulation_options:
        raise ValueError(f"options {sorted(simulation_options)} only apply to source='simulated'.")
    array, _ = _check_binary_activity(activity, train_fraction)
    train, validation, test = _split_blocks(array, train_fraction, validation_fraction, gap)
    return AssemblyData(train=train, test=test, source="user", truth=None, validation=validation)
