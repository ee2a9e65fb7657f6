"""Time each chapter in a fresh kernel and record its wall time and peak memory.

Usage::

    python benchmarks/chapters.py --scale default            # all chapters
    python benchmarks/chapters.py --scale smoke 01_glm_basics
    python benchmarks/chapters.py --scale default --write    # and update README + headers
    python benchmarks/chapters.py --render                   # only rewrite README + headers

Each chapter runs in a new Jupyter kernel (as the book build runs it) with
``COURSE_SCALE=<scale>`` and ``COURSE_OFFLINE=1`` (the simulated path: the real-data cell is
skipped, so a download never counts) and an empty cache folder (``XDG_CACHE_HOME``), so
that compiled JAX programs are not reused: the times are those of a fresh clone. Peak memory is the kernel's maximum resident set size
plus that of its finished children, read by a cell appended to the notebook.
Results go to ``benchmarks/results/chapters-<scale>.json``; a chapter over its budget
(DESIGN.md: smoke 60 s; default 300 s and 2 GB) makes the exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import jupytext
import nbformat
from jupytext.cli import jupytext as jupytext_cli
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: find bench_common
from bench_common import host_reference_s, machine, write_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = {"smoke": {"wall_s": 60.0, "peak_mb": None}, "default": {"wall_s": 300.0, "peak_mb": 2048.0},
           "full": {"wall_s": None, "peak_mb": None}}
SCALES = tuple(BUDGETS)

MEMORY_CELL = """\
import resource as _resource, sys as _sys
_scale = 1 if _sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
print("PEAK_RSS_BYTES", _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss * _scale
      + _resource.getrusage(_resource.RUSAGE_CHILDREN).ru_maxrss * _scale)
"""

#: Time to learn per chapter (the README column that is not measured).
TIME_TO_LEARN = {"01_glm_basics": "60 min + 20 min exercises",
                 "02_overfitting_ridge": "75 min + 25 min exercises",
                 "03_low_rank_ar": "85 min + 25 min exercises",
                 "04_crbm_lambda": "75 min + 25 min exercises",
                 "05_beta_vae_hh": "75 min + 20 min exercises",
                 "06_dipole_optimization": "60 min + 20 min exercises"}
TITLES = {"01_glm_basics": ("GLM basics", "nemos, pynapple"),
          "02_overfitting_ridge": ("Overfitting, ridge and model selection", "nemos, scikit-learn"),
          "03_low_rank_ar": ("Low-rank AR models of photostimulation", "torch, scikit-learn"),
          "04_crbm_lambda": ("Compositional RBMs and their sparsity penalty", "torch, scikit-learn"),
          "05_beta_vae_hh": ("β-VAE on Hodgkin-Huxley traces", "torch, JAX, scikit-learn"),
          "06_dipole_optimization": ("Fitting a cortical column to an evoked dipole",
                                     "hnn-core, NEURON, cma, scipy")}


def chapter_sources() -> list[Path]:
    """Every chapter source, ``notebooks/NN_slug.py``, in order."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def run_chapter(source: Path, scale: str, timeout: int = 3600) -> dict:
    """Execute one chapter in a fresh kernel; return its wall time and peak memory."""
    notebook = jupytext.read(source)
    notebook.cells.append(nbformat.v4.new_code_cell(MEMORY_CELL))
    env_before = {k: os.environ.get(k) for k in ("COURSE_SCALE", "COURSE_OFFLINE", "XDG_CACHE_HOME")}
    cold_cache = tempfile.TemporaryDirectory(prefix="course-bench-cache-")
    os.environ.update(COURSE_SCALE=scale, COURSE_OFFLINE="1", XDG_CACHE_HOME=cold_cache.name)
    try:
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(NOTEBOOKS)}})
        start = time.perf_counter()
        client.execute()
        wall = time.perf_counter() - start
    finally:
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        cold_cache.cleanup()
    output = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    peak = int(re.search(r"PEAK_RSS_BYTES (\d+)", output).group(1))
    budget = BUDGETS[scale]
    within = (budget["wall_s"] is None or wall <= budget["wall_s"]) and (
        budget["peak_mb"] is None or peak / 2**20 <= budget["peak_mb"])
    return {"wall_s": round(wall, 1), "peak_mb": round(peak / 2**20), "within_budget": within}


def load_results(scale: str) -> dict | None:
    """The last recorded results at ``scale``, or None."""
    path = RESULTS / f"chapters-{scale}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def save_results(scale: str, chapters: dict[str, dict], host: dict | None = None) -> Path:
    """Merge ``chapters`` into the results file of ``scale`` and write it atomically.

    ``host`` is the run's :func:`machine` record (measured once per run); ``None`` measures it.
    """
    RESULTS.mkdir(exist_ok=True)
    previous = load_results(scale) or {"chapters": {}}
    record = {
        "scale": scale,
        "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": host or machine(),
        "budget": BUDGETS[scale],
        "chapters": {**previous["chapters"], **chapters},
    }
    path = RESULTS / f"chapters-{scale}.json"
    return write_record(path, record, sort_keys=True)


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


def readme_table() -> str:
    """The README's chapter rows, from the recorded results."""
    rows = []
    for source in chapter_sources():
        slug = source.stem
        title, tools = TITLES.get(slug, (slug, ""))
        times = timing(slug)
        rows.append(f"| {int(slug[:2])} | {title} | {tools} | {TIME_TO_LEARN.get(slug, '')} "
                    f"| {times['smoke']} | {times['default']} |")
    return "\n".join(rows)


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


def render() -> None:
    """Rewrite the README table and every chapter's run-time line from the results."""
    for page in (ROOT / "README.md", ROOT / "book" / "instructors.md"):
        page.write_text(_replace_block(page.read_text(), "<!-- timings:table -->",
                                       "<!-- /timings:table -->", readme_table()))
    for source in chapter_sources():
        slug = source.stem
        key = slug.split("_", 1)[1]
        text = _replace_block(source.read_text(), f"<!-- timings:{key} -->", "<!-- /timings -->",
                              header_line(slug), prefix="# ")
        if text != source.read_text():
            source.write_text(text)
            # --update keeps the paired notebook's cell ids, so the diff shows only the change
            jupytext_cli(["--to", "ipynb", "--update", "--quiet", str(source)])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return 1 when a chapter is over its budget."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chapters", nargs="*", help="chapter stems, e.g. 01_glm_basics (default: all)")
    parser.add_argument("--scale", choices=SCALES, default="default")
    parser.add_argument("--write", action="store_true", help="update the README table and chapter headers")
    parser.add_argument("--render", action="store_true", help="only rewrite README and headers from results")
    args = parser.parse_args(argv)
    if args.render:
        render()
        return 0
    sources = [s for s in chapter_sources() if not args.chapters or s.stem in args.chapters]
    if not sources:
        parser.error(f"no chapter matches {args.chapters}")
    results = {}
    host = machine()
    for source in sources:  # saved chapter by chapter: a failing chapter loses no earlier result
        # Each entry says when and on how fast a host it was measured: runs of single
        # chapters merge into the file, and a host's speed drifts, even during one chapter,
        # so the reference workload runs before and after it.
        before = host_reference_s()
        timing_result = run_chapter(source, args.scale)
        after = host_reference_s()
        results[source.stem] = {**timing_result,
                                "measured": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                                "host_reference_s": round((before + after) / 2, 3),
                                "host_reference_range_s": [min(before, after), max(before, after)]}
        print(f"{source.stem}: {json.dumps(results[source.stem])}", flush=True)
        print(f"wrote {save_results(args.scale, {source.stem: results[source.stem]}, host)}")
    if args.write:
        render()
    return 0 if all(r["within_budget"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
