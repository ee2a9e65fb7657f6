"""Check a figure by its data, never its pixels (Matplotlib figures only).

:func:`summarize` reads what a Matplotlib figure shows: the number of axes, whether each has
axis labels and a title, and the data of its lines and scatter plots. :func:`diagnose_figure`
compares a learner's figure with the summary of the solution's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.collections import PathCollection

from course_utils.exercises.diagnose import CORRECT, Diagnosis


def summarize(figure: Any) -> dict[str, Any]:
    """What a figure shows, as plain data.

    Parameters
    ----------
    figure
        A :class:`matplotlib.figure.Figure` (or anything with an ``axes`` list of Axes).

    Returns
    -------
    dict
        ``{"axes": [{"xlabel": bool, "ylabel": bool, "title": bool, "lines": [[x, y], ...],
        "points": [[x, y], ...]}, ...]}``: label presence, line data and scatter offsets.
    """
    axes = []
    for ax in figure.axes:
        if ax.get_label() == "<colorbar>":
            continue
        lines = [[_floats(line.get_xdata()), _floats(line.get_ydata())] for line in ax.get_lines()]
        points = [
            np.asarray(c.get_offsets(), dtype=float)
            for c in ax.collections
            if isinstance(c, PathCollection) and len(c.get_offsets())
        ]  # scatter plots
        axes.append(
            {
                "xlabel": bool(ax.get_xlabel().strip()),
                "ylabel": bool(ax.get_ylabel().strip()),
                "title": bool(ax.get_title().strip()),
                "lines": lines,
                "points": [[_floats(p[:, 0]), _floats(p[:, 1])] for p in points],
            }
        )
    return {"axes": axes}


def _floats(values: Any) -> list[float | None]:
    array = np.asarray(values, dtype=float).ravel()
    return [None if not np.isfinite(v) else float(f"{v:.8g}") for v in array]


def _as_array(values: list[float | None]) -> np.ndarray:
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _same_data(given: list, expected: list, rtol: float, atol: float) -> bool:
    gx, gy, ex, ey = (_as_array(v) for v in (*given, *expected))
    return (
        gx.shape == ex.shape
        and gy.shape == ey.shape
        and all(np.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True) for g, e in ((gx, ex), (gy, ey)))
    )


def diagnose_figure(figure: Any, expected: dict[str, Any], *, rtol: float = 1e-3, atol: float = 1e-8) -> Diagnosis:
    """Compare a learner's figure with the summary of the expected one.

    Every expected panel must exist, carry the labels the expected one carries, and show
    each expected line and scatter (in any order, among other artists). Extra lines are
    allowed: a learner may add a reference line.
    """
    if figure is None or figure is Ellipsis:
        return Diagnosis("not_attempted", "not attempted yet: no figure was made.")
    if not hasattr(figure, "axes"):
        return Diagnosis("type", f"expected a Matplotlib figure, got a {type(figure).__name__}.")
    try:
        given = summarize(figure)
    except (TypeError, ValueError) as exc:  # e.g. dates or categories on an axis
        return Diagnosis("type", f"the figure's data could not be read as numbers ({exc}).")
    if len(given["axes"]) != len(expected["axes"]):
        return Diagnosis("shape", f"the figure has {len(given['axes'])} panels, expected {len(expected['axes'])}.")
    for index, (mine, theirs) in enumerate(zip(given["axes"], expected["axes"])):
        where = f"panel {index + 1}"
        for label in ("xlabel", "ylabel", "title"):
            if theirs[label] and not mine[label]:
                return Diagnosis("type", f"the {label} is missing: label every axis.", where)
        for kind, noun in (("lines", "line"), ("points", "scatter")):
            for k, wanted in enumerate(theirs[kind]):
                if not any(_same_data(got, wanted, rtol, atol) for got in mine[kind]):
                    return Diagnosis(
                        "wrong",
                        f"{noun} {k + 1} of {len(theirs[kind])} expected is "
                        f"missing or shows other data (this panel has "
                        f"{len(mine[kind])} {noun}s).",
                        where,
                    )
    return CORRECT
