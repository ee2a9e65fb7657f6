"""Writers of small NWB files shaped like the course's real recordings, for loader tests.

pynapple 0.11 (``pynapple/io/interface_nwb.py``) names each object of an NWB file by the
last part of its name: the ``Units`` table reads as ``units`` (a TsGroup, with one metadata
column per extra unit column), the trials table as ``trials`` and the epochs table as
``epochs`` (IntervalSets, ``tags`` as metadata), and each TimeSeries by its own name, in
acquisition, stimulus or any processing module (a Tsd when its data are 1-D). So:

- :func:`write_place_cell_nwb` mimics ``Achilles_10252013.nwb``: units with a ``cell_type``
  column (``pE``/``pI``), a 1-D SpatialSeries ``position`` (cm, 40 Hz) inside a ``Position``
  container of the ``behavior`` module, a ``theta_phase`` series (1250 Hz) and the runs along
  the track as trials;
- :func:`write_current_injection_nwb` mimics ``allen_478498617.nwb``: a
  CurrentClampStimulusSeries ``stimulus`` in amperes, the voltage ``response``, a units table
  and epochs tagged by protocol ("Long Square", "Noise 1", ...);
- :func:`write_head_direction_nwb` mimics ``Mouse32-140822.nwb``: units with a ``location``
  column, the head direction ``ry`` and epochs tagged sleep / wake.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.behavior import CompassDirection, Position, SpatialSeries
from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries

_START = datetime(2013, 10, 25, tzinfo=UTC)


@dataclass(frozen=True)
class PlaceCellContents:
    """What :func:`write_place_cell_nwb` wrote."""

    spike_times: tuple[np.ndarray, ...]
    cell_types: tuple[str, ...]
    position_t: np.ndarray
    position_cm: np.ndarray
    trials: np.ndarray  # (n_trials, 2) start, end in s


@dataclass(frozen=True)
class CurrentInjectionContents:
    """What :func:`write_current_injection_nwb` wrote."""

    spike_times: np.ndarray
    stimulus_t: np.ndarray
    stimulus_a: np.ndarray
    epochs: tuple[tuple[float, float, str], ...]  # start, end, tag


def write_place_cell_nwb(
    path: Path, *, seed: int = 0, duration_s: float = 20.0, with_trials: bool = True
) -> PlaceCellContents:
    """Write a small linear-track recording; ``with_trials=False`` leaves the trials out."""
    rng = np.random.default_rng(seed)
    nwb = NWBFile(
        session_description="small stand-in for Achilles_10252013",
        identifier=f"place-cells-{seed}",
        session_start_time=_START,
    )
    cell_types = ("pE", "pE", "pE", "pE", "pI", "pI")
    nwb.add_unit_column(name="cell_type", description="pE: pyramidal, pI: interneuron")
    spikes = tuple(np.sort(rng.uniform(0, duration_s, rng.integers(20, 60))) for _ in cell_types)
    for times, kind in zip(spikes, cell_types):
        nwb.add_unit(spike_times=times, cell_type=kind)

    t = np.arange(0.0, duration_s, 1 / 40)
    position = 80.0 * (1 - np.cos(2 * np.pi * t / 8.0))  # back and forth, 0 to 160 cm
    behavior = nwb.create_processing_module("behavior", "position on the linear track")
    container = Position(name="Position")
    container.add_spatial_series(
        SpatialSeries(
            name="position",
            data=position,
            timestamps=t,
            unit="cm",
            reference_frame="start of the linear track",
        )
    )
    behavior.add(container)

    ecephys = nwb.create_processing_module("ecephys", "LFP-derived signals")
    n_theta = int(duration_s * 1250)
    ecephys.add(
        TimeSeries(
            name="theta_phase",
            unit="radians",
            rate=1250.0,
            starting_time=0.0,
            data=np.angle(np.exp(1j * 2 * np.pi * 8.0 * np.arange(n_theta) / 1250)),
        )
    )

    # One run per half period of the trajectory, leaving out the pauses at the ends.
    trials = np.array([(s + 0.5, s + 3.5) for s in np.arange(0.0, duration_s - 3.5, 4.0)])
    if with_trials:
        for start, end in trials:
            nwb.add_trial(start_time=start, stop_time=end)
    _write(nwb, path)
    return PlaceCellContents(spikes, cell_types, t, position, trials)


def write_current_injection_nwb(
    path: Path, *, seed: int = 0, noise_tag: str = "Noise 1", rate_hz: float = 10_000.0
) -> CurrentInjectionContents:
    """Write a small Allen-like recording; pass another ``noise_tag`` to leave "Noise 1" out."""
    rng = np.random.default_rng(seed)
    nwb = NWBFile(
        session_description="small stand-in for allen_478498617",
        identifier=f"current-injection-{seed}",
        session_start_time=_START,
    )
    device = nwb.create_device(name="amplifier")
    electrode = nwb.create_icephys_electrode(name="electrode_0", description="patch", device=device)
    epochs = (
        (0.0, 1.0, "Long Square"),
        (1.5, 3.0, noise_tag),
        (3.5, 5.0, noise_tag),
        (5.5, 6.5, "Noise 2"),
    )
    t = np.arange(0.0, 7.0, 1 / rate_hz)
    stimulus = np.zeros_like(t)
    for start, end, tag in epochs:
        inside = (t >= start) & (t < end)
        noisy = tag.startswith("Noise")
        stimulus[inside] = 1e-10 + (2e-11 * rng.standard_normal(inside.sum()) if noisy else 0.0)
    nwb.add_stimulus(
        CurrentClampStimulusSeries(
            name="stimulus",
            data=stimulus,
            rate=rate_hz,
            starting_time=0.0,
            electrode=electrode,
            gain=1.0,
        )
    )
    nwb.add_acquisition(
        CurrentClampSeries(
            name="response",
            data=-0.07 + 0.005 * rng.standard_normal(t.size),
            rate=rate_hz,
            starting_time=0.0,
            electrode=electrode,
            gain=1.0,
        )
    )
    spikes = np.sort(rng.uniform(0.0, 7.0, 80))
    nwb.add_unit(spike_times=spikes)
    for start, end, tag in epochs:
        nwb.add_epoch(start_time=start, stop_time=end, tags=[tag])
    _write(nwb, path)
    return CurrentInjectionContents(spikes, t, stimulus, epochs)


@dataclass(frozen=True)
class HeadDirectionContents:
    """What :func:`write_head_direction_nwb` wrote."""

    spike_times: tuple[np.ndarray, ...]
    locations: tuple[str, ...]
    heading_t: np.ndarray
    heading_rad: np.ndarray
    epochs: tuple[tuple[float, float, str], ...]  # start, end, tag


def write_head_direction_nwb(path: Path, *, seed: int = 0, wake_tag: str = "wake") -> HeadDirectionContents:
    """Write a small recording shaped like ``Mouse32-140822.nwb``.

    Units with a ``location`` column (``adn`` or ``thalamus``), the head direction ``ry``
    (radians, 40 Hz, during wake only) as a SpatialSeries in a ``CompassDirection`` container
    of the ``behavior`` module, and epochs tagged sleep / wake / sleep. Pass another
    ``wake_tag`` to leave "wake" out.
    """
    rng = np.random.default_rng(seed)
    nwb = NWBFile(
        session_description="small stand-in for Mouse32-140822",
        identifier=f"head-direction-{seed}",
        session_start_time=_START,
    )
    epochs = ((0.0, 10.0, "sleep"), (10.0, 30.0, wake_tag), (30.0, 40.0, "sleep"))
    locations = ("adn", "adn", "adn", "adn", "thalamus", "thalamus")
    nwb.add_unit_column(name="location", description="brain area of the unit")
    spikes = tuple(np.sort(rng.uniform(0.0, 40.0, rng.integers(40, 120))) for _ in locations)
    for times, location in zip(spikes, locations):
        nwb.add_unit(spike_times=times, location=location)

    t = np.arange(10.0, 30.0, 1 / 40)
    heading = np.mod(np.cumsum(rng.normal(0.0, 0.05, t.size)), 2 * np.pi)
    behavior = nwb.create_processing_module("behavior", "head direction")
    compass = CompassDirection(name="CompassDirection")
    compass.add_spatial_series(
        SpatialSeries(
            name="ry",
            data=heading,
            timestamps=t,
            unit="radians",
            reference_frame="arbitrary, fixed in the environment",
        )
    )
    behavior.add(compass)
    for start, end, tag in epochs:
        nwb.add_epoch(start_time=start, stop_time=end, tags=[tag])
    _write(nwb, path)
    return HeadDirectionContents(spikes, locations, t, heading, epochs)


def _write(nwb: NWBFile, path: Path) -> None:
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
