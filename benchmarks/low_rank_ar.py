"""Time chapter 3's batched λ × rank grid against a Python loop over the same models.

Usage::

    python benchmarks/low_rank_ar.py                        # default scale, 20 steps, 3 repeats
    python benchmarks/low_rank_ar.py --scale smoke --steps 5 --repeats 1 --no-write
    python benchmarks/low_rank_ar.py --threads 1 --no-write  # one CPU thread

What it measures, on the chapter's data and grid at the chosen scale (sizes from
``course_utils.config.sizes("low_rank_ar")``; order = the planted one):

- **batched**: every model of the grid (folds × penalties × ranks) in one
  :class:`~course_utils.models.low_rank_ar.LowRankAR`, trained by
  :func:`~course_utils.models.low_rank_ar.train_batched` for ``--steps`` Adam steps;
- **loop**: the same models, one ``LowRankAR`` each, trained one after the other with the
  same function, data, initialization and steps.

Both start from the same SVD initialization; the benchmark checks that they end at the same
weights (the batch is an exact vectorization, not an approximation). Each is timed
``--repeats`` times (wall clock and CPU time of this process); the JSON reports the median
and the speed-up (loop / batched). Timings on a machine shared with other work are inflated
and noisy: the JSON records the load average before and after, and CPU times next to wall
times. Results go to ``benchmarks/results/low_rank_ar.json``.
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
from course_utils.data import load_photostim
from course_utils.models import low_rank_ar as lrar

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: find bench_common
from bench_common import load_average, machine, write_record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "low_rank_ar.json"


def grid_problem(scale: str, seed: int = 2026) -> dict:
    """The chapter's grid at ``scale``: compressed folds, starting weights, ranks, penalties."""
    sizes = config.sizes("low_rank_ar", scale)
    device = training.get_device()
    session = load_photostim(
        seed=seed,
        n_neurons=sizes["n_neurons"],
        rank=sizes["rank"],
        order=sizes["order"],
        n_groups=sizes["n_groups"],
        n_heldout_groups=sizes["n_heldout_groups"],
        group_size=sizes["group_size"],
        n_repeats=sizes["n_repeats"],
    )
    data = lrar.lag_data(session.activity, session.stimulation, sizes["order"], device=device)
    trial = np.searchsorted(session.trial_onsets, data.frame.cpu().numpy(), side="right") - 1
    pattern = np.where(trial >= 0, session.trial_pattern[np.clip(trial, 0, None)], -1)
    is_train = (pattern >= 0) & ~np.isin(pattern, session.heldout_patterns)
    train_patterns = np.unique(pattern[is_train])
    fold_of_pattern = np.full(session.patterns.shape[0], -1)
    rng = np.random.default_rng(seed)
    fold_of_pattern[rng.permutation(train_patterns)] = np.arange(train_patterns.size) % sizes["n_folds"]
    fold = np.where(is_train, fold_of_pattern[pattern], -1)
    fit_rows = torch.as_tensor(np.stack([is_train & (fold != f) for f in range(sizes["n_folds"])]), device=device)
    grid = [(lam, rank) for lam in sizes["lambdas"] for rank in sizes["ranks"]]
    start = lrar.ridge_ar(data, [0.1], fit_rows)
    return dict(
        sizes=dict(sizes),
        device=str(device),
        train=lrar.compress(data, fit_rows),
        start=lrar.ARWeights(*(w[:, 0] for w in (start.A, start.B, start.bias))),
        ranks=[rank for _, rank in grid] * sizes["n_folds"],
        lambdas=[lam for lam, _ in grid] * sizes["n_folds"],
        per_fold=len(grid),
        lr=sizes["learning_rates"][1],
    )


def batched(problem: dict, steps: int) -> lrar.LowRankAR:
    """Train the whole grid as one batch; return it."""
    per_fold = problem["per_fold"]
    start = lrar.ARWeights(
        *(w.repeat_interleave(per_fold, dim=0) for w in (problem["start"].A, problem["start"].B, problem["start"].bias))
    )
    model = lrar.LowRankAR.from_weights(start, problem["ranks"])
    lrar.train_batched(model, problem["train"], lambdas=problem["lambdas"], lr=problem["lr"], steps=steps)
    return model


def loop(problem: dict, steps: int) -> list[lrar.LowRankAR]:
    """Train the same models one at a time; return them."""
    models = []
    for m, (rank, lam) in enumerate(zip(problem["ranks"], problem["lambdas"])):
        fold = m // problem["per_fold"]
        model = lrar.LowRankAR.from_weights(problem["start"].select(fold), [rank])
        lrar.train_batched(model, problem["train"].group(fold), lambdas=lam, lr=problem["lr"], steps=steps)
        models.append(model)
    return models


def timed(function, *args):
    """Run ``function``; return its result, wall-clock seconds and CPU seconds of this process."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def same_weights(batch: lrar.LowRankAR, singles: list[lrar.LowRankAR]) -> float:
    """Largest absolute difference between the batch's full matrices and the loop's."""
    batch_weights = batch.weights()
    worst = 0.0
    for m, single in enumerate(singles):
        w = single.weights()
        for name in ("A", "B", "bias"):
            diff = (getattr(batch_weights, name)[m] - getattr(w, name)[0]).abs().max()
            worst = max(worst, float(diff))
    return worst


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write (unless --no-write) the JSON; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=config.SCALES, default="default")
    parser.add_argument("--steps", type=int, default=20, help="Adam steps per model")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each variant (median reported)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice, usually one per core)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only, do not write the JSON")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    problem = grid_problem(args.scale)
    batched(problem, 1), loop(problem, 1)  # warm-up: first calls pay one-off costs
    runs = {"batched": [], "loop": []}
    for _ in range(args.repeats):
        batch, wall, cpu = timed(batched, problem, args.steps)
        runs["batched"].append((wall, cpu))
        singles, wall, cpu = timed(loop, problem, args.steps)
        runs["loop"].append((wall, cpu))
    median = {
        name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for name, r in runs.items()
    }
    record = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "scale": args.scale,
        "what": "Adam steps of the chapter's λ × rank grid (all folds): one batch versus a Python loop",
        "n_models": len(problem["ranks"]),
        "steps": args.steps,
        "repeats": args.repeats,
        "compressed_rows_per_fold": int(problem["train"].x_lags.shape[1]),
        "sizes": {k: v for k, v in problem["sizes"].items() if not isinstance(v, tuple)},
        "batched": {
            "wall_s": round(median["batched"][0], 3),
            "cpu_s": round(median["batched"][1], 3),
            "ms_per_step": round(1000 * median["batched"][0] / args.steps, 1),
        },
        "loop": {
            "wall_s": round(median["loop"][0], 3),
            "cpu_s": round(median["loop"][1], 3),
            "ms_per_step": round(1000 * median["loop"][0] / args.steps, 1),
        },
        "speedup_wall": round(median["loop"][0] / median["batched"][0], 2),
        "speedup_cpu": round(median["loop"][1] / median["batched"][1], 2),
        "max_weight_difference": same_weights(batch, singles),
        "machine": machine(
            torch_threads=torch.get_num_threads(),
            device=problem["device"],
            torch=torch.__version__,
            load_average_before=[round(x, 2) for x in load_before],
            load_average_after=load_average(),
        ),
    }
    print(json.dumps(record, indent=2))
    if not args.no_write:
        write_record(RESULTS, record)
        print(f"wrote {RESULTS}")
    return 0 if record["max_weight_difference"] < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
