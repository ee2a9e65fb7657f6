"""The sweep helper: the same call serially, on local processes, and on a Dask cluster."""

from __future__ import annotations

import os

import pytest

from course_utils.sweep import grid, run_sweep, successful


def quadratic(lam: float, seed: int) -> float:
    if lam < 0:
        raise ValueError("negative strength")
    return (lam - 1.0) ** 2 + seed


def worker_pid(lam: float) -> int:
    return os.getpid()


def test_grid_is_the_product_in_order():
    assert grid(lam=[0.1, 1.0], seed=[0, 1]) == [
        {"lam": 0.1, "seed": 0},
        {"lam": 0.1, "seed": 1},
        {"lam": 1.0, "seed": 0},
        {"lam": 1.0, "seed": 1},
    ]


@pytest.mark.parametrize(
    "axes, match", [({}, "at least one axis"), ({"lam": []}, "non-empty"), ({"lam": "abc"}, "non-empty")]
)
def test_grid_rejects_bad_axes(axes, match):
    with pytest.raises(ValueError, match=match):
        grid(**axes)


def test_serial_sweep_keeps_order_and_records_errors():
    results = run_sweep(quadratic, grid(lam=[2.0, -1.0, 1.0], seed=[0]))
    assert [r.value for r in results] == [1.0, None, 0.0]
    assert "negative strength" in results[1].error and not results[1].ok
    assert len(successful(results)) == 2
    with pytest.raises(ValueError, match="negative"):
        run_sweep(quadratic, [{"lam": -1.0, "seed": 0}], catch_errors=False)


def test_local_processes_give_the_same_results_in_other_processes():
    points = grid(lam=[0.0, 0.5, 1.0, 1.5], seed=[1])
    serial = run_sweep(quadratic, points)
    parallel = run_sweep(quadratic, points, backend="loky", n_jobs=2)
    assert [r.value for r in parallel] == [r.value for r in serial]
    pids = {r.value for r in run_sweep(worker_pid, grid(lam=[0, 1, 2, 3]), backend="loky", n_jobs=2)}
    assert os.getpid() not in pids


def test_dask_cluster_runs_the_same_sweep():
    distributed = pytest.importorskip("distributed")
    points = grid(lam=[0.0, 2.0, -1.0], seed=[3])
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        with distributed.Client(cluster):
            results = run_sweep(quadratic, points, backend="dask")
    assert [r.value for r in results] == [4.0, 4.0, None]
    assert "negative strength" in results[2].error


def test_dask_without_a_client_says_what_to_do():
    with pytest.raises(RuntimeError, match="Client"):
        run_sweep(quadratic, grid(lam=[1.0], seed=[0]), backend="dask")


def test_unknown_backend_and_empty_sweep():
    with pytest.raises(ValueError, match="Unknown backend"):
        run_sweep(quadratic, grid(lam=[1.0], seed=[0]), backend="mpi")
    with pytest.raises(ValueError, match="no points"):
        run_sweep(quadratic, [])
