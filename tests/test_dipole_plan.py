"""Chapter 6's plan of simulations, and the counter the chapter checks it with."""

from __future__ import annotations

import pytest

from course_utils import config
from course_utils.simulate import dipole_plan
from course_utils.simulate.dipole import SimulationCounter


@pytest.mark.parametrize(
    "size",
    [
        "n_trials",
        "target_trials",
        "held_out_trials",
        "budget",
        "n_starts",
        "polish_budget",
        "stratified_starts",
        "stratified_budget",
        "slice_grid",
        "real_budget",
        "profile_points",
        "fidelity_factor",
        "recovery_targets",
    ],
)
def test_every_size_that_sets_simulations_is_counted(size):
    sizes = config.sizes("dipole_optimization", "default")
    before = dipole_plan.planned_trials(sizes)["trials"]
    after = dipole_plan.planned_trials({**sizes, size: sizes[size] + 1})["trials"]
    assert after > before, size


def test_planned_trials_count_each_evaluation_n_trials_times():
    sizes = config.sizes("dipole_optimization", "smoke")
    plan = dipole_plan.planned_simulations(sizes)
    unseen = [name for name, section in plan.items() if not section.get("counted", True)]
    assert len(unseen) == 1 and "hnn-core's simulate_dipole" in unseen[0]  # exercise 2 calls hnn-core itself
    total = dipole_plan.totals({name: section for name, section in plan.items() if name not in unseen})
    trials = dipole_plan.planned_trials(sizes)
    assert trials == {
        "trials": total["evaluations"] * sizes["n_trials"] + total["one_trial_runs"],
        "one_trial_runs": total["one_trial_runs"],
    }
    doubled = dipole_plan.planned_trials({**sizes, "n_trials": 2 * sizes["n_trials"]})
    assert doubled["trials"] > trials["trials"]


def test_a_counter_counts_only_while_it_is_active():
    counter = SimulationCounter()
    for counter_listening in SimulationCounter._active:  # the counters simulate_dipole_trials feeds
        assert counter_listening is not counter
    counter._record(4)  # not started: simulate_dipole_trials would not call it
    with counter:
        assert counter in SimulationCounter._active
    assert counter not in SimulationCounter._active
    with counter:
        with counter:  # nested: the inner exit leaves the outer count running
            pass
        assert SimulationCounter._active.count(counter) == 1
    assert counter not in SimulationCounter._active
    try:
        with counter:
            raise RuntimeError("a failed simulation")
    except RuntimeError:
        pass
    assert counter not in SimulationCounter._active  # an error does not leave it listening
    counter.stop()  # one stop too many is harmless
    assert (counter.calls, counter.trials, counter.one_trial_calls) == (1, 4, 0)
    counter._record(1)
    assert (counter.calls, counter.trials, counter.one_trial_calls) == (2, 5, 1)
