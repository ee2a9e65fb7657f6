"""Argument checks shared by the helper modules.

Every public function of the package checks its sizes and settings with these, so that the
same mistake gets the same message everywhere: the argument's name, what it must be, and
the value it got. ``bool`` is refused where an integer is wanted although Python counts it
as one (``n_models=True`` is a bug, not 1); NumPy integers and floats are accepted.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["check_ints", "check_positive_ints", "check_numbers", "check_positive_numbers"]


def _integer_rule(minimum: int) -> str:
    if minimum == 1:
        return "a positive integer"
    if minimum == 0:
        return "a non-negative integer"
    return f"an integer >= {minimum}"


def check_ints(*, minimum: int = 1, allow_none: bool = False, **values: object) -> None:
    """Raise a ``ValueError`` naming the first argument that is not an integer >= ``minimum``.

    Parameters
    ----------
    minimum
        The smallest value allowed.
    allow_none
        Whether ``None`` (e.g. "no limit") is allowed too.
    **values
        Argument names and their values.

    Raises
    ------
    ValueError
        If a value is not an integer (``bool`` included) or is below ``minimum``.
    """
    for name, value in values.items():
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            alternative = " or None" if allow_none else ""
            raise ValueError(f"{name} must be {_integer_rule(minimum)}{alternative}, got {value!r}.")


def check_positive_ints(**values: object) -> None:
    """Raise a ``ValueError`` naming the first argument that is not a positive integer.

    Parameters
    ----------
    **values
        Argument names and their values; ``bool`` is refused although it is an ``int``.
    """
    check_ints(minimum=1, **values)


def check_numbers(*, minimum: float = 0.0, inclusive: bool = False, unit: str = "", **values: object) -> None:
    """Raise a ``ValueError`` naming the first argument that is not a finite number above ``minimum``.

    Parameters
    ----------
    minimum
        The lower bound.
    inclusive
        Whether ``minimum`` itself is allowed (``>=``) or not (``>``).
    unit
        Said after the rule in the message, e.g. ``"ms"`` or ``"seconds"``.
    **values
        Argument names and their values; NaN, infinities and non-numbers are refused.

    Raises
    ------
    ValueError
        If a value is not a real finite number on the right side of ``minimum``.
    """
    if minimum == 0:
        rule = "a non-negative finite number" if inclusive else "a positive finite number"
    else:
        rule = f"a finite number {'>=' if inclusive else '>'} {minimum:g}"
    of_unit = f" of {unit}" if unit else ""
    for name, value in values.items():
        ok = (
            not isinstance(value, bool)
            and isinstance(value, numbers.Real)
            and math.isfinite(value)
            and (value >= minimum if inclusive else value > minimum)
        )
        if not ok:
            raise ValueError(f"{name} must be {rule}{of_unit}, got {value!r}.")


def check_positive_numbers(*, unit: str = "", **values: object) -> None:
    """Raise a ``ValueError`` naming the first argument that is not a positive finite number."""
    check_numbers(minimum=0.0, inclusive=False, unit=unit, **values)
