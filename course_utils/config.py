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
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from course_utils.validation import check_ints

SCALES: tuple[str, ...] = ("smoke", "default", "full")
DEFAULT_SCALE = "default"
SCALE_ENV = "COURSE_SCALE"
DATA_DIR_ENV = "COURSE_DATA_DIR"
CHECK_MODES: tuple[str, ...] = ("lenient", "strict", "record")
CHECK_MODE_ENV = "COURSE_CHECKS"

# Sizes per chapter and scale. Each chapter's notebook shows its row in the cell tagged
# ``parameters``; the budgets these sizes meet are measured by ``benchmarks/chapters.py``.
_SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "glm_basics": {
        "smoke": dict(
            duration_s=300.0,
            bin_s=0.02,
            n_position_bins=10,
            n_basis=6,
            injection_duration_s=80.0,
            n_kernel_basis=6,
            n_surface_grid=15,
        ),
        "default": dict(
            duration_s=1800.0,
            bin_s=0.02,
            n_position_bins=20,
            n_basis=8,
            injection_duration_s=200.0,
            n_kernel_basis=8,
            n_surface_grid=41,
        ),
        "full": dict(
            duration_s=7200.0,
            bin_s=0.01,
            n_position_bins=30,
            n_basis=10,
            injection_duration_s=800.0,
            n_kernel_basis=10,
            n_surface_grid=81,
        ),
    },
    "overfitting_ridge": {
        "smoke": dict(
            n_neurons=12,
            duration_s=90.0,
            bin_s=0.02,
            history_window_s=0.5,
            n_history_basis=6,
            n_heading_harmonics=3,
            train_fraction=0.75,
            n_folds=2,
            # Every nemos fit compiles anew (a new objective per fit), so the smoke grid is as
            # short as keeps its optimum inside (three ridge strengths); the sparse path needs two.
            alphas=(1.0, 100.0, 1e4),
            path_alphas=(30.0, 10.0),
        ),
        "default": dict(
            n_neurons=20,
            duration_s=180.0,
            bin_s=0.02,
            history_window_s=0.5,
            n_history_basis=6,
            n_heading_harmonics=3,
            train_fraction=0.75,
            n_folds=3,
            alphas=(0.01, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4),
            path_alphas=(100.0, 30.0, 10.0, 3.0),
        ),
        "full": dict(
            n_neurons=40,
            duration_s=1200.0,
            bin_s=0.02,
            history_window_s=0.6,
            n_history_basis=7,
            n_heading_harmonics=3,
            train_fraction=0.75,
            n_folds=5,
            alphas=tuple(float(a) for a in 10.0 ** np.arange(-2.0, 4.5, 0.5)),
            path_alphas=(300.0, 100.0, 50.0, 30.0, 20.0, 10.0, 5.0, 3.0),
        ),
    },
    "low_rank_ar": {
        "smoke": dict(
            n_neurons=40,
            rank=2,
            order=2,
            n_groups=16,
            n_heldout_groups=4,
            group_size=5,
            n_repeats=3,
            orders=(1, 2, 3),
            ranks=(1, 2, 3, 4),
            lambdas=(1e-3, 1e-2),
            learning_rates=(0.01, 0.05, 0.2),
            n_folds=3,
            steps=30,
            eval_every=5,
            timing_steps=2,
            al_initial_groups=2,
            al_groups_per_round=2,
            al_rounds=5,
            al_experiments=3,
            al_candidates=200,
            n_seeds=5,
        ),
        "default": dict(
            n_neurons=100,
            rank=3,
            order=2,
            n_groups=32,
            n_heldout_groups=8,
            group_size=10,
            n_repeats=4,
            orders=(1, 2, 3),
            ranks=(1, 2, 3, 4, 5),
            lambdas=(1e-4, 1e-3, 1e-2),
            learning_rates=(0.01, 0.05, 0.2),
            n_folds=3,
            steps=300,
            eval_every=5,
            timing_steps=3,
            al_initial_groups=4,
            al_groups_per_round=4,
            al_rounds=5,
            al_experiments=4,
            al_candidates=300,
            n_seeds=5,
        ),
        "full": dict(
            n_neurons=500,
            rank=4,
            order=2,
            n_groups=120,
            n_heldout_groups=20,
            group_size=10,
            n_repeats=4,
            orders=(1, 2, 3),
            ranks=(1, 2, 3, 4, 5, 6, 7, 8),
            lambdas=(1e-5, 1e-4, 1e-3, 1e-2),
            learning_rates=(0.01, 0.05, 0.2),
            n_folds=5,
            steps=300,
            eval_every=5,
            timing_steps=10,
            al_initial_groups=10,
            al_groups_per_round=15,
            al_rounds=6,
            al_experiments=4,
            al_candidates=1000,
            n_seeds=5,
        ),
    },
    "crbm_lambda": {
        "smoke": dict(
            n_neurons=40,
            n_assemblies=4,
            n_timepoints=2000,
            train_fraction=0.6,
            validation_fraction=0.2,
            gap=20,
            n_hidden=8,
            lambdas_low=(0.005, 0.05),
            lambdas_high=(0.5, 5.0),
            n_seeds=2,
            epochs=40,
            batch_size=100,
            n_chains=64,
            gibbs_steps=2,
            calibration_epochs=4,
            calibration_steps=10,
            eval_chains=100,
            eval_burn_in=200,
            eval_samples=10,
            eval_thin=5,
            eval_chunk=64,
            n_coupling_neurons=40,
        ),
        "default": dict(
            n_neurons=200,
            n_assemblies=20,
            n_timepoints=4000,
            train_fraction=0.6,
            validation_fraction=0.2,
            gap=20,
            n_hidden=30,
            lambdas_low=(0.005, 0.02, 0.1),
            lambdas_high=(0.5, 1.0, 2.0, 5.0),
            n_seeds=3,
            epochs=50,
            batch_size=100,
            n_chains=64,
            gibbs_steps=2,
            calibration_epochs=6,
            calibration_steps=10,
            eval_chains=200,
            eval_burn_in=300,
            eval_samples=10,
            eval_thin=10,
            eval_chunk=64,
            n_coupling_neurons=200,
        ),
        "full": dict(
            n_neurons=2000,
            n_assemblies=100,
            n_timepoints=20_000,
            train_fraction=0.6,
            validation_fraction=0.2,
            gap=20,
            n_hidden=150,
            lambdas_low=(0.005, 0.01, 0.02, 0.05, 0.1),
            lambdas_high=(0.5, 1.0, 2.0, 3.0, 5.0),
            n_seeds=60,
            epochs=40,
            batch_size=100,
            n_chains=100,
            gibbs_steps=5,
            calibration_epochs=5,
            calibration_steps=20,
            eval_chains=500,
            eval_burn_in=2000,
            eval_samples=20,
            eval_thin=20,
            eval_chunk=10,
            n_coupling_neurons=400,
        ),
    },
    "beta_vae_hh": {
        # Every (beta, latent size) pair trains n_seeds times from its own initialization, all
        # in one stacked module; the traces are cut into training, validation (beta and the
        # latent size are chosen on it) and test sets (only the chosen pair is scored on it).
        "smoke": dict(
            digit_latents=(2,),
            digit_epochs=4,
            n_traces=240,
            n_validation=60,
            n_test=60,
            downsample=20,
            epochs=3,
            batch_size=32,
            kernel_size=5,
            latents=(2, 20),
            n_seeds=3,
        ),
        "default": dict(
            digit_latents=(2, 8),
            digit_epochs=20,
            n_traces=2000,
            n_validation=400,
            n_test=400,
            downsample=20,
            epochs=15,
            batch_size=32,
            kernel_size=5,
            latents=(2, 20),
            n_seeds=3,
        ),
        "full": dict(
            digit_latents=(2, 8, 16),
            digit_epochs=100,
            n_traces=10_000,
            n_validation=2000,
            n_test=2000,
            downsample=1,
            epochs=100,
            batch_size=64,
            kernel_size=5,
            latents=(2, 10, 20),
            n_seeds=5,
        ),
    },
    "dipole_optimization": {
        # A 0.1 ms step halves every simulation against 0.05 ms (the full scale keeps hnn-core's
        # 0.025 ms). The target averages many more trials than an evaluation, as a recording
        # does (about 100). Every solver runs from n_starts starts (the hand-tuned one first)
        # with `budget` evaluations each, on parameters scaled to [0, 1]; the polish refines the
        # best point; trials n_trials + 1 to held_out_trials score two points on draws no fit
        # used; the stratified-draw fit runs COBYLA from stratified_starts starts with
        # stratified_budget evaluations each and polishes the two best; real_budget evaluations
        # fit the MEG recording from the hand-tuned start; the planted and tuned points are
        # scored on up to fidelity_factor x n_trials trials;
        # the stratified fit is repeated on recovery_targets more targets (Going further).
        # Smoke runs a 2 x 2 column and two starts (CI's 60 s); default and full run three
        # and four starts.
        "smoke": dict(
            mesh_shape=(2, 2),
            dt_ms=0.1,
            n_trials=2,
            target_trials=8,
            held_out_trials=4,
            budget=5,
            cma_popsize=5,
            n_starts=2,
            polish_budget=5,
            stratified_starts=2,
            stratified_budget=5,
            recovery_targets=1,
            slice_grid=3,
            real_budget=5,
            profile_points=3,
            fidelity_factor=4,
        ),
        "default": dict(
            mesh_shape=(3, 3),
            dt_ms=0.1,
            n_trials=4,
            target_trials=96,
            held_out_trials=12,
            budget=12,
            cma_popsize=6,
            n_starts=3,
            polish_budget=12,
            stratified_starts=6,
            stratified_budget=12,
            recovery_targets=2,
            slice_grid=5,
            real_budget=16,
            profile_points=7,
            fidelity_factor=8,
        ),
        "full": dict(
            mesh_shape=(10, 10),
            dt_ms=0.025,
            n_trials=5,
            target_trials=100,
            held_out_trials=20,
            budget=50,
            cma_popsize=10,
            n_starts=4,
            polish_budget=20,
            stratified_starts=8,
            stratified_budget=20,
            recovery_targets=2,
            slice_grid=7,
            real_budget=50,
            profile_points=11,
            fidelity_factor=8,
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


def check_mode() -> str:
    """Return how exercise checks react, from ``COURSE_CHECKS`` (``lenient`` when unset).

    ``lenient``
        print feedback and never raise: attendee notebooks always run top to bottom;
    ``strict``
        raise when an answer does not match its recorded answer: the book build, so that a
        solution that drifts from its recorded answer fails the build;
    ``record``
        store each checked answer as the expected one (``python -m course_utils
        record-answers``, run on the solutions).

    Raises
    ------
    ValueError
        If ``COURSE_CHECKS`` holds anything else.
    """
    mode = os.environ.get(CHECK_MODE_ENV, "").strip().lower() or "lenient"
    if mode not in CHECK_MODES:
        raise ValueError(
            f"{CHECK_MODE_ENV}={os.environ.get(CHECK_MODE_ENV)!r} is not a check mode. "
            f"Set it to one of {', '.join(CHECK_MODES)} (or unset it for 'lenient')."
        )
    return mode


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for a block (and the kernels started in it), then restore them.

    Used where the course runs notebooks itself (recording answers, benchmarks): the scale,
    check mode and cache folder reach a new kernel only through its environment.
    """
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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
    """Seed Python's, NumPy's and (if it has been imported) torch's random generators at once.

    torch is seeded only when the caller has already imported it: importing it here would
    add seconds to chapters that never use it. Import torch before calling.

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
    check_ints(minimum=0, seed=seed)
    seed = int(seed)
    random.seed(seed)
    # Libraries that still draw from NumPy's global state (e.g. hnn-core's optimizer).
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)  # seeds CUDA and MPS generators too
    return np.random.default_rng(seed)


def data_dir() -> Path:
    """Return the data cache folder: ``COURSE_DATA_DIR`` or the platform's user cache.

    The folder is not created here; :mod:`course_utils.data` creates it when it writes.
    """
    configured = os.environ.get(DATA_DIR_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    return cache_dir() / "data"


def cache_dir() -> Path:
    """Return the course's cache folder for anything that is not data (compiled programs).

    It is the platform's user cache folder for ``course-regtune``; ``make`` points
    ``XDG_CACHE_HOME`` into the checkout, so the course never writes in ``$HOME`` there.
    """
    import platformdirs

    return Path(platformdirs.user_cache_dir("course-regtune"))


def use_jax_compilation_cache() -> Path:
    """Keep JAX's compiled programs on disk so that a second run reuses them.

    nemos compiles its optimizer with JAX for each shape of design matrix and each penalty
    strength. A chapter that fits many models (every fold of a grid search, every strength of
    a path) spends much of its first run compiling; with the cache, later runs and repeated
    fits of the same shape skip that step. Compiled programs are keyed by JAX's version and
    the machine, so a stale entry is never used.

    Returns
    -------
    Path
        The folder that holds the compiled programs.
    """
    import jax

    folder = cache_dir() / "jax"
    folder.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    # Cache every program: the many small ones are what a grid search compiles over and over.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return folder
