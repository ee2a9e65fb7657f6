"""Compare stimulus designs over rounds of a simulated experiment (chapter 3, active learning).

Each design starts from the same random groups; each round, every design's model is refitted
to all its trials so far (all designs and repeats as one batch), scored on held-out trials,
and then chooses its next groups from a pool of candidates that every design of that repeat
shares: the random design takes the first candidates drawn, the others the greedy choice of
:func:`course_utils.models.stim_design.choose_patterns` with their terms of the expected error.
The experiment itself (which dynamics, how trials are recorded, which model is refitted and
how it is scored) is the caller's, passed as functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from course_utils.models import stim_design
from course_utils.models.low_rank_ar import LaggedData, LowRankAR
from course_utils.validation import check_positive_ints

#: A design: ``None`` for random groups, else the terms of the expected error it lowers.
Design = Sequence[str] | None


@dataclass(frozen=True)
class DesignStudy:
    """What :func:`compare_designs` measured.

    Attributes
    ----------
    design_names
        The designs, in the order of the last axis of ``mse`` and ``unstimulated``.
    groups_seen
        Groups stimulated so far at each round, ``(n_rounds + 1,)``.
    mse
        Held-out error of each design's refitted model, ``(n_rounds + 1, n_experiments,
        n_designs)``; round 0 is the common start.
    unstimulated
        Neurons no pattern of the design has stimulated yet, same shape.
    patterns
        ``patterns[experiment, design]``: every group the design stimulated, in order.
    seconds
        Wall-clock time of the rounds (fits, scores and choices).
    """

    design_names: tuple[str, ...]
    groups_seen: np.ndarray
    mse: np.ndarray
    unstimulated: np.ndarray
    patterns: dict[tuple[int, str], np.ndarray]
    seconds: float

    def mean_mse(self) -> np.ndarray:
        """Held-out error averaged over the repeats, ``(n_rounds + 1, n_designs)``."""
        return self.mse.mean(axis=1)

    def gain_over(self, baseline: str = "random") -> dict[str, float]:
        """Each design's mean relative drop of error below ``baseline``'s, in %.

        Parameters
        ----------
        baseline
            The design compared against.

        Returns
        -------
        dict
            Per design, ``100 * mean(1 - mse / mse_baseline)`` over the rounds after the
            common start, the errors averaged over the repeats first (0 for the baseline).
        """
        mean = self.mean_mse()
        reference = mean[1:, self.design_names.index(baseline)]
        return {name: 100 * float(np.mean(1 - mean[1:, i] / reference)) for i, name in enumerate(self.design_names)}

    def groups_to_match(self, design: str, baseline: str = "random") -> int | None:
        """Fewest groups after which ``design``'s mean error is at most ``baseline``'s final one.

        Parameters
        ----------
        design, baseline
            The design that should catch up, and the one whose final error it should reach.

        Returns
        -------
        int or None
            Groups stimulated at the first round where it does; ``None`` if it does not within
            these rounds.
        """
        mean = self.mean_mse()
        reached = np.flatnonzero(
            mean[:, self.design_names.index(design)] <= mean[-1, self.design_names.index(baseline)]
        )
        return int(self.groups_seen[reached[0]]) if reached.size else None


def compare_designs(
    designs: Mapping[str, Design],
    *,
    record: Callable[[np.ndarray, np.random.Generator], LaggedData],
    refit: Callable[[list[LaggedData]], LowRankAR],
    score: Callable[[LowRankAR], np.ndarray],
    n_neurons: int,
    group_size: int,
    order: int,
    n_initial: int,
    per_round: int,
    n_rounds: int,
    n_experiments: int,
    n_candidates: int,
    seed: int,
) -> DesignStudy:
    """Run every design through ``n_rounds`` rounds of choosing groups, in ``n_experiments`` repeats.

    Parameters
    ----------
    designs
        Name to design: ``None`` for random groups, or the ``terms`` passed to
        :func:`~course_utils.models.stim_design.choose_patterns` (``("neurons", "directions")``
        for the whole expected error). Must include ``"random"`` to compare against.
    record
        ``record(patterns, rng)``: run the trials of ``patterns`` (one row per group) and
        return them lagged, drawing the trials' noise from ``rng``.
    refit
        ``refit(datasets)``: one model per dataset, fitted as one batch.
    score
        ``score(model)``: the held-out error of each model of the batch, ``(n_models,)``.
    n_neurons, group_size
        Size of the population and of each stimulated group.
    order
        The models' order ``k`` (the expected error counts the lags).
    n_initial, per_round, n_rounds
        Groups every design starts from, groups added per round, and rounds.
    n_experiments, n_candidates
        Repeats of the whole experiment (new initial groups and noise), and candidate groups
        drawn per round and repeat.
    seed
        Seed of each repeat's generator (``[seed, experiment]``), which draws its groups and
        its trials' noise.

    Returns
    -------
    DesignStudy

    Raises
    ------
    ValueError
        On counts that are not positive integers, fewer candidates than groups per round, or
        no ``"random"`` design.
    """
    check_positive_ints(
        n_neurons=n_neurons,
        group_size=group_size,
        order=order,
        n_initial=n_initial,
        per_round=per_round,
        n_rounds=n_rounds,
        n_experiments=n_experiments,
        n_candidates=n_candidates,
    )
    if n_candidates < per_round:
        raise ValueError(f"n_candidates={n_candidates} must be at least per_round={per_round}.")
    if "random" not in designs:
        raise ValueError(f"designs must include 'random', the baseline, got {sorted(designs)}.")
    names = tuple(designs)
    runs = [(experiment, name) for experiment in range(n_experiments) for name in names]
    rngs = [np.random.default_rng([seed, experiment]) for experiment in range(n_experiments)]
    patterns: dict[tuple[int, str], np.ndarray] = {}
    data: dict[tuple[int, str], list[LaggedData]] = {}
    for experiment, rng in enumerate(rngs):
        initial = stim_design.random_groups(n_neurons, group_size, n_initial, rng)
        first_block = record(initial, rng)  # the same first trials for every design
        for name in names:
            patterns[experiment, name], data[experiment, name] = initial, [first_block]

    start = time.perf_counter()
    mse = np.empty((n_rounds + 1, n_experiments, len(names)))
    unstimulated = np.empty_like(mse)
    for round_ in range(n_rounds + 1):
        fitted = refit([LaggedData.concatenate(data[run]) for run in runs])
        mse[round_] = np.asarray(score(fitted)).reshape(n_experiments, len(names))
        unstimulated[round_] = np.reshape(
            [(patterns[run].sum(axis=0) == 0).sum() for run in runs], (n_experiments, len(names))
        )
        if round_ == n_rounds:
            break
        for experiment, rng in enumerate(rngs):
            pool = stim_design.random_groups(n_neurons, group_size, n_candidates, rng)  # shared by the designs
            for name, terms in designs.items():
                run = (experiment, name)
                if terms is None:
                    picked = np.arange(per_round)  # random: the first candidates drawn
                else:
                    directions = stim_design.input_directions(fitted, runs.index(run))
                    picked = stim_design.choose_patterns(
                        pool, patterns[run], directions, per_round, order=order, terms=terms
                    )
                patterns[run] = np.concatenate([patterns[run], pool[picked]])
                data[run].append(record(pool[picked], rng))
    return DesignStudy(
        design_names=names,
        groups_seen=n_initial + per_round * np.arange(n_rounds + 1),
        mse=mse,
        unstimulated=unstimulated,
        patterns=patterns,
        seconds=time.perf_counter() - start,
    )
