"""Tests of the shared argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.validation import check_positive_ints


def test_positive_integers_pass():
    check_positive_ints(a=1, b=np.int64(7))


@pytest.mark.parametrize("value", [0, -2, 1.0, True, "3", None])
def test_anything_else_is_named_in_the_error(value):
    with pytest.raises(ValueError, match=r"steps must be a positive integer"):
        check_positive_ints(fine=2, steps=value)


def test_integers_with_a_minimum_and_none():
    from course_utils.validation import check_ints

    check_ints(minimum=0, retries=0, gap=np.int32(3))
    check_ints(allow_none=True, limit=None)
    with pytest.raises(ValueError, match=r"retries must be a non-negative integer, got -1"):
        check_ints(minimum=0, retries=-1)
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 2, got 1"):
        check_ints(minimum=2, n_bins=1)
    with pytest.raises(ValueError, match=r"batch_size must be a positive integer or None"):
        check_ints(allow_none=True, batch_size=0)


@pytest.mark.parametrize("value", [0, -1.5, float("nan"), float("inf"), True, "2", None])
def test_positive_numbers_refuse_the_rest(value):
    from course_utils.validation import check_positive_numbers

    check_positive_numbers(ok=np.float32(0.1), fine=3)
    with pytest.raises(ValueError, match=r"dt_ms must be a positive finite number of ms"):
        check_positive_numbers(unit="ms", dt_ms=value)


def test_numbers_at_or_above_a_bound():
    from course_utils.validation import check_numbers

    check_numbers(inclusive=True, settle_ms=0.0)
    with pytest.raises(ValueError, match=r"settle_ms must be a non-negative finite number"):
        check_numbers(inclusive=True, settle_ms=-0.1)
    with pytest.raises(ValueError, match=r"rate must be a finite number > 0.5"):
        check_numbers(minimum=0.5, rate=0.5)
