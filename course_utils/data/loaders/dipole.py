"""Chapter 6's evoked dipole: simulated with planted drives, HNN's MEG recording, or your file."""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from course_utils.data.errors import DatasetFormatError
from course_utils.data.loaders._contract import check_source, default, refetch_advice, source_file

if TYPE_CHECKING:  # hnn-core is imported only when a simulation runs
    from course_utils.simulate.dipole import PlantedDipole

LAYOUT = (
    "whitespace-separated text, column 1 time (ms), column 2 dipole (nAm), one sample per "
    "line, as in HNN's yes_trial_S1_ERP_all_avg.txt (hnn-core's four columns: time, "
    "aggregate, L2, L5, are read too, keeping the aggregate)"
)


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
        ``"simulated"``, ``"real"`` or ``"user"``.
    truth
        The :class:`~course_utils.simulate.dipole.PlantedDipole` behind simulated data
        (planted parameters, clean dipole, noise level), ``None`` otherwise.
    """

    times: np.ndarray
    dipole: np.ndarray
    source: str
    truth: PlantedDipole | None


def load_evoked_dipole(
    source: str = "simulated",
    *,
    data: str | PathLike | None = None,
    seed: int | None = None,
    params: dict[str, float] | None = None,
    mesh_shape: tuple[int, int] | None = None,
    n_trials: int | None = None,
    dt: float | None = None,
    noise_fraction: float | None = None,
    event_seed: int | None = None,
) -> EvokedDipole:
    """Load an evoked dipole: simulated with planted parameters, the MEG recording, or your file.

    Parameters
    ----------
    source
        ``"simulated"`` (default, offline, with the truth): hnn-core's column with the
        drives of :func:`course_utils.simulate.dipole.add_erp_drives`, sampled like the
        recording, plus noise (this runs hnn-core simulations, on its active backend).
        ``"real"``: dataset ``evoked_dipole`` (HNN's ``yes_trial_S1_ERP_all_avg.txt``),
        which ships with the package under its license notice and is verified by its
        sha256 (no download). ``"user"``: your file, given as ``data``.
    data
        For ``source="user"``: the path of your dipole file, whitespace-separated text,
        column 1 time (ms), column 2 dipole (nAm); a file of four columns (time, aggregate,
        L2, L5), as hnn-core writes, is read too, keeping the aggregate.
    seed
        Noise seed of the simulation (default 0).
    params
        Planted proximal-2 parameters (keys of
        :data:`course_utils.simulate.dipole.PARAM_NAMES`); default
        :data:`~course_utils.simulate.dipole.PLANTED_PARAMS`.
    mesh_shape, n_trials, dt, noise_fraction, event_seed
        Column size (default 3 x 3), trials averaged (4), integration step (0.05 ms), noise
        level (0.02 of the peak-to-peak range) and drive-time seed (default
        :data:`~course_utils.simulate.dipole.TARGET_EVENT_SEED`, independent of the model's,
        as for a recording) of the simulation (see
        :func:`~course_utils.simulate.dipole.simulate_planted_dipole`).

    Returns
    -------
    EvokedDipole
        ``times`` (ms), ``dipole`` (nAm), ``source``, ``truth``.

    Raises
    ------
    ValueError
        If ``source`` is unknown (a path given as the source is pointed at ``data=``),
        ``data`` is missing for ``"user"`` or given for another source, or simulation
        options come with real or user data.
    FileNotFoundError
        If your file does not exist.
    DataFetchError
        For real data, if the packaged file is missing or altered (``ChecksumError``:
        reinstall the package).
    DatasetFormatError
        If a file is not two (or four) columns of finite numbers with increasing times.
    """
    options = {
        "params": params,
        "mesh_shape": mesh_shape,
        "n_trials": n_trials,
        "dt": dt,
        "noise_fraction": noise_fraction,
        "event_seed": event_seed,
        "seed": seed,
    }
    check_source(source, data, user_data="<path of your dipole text file>", simulation_options=options)
    if source == "simulated":
        from course_utils.simulate.dipole import PLANTED_PARAMS, TARGET_EVENT_SEED, simulate_planted_dipole

        planted = simulate_planted_dipole(
            default(params, PLANTED_PARAMS),
            mesh_shape=default(mesh_shape, (3, 3)),
            n_trials=default(n_trials, 4),
            dt=default(dt, 0.05),
            noise_fraction=default(noise_fraction, 0.02),
            seed=default(seed, 0),
            event_seed=default(event_seed, TARGET_EVENT_SEED),
        )
        return EvokedDipole(planted.times, planted.dipole, "simulated", planted)
    path = source_file(source, data, "evoked_dipole", LAYOUT)
    advice = refetch_advice(path, source) if source == "real" else f"Expected {LAYOUT}."
    times, dipole = read_dipole_text(path, advice)
    return EvokedDipole(times, dipole, source, None)


def read_dipole_text(path: Path, advice: str) -> tuple[np.ndarray, np.ndarray]:
    """Read HNN's dipole text format.

    Parameters
    ----------
    path
        The file: two columns (time in ms, dipole in nAm), or hnn-core's four (time,
        aggregate, L2, L5), of which the aggregate is kept.
    advice
        What to do, appended to every error.

    Returns
    -------
    times, dipole : numpy.ndarray
        Read-only arrays of the sample times (strictly increasing) and the dipole.

    Raises
    ------
    DatasetFormatError
        If the file is not numbers, has the wrong number of columns or fewer than two rows,
        holds NaN or infinite values, or its times do not increase.
    """
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
