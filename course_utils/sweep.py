"""Hyperparameter sweeps that run serially, on local cores, or on a Dask cluster.

One call, three places to run it::

    from course_utils.sweep import grid, run_sweep

    results = run_sweep(train_one, grid(lam=[0.01, 0.1, 1.0], seed=[0, 1]))          # serial
    results = run_sweep(train_one, grid(...), backend="loky", n_jobs=2)              # local cores
    from dask.distributed import Client
    with Client("tcp://scheduler:8786"):                                             # a cluster
        results = run_sweep(train_one, grid(...), backend="dask")

It is built on joblib, whose ``dask`` backend sends each task to the cluster of the active
``dask.distributed.Client``. Each task should be coarse (a whole batched fit of many models
as one tensor computation, say), because batching inside one machine stays the fast path;
this helper spreads such batches over cores or machines.
"""

from __future__ import annotations

import itertools
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import joblib

BACKENDS: tuple[str, ...] = ("serial", "loky", "threading", "dask")


@dataclass(frozen=True)
class SweepResult:
    """The outcome of one point of a sweep.

    Attributes
    ----------
    params
        The keyword arguments the function was called with.
    value
        What the function returned (``None`` when it raised).
    error
        ``None`` on success, else the exception's type, message and traceback as text.
    seconds
        Wall time of the call.
    """

    params: dict[str, Any]
    value: Any = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when the call returned without raising."""
        return self.error is None


def grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """Return every combination of the given values, as keyword dictionaries.

    Raises
    ------
    ValueError
        If no axis is given or an axis is empty.
    """
    if not axes:
        raise ValueError("grid() needs at least one axis, e.g. grid(lam=[0.1, 1.0]).")
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or len(values) == 0:
            raise ValueError(f"axis {name!r} must be a non-empty sequence of values, got {values!r}.")
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(axes[n] for n in names))]


def _call(function: Callable[..., Any], params: Mapping[str, Any], catch: bool) -> SweepResult:
    start = time.perf_counter()
    try:
        value = function(**params)
    except Exception as exc:  # recorded, so one bad point does not sink the sweep
        if not catch:
            raise
        text = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"
        return SweepResult(dict(params), None, text, time.perf_counter() - start)
    return SweepResult(dict(params), value, None, time.perf_counter() - start)


def run_sweep(
    function: Callable[..., Any],
    points: Iterable[Mapping[str, Any]],
    *,
    backend: str = "serial",
    n_jobs: int | None = None,
    catch_errors: bool = True,
) -> list[SweepResult]:
    """Call ``function(**params)`` for every point, in order, and collect the results.

    Parameters
    ----------
    function
        The function to call; for ``loky`` and ``dask`` it is pickled (with cloudpickle,
        so a function defined in a notebook works too).
    points
        Keyword dictionaries, e.g. from :func:`grid`.
    backend
        ``"serial"`` (in this process), ``"loky"`` (local processes), ``"threading"``, or
        ``"dask"`` (the cluster of the active ``dask.distributed.Client``).
    n_jobs
        Workers for ``loky``/``threading`` (default: all cores); ignored by ``serial``;
        for ``dask`` the cluster decides.
    catch_errors
        Record a failing point's error in its result (default) instead of stopping the sweep.

    Returns
    -------
    list of SweepResult
        One per point, in the order of ``points``.

    Raises
    ------
    ValueError
        On an unknown backend or an empty sweep.
    RuntimeError
        For ``backend="dask"`` without an active ``dask.distributed.Client``.

    Notes
    -----
    Results come back in the order of ``points`` whatever the backend.
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; use one of {', '.join(BACKENDS)}.")
    points = [dict(p) for p in points]
    if not points:
        raise ValueError("The sweep has no points: pass at least one parameter dictionary.")
    if backend == "serial":
        return [_call(function, p, catch_errors) for p in points]
    if backend == "dask":
        _require_dask_client()
    tasks = (joblib.delayed(_call)(function, p, catch_errors) for p in points)
    with joblib.parallel_config(backend=backend, n_jobs=None if backend == "dask" else (n_jobs or -1)):
        return list(joblib.Parallel()(tasks))


def _require_dask_client() -> None:
    try:
        from distributed import get_client
    except ImportError as exc:
        raise RuntimeError(
            "backend='dask' needs dask.distributed: pip install 'course-utils[cluster]' (or 'dask[distributed]')."
        ) from exc
    try:
        get_client()
    except ValueError as exc:
        raise RuntimeError(
            "backend='dask' needs an active dask.distributed.Client: create one first, e.g. "
            "`client = Client(LocalCluster())` on this machine or "
            "`client = Client('tcp://<scheduler>:8786')` for a cluster."
        ) from exc


def successful(results: Iterable[SweepResult]) -> list[SweepResult]:
    """The results whose call returned (failed points are kept in the full list)."""
    return [r for r in results if r.ok]
