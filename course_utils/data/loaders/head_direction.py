"""Chapter 2's head-direction cells: a coupled population and the head's direction."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
import pynapple as nap

from course_utils.data.loaders._contract import check_source, default, source_file
from course_utils.data.loaders._nwb import get, open_nwb, require_column, tagged_epochs
from course_utils.simulate.population import HeadDirectionPopulation, simulate_head_direction_population

WAKE_TAG = "wake"
HEAD_DIRECTION_NUCLEUS = "adn"
LAYOUT = (
    "an NWB file that pynapple reads with 'units' (metadata column 'location'), 'ry' (head "
    "direction, rad) and 'epochs' (metadata column 'tags', wakefulness tagged 'wake'), as "
    "Mouse32-140822.nwb"
)


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
        ``"simulated"``, ``"real"`` or ``"user"``.
    truth
        The :class:`~course_utils.simulate.population.HeadDirectionPopulation` behind
        simulated data (tuning, coupling graph and filters), ``None`` otherwise.
    """

    units: nap.TsGroup
    heading: nap.Tsd
    epochs: nap.IntervalSet
    source: str
    truth: HeadDirectionPopulation | None


def load_head_direction(
    source: str = "simulated",
    *,
    data: str | PathLike | None = None,
    seed: int | None = None,
    duration_s: float | None = None,
    bin_s: float | None = None,
    n_neurons: int | None = None,
) -> HeadDirectionSession:
    """Load head-direction cells: a simulated coupled population, Peyrache et al. 2015, or yours.

    Parameters
    ----------
    source
        ``"simulated"`` (default, offline, with the true coupling graph), ``"real"``
        (dataset ``head_direction``, ``Mouse32-140822.nwb``, fetched and verified on first
        use; its wake epochs and the head direction ``ry``) or ``"user"``.
    data
        For ``source="user"``: the path of your NWB file, laid out as the real one.
    seed
        Seed of the simulation (default 0).
    duration_s, bin_s, n_neurons
        Length (s, default 180), bin width (s, default 0.02) and size (default 20) of the
        simulated population (see
        :func:`~course_utils.simulate.population.simulate_head_direction_population`).

    Returns
    -------
    HeadDirectionSession
        ``units``, ``heading`` (rad), ``epochs`` (wake), ``source``, ``truth``.

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
        If the file lacks ``units`` (with ``location``), ``ry`` or ``epochs`` tagged "wake".
    """
    options = {"duration_s": duration_s, "bin_s": bin_s, "n_neurons": n_neurons, "seed": seed}
    check_source(source, data, user_data="<path of your NWB file>", simulation_options=options)
    if source == "simulated":
        return _simulated(
            seed=default(seed, 0),
            duration_s=default(duration_s, 180.0),
            bin_s=default(bin_s, 0.02),
            n_neurons=default(n_neurons, 20),
        )
    path = source_file(source, data, "head_direction", LAYOUT)
    return read_head_direction(path, source)


def read_head_direction(path: Path, source: str) -> HeadDirectionSession:
    """Read the wake epochs of an NWB file laid out as ``Mouse32-140822.nwb``.

    Parameters
    ----------
    path
        The file.
    source
        ``"real"`` or ``"user"``: recorded in the result, and chooses the advice of an error.

    Returns
    -------
    HeadDirectionSession
        With ``truth=None``.

    Raises
    ------
    DatasetFormatError
        If the file is not NWB or lacks ``units`` (with ``location``), ``ry`` or ``epochs`` tagged "wake".
    """
    with open_nwb(path, source) as nwb:
        units = get(nwb, "units", nap.TsGroup, path, source)
        require_column(units, "location", "units", path, source)
        epochs = tagged_epochs(nwb, WAKE_TAG, path, source)
        heading = get(nwb, "ry", nap.Tsd, path, source).restrict(epochs)
    return HeadDirectionSession(units, heading, heading.time_support, source, None)


def _simulated(*, seed: int, duration_s: float, bin_s: float, n_neurons: int) -> HeadDirectionSession:
    sim = simulate_head_direction_population(duration_s, bin_s, seed=seed, n_neurons=n_neurons)
    session = nap.IntervalSet(start=0.0, end=sim.t[-1] + sim.bin_s / 2)
    units = nap.TsGroup(
        {i: nap.Ts(t=times) for i, times in enumerate(sim.spike_times)},
        time_support=session,
        metadata={"location": np.full(sim.n_neurons, HEAD_DIRECTION_NUCLEUS)},
    )
    heading = nap.Tsd(t=sim.t, d=sim.heading, time_support=session)
    return HeadDirectionSession(units, heading, session, "simulated", sim)
