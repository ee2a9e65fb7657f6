"""Chapter 3's photostimulation experiments: simulated low-rank dynamics or your own recording.

The recordings of Wagenmaker et al. (2024) are not public, so there is no ``"real"`` source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from course_utils.data.loaders._contract import check_source

if TYPE_CHECKING:
    from course_utils.simulate.photostim import PhotostimSimulation


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
    truth: PhotostimSimulation | None


def load_photostim(
    source: str = "simulated",
    *,
    data: Any = None,
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
        with the truth attached) or ``"user"`` (your ``data``).
    data
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
        If ``source`` is unknown (including ``"real"``: there is no public copy), if ``data``
        is missing for ``"user"`` or given for ``"simulated"``, if simulation options come
        with your data or ``n_heldout_patterns`` with the simulation, or if the arrays have the
        wrong shape, contain NaN or inf, negative stimulation, or fewer than two patterns.
    """
    check_source(
        source,
        data,
        user_data="(activity, stimulation), two (n_frames, n_neurons) arrays",
        real_missing=(
            "the photostimulation recordings of Wagenmaker et al. (2024) are not public: load "
            "your own with source='user', data=(activity, stimulation)."
        ),
        simulation_options=simulation_options,
        takes_path=False,
    )
    if source == "simulated":
        if n_heldout_patterns is not None:
            raise ValueError(
                "n_heldout_patterns applies to your data; the simulation holds out its own "
                "n_heldout_groups (pass that instead)."
            )
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
    activity, stimulation = _photostim_arrays(data)
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


def _photostim_arrays(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a user's ``(activity, stimulation)``; return them as float arrays."""
    if isinstance(data, dict):
        missing = {"activity", "stimulation"} - set(data)
        if missing:
            raise ValueError(f"data is missing {sorted(missing)}: give 'activity' and 'stimulation'.")
        data = (data["activity"], data["stimulation"])
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("data must be (activity, stimulation) or a dict with those two keys.")
    checked = []
    for name, values in zip(("activity", "stimulation"), data):
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
