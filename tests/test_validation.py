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
