"""Estimate chapter 6's run time at the full scale from timed simulations.

Usage::

    python benchmarks/dipole_full.py            # time full-scale simulations (~6 min), write
    python benchmarks/dipole_full.py --no-write
    python benchmarks/dipole_full.py --reuse-timings   # the chapter changed, the model did not

A full run of chapter 6 (the 10 × 10 column at hnn-core's 0.025 ms step, several hundred
evaluations) takes about a day on 2 cores, too long to run where the course is built, so its
time is estimated rather than measured. Almost all of the chapter's time is spent
simulating, so the estimate is

    (simulations the chapter runs at that scale) × (the time of one, measured here)
    + (everything else, measured at the default scale).

- :func:`~course_utils.simulate.dipole_plan.planned_simulations` counts, section by section,
  the evaluations (``n_trials`` trials on every core) and the one-trial runs the chapter makes
  at a scale. It is an upper bound: COBYLA may stop before its budget, and the objective's
  cache skips repeated points. The chapter asserts, at every build, that the simulations it
  counts stay within that plan, so the plan cannot fall behind the chapter.
- One evaluation and one single-trial run are timed at the default and at the full scale,
  with the chapter's own objective, network and backend (``JoblibBackend`` on every core).
- "Everything else" (imports, figures, the Gaussian processes of the Bayesian solver) is the
  default run's measured time (``benchmarks/results/chapters-default.json``) minus its
  simulations as counted and timed here. The same count applied to the default scale is
  thereby checked: a negative remainder would mean the count or the timing is off, and the
  script stops.

The estimate goes to ``benchmarks/results/dipole_full.json`` and, marked as an estimate, to
the chapter's entry in ``chapters-full.json``, from which the README and the chapter header
show it.
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

from course_utils import config
from course_utils.simulate import dipole as dipole_sim
from course_utils.simulate.dipole_plan import planned_simulations, totals

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: find bench_common
from bench_common import host_reference_s, machine, write_record  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CHAPTER = "06_dipole_optimization"
#: The points timed: the chapter's hand-tuned start and one inside the constraints.
TIMED_POINTS = (
    {"evprox2_mu": 120.0, "evprox2_sigma": 1.0, "evprox2_ampa_L5_pyramidal": 0.1},
    {"evprox2_mu": 127.5, "evprox2_sigma": 8.6, "evprox2_ampa_L5_pyramidal": 0.6},
)


def time_simulations(scale: str, repeats: int) -> dict[str, float | int]:
    """Seconds of one evaluation and of one single-trial run at ``scale`` (median of repeats).

    Uses the chapter's network, drives, time step, trial count, scale factor and backend (a
    ``JoblibBackend`` on every core), through :class:`~course_utils.simulate.dipole.DipoleObjective`;
    each timed call simulates a point not simulated before.

    Parameters
    ----------
    scale
        ``"default"`` or ``"full"`` (the chapter's sizes at that scale).
    repeats
        Timings per kind, at least 1; the median is kept.

    Returns
    -------
    dict
        ``evaluation_s``, ``one_trial_s``, and the ``n_trials`` and ``repeats`` used.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}.")
    dipole_sim.import_hnn_core()
    from hnn_core import JoblibBackend, neymotin_2020_model

    sizes = config.sizes("dipole_optimization", scale)
    mesh = tuple(sizes["mesh_shape"])
    objective = dipole_sim.DipoleObjective(
        neymotin_2020_model(mesh_shape=mesh),
        dipole_sim.add_erp_drives,
        dipole_sim.TARGET_TIMES_MS,
        np.zeros_like(dipole_sim.TARGET_TIMES_MS),
        n_trials=sizes["n_trials"],
        dt=sizes["dt_ms"],
        scale_factor=dipole_sim.scale_factor_for(mesh),
        smooth_ms=30.0,
    )
    evaluation, one_trial = [], []
    with JoblibBackend(n_jobs=os.cpu_count() or 1):
        for repeat in range(repeats):
            # a new point each repeat, so that no timing hits the objective's cache
            points = [dict(p, evprox2_mu=p["evprox2_mu"] + 0.1 * repeat) for p in TIMED_POINTS]
            start = time.perf_counter()
            objective.trials(points[0])
            evaluation.append(time.perf_counter() - start)
            start = time.perf_counter()
            objective.trials(points[1], n_trials=1)
            one_trial.append(time.perf_counter() - start)
    return {
        "evaluation_s": round(statistics.median(evaluation), 2),
        "one_trial_s": round(statistics.median(one_trial), 2),
        "n_trials": sizes["n_trials"],
        "repeats": repeats,
    }


def simulation_seconds(plan: dict[str, dict[str, int | bool]], timing: dict[str, float]) -> float:
    """Seconds the simulations of ``plan`` take at the measured ``timing``.

    Parameters
    ----------
    plan
        Counts per section, from :func:`planned_simulations`.
    timing
        ``evaluation_s`` and ``one_trial_s``, from :func:`time_simulations`.

    Returns
    -------
    float
        Evaluations times ``evaluation_s`` plus single trials times ``one_trial_s``.
    """
    count = totals(plan)
    return count["evaluations"] * timing["evaluation_s"] + count["one_trial_runs"] * timing["one_trial_s"]


def estimate(default_wall_s: float, timings: dict[str, dict]) -> dict:
    """The full-scale estimate from the default run's wall time and the simulation timings.

    Parameters
    ----------
    default_wall_s
        The measured wall time of the chapter's default run (``chapters-default.json``).
    timings
        :func:`time_simulations` at ``"default"`` and ``"full"``.

    Returns
    -------
    dict
        ``counts`` per scale, the ``default`` run split into simulations and the rest, and the
        ``full`` estimate (``simulation_s``, ``other_s``, ``wall_s``).

    Raises
    ------
    ValueError
        If the counted default simulations take longer than the whole measured default run:
        the count or the timings are wrong, and an estimate built on them would be too.
    """
    plans = {scale: planned_simulations(config.sizes("dipole_optimization", scale)) for scale in ("default", "full")}
    default_simulation_s = simulation_seconds(plans["default"], timings["default"])
    other_s = default_wall_s - default_simulation_s
    if other_s < 0:
        raise ValueError(
            f"The default run's counted simulations take {default_simulation_s:.0f} s, more than "
            f"the whole measured run ({default_wall_s:.0f} s): update planned_simulations() to "
            "the chapter, or re-measure the default run on this host."
        )
    full_simulation_s = simulation_seconds(plans["full"], timings["full"])
    return {
        "counts": {scale: {"sections": plan, "total": totals(plan)} for scale, plan in plans.items()},
        "default": {
            "measured_wall_s": default_wall_s,
            "simulation_s": round(default_simulation_s, 1),
            "other_s": round(other_s, 1),
        },
        "full": {
            "simulation_s": round(full_simulation_s),
            "other_s": round(other_s),
            "wall_s": round(full_simulation_s + other_s),
        },
    }


def write(record: dict) -> None:
    """Save ``record`` and the chapter's full-scale entry (marked as estimated); re-render."""
    import chapters  # noqa: PLC0415 (the sibling script: its results file and renderer)

    write_record(RESULTS / "dipole_full.json", record)
    low, high = record["host_reference_range_s"]
    chapters.save_results(
        "full",
        {
            CHAPTER: {
                "wall_s": record["full"]["wall_s"],
                "peak_mb": None,
                "within_budget": True,
                "estimated": "benchmarks/dipole_full.py",
                "measured": record["measured"],
                "host_reference_s": round((low + high) / 2, 3),
                "host_reference_range_s": [low, high],
            }
        },
        record["machine"],
    )
    chapters.render()
    print(f"wrote {RESULTS / 'dipole_full.json'} and the chapter's full-scale entry")


def main(argv: list[str] | None = None) -> int:
    """Time the simulations, estimate the full run, and record it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timings at the default scale")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--reuse-timings",
        action="store_true",
        help="keep the simulation timings of results/dipole_full.json (same model "
        "and host kind) and redo only the count, e.g. after the chapter changed",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    default_results = RESULTS / "chapters-default.json"
    default_record = (
        json.loads(default_results.read_text())["chapters"].get(CHAPTER) if default_results.is_file() else None
    )
    if default_record is None:
        parser.error(f"measure the default run first: python benchmarks/chapters.py --scale default {CHAPTER}")
    before = host_reference_s()
    previous = RESULTS / "dipole_full.json"
    if args.reuse_timings:
        if not previous.is_file():
            parser.error("no earlier timings to reuse: run without --reuse-timings")
        stored = json.loads(previous.read_text())
        timings = stored["timings"]
        timings_measured = stored.get("timings_measured", stored["measured"])
    else:
        timings = {
            "default": time_simulations("default", args.repeats),
            "full": time_simulations("full", 1),
        }  # one full evaluation is minutes
        timings_measured = datetime.now(UTC).strftime("%Y-%m-%d")
    after = host_reference_s()
    result = estimate(default_record["wall_s"], timings)
    record = {
        "measured": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "host_reference_range_s": [min(before, after), max(before, after)],
        "default_run": {key: default_record.get(key) for key in ("wall_s", "measured", "host_reference_s")},
        "timings": timings,
        "timings_measured": timings_measured,
        **result,
    }
    print(json.dumps(record, indent=2, ensure_ascii=False))
    hours = result["full"]["wall_s"] / 3600
    print(f"full scale: about {hours:.0f} h on {os.cpu_count()} cores (estimated, not run)")
    if not args.no_write:
        write(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
