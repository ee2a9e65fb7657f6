"""Loaders of each chapter's data as pynapple objects: simulated ground truth or the real file.

Both sources return the same fields with the same types, so a chapter switches between them
with one argument. Conventions shared by every loader:

- ``units`` holds all the spikes of the session; ``epochs`` says which part to analyse;
  the behavioural or stimulus series (``position``, ``current``) are restricted to ``epochs``,
  which is their ``time_support``.
- ``truth`` is the simulation object (with the true parameters) or ``None`` for real data.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pynapple as nap

from course_utils.data.errors import DatasetFormatError
from course_utils.data.download import fetch
from course_utils.simulate.glm import (
    CurrentInjectionSimulation,
    LinearMazeSimulation,
    simulate_current_injection,
    simulate_linear_maze,
)

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
        For real data, if the file is not cached and cannot be downloaded.
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
        For real data, if the file is not cached and cannot be downloaded.
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


def _simulated_current_injection(
    seed: int, duration_s: float, bin_s: float
) -> CurrentInjectionSession:
    sim = simulate_current_injection(duration_s, bin_s, seed)
    session = nap.IntervalSet(start=0.0, end=sim.t[-1] + sim.bin_s / 2)
    units = nap.TsGroup({0: nap.Ts(t=sim.spike_times)}, time_support=session)
    sweeps = nap.IntervalSet(start=sim.sweep_bounds[:, 0], end=sim.sweep_bounds[:, 1])
    current = nap.Tsd(t=sim.t, d=sim.current, time_support=session).restrict(sweeps)
    return CurrentInjectionSession(units, current, current.time_support, "simulated", sim)


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
            f"{path.name} has no {key!r} (it has: {', '.join(sorted(data.keys()))}). "
            f"{_refetch_advice(path)}"
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
