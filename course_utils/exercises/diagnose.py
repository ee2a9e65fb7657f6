"""Say what is wrong with an answer, without saying what the right answer is.

:func:`diagnose` compares a learner's answer with the expected one and returns the first
diagnosis that applies, in this order: not attempted, wrong type, wrong shape (the
transpose is named), NaN or infinite values, flipped sign, off by a constant factor, off
by a constant offset, right values in the wrong order, close but outside the tolerance,
wrong. Messages give the kind of error and its size (a factor, a relative error), never
the expected values themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Every diagnosis code, in the order they are tried.
CODES: tuple[str, ...] = (
    "not_attempted",
    "type",
    "shape",
    "nan",
    "sign",
    "scale",
    "offset",
    "order",
    "tolerance",
    "wrong",
    "choice",
    "error",
    "correct",
)


#: A factor or an offset within this fraction of the values is "close", not a systematic error.
_NEAR = 0.05


@dataclass(frozen=True)
class Diagnosis:
    """What a check found.

    Attributes
    ----------
    code
        One of :data:`CODES`; ``"correct"`` when the answer matches.
    message
        One sentence for the learner.
    where
        The part of the answer it concerns (a key, an item, a call), or ``""``.
    """

    code: str
    message: str
    where: str = ""

    @property
    def ok(self) -> bool:
        """Whether the answer matched."""
        return self.code == "correct"

    def located(self, where: str) -> Diagnosis:
        """The same diagnosis, said of a part of the answer."""
        inner = f"{where} → {self.where}" if self.where else where
        return Diagnosis(self.code, self.message, inner)


CORRECT = Diagnosis("correct", "correct.")


def is_unanswered(answer: Any) -> bool:
    """True for the stubs' placeholders: ``...`` (Ellipsis) and ``None``."""
    return answer is None or answer is Ellipsis


def as_float_array(value: Any) -> np.ndarray | None:
    """``value`` as a float array (torch and JAX arrays included), or None if it is not numeric."""
    if hasattr(value, "detach"):  # a torch tensor, possibly on a GPU and requiring grad
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes, Mapping)) or is_unanswered(value):
        return None
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return array


def _relative_error(answer: np.ndarray, expected: np.ndarray) -> float:
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    difference = float(np.max(np.abs(answer - expected))) if expected.size else 0.0
    return difference / scale if scale > 0 else difference


def _close(answer: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> bool:
    return answer.shape == expected.shape and bool(np.allclose(answer, expected, rtol=rtol, atol=atol, equal_nan=True))


def diagnose_numbers(answer: Any, expected: np.ndarray, *, rtol: float, atol: float) -> Diagnosis:
    """Diagnose a numeric answer (a scalar or an array) against ``expected``.

    Parameters
    ----------
    answer
        The learner's value: a number, a list, a NumPy, JAX or torch array.
    expected
        The expected values (its shape is the expected shape; ``()`` for a scalar).
    rtol, atol
        The tolerance, as in :func:`numpy.allclose`.
    """
    if is_unanswered(answer):
        return Diagnosis("not_attempted", "not attempted yet: the answer is still `...` or None.")
    given = as_float_array(answer)
    kind = "a number" if expected.ndim == 0 else "an array of numbers"
    if given is None:
        return Diagnosis("type", f"expected {kind}, got a {type(answer).__name__}.")
    if given.shape != expected.shape:
        if expected.ndim == 0 and given.size == 1:
            given = given.reshape(())
        elif expected.ndim == 2 and given.shape == expected.shape[::-1]:
            return Diagnosis(
                "shape", f"shape {given.shape} is the transpose of the expected {expected.shape}: swap the axes (`.T`)."
            )
        elif given.size == expected.size:
            return Diagnosis(
                "shape", f"the right number of values, but shape {given.shape} instead of {expected.shape}."
            )
        else:
            return Diagnosis("shape", f"shape {given.shape}, expected {expected.shape}.")
    bad = ~np.isfinite(given) & np.isfinite(expected)
    if bad.any():
        return Diagnosis(
            "nan",
            f"{int(bad.sum())} of {given.size} values are NaN or infinite; "
            "look for a division by zero or the log of zero.",
        )
    undefined = np.isfinite(given) & ~np.isfinite(expected)
    if undefined.any():
        return Diagnosis(
            "nan",
            f"{int(undefined.sum())} of {given.size} values should be "
            "undefined (NaN), as when there is nothing to average, but are numbers.",
        )
    if _close(given, expected, rtol, atol):
        return CORRECT
    finite = np.isfinite(expected)
    a, e = given[finite], expected[finite]
    if e.size and np.any(e != 0) and _close(-a, e, rtol, atol):
        return Diagnosis("sign", "the size is right but the sign is flipped.")
    if a.size and np.any(a != 0):
        factor = float(a @ e / (a @ a))  # least-squares factor that maps the answer on the expected
        systematic = a.size > 1 or _is_round_factor(1 / factor if factor else 0.0, rtol)
        if systematic and factor != 0 and abs(1 / factor - 1) > _NEAR and _close(factor * a, e, rtol, atol):
            return Diagnosis(
                "scale",
                f"off by a constant factor: your values are {1 / factor:.4g} "
                "times the expected ones (a unit, a bin width or a mean "
                "instead of a sum?).",
            )
    if a.size > 1:
        shift = float(np.mean(a - e))
        if abs(shift) > _NEAR * float(np.max(np.abs(e))) and _close(a - shift, e, rtol, atol):
            return Diagnosis(
                "offset",
                f"off by a constant: your values are all {shift:+.4g} away "
                "from the expected ones (a missing or extra constant term?).",
            )
        if _close(np.sort(a.ravel()), np.sort(e.ravel()), rtol, atol):
            return Diagnosis("order", "the right values, in the wrong order.")
    error = _relative_error(given[finite], expected[finite])
    if expected.size == 1:  # an exact error would give a single number away
        if error < 0.1:
            return Diagnosis("tolerance", "close (within 10 %), but outside the tolerance.")
        return Diagnosis("wrong", "not right yet (more than 10 % off).")
    if error < 0.1:
        return Diagnosis(
            "tolerance",
            f"close, but outside the tolerance: the largest error is "
            f"{error:.2%} of the values' size (tolerance {rtol:.2g} relative).",
        )
    return Diagnosis("wrong", f"not right yet: the largest error is {error:.3g} times the values' size.")


def _is_round_factor(factor: float, rtol: float) -> bool:
    """A whole number (or one over it) of 2 or more: a sum for a mean, Hz for a count per bin.

    Any two scalars differ by *some* factor, so for a single number only such factors say
    more than "wrong".
    """
    for candidate in (abs(factor), 1 / abs(factor) if factor else 0.0):
        if candidate >= 2 and abs(candidate - round(candidate)) <= max(rtol, 1e-9) * candidate:
            return True
    return False


def diagnose_exact(answer: Any, expected: Any) -> Diagnosis:
    """Diagnose an answer that must equal ``expected`` exactly (a string, a bool, a label)."""
    if is_unanswered(answer):
        return Diagnosis("not_attempted", "not attempted yet: the answer is still `...` or None.")
    wanted = (bool, np.bool_) if isinstance(expected, (bool, np.bool_)) else type(expected)
    if not isinstance(answer, wanted):
        return Diagnosis("type", f"expected a {type(expected).__name__}, got a {type(answer).__name__}.")
    return CORRECT if answer == expected else Diagnosis("wrong", "not the expected answer.")


def diagnose_choice(answer: Any, expected: Any, options: Sequence[Any]) -> Diagnosis:
    """Diagnose the choice of one of ``options``; the code of a wrong choice is ``"choice"``.

    Nothing is said about how far a wrong option is from the right one: the options are the
    answers, so any distance would give the right one away.
    """
    if is_unanswered(answer):
        return Diagnosis("not_attempted", "not attempted yet: the answer is still `...` or None.")
    given = answer.item() if isinstance(answer, np.generic) else answer
    if given not in list(options):
        shown = ", ".join(map(str, options))
        return Diagnosis("type", f"{given!r} is not one of the options ({shown}).")
    return CORRECT if given == expected else Diagnosis("choice", "not the best choice.")


def diagnose(answer: Any, expected: Any, *, rtol: float = 1e-4, atol: float = 1e-8) -> Diagnosis:
    """Diagnose ``answer`` against ``expected``, recursing into mappings and sequences.

    Parameters
    ----------
    answer
        The learner's answer.
    expected
        The expected answer: a number or array, a string or bool (compared exactly), a
        mapping (fitted parameters by name: every key is checked) or a tuple or list of
        such values.
    rtol, atol
        The tolerance of numeric comparisons.

    Returns
    -------
    Diagnosis
        The first problem found, located (``where``) in the answer, or :data:`CORRECT`.
    """
    if isinstance(expected, Mapping):
        if is_unanswered(answer):
            return Diagnosis("not_attempted", "not attempted yet: the answer is still `...` or None.")
        if not isinstance(answer, Mapping):
            return Diagnosis("type", f"expected a dict, got a {type(answer).__name__}.")
        missing = [key for key in expected if key not in answer]
        if missing:
            return Diagnosis("type", f"the dict has no key {missing[0]!r}.")
        for key, value in expected.items():
            found = diagnose(answer[key], value, rtol=rtol, atol=atol)
            if not found.ok:
                return found.located(f"key {key!r}")
        return CORRECT
    if isinstance(expected, (tuple, list)) and not _is_numeric_sequence(expected):
        if is_unanswered(answer):
            return Diagnosis("not_attempted", "not attempted yet: the answer is still `...` or None.")
        if not isinstance(answer, Sequence) or isinstance(answer, str):
            return Diagnosis("type", f"expected a tuple of {len(expected)} items, got a {type(answer).__name__}.")
        if len(answer) != len(expected):
            return Diagnosis("shape", f"expected {len(expected)} items, got {len(answer)}.")
        for index, (given, value) in enumerate(zip(answer, expected)):
            found = diagnose(given, value, rtol=rtol, atol=atol)
            if not found.ok:
                return found.located(f"item {index}")
        return CORRECT
    if isinstance(expected, (str, bool, np.bool_)):
        return diagnose_exact(answer, expected)
    return diagnose_numbers(answer, np.asarray(expected, dtype=float), rtol=rtol, atol=atol)


def _is_numeric_sequence(values: Sequence) -> bool:
    return all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in values)
