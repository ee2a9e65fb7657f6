"""Recorded answers: what the solutions computed, one JSON file per chapter.

``course_utils/exercises/answers/<chapter>.json`` maps each run scale to the answers
recorded at that scale (the data, and so the answers, depend on the scale)::

    {"smoke": {"ex1_log_likelihood": {...}, ...}, "default": {...}}

The files ship inside the package, so that a check finds them wherever the package is
installed (a laptop, Binder, Colab). They are written by ``python -m course_utils
record-answers``, which runs each chapter with its solutions in ``record`` mode.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

ANSWERS_DIR = Path(__file__).resolve().parent / "answers"
_SIGNIFICANT_DIGITS = 10


def answers_path(chapter: str, folder: Path | None = None) -> Path:
    """The answers file of ``chapter`` (e.g. ``"01_glm_basics"``)."""
    return (folder or ANSWERS_DIR) / f"{chapter}.json"


def encode(value: Any) -> dict[str, Any]:
    """A JSON-ready record of an expected value.

    Numbers and arrays are kept to 10 significant digits; mappings and tuples of arrays
    keep their structure; strings and bools are kept as they are.

    Raises
    ------
    TypeError
        For a value a check cannot compare (an object, a function): record what it
        computes instead.
    """
    if isinstance(value, (bool, np.bool_, str)):
        return {"type": "exact", "value": value if isinstance(value, str) else bool(value)}
    if isinstance(value, Mapping):
        return {"type": "mapping", "items": {str(k): encode(v) for k, v in value.items()}}
    if isinstance(value, (tuple, list)) and any(np.ndim(v) > 0 or isinstance(v, (Mapping, str)) for v in value):
        return {"type": "sequence", "items": [encode(v) for v in value]}
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"cannot record a {type(value).__name__} as an answer: record the numbers it holds instead."
        ) from exc
    values = [None if not np.isfinite(v) else float(f"{v:.{_SIGNIFICANT_DIGITS}g}") for v in array.ravel()]
    return {"type": "array", "shape": list(array.shape), "values": values}


def decode(record: Mapping[str, Any]) -> Any:
    """The expected value a record holds (arrays as float arrays, NaN for ``null``)."""
    kind = record["type"]
    if kind == "exact":
        return record["value"]
    if kind == "mapping":
        return {k: decode(v) for k, v in record["items"].items()}
    if kind == "sequence":
        return tuple(decode(v) for v in record["items"])
    if kind == "array":
        values = [np.nan if v is None else v for v in record["values"]]
        return np.asarray(values, dtype=float).reshape(record["shape"])
    raise ValueError(f"unknown answer record type {kind!r}")


def load_answers(chapter: str, folder: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every recorded answer of ``chapter``, by scale; empty when nothing was recorded."""
    path = answers_path(chapter, folder)
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def store_answer(chapter: str, scale: str, name: str, record: Mapping[str, Any], folder: Path | None = None) -> Path:
    """Add or replace one recorded answer, writing the file atomically.

    The file is read, changed and replaced as a whole (a temporary file renamed over it),
    so an interrupted recording never leaves half a file.
    """
    answers = load_answers(chapter, folder)
    answers.setdefault(scale, {})[name] = dict(record)
    return _write(answers_path(chapter, folder), answers)


def clear_scale(chapter: str, scale: str, folder: Path | None = None) -> None:
    """Forget what was recorded for ``chapter`` at ``scale`` (before recording it anew)."""
    replace_scale(chapter, scale, None, folder)


def replace_scale(
    chapter: str, scale: str, answers_at_scale: Mapping[str, Any] | None, folder: Path | None = None
) -> None:
    """Set the answers of ``chapter`` at ``scale`` as a whole (``None``: none recorded)."""
    path = answers_path(chapter, folder)
    answers = load_answers(chapter, folder)
    if answers_at_scale is None:
        answers.pop(scale, None)
    else:
        answers[scale] = dict(answers_at_scale)
    if answers:
        _write(path, answers)
    elif path.exists():
        path.unlink()


def _write(path: Path, answers: Mapping[str, Any]) -> Path:
    """Replace ``path`` by ``answers`` as a whole: a temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(answers, stream, indent=1, sort_keys=True)
            stream.write("\n")
        os.chmod(temporary, 0o644)  # mkstemp's files are private; answers ship with the package
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
