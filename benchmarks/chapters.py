"""Time each chapter in a fresh kernel and record its wall time and peak memory.

Usage::

    python benchmarks/chapters.py --scale default            # all chapters
    python benchmarks/chapters.py --scale smoke 01_glm_basics
    python benchmarks/chapters.py --scale default --write    # and update README + headers
    python benchmarks/chapters.py --render                   # only rewrite README + headers
    python benchmarks/chapters.py --variant attendee --scale default   # attendee notebooks

Each chapter runs in a new Jupyter kernel (as the book build runs it) with
``COURSE_SCALE=<scale>`` and ``COURSE_OFFLINE=1`` (the simulated path: the real-data cell is
skipped, so a download never counts) and an empty cache folder (``XDG_CACHE_HOME``), so
that compiled JAX programs are not reused: the times are those of a fresh clone. Peak
memory is the largest resident set size of the kernel and its live child processes, sampled
every 0.1 s by a thread a cell prepended to the notebook starts (entries measured before
2026-12-03 summed the kernel's peak and its largest finished child's, which counts a
forked helper process, such as `lscpu`, at the kernel's full size).
Results go to ``benchmarks/results/chapters-<scale>.json``; a chapter over its budget
(DESIGN.md: smoke 60 s; default 300 s and 2 GB) makes the exit code 1. The whole chapter
runs with its exercise checks strict (``COURSE_CHECKS=strict``).

``--variant attendee`` runs each chapter's attendee notebook instead (the chapter without
the cells tagged ``solution``, :func:`course_utils.workshop.variants.attendee`), with
``COURSE_CHECKS=lenient``, as an attendee runs it in a workshop. From nbclient's per-cell
timestamps it records the **core path** (the cells before the ``## Going further``
heading, or the whole notebook if there is none), the whole notebook and the longest cell
with the heading it sits under. Results go to ``benchmarks/results/attendee-<scale>.json``;
over budget (default: core path 300 s, whole notebook 480 s, 2 GB) makes the exit code 1.
``--render`` writes both tables into README.md and book/instructors.md, each between its
markers (``<!-- timings:table -->``, ``<!-- timings:attendee -->``), header included.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import jupytext
import nbformat
from jupytext.cli import jupytext as jupytext_cli
from nbclient import NotebookClient
from nbformat import NotebookNode

from course_utils import config
from course_utils.workshop import variants

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: find bench_common
from bench_common import host_reference_s, machine, write_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
RESULTS = Path(__file__).resolve().parent / "results"
#: The whole chapter (Going further included); the core path's 5 minutes at the default
#: scale are measured on the attendee notebook (ATTENDEE_BUDGETS).
BUDGETS = {
    "smoke": {"wall_s": 60.0, "peak_mb": None},
    "default": {"wall_s": 480.0, "peak_mb": 2048.0},
    "full": {"wall_s": None, "peak_mb": None},
}
SCALES = tuple(BUDGETS)
#: Attendee notebooks: the core path, the whole notebook (both summed over cells) and peak memory.
ATTENDEE_BUDGETS = {
    "smoke": {"core_s": None, "whole_s": 60.0, "peak_mb": None},
    "default": {"core_s": 300.0, "whole_s": 480.0, "peak_mb": 2048.0},
    "full": {"core_s": None, "whole_s": None, "peak_mb": None},
}
VARIANTS = ("chapter", "attendee")
#: ``COURSE_CHECKS`` per variant: the whole chapter must pass its checks, an attendee's
#: unfinished exercise must not stop the run.
CHECKS = {"chapter": "strict", "attendee": "lenient"}
#: The scale of the attendee table in README.md and book/instructors.md.
ATTENDEE_TABLE_SCALE = "default"

#: Prepended to a notebook: samples the memory of the kernel and of its live child processes
#: (workers) every 0.1 s. Summing RUSAGE_SELF and RUSAGE_CHILDREN would not do: a short-lived
#: child (scikit-learn asks `lscpu` for the physical cores through joblib) is counted at the
#: kernel's full size, because a fork shares the parent's pages until it executes.
MEMORY_START_CELL = """\
import threading as _threading, time as _time, psutil as _psutil
_course_peak = [0]
def _course_sample(process=_psutil.Process()):
    while True:
        try:
            _course_peak[0] = max(_course_peak[0], process.memory_info().rss + sum(
                child.memory_info().rss for child in process.children(recursive=True)))
        except _psutil.Error:
            pass  # a child ended while being read
        _time.sleep(0.1)
_threading.Thread(target=_course_sample, daemon=True).start()
"""
#: Appended: the peak of the samples, or the kernel's own peak if that is higher.
MEMORY_CELL = """\
import resource as _resource, sys as _sys
_scale = 1 if _sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
print("PEAK_RSS_BYTES", max(_course_peak[0], _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss * _scale))
"""

#: Time to learn per chapter (the README column that is not measured).
TIME_TO_LEARN = {
    "01_glm_basics": "50 min + 30 min exercises (+ 15 min going further)",
    "02_overfitting_ridge": "60 min + 30 min exercises (+ 15 min going further)",
    "03_low_rank_ar": "60 min + 30 min exercises (+ 25 min going further)",
    "04_crbm_lambda": "60 min + 30 min exercises (+ 15 min going further)",
    "05_beta_vae_hh": "60 min + 30 min exercises (+ 10 min going further)",
    "06_dipole_optimization": "60 min + 30 min exercises (+ 35 min going further)",
}
TITLES = {
    "01_glm_basics": ("GLM basics", "nemos, pynapple"),
    "02_overfitting_ridge": ("Overfitting, ridge and model selection", "nemos, scikit-learn"),
    "03_low_rank_ar": ("Low-rank AR models of photostimulation", "torch, scikit-learn"),
    "04_crbm_lambda": ("Compositional RBMs and their sparsity penalty", "torch, scikit-learn"),
    "05_beta_vae_hh": ("β-VAE on Hodgkin-Huxley traces", "torch, JAX, scikit-learn"),
    "06_dipole_optimization": ("Fitting a cortical column to an evoked dipole", "hnn-core, NEURON, cma, scipy"),
}


def chapter_sources() -> list[Path]:
    """Every chapter source, ``notebooks/NN_slug.py``, in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def execute(notebook: NotebookNode, scale: str, checks: str, timeout: int = 3600) -> tuple[float, int]:
    """Execute ``notebook`` in place in a fresh kernel with an empty cache folder.

    Parameters
    ----------
    notebook
        The notebook to run; its cells get their outputs and nbclient's timestamps.
    scale
        ``COURSE_SCALE`` of the run.
    checks
        ``COURSE_CHECKS`` of the run: ``strict``, ``lenient`` or ``record``.
    timeout
        Seconds one cell may take.

    Returns
    -------
    tuple of float and int
        The wall time in seconds (kernel start included) and the peak memory in bytes of
        the kernel and its child processes (:data:`MEMORY_START_CELL`).
    """
    notebook.cells.insert(0, nbformat.v4.new_code_cell(MEMORY_START_CELL))
    notebook.cells.append(nbformat.v4.new_code_cell(MEMORY_CELL))
    with (
        tempfile.TemporaryDirectory(prefix="course-bench-cache-") as cold_cache,
        config.environment(COURSE_SCALE=scale, COURSE_OFFLINE="1", COURSE_CHECKS=checks, XDG_CACHE_HOME=cold_cache),
    ):
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        start = time.perf_counter()
        client.execute()
        wall = time.perf_counter() - start
    memory_cell = notebook.cells.pop()
    notebook.cells.pop(0)
    output = "".join(o.get("text", "") for o in memory_cell.outputs)
    return wall, int(re.search(r"PEAK_RSS_BYTES (\d+)", output).group(1))


def within_budget(values: dict[str, float], budget: dict[str, float | None]) -> bool:
    """Whether every measured value is at most its limit (``None``: no limit)."""
    return all(limit is None or values[key] <= limit for key, limit in budget.items())


def run_chapter(source: Path, scale: str, timeout: int = 3600) -> dict:
    """Execute one chapter in a fresh kernel; return its wall time and peak memory."""
    wall, peak = execute(jupytext.read(source), scale, CHECKS["chapter"], timeout)
    within = within_budget({"wall_s": wall, "peak_mb": peak / 2**20}, BUDGETS[scale])
    return {"wall_s": round(wall, 1), "peak_mb": round(peak / 2**20), "within_budget": within}


def attendee_notebook(source: Path) -> NotebookNode:
    """The attendee notebook of a chapter: no solution cells, placeholders for glued values."""
    return variants.attendee(jupytext.read(source), glued=None)


def run_attendee(source: Path, scale: str, timeout: int = 3600) -> dict:
    """Execute a chapter's attendee notebook in a fresh kernel; return its timings and peak memory.

    The entry holds the wall time (kernel start included), the peak memory, and the
    per-cell summary of :func:`cell_profile`; ``within_budget`` compares the core path, the
    whole notebook and the peak with :data:`ATTENDEE_BUDGETS`.
    """
    notebook = attendee_notebook(source)
    wall, peak = execute(notebook, scale, CHECKS["attendee"], timeout)
    result = {"wall_s": round(wall, 1), "peak_mb": round(peak / 2**20), **cell_profile(notebook.cells)}
    measured = {"core_s": result["core_s"], "whole_s": result["whole_s"], "peak_mb": peak / 2**20}
    return {**result, "within_budget": within_budget(measured, ATTENDEE_BUDGETS[scale])}


class CellTiming(NamedTuple):
    """How long one executed code cell ran, and the heading it sits under."""

    index: int
    seconds: float
    heading: str | None


_FENCE = re.compile(r"^(`{3,}|~{3,}|:{3,}).*?^\1", re.M | re.S)
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
_GOING_FURTHER = re.compile(r"going further\b", re.I)
_STARTS = ("iopub.status.busy", "iopub.execute_input")  # nbclient's metadata.execution keys
_ENDS = ("shell.execute_reply", "iopub.status.idle")


def headings(markdown: str) -> list[tuple[int, str]]:
    """The headings of a markdown cell as (level, text), outside fenced blocks."""
    return [(len(m.group(1)), m.group(2).strip()) for m in _HEADING.finditer(_FENCE.sub("", markdown))]


def cell_seconds(cell: NotebookNode) -> float | None:
    """Seconds a code cell ran, from nbclient's execution timestamps; ``None`` if it did not run.

    nbclient records (``record_timing``, on by default) when the kernel went busy and
    received the code, and when it replied and went idle; the cell ran from the first of the
    former to the last of the latter.
    """
    stamps = cell.get("metadata", {}).get("execution", {})
    starts = [datetime.fromisoformat(stamps[k]) for k in _STARTS if k in stamps]
    ends = [datetime.fromisoformat(stamps[k]) for k in _ENDS if k in stamps]
    if not starts or not ends:
        return None
    return (max(ends) - min(starts)).total_seconds()


def cell_timings(cells: list[NotebookNode]) -> list[CellTiming]:
    """Every executed code cell's run time, with the nearest heading above it."""
    timings, heading = [], None
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            heading = next((text for _, text in reversed(headings(cell.source))), heading)
        elif cell.cell_type == "code" and (seconds := cell_seconds(cell)) is not None:
            timings.append(CellTiming(index, seconds, heading))
    return timings


def core_path_end(cells: list[NotebookNode]) -> int | None:
    """Index of the first markdown cell with a ``## Going further`` heading; ``None`` if none."""
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and any(
            level == 2 and _GOING_FURTHER.match(text) for level, text in headings(cell.source)
        ):
            return index
    return None


def cell_profile(cells: list[NotebookNode]) -> dict:
    """Summarise an executed notebook's per-cell timings.

    Parameters
    ----------
    cells
        The executed notebook's cells, with nbclient's ``metadata.execution`` timestamps.

    Returns
    -------
    dict
        ``core_s``: seconds of the cells before the ``## Going further`` heading (all cells
        if there is none); ``whole_s``: seconds of all cells; ``going_further``: whether the
        heading is there; ``longest_cell``: ``{"s": seconds, "heading": text}`` of the
        slowest cell and the heading above it (``None`` if no cell ran). Times are summed
        over cells: kernel start-up and the gaps between cells count in the wall time only.
    """
    timings = cell_timings(cells)
    end = core_path_end(cells)
    longest = max(timings, key=lambda t: t.seconds, default=None)
    return {
        "core_s": round(sum(t.seconds for t in timings if end is None or t.index < end), 1),
        "whole_s": round(sum(t.seconds for t in timings), 1),
        "going_further": end is not None,
        "longest_cell": None if longest is None else {"s": round(longest.seconds, 1), "heading": longest.heading},
    }


def results_path(scale: str, variant: str = "chapter") -> Path:
    """``benchmarks/results/chapters-<scale>.json``, or ``attendee-<scale>.json``."""
    return RESULTS / f"{'chapters' if variant == 'chapter' else variant}-{scale}.json"


def budgets(variant: str) -> dict[str, dict[str, float | None]]:
    """The budgets of a variant, per scale."""
    return ATTENDEE_BUDGETS if variant == "attendee" else BUDGETS


def load_results(scale: str, variant: str = "chapter") -> dict | None:
    """The last recorded results at ``scale`` of ``variant``, or None."""
    path = results_path(scale, variant)
    return json.loads(path.read_text()) if path.is_file() else None


def save_results(scale: str, chapters: dict[str, dict], host: dict | None = None, variant: str = "chapter") -> Path:
    """Merge ``chapters`` into the results file of ``scale`` and ``variant``; write it atomically.

    ``host`` is the run's :func:`machine` record (measured once per run); ``None`` measures it.
    """
    previous = load_results(scale, variant) or {"chapters": {}}
    record = {
        "scale": scale,
        "measured": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": host or machine(),
        "budget": budgets(variant)[scale],
        "chapters": {**previous["chapters"], **chapters},
    }
    if variant != "chapter":
        record["variant"] = variant
    return write_record(results_path(scale, variant), record, sort_keys=True)


def format_duration(seconds: float) -> str:
    """``42 s``, ``17 min`` or ``25 h``: a duration in the unit a reader plans with."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def describe(result: dict | None, scale: str) -> str:
    """One cell of the timing table: ``42 s (0.9 GB)``, ``not measured yet``, or an estimate.

    An entry with an ``estimated`` key (the script that estimated it) was not run: it reads
    ``about 25 h, estimated, not run``.
    """
    if result is None:
        return "not measured yet"
    if result.get("estimated"):
        return f"about {format_duration(result['wall_s'])}, estimated, not run"
    text = f"{result['wall_s']:.0f} s ({result['peak_mb'] / 1024:.1f} GB)"
    return text if result["within_budget"] else f"{text}, over budget"


def timing(slug: str) -> dict[str, str]:
    """The described timing of one chapter at every scale."""
    results = {scale: load_results(scale) for scale in SCALES}
    return {scale: describe((results[scale] or {"chapters": {}})["chapters"].get(slug), scale) for scale in SCALES}


CHAPTER_HEADER = (
    "| # | chapter | core tools | time to learn | run time: smoke | run time: default |\n"
    "| --- | --- | --- | --- | --- | --- |"
)
ATTENDEE_HEADER = (
    "| # | chapter | core path | whole notebook | peak memory | longest cell (where) |\n"
    "| --- | --- | --- | --- | --- | --- |"
)


def readme_table() -> str:
    """The README's chapter table, header included, from the recorded results."""
    rows = [CHAPTER_HEADER]
    for source in chapter_sources():
        slug = source.stem
        title, tools = TITLES.get(slug, (slug, ""))
        times = timing(slug)
        rows.append(
            f"| {int(slug[:2])} | {title} | {tools} | {TIME_TO_LEARN.get(slug, '')} "
            f"| {times['smoke']} | {times['default']} |"
        )
    return "\n".join(rows)


def _seconds(value: float, limit: float | None) -> str:
    text = f"{value:.0f} s"
    return f"{text}, over budget" if limit is not None and value > limit else text


def _longest(longest: dict | None) -> str:
    if longest is None:
        return ""
    heading = (longest["heading"] or "before the first heading").replace("|", r"\|")  # a table cell
    return f"{longest['s']:.0f} s ({heading})"


def describe_attendee(result: dict | None, budget: dict[str, float | None]) -> list[str]:
    """The cells of one attendee-table row after the chapter's number and title.

    Parameters
    ----------
    result
        The chapter's entry in ``attendee-<scale>.json``, or ``None``.
    budget
        The limits of that scale (:data:`ATTENDEE_BUDGETS`); a value over its limit reads
        ``..., over budget``.

    Returns
    -------
    list of str
        Core path, whole notebook, peak memory and longest cell (with its heading).
    """
    if result is None:
        return ["not measured yet", "", "", ""]
    core = _seconds(result["core_s"], budget["core_s"])
    if not result["going_further"]:
        core += " (the whole notebook)"
    peak = f"{result['peak_mb'] / 1024:.1f} GB"
    if budget["peak_mb"] is not None and result["peak_mb"] > budget["peak_mb"]:
        peak += ", over budget"
    return [core, _seconds(result["whole_s"], budget["whole_s"]), peak, _longest(result["longest_cell"])]


def attendee_table(scale: str = ATTENDEE_TABLE_SCALE) -> str:
    """The attendee-notebook table, header included, from ``attendee-<scale>.json``."""
    chapters = (load_results(scale, "attendee") or {"chapters": {}})["chapters"]
    rows = [ATTENDEE_HEADER]
    for source in chapter_sources():
        title = TITLES.get(source.stem, (source.stem, ""))[0]
        cells = describe_attendee(chapters.get(source.stem), ATTENDEE_BUDGETS[scale])
        rows.append(f"| {int(source.stem[:2])} | {title} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


#: The tables of README.md and book/instructors.md, by marker name: ``<!-- timings:<name> -->``.
TABLES = {"table": readme_table, "attendee": attendee_table}
PAGES = ("README.md", "book/instructors.md")


def markers(name: str) -> tuple[str, str]:
    """The opening and closing markers of table ``name``."""
    return f"<!-- timings:{name} -->", f"<!-- /timings:{name} -->"


def table_block(name: str) -> str:
    """Table ``name`` between its markers, as the pages carry it.

    The markers sit outside the table, each separated from it by a blank line: an HTML
    comment between a table's header and its rows would end the table in every renderer.
    """
    begin, end = markers(name)
    return f"{begin}\n\n{TABLES[name]()}\n\n{end}"


def header_line(slug: str) -> str:
    """The run-time line under a chapter's title."""
    times = timing(slug)
    measured = [load_results(s) for s in SCALES]
    cpus = next((r["machine"]["cpus"] for r in measured if r), None)
    where = f" · on {cpus} CPU cores, peak memory in brackets" if cpus else ""
    return f"smoke {times['smoke']} · default {times['default']} · full: {times['full']}{where}"


def _replace_block(text: str, begin: str, end: str, body: str, prefix: str = "") -> str:
    pattern = re.compile(re.escape(prefix + begin) + r"\n.*?\n" + re.escape(prefix + end), re.S)
    if not pattern.search(text):
        raise ValueError(f"marker {begin!r} ... {end!r} not found")
    lines = "\n".join(prefix + line for line in body.splitlines())
    return pattern.sub(lambda _: f"{prefix}{begin}\n{lines}\n{prefix}{end}", text)


def render_page(text: str) -> str:
    """``text`` with every timing table rewritten between its markers.

    Raises
    ------
    ValueError
        If a marker is missing, or a table line sits right above an opening marker (the
        layout in which the markers cut the table in two).
    """
    for name in TABLES:
        begin, end = markers(name)
        if re.search(r"^\|.*\n" + re.escape(begin), text, re.M):
            raise ValueError(f"a table line precedes {begin}: the markers must enclose the whole table")
        pattern = re.compile(re.escape(begin) + r"\n(?:.*?\n)?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"marker {begin!r} ... {end!r} not found")
        text = pattern.sub(lambda _, name=name: table_block(name), text)
    return text


def render() -> None:
    """Rewrite the pages' timing tables and every chapter's run-time line from the results."""
    for name in PAGES:
        page = ROOT / name
        text = render_page(page.read_text())
        if text != page.read_text():
            page.write_text(text)
    for source in chapter_sources():
        slug = source.stem
        key = slug.split("_", 1)[1]
        text = _replace_block(
            source.read_text(), f"<!-- timings:{key} -->", "<!-- /timings -->", header_line(slug), prefix="# "
        )
        if text != source.read_text():
            source.write_text(text)
            # --update keeps the paired notebook's cell ids, so the diff shows only the change
            jupytext_cli(["--to", "ipynb", "--update", "--quiet", str(source)])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 when a chapter is over its budget."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter stems, e.g. 01_glm_basics (default: all)")
    parser.add_argument("--scale", choices=SCALES, default="default")
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default="chapter",
        help="the whole chapter, or its attendee notebook (solutions removed)",
    )
    parser.add_argument("--write", action="store_true", help="update the README table and chapter headers")
    parser.add_argument("--render", action="store_true", help="only rewrite README and headers from results")
    args = parser.parse_args(argv)
    if args.render:
        render()
        return 0
    sources = [s for s in chapter_sources() if not args.chapters or s.stem in args.chapters]
    if not sources:
        parser.error(f"no chapter matches {args.chapters}")
    run = run_attendee if args.variant == "attendee" else run_chapter
    results = {}
    host = machine()
    for source in sources:  # saved chapter by chapter: a failing chapter loses no earlier result
        # Each entry says when and on how fast a host it was measured: runs of single
        # chapters merge into the file, and a host's speed drifts, even during one chapter,
        # so the reference workload runs before and after it.
        before = host_reference_s()
        timing_result = run(source, args.scale)
        after = host_reference_s()
        results[source.stem] = {
            **timing_result,
            "checks": CHECKS[args.variant],
            "measured": datetime.now(UTC).strftime("%Y-%m-%d"),
            "host_reference_s": round((before + after) / 2, 3),
            "host_reference_range_s": [min(before, after), max(before, after)],
        }
        print(f"{source.stem}: {json.dumps(results[source.stem], ensure_ascii=False)}", flush=True)
        saved = save_results(args.scale, {source.stem: results[source.stem]}, host, args.variant)
        print(f"wrote {saved}")
    if args.write:
        render()
    return 0 if all(r["within_budget"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
