"""Time chapter 4's batched cRBM sweep against training the same models one after another.

Usage::

    python benchmarks/crbm.py                         # default scale, 60 updates, 3 repeats
    python benchmarks/crbm.py --scale smoke --updates 10 --repeats 1 --no-write
    python benchmarks/crbm.py --threads 2 --no-write  # two CPU threads (default: one)

What it measures, on the chapter's data and λ grid at the chosen scale (sizes from
``course_utils.config.sizes("crbm_lambda")``):

- **batched**: every model of the sweep (λ values × seeds) in one
  :class:`~course_utils.models.crbm.BatchedCRBM`, trained by
  :func:`~course_utils.models.crbm.train_crbms` for ``--updates`` PCD updates;
- **sequential**: the same models (same initial weights), one ``BatchedCRBM`` with a single
  model each, trained one after the other by the same function for the same updates.

Each is timed ``--repeats`` times (wall clock and CPU time of this process); the JSON reports
the median and the speed-up (sequential / batched). The two runs draw different random
numbers for their Gibbs chains, so their weights are not compared; that one batched update
equals the separate updates exactly is tested in ``tests/test_crbm.py``. Timings on a machine
shared with other work are inflated and noisy: the JSON records the load average before and
after, and CPU times next to wall times. Results go to ``benchmarks/results/crbm.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from course_utils import config, training
from course_utils.data import load_assemblies
from course_utils.models.crbm import BatchedCRBM, train_crbms

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: find bench_common
from bench_common import machine, write_record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "crbm.json"


def sweep_problem(scale: str, seed: int = 2026) -> dict:
    """The chapter's data, λ grid and starting weights at ``scale``."""
    sizes = config.sizes("crbm_lambda", scale)
    data = load_assemblies(
        n_neurons=sizes["n_neurons"],
        n_assemblies=sizes["n_assemblies"],
        n_timepoints=sizes["n_timepoints"],
        train_fraction=sizes["train_fraction"],
        seed=seed,
    )
    grid = np.array(sizes["lambdas_low"] + sizes["lambdas_high"], dtype=float)
    lambdas = np.repeat(grid, sizes["n_seeds"])
    start = BatchedCRBM(
        sizes["n_neurons"],
        sizes["n_hidden"],
        lambdas.size,
        seeds=[seed + i for i in range(lambdas.size)],
        weight_scale=0.1,
        device=training.get_device(),
    )
    return {"sizes": dict(sizes), "train": data.train, "lambdas": lambdas, "start": start}


def _train(model: BatchedCRBM, problem: dict, lambdas: np.ndarray, updates: int) -> None:
    sizes = problem["sizes"]
    batch_size = sizes["batch_size"]
    # One epoch of exactly `updates` minibatches.
    data = problem["train"][: updates * batch_size]
    if data.shape[0] < updates * batch_size:
        data = np.resize(problem["train"], (updates * batch_size, problem["train"].shape[1]))
    train_crbms(
        model,
        data,
        lambdas,
        penalty_kind="l2l1",
        epochs=1,
        batch_size=batch_size,
        n_chains=sizes["n_chains"],
        gibbs_steps=sizes["gibbs_steps"],
        lr=0.01,
        lr_final=1e-4,
        seed=0,
        progress=False,
    )


def time_once(problem: dict, updates: int, batched: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``updates`` PCD updates of every model."""
    lambdas = problem["lambdas"]
    wall, cpu = time.perf_counter(), time.process_time()
    if batched:
        _train(problem["start"].select(range(lambdas.size)), problem, lambdas, updates)
    else:
        for m in range(lambdas.size):
            _train(problem["start"].select([m]), problem, lambdas[m : m + 1], updates)
    if problem["start"].device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; return (and unless ``--no-write``, save) the record."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="default", choices=config.SCALES)
    parser.add_argument("--updates", type=int, default=60, help="PCD updates per model")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-write", action="store_true", help="print, do not save the JSON")
    args = parser.parse_args(argv)
    if args.updates < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--updates, --repeats and --threads must be positive integers.")
    torch.set_num_threads(args.threads)
    problem = sweep_problem(args.scale)
    load_before = os.getloadavg()
    runs = {"batched": [], "sequential": []}
    for _ in range(args.repeats):
        for name in runs:
            runs[name].append(time_once(problem, args.updates, batched=name == "batched"))
    load_after = os.getloadavg()
    summary = {}
    for name, values in runs.items():
        wall = statistics.median(v[0] for v in values)
        summary[name] = {
            "wall_s": round(wall, 3),
            "cpu_s": round(statistics.median(v[1] for v in values), 3),
            "ms_per_update": round(1000 * wall / args.updates, 2),
        }
    record = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": args.scale,
        "what": "PCD updates of every model of the chapter's λ sweep: one batch versus one model at a time",
        "n_models": int(problem["lambdas"].size),
        "updates": args.updates,
        "repeats": args.repeats,
        "sizes": problem["sizes"],
        **summary,
        "speedup": round(summary["sequential"]["wall_s"] / summary["batched"]["wall_s"], 2),
        "device": str(problem["start"].device),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "machine": machine(torch=torch.__version__),
    }
    if args.no_write:
        print(json.dumps(record, indent=2, ensure_ascii=False))
    else:
        write_record(RESULTS, record)
        print(
            f"batched {summary['batched']['wall_s']} s, sequential {summary['sequential']['wall_s']} s, "
            f"speed-up {record['speedup']}x -> {RESULTS}"
        )
    return record


if __name__ == "__main__":
    main()
