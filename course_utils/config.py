"""Run scale, per-chapter sizes, seeds and cache paths: the course's only global state.

The run scale is read from the environment variable ``COURSE_SCALE``:

``smoke``
    every cell runs, tiny sizes; used by CI (each chapter under 60 s on 2 CPU cores).
``default``
    a CPU in a few minutes (each chapter under 5 min and 2 GB peak memory).
``full``
    the scale of the original study, meant for one GPU.

Each chapter reads its sizes from one place, :func:`sizes`, so that changing the scale never
means editing a notebook.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

SCALES: tuple[str, ...] = ("smoke", "default", "full")
DEFAULT_SCALE = "default"
SCALE_ENV = "COURSE_SCALE"
DATA_DIR_ENV = "COURSE_DATA_DIR"

# Sizes per chapter and scale. Each chapter's notebook shows its row in the cell tagged
# ``parameters``; the budgets these sizes meet are measured by ``benchmarks/chapters.py``.
_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "glm_basics": {
        "smoke": dict(
            duration_s=300.0, bin_s=0.02, n_position_bins=10, n_basis=6,
            injection_duration_s=80.0, n_kernel_basis=6, n_surface_grid=15,
        ),
        "default": dict(
            duration_s=1800.0, bin_s=0.02, n_position_bins=20, n_basis=8,
            injection_duration_s=200.0, n_kernel_basis=8, n_surface_grid=41,
        ),
        "full": dict(
            duration_s=7200.0, bin_s=0.01, n_position_bins=30, n_basis=10,
            injection_duration_s=800.0, n_kernel_basis=10, n_surface_grid=81,
        ),
    },
    "beta_vae_hh": {
        "smoke": dict(
            digit_latents=(2,), digit_epochs=4, n_traces=240, n_test=60, downsample=20,
            epochs=3, batch_size=32, kernel_size=5,
        ),
        "default": dict(
            digit_latents=(2, 8), digit_epochs=20, n_traces=2000, n_test=400, downsample=20,
            epochs=15, batch_size=32, kernel_size=5,
        ),
        "full": dict(
            digit_latents=(2, 8, 16), digit_epochs=100, n_traces=10_000, n_test=2000, downsample=1,
            epochs=100, batch_size=64, kernel_size=5,
        ),
    },
    "low_rank_ar": {
        "smoke": dict(
            n_neurons=40, rank=2, order=2, n_groups=16, n_heldout_groups=4, group_size=5,
            n_repeats=3, orders=(1, 2, 3), ranks=(1, 2, 3, 4), lambdas=(1e-3, 1e-2),
            learning_rates=(0.01, 0.05, 0.2), n_folds=3, steps=30, eval_every=5, timing_steps=2,
        ),
        "default": dict(
            n_neurons=100, rank=3, order=2, n_groups=32, n_heldout_groups=8, group_size=10,
            n_repeats=4, orders=(1, 2, 3), ranks=(1, 2, 3, 4, 5), lambdas=(1e-4, 1e-3, 1e-2),
            learning_rates=(0.01, 0.05, 0.2), n_folds=3, steps=100, eval_every=5, timing_steps=3,
        ),
        "full": dict(
            n_neurons=500, rank=4, order=2, n_groups=120, n_heldout_groups=20, group_size=10,
            n_repeats=4, orders=(1, 2, 3), ranks=(1, 2, 3, 4, 5, 6, 7, 8),
            lambdas=(1e-5, 1e-4, 1e-3, 1e-2), learning_rates=(0.01, 0.05, 0.2), n_folds=5,
            steps=300, eval_every=5, timing_steps=10,
        ),
    },
}


def get_scale() -> str:
    """Return the run scale named by ``COURSE_SCALE`` (``default`` when unset).

    Returns
    -------
    str
        One of ``"smoke"``, ``"default"``, ``"full"``.

    Raises
    ------
    ValueError
        If ``COURSE_SCALE`` holds anything else.
    """
    scale = os.environ.get(SCALE_ENV, "").strip().lower() or DEFAULT_SCALE
    if scale not in SCALES:
        raise ValueError(
            f"{SCALE_ENV}={os.environ.get(SCALE_ENV)!r} is not a run scale. "
            f"Set it to one of {', '.join(SCALES)} (or unset it for {DEFAULT_SCALE!r})."
        )
    return scale


def chapters() -> tuple[str, ...]:
    """Return the chapter keys that :func:`sizes` knows."""
    return tuple(_SIZES)


def sizes(chapter: str, scale: str | None = None) -> Mapping[str, Any]:
    """Return the sizes of one chapter at one scale.

    Parameters
    ----------
    chapter
        Chapter key, the notebook's file name without the number prefix
        (``"glm_basics"`` for ``01_glm_basics.py``); the prefixed form is accepted too.
    scale
        Run scale; ``None`` reads ``COURSE_SCALE`` through :func:`get_scale`.

    Returns
    -------
    Mapping
        A read-only mapping from size name to value.

    Raises
    ------
    KeyError
        If the chapter is unknown.
    ValueError
        If the scale is unknown.
    """
    key = chapter.split("_", 1)[1] if chapter[:2].isdigit() else chapter
    if key not in _SIZES:
        raise KeyError(
            f"No sizes for chapter {chapter!r}; known chapters: {', '.join(_SIZES)}. "
            "Add the chapter's row to course_utils.config._SIZES."
        )
    if scale is None:
        scale = get_scale()
    if scale not in SCALES:
        raise ValueError(f"Unknown scale {scale!r}; use one of {', '.join(SCALES)}.")
    return MappingProxyType(dict(_SIZES[key][scale]))


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's, NumPy's and (if it is installed) torch's random generators at once.

    Parameters
    ----------
    seed
        A non-negative integer.

    Returns
    -------
    numpy.random.Generator
        A fresh generator seeded with ``seed``; prefer it to NumPy's global state.

    Raises
    ------
    ValueError
        If ``seed`` is negative or not an integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    # Libraries that still draw from NumPy's global state (e.g. hnn-core's optimizer).
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        pass
    else:
        torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    return np.random.default_rng(seed)


def data_dir() -> Path:
    """Return the data cache folder: ``COURSE_DATA_DIR`` or the platform's user cache.

    The folder is not created here; :mod:`course_utils.data` creates it when it writes.
    """
    configured = os.environ.get(DATA_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("course-regtune")) / "data"
