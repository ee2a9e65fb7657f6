"""Record the exercises' expected answers by running each chapter's solutions.

``python -m course_utils record-answers`` executes each chapter, solutions included, in a
fresh kernel with ``COURSE_CHECKS=record`` at each scale asked for: every check cell then
stores the solution's answer in ``course_utils/exercises/answers/<chapter>.json``. Run it
after changing an exercise or anything its answer depends on; the strict book build fails
until the recorded answers match the solutions again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import jupytext
from nbclient import NotebookClient

from course_utils.config import CHECK_MODE_ENV, SCALE_ENV, environment
from course_utils.exercises import records


def record_answers(source: Path, scale: str, *, folder: Path | None = None, timeout: int = 1800) -> dict[str, dict]:
    """Execute one chapter in record mode at ``scale``; return the answers it recorded.

    What was recorded before for this chapter and scale is forgotten first, so a check
    that was removed leaves no stale answer behind; if the run fails, it is put back, so a
    failed recording never leaves a scale half-recorded (or, worse, empty).

    Raises
    ------
    nbclient.exceptions.CellExecutionError
        If a cell fails, a solution failing its own check included.
    """
    chapter = source.stem
    previous = records.load_answers(chapter, folder).get(scale)
    records.clear_scale(chapter, scale, folder)
    notebook = jupytext.read(source)
    try:
        with environment(**{SCALE_ENV: scale, CHECK_MODE_ENV: "record", "COURSE_OFFLINE": "1", "TQDM_DISABLE": "1"}):
            NotebookClient(
                notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}}
            ).execute()
    except BaseException:
        records.replace_scale(chapter, scale, previous, folder)
        raise
    return records.load_answers(chapter, folder).get(scale, {})


def record_all(sources: Iterable[Path], scales: Iterable[str]) -> dict[tuple[str, str], int]:
    """Record every chapter at every scale; return how many answers each recorded."""
    counts = {}
    for source in sources:
        for scale in scales:
            counts[source.stem, scale] = len(record_answers(source, scale))
    return counts
