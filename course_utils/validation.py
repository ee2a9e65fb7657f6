"""Argument checks shared by the helper modules."""

from __future__ import annotations

import numpy as np

__all__ = ["check_positive_ints"]


def check_positive_ints(**values: object) -> None:
    """Raise a ``ValueError`` naming the first argument that is not a positive integer.

    Parameters
    ----------
    **values
        Argument names and their values; ``bool`` is refused although it is an ``int``.
    """
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
