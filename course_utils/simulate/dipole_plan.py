"""How many simulations chapter 6 runs at a scale: the plan its full-scale estimate rests on.

A full run of chapter 6 takes too long to run where the course is built, so
``benchmarks/dipole_full.py`` estimates it as (simulations planned here) x (the time of one,
measured). The chapter checks the plan against itself: it counts every simulation it runs
(:class:`course_utils.simulate.dipole.SimulationCounter`) and asserts, at its end, that the
count stays within :func:`planned_trials` for its own sizes, so a section added to the
chapter without its line here fails the build instead of making the estimate wrong.
"""

from __future__ import annotations


def planned_simulations(sizes: dict) -> dict[str, dict[str, int | bool]]:
    """Count the simulations chapter 6 runs with ``sizes`` (``config.sizes``), per section.

    Parameters
    ----------
    sizes
        The chapter's sizes at one scale.

    Returns
    -------
    dict
        ``{section: {"evaluations": e, "one_trial_runs": o}}``: ``e`` evaluations of
        ``n_trials`` trials spread over every core, ``o`` single trials, each alone (the
        one-process timing runs its trials one after another, exercise 1 fits on one trial).
        A solver's start, already simulated, is not counted. The count is an upper bound:
        COBYLA and CMA-ES may stop before their budget, and exercise 1's COBYLA starts like
        section 4's, so its first few points come from the cache. A section whose simulations
        call hnn-core directly, unseen by
        :class:`~course_utils.simulate.dipole.SimulationCounter`, also holds ``"counted": False``.
    """
    n_trials, budget, starts = sizes["n_trials"], sizes["budget"], sizes["n_starts"]
    polish, real_budget = sizes["polish_budget"], sizes["real_budget"]
    cma_evaluations = max(1, budget // sizes["cma_popsize"]) * sizes["cma_popsize"]  # whole generations
    # A call of target_trials trials (the target), or of held_out_trials (a point's held-out
    # trials, simulated anew from the first), counts as many evaluations as its trials fill.
    target_call = -(-sizes["target_trials"] // n_trials)
    held_out_call = -(-sizes["held_out_trials"] // n_trials)
    stratified_fit = sizes["stratified_starts"] * sizes["stratified_budget"] + 2 * polish
    return {
        "target and hand-tuned start": {"evaluations": target_call + 1, "one_trial_runs": 0},
        "Bayesian runs (hand-tuned start cached), planted point": {
            "evaluations": starts * budget - 1 + 1,
            "one_trial_runs": 0,
        },
        "CMA-ES and COBYLA runs (hand-tuned start cached)": {
            "evaluations": starts * cma_evaluations + starts * budget - 1,
            "one_trial_runs": 0,
        },
        "polish (start cached)": {"evaluations": polish - 1, "one_trial_runs": 0},
        "held-out trials of the planted and tuned points": {"evaluations": 2 * held_out_call, "one_trial_runs": 0},
        "2-D slice": {"evaluations": sizes["slice_grid"] ** 2, "one_trial_runs": 0},
        # Its own objective (stratified draws): nothing cached, n_trials trials spread over the cores.
        "stratified draws: planted and tuned points, COBYLA from its starts, two polishes": {
            "evaluations": 2 + stratified_fit,
            "one_trial_runs": 0,
        },
        # Its own objective, so the hand-tuned start is simulated again.
        "the recording: start, run and polish": {"evaluations": 1 + real_budget - 1 + polish - 1, "one_trial_runs": 0},
        "exercise 1 (one-trial fit, then both fits on held-out trials)": {
            "evaluations": 2 * held_out_call,
            "one_trial_runs": budget - 1,
        },
        "exercise 2 (two parameter sets, then the check's; hnn-core's simulate_dipole)": {
            "evaluations": 3,
            "one_trial_runs": 0,
            "counted": False,
        },
        "exercise 3 (a fit of the fourth drive, its average, a zero-weight control, two probes)": {
            "evaluations": budget + 1 + 1 + 2,
            "one_trial_runs": 0,
        },
        "Going further: the mu profile (planted point cached)": {
            "evaluations": sizes["profile_points"] - 1,
            "one_trial_runs": 0,
        },
        # One call of fidelity_factor x n_trials trials per point, simulated anew.
        "Going further: the planted and tuned points on more trials per evaluation": {
            "evaluations": 2 * sizes["fidelity_factor"],
            "one_trial_runs": 0,
        },
        # Each new target, the stratified fit to it (its own objective, nothing cached), the planted point.
        "Going further: the stratified fit on other targets": {
            "evaluations": sizes["recovery_targets"] * (target_call + stratified_fit + 1),
            "one_trial_runs": 0,
        },
        "Going further: parallelism timing": {"evaluations": 1, "one_trial_runs": n_trials},
    }


def totals(plan: dict[str, dict[str, int | bool]]) -> dict[str, int]:
    """Sum a :func:`planned_simulations` count over its sections.

    Parameters
    ----------
    plan
        Counts per section, from :func:`planned_simulations`.

    Returns
    -------
    dict
        ``{"evaluations": e, "one_trial_runs": o}`` over all sections.
    """
    return {kind: sum(section[kind] for section in plan.values()) for kind in ("evaluations", "one_trial_runs")}


def planned_trials(sizes: dict) -> dict[str, int]:
    """The plan in trials, over the sections a counter sees.

    Each evaluation counts its ``n_trials`` trials, each one-trial run one; the sections that
    call hnn-core directly (``"counted": False``) are left out.

    Parameters
    ----------
    sizes
        The chapter's sizes at one scale.

    Returns
    -------
    dict
        ``{"trials": t, "one_trial_runs": o}``, upper bounds on what
        :class:`~course_utils.simulate.dipole.SimulationCounter` counts over the chapter
        (``trials`` and ``one_trial_calls``).
    """
    counted = {name: section for name, section in planned_simulations(sizes).items() if section.get("counted", True)}
    total = totals(counted)
    return {
        "trials": total["evaluations"] * int(sizes["n_trials"]) + total["one_trial_runs"],
        "one_trial_runs": total["one_trial_runs"],
    }
