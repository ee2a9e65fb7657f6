"""Chapter 1's current injection: a neuron's spikes under noisy injected current."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import pynapple as nap

from course_utils.data.loaders._contract import check_source, default, source_file
from course_utils.data.loaders._nwb import get, open_nwb, tagged_epochs
from course_utils.simulate.glm import CurrentInjectionSimulation, simulate_current_injection

NOISE_TAG = "Noise 1"
AMPERE_TO_PICOAMPERE = 1e12
LAYOUT = (
    "an NWB file that pynapple reads with 'units', 'stimulus' (A) and 'epochs' (metadata "
    "column 'tags', the noise sweeps tagged 'Noise 1'), as allen_478498617.nwb"
)


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
        ``"simulated"``, ``"real"`` or ``"user"``.
    truth
        The :class:`~course_utils.simulate.glm.CurrentInjectionSimulation` behind simulated
        data (true kernel and baseline), ``None`` otherwise.
    """

    units: nap.TsGroup
    current: nap.Tsd
    epochs: nap.IntervalSet
    source: str
    truth: CurrentInjectionSimulation | None


def load_current_injection(
    source: str = "simulated",
    *,
    data: str | PathLike | None = None,
    seed: int | None = None,
    duration_s: float | None = None,
    bin_s: float | None = None,
) -> CurrentInjectionSession:
    """Load a neuron under noisy current injection: simulated LNP neuron, Allen 478498617, or yours.

    Parameters
    ----------
    source
        ``"simulated"`` (default, offline, with the true kernel), ``"real"`` (dataset
        ``current_injection``, fetched and verified on first use; its "Noise 1" sweeps) or
        ``"user"``.
    data
        For ``source="user"``: the path of your NWB file, laid out as the real one.
    seed
        Seed of the simulation (default 0).
    duration_s, bin_s
        Length (s, default 200) and bin width (s, default 0.005) of the simulation.

    Returns
    -------
    CurrentInjectionSession
        ``units``, ``current`` (pA), ``epochs`` (noise sweeps), ``source``, ``truth``.

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
        If the file lacks ``units``, ``stimulus`` or ``epochs`` tagged "Noise 1".
    """
    options = {"duration_s": duration_s, "bin_s": bin_s, "seed": seed}
    check_source(source, data, user_data="<path of your NWB file>", simulation_options=options)
    if source == "simulated":
        return _simulated(seed=default(seed, 0), duration_s=default(duration_s, 200.0), bin_s=default(bin_s, 0.005))
    path = source_file(source, data, "current_injection", LAYOUT)
    return read_current_injection(path, source)


def read_current_injection(path: Path, source: str) -> CurrentInjectionSession:
    """Read the noise sweeps of an NWB file laid out as ``allen_478498617.nwb``.

    Parameters
    ----------
    path
        The file.
    source
        ``"real"`` or ``"user"``: recorded in the result, and chooses the advice of an error.

    Returns
    -------
    CurrentInjectionSession
        With ``truth=None``; the current in pA.

    Raises
    ------
    DatasetFormatError
        If the file is not NWB or lacks ``units``, ``stimulus`` or ``epochs`` tagged "Noise 1".
    """
    with open_nwb(path, source) as nwb:
        units = get(nwb, "units", nap.TsGroup, path, source)
        stimulus = get(nwb, "stimulus", nap.Tsd, path, source)
        epochs = tagged_epochs(nwb, NOISE_TAG, path, source)
        current = stimulus.restrict(epochs) * AMPERE_TO_PICOAMPERE
    return CurrentInjectionSession(units, current, epochs, source, None)


def _simulated(*, seed: int, duration_s: float, bin_s: float) -> CurrentInjectionSession:
    sim = simulate_current_injection(duration_s, bin_s, seed=seed)
    session = nap.IntervalSet(start=0.0, end=sim.t[-1] + sim.bin_s / 2)
    units = nap.TsGroup({0: nap.Ts(t=sim.spike_times)}, time_support=session)
    sweeps = nap.IntervalSet(start=sim.sweep_bounds[:, 0], end=sim.sweep_bounds[:, 1])
    current = nap.Tsd(t=sim.t, d=sim.current, time_support=session).restrict(sweeps)
    return CurrentInjectionSession(units, current, current.time_support, "simulated", sim)
