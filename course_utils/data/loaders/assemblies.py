"""Chapter 4's binarized population activity: planted assemblies or your own recording.

The zebrafish recordings of van der Plas et al. (eLife 2023) are large and not downloaded by the
course, so there is no ``"real"`` source: binarize them (or any recording) and pass the array.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from course_utils.data.loaders._contract import check_source, default
from course_utils.validation import check_ints

if TYPE_CHECKING:
    from course_utils.simulate.assemblies import AssemblySimulation

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
    truth: AssemblySimulation | None
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
            f"data has {n_time} time points: too few for the blocks asked for (train_fraction="
            f"{train_fraction}, validation_fraction={validation_fraction}, gap={gap}), each of at "
            f"least 2.{hint}"
        )
    return (array[:n_train], array[start_validation : start_validation + n_validation], array[start_test:])


def _check_binary_activity(data: Any, train_fraction: float) -> tuple[np.ndarray, int]:
    """Validate a user's (time x neurons) binary array; return it as uint8 and the split."""
    try:
        array = np.asarray(data)
    except Exception as error:  # noqa: BLE001 (anything that is not array-like)
        raise ValueError(f"data must be a (time, neurons) array of 0/1; could not read it ({error}).") from None
    if array.ndim != 2:
        raise ValueError(
            f"data must be a 2-D (time, neurons) array, got {array.ndim} dimension(s) of shape {array.shape}."
        )
    if array.dtype.kind not in "biuf":
        raise ValueError(f"data must hold numbers (0/1 or booleans), got dtype {array.dtype}.")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError("data contains NaN or inf: fill or drop those time points first.")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(
            "data must be binary (0/1): binarize it first, e.g. spikes = (deconvolved > threshold), "
            "or events = (dff > k * noise_sd), and pass the result."
        )
    n_time, n_neurons = array.shape
    if n_neurons < 2:
        raise ValueError(f"data needs at least 2 neurons (columns), got {n_neurons}.")
    if not 0.0 < float(train_fraction) < 1.0:
        raise ValueError(f"train_fraction must lie strictly between 0 and 1, got {train_fraction!r}.")
    n_train = int(round(float(train_fraction) * n_time))
    if n_train < 2 or n_time - n_train < 2:
        hint = " Is it transposed? Rows must be time points." if n_neurons > n_time else ""
        raise ValueError(
            f"data has {n_time} time points: too few for a training and a test segment of at "
            f"least 2 each with train_fraction={train_fraction}.{hint}"
        )
    return array.astype(np.uint8), n_train


def load_assemblies(
    source: str = "simulated",
    *,
    data: Any = None,
    train_fraction: float = 0.8,
    validation_fraction: float = 0.0,
    gap: int = 0,
    seed: int | None = None,
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
        with the planted truth) or ``"user"`` (your ``data``).
    data
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
        Seed of the simulation (default 0).
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
        If ``source`` is unknown (including ``"real"``: the recordings are not downloaded),
        ``data`` is missing for ``"user"`` or given for ``"simulated"``, simulation options
        come with your data, or the array is not 2-D, not binary, has NaN, or is too short to split.
    """
    check_source(
        source,
        data,
        user_data="<(time, neurons) array of 0/1>",
        real_missing=(
            f"the zebrafish recordings are large and not downloaded by the course: get them from "
            f"{ZEBRAFISH_DATA_URL}, binarize them, and pass source='user', data=<array>."
        ),
        simulation_options={**simulation_options, "seed": seed},
        takes_path=False,
    )
    if source == "simulated":
        from course_utils.simulate.assemblies import simulate_assemblies

        sim = simulate_assemblies(train_fraction=train_fraction, seed=default(seed, 0), **simulation_options)
        if not validation_fraction and not gap:
            return AssemblyData(
                train=sim.train, test=sim.test, source="simulated", truth=sim, validation=sim.activity[:0]
            )
        train, validation, test = _split_blocks(sim.activity, train_fraction, validation_fraction, gap)
        return AssemblyData(train=train, test=test, source="simulated", truth=sim, validation=validation)
    array, _ = _check_binary_activity(data, train_fraction)
    train, validation, test = _split_blocks(array, train_fraction, validation_fraction, gap)
    return AssemblyData(train=train, test=test, source="user", truth=None, validation=validation)
