"""Blocked folds with a gap keep every scored validation count out of training."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.model_selection import blocked_folds


@pytest.mark.parametrize("n_bins, n_folds, gap", [(12, 3, 1), (300, 3, 25), (100, 2, 0), (101, 4, 5)])
def test_folds_are_contiguous_blocks_with_gaps(n_bins, n_folds, gap):
    folds = blocked_folds(n_bins, n_folds, gap)
    assert len(folds) == n_folds
    covered = np.zeros(n_bins, dtype=int)
    for k, (training, validation) in enumerate(folds):
        assert np.intersect1d(training, validation).size == 0
        assert np.all(np.diff(validation) == 1), "a validation block is contiguous"
        # every scored bin is more than `gap` bins away from every training bin
        distance = np.abs(validation[:, None] - training[None, :]).min()
        assert distance > gap
        covered[validation] += 1
        # training is everything outside the block: block and training tile the recording
        block_size = n_bins - training.size
        assert validation.size == block_size - gap * ((k > 0) + (k < n_folds - 1))
    if n_bins % n_folds == 0:
        assert len({training.size for training, _ in folds}) == 1, "equal training sizes"
    assert covered.max() == 1


def test_the_chapter_shape_trains_every_fold_on_the_same_number_of_bins():
    folds = blocked_folds(6729, 3, 25)
    assert {training.size for training, _ in folds} == {4486}
    assert [validation.size for _, validation in folds] == [2218, 2193, 2218]


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="at least 2"):
        blocked_folds(10, 1, 0)
    with pytest.raises(ValueError, match="non-negative integer"):
        blocked_folds(10, 2, -1)
    with pytest.raises(ValueError, match="positive integer"):
        blocked_folds(0, 2, 0)
    with pytest.raises(ValueError, match="too few"):
        blocked_folds(12, 3, 2)
