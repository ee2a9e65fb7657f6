"""One figure style for the whole course, and small helpers every chapter uses."""

from __future__ import annotations

import string
from collections.abc import Iterable

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np

#: Colours by role, so a "truth" line looks the same in every chapter.
COLORS: dict[str, str] = {
    "truth": "#222222",
    "data": "#7f7f7f",
    "model": "#1f77b4",
    "alternative": "#d62728",
    "train": "#2ca02c",
    "test": "#ff7f0e",
    "speed": "#9467bd",
    "position": "#1f77b4",
    "both": "#8c564b",
}

_STYLE = {
    "figure.figsize": (7.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "figure.constrained_layout.use": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.labelsize": 10,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "lines.linewidth": 1.8,
    "image.cmap": "viridis",
}


def use_course_style() -> None:
    """Apply the course's matplotlib style (call once in a notebook's setup cell)."""
    mpl.rcParams.update(_STYLE)


def label_panels(axes: Iterable[plt.Axes], start: str = "A") -> None:
    """Write bold panel letters (A, B, ...) in the top-left corner of each axis."""
    letters = string.ascii_uppercase[string.ascii_uppercase.index(start) :]
    for letter, ax in zip(letters, np.ravel(list(axes))):
        ax.text(-0.12, 1.06, letter, transform=ax.transAxes, fontsize=12, fontweight="bold", va="bottom", ha="left")
