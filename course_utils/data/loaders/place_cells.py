"""Chapter 1's place cells: hippocampal units and linear position on a track."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pynapple as nap

from course_utils.data.loaders._contract import check_source, default, source_file
from course_utils.data.loaders._nwb import get, open_nwb, require_column
from course_utils.simulate.glm import LinearMazeSimulation, simulate_linear_maze

PYRAMIDAL = "pE"
LAYOUT = (
    "an NWB file that pynapple reads with 'units' (metadata column 'cell_type', 'pE' for "
    "pyramidal cells), 'position' (cm) and 'trials' (the runs), as Achilles_10252013.nwb"
)


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
        ``"simulated"``, ``"real"`` or ``"user"``.
    truth
        The :class:`~course_utils.simulate.glm.LinearMazeSimulation` behind simulated data
        (speed, true tuning, ``neuron_kinds``), ``None`` otherwise.
    """

    units: nap.TsGroup
    position: nap.Tsd
    epochs: nap.IntervalSet
    source: str
    truth: LinearMazeSimulation | None


def load_place_cells(
    source: str = "simulated",
    *,
    data: str | PathLike | None = None,
    seed: int | None = None,
    duration_s: float | None = None,
    bin_s: float | None = None,
) -> PlaceCellSession:
    """Load place cells on a linear track: simulated ground truth, Grosmark & Buzsaki 2016, or yours.

    Parameters
    ----------
    source
        ``"simulated"`` (default, offline, with the truth), ``"real"`` (dataset
        ``place_cells``, fetched and verified on first use) or ``"user"``.
    data
        For ``source="user"``: the path of your NWB file, laid out as the real one (``units``
        with ``cell_type``, ``position``, ``trials``).
    seed
        Seed of the simulation (default 0).
    duration_s, bin_s
        Length (s, default 1800) and bin width (s, default 0.02) of the simulation.

    Returns
    -------
    PlaceCellSession
        ``units``, ``position`` (cm), ``epochs`` (runs along the track), ``source``, ``truth``.

    Raises
    ------
    ValueError
        If ``source`` is unknown, ``data`` is missing for ``"user"`` or given for another
        source, or simulation options come with real or user data.
    FileNotFoundError
        If your file does not exist.
    DataFetchError
        For real data, if the file cannot be fetched or fails its sha256.
    DatasetFormatError
        If the file lacks ``units`` (with ``cell_type``), ``position`` or ``trials``.
    """
    options = {"duration_s": duration_s, "bin_s": bin_s, "seed": seed}
    check_source(source, data, user_data="<path of your NWB file>", simulation_options=options)
    if source == "simulated":
        return _simulated(seed=default(seed, 0), duration_s=default(duration_s, 1800.0), bin_s=default(bin_s, 0.02))
    path = source_file(source, data, "place_cells", LAYOUT)
    return read_place_cells(path, source)


def read_place_cells(path: Path, source: str) -> PlaceCellSession:
    """Read a place-cell session from an NWB file laid out as ``Achilles_10252013.nwb``.

    Parameters
    ----------
    path
        The file.
    source
        ``"real"`` or ``"user"``: recorded in the result, and chooses the advice of an error.

    Returns
    -------
    PlaceCellSession
        With ``truth=None``.

    Raises
    ------
    DatasetFormatError
        If the file is not NWB or lacks ``units`` (with ``cell_type``), ``position`` or ``trials``.
    """
    with open_nwb(path, source) as nwb:
        units = get(nwb, "units", nap.TsGroup, path, source)
        require_column(units, "cell_type", "units", path, source)
        trials = get(nwb, "trials", nap.IntervalSet, path, source)
        position = get(nwb, "position", nap.Tsd, path, source).restrict(trials)
    return PlaceCellSession(units, position, position.time_support, source, None)


def _simulated(*, seed: int, duration_s: float, bin_s: float) -> PlaceCellSession:
    sim = simulate_linear_maze(duration_s, bin_s, seed=seed)
    session = nap.IntervalSet(start=0.0, end=sim.t[-1] + sim.bin_s / 2)
    units = nap.TsGroup(
        {i: nap.Ts(t=times) for i, times in enumerate(sim.spike_times)},
        time_support=session,
        metadata={"cell_type": np.full(len(sim.spike_times), PYRAMIDAL)},
    )
    runs = nap.IntervalSet(start=sim.lap_bounds[:, 0], end=sim.lap_bounds[:, 1])
    position = nap.Tsd(t=sim.t, d=sim.position, time_support=session).restrict(runs)
    return PlaceCellSession(units, position, position.time_support, "simulated", sim)
