"""A cRBM trained on planted assemblies finds them; trained on shuffled data, it finds nothing."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.models import crbm_evaluation
from course_utils.models.crbm import BatchedCRBM, train_crbms
from course_utils.simulate.assemblies import simulate_assemblies

pytestmark = pytest.mark.usefixtures("one_torch_thread")


SETTINGS = dict(
    penalty_kind="l2l1",
    epochs=25,
    batch_size=100,
    n_chains=50,
    gibbs_steps=2,
    lr=0.01,
    lr_final=0.0005,
    seed=0,
    progress=False,
)


def _mean_best_overlap(data: np.ndarray, membership: np.ndarray) -> list[float]:
    model = BatchedCRBM(data.shape[1], 6, 2, weight_scale=0.1, seeds=[0, 1], device="cpu")
    history = train_crbms(model, data, [0.5, 0.5], **SETTINGS)
    assert not history.diverged.any(), history.reasons
    return [float(crbm_evaluation.best_match_overlap(model.weights[m].numpy(), membership).mean()) for m in range(2)]


def test_planted_assemblies_are_recovered_and_shuffled_data_recover_nothing():
    sim = simulate_assemblies(n_neurons=40, n_assemblies=4, n_timepoints=3000, seed=0)
    found = _mean_best_overlap(sim.train, sim.membership)
    assert max(found) >= 0.85, found
    # Each neuron's time series permuted on its own: same rates, no assemblies left.
    rng = np.random.default_rng(0)
    control = np.take_along_axis(sim.train, np.argsort(rng.random(sim.train.shape), axis=0), axis=0)
    chance = _mean_best_overlap(control, sim.membership)
    assert max(chance) < 0.6, chance
