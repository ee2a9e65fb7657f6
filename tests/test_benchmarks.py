"""The README's timing table and the chapters' run-time lines match the recorded results."""

from __future__ import annotations

import importlib.util
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
from markdown_it import MarkdownIt

from course_utils import config
from course_utils.simulate import dipole_plan

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_chapters", ROOT / "benchmarks" / "chapters.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.parametrize("name", ["table", "attendee"])
@pytest.mark.parametrize("page", bench.PAGES)
def test_timing_tables_are_rendered_from_the_results(page, name):
    text = (ROOT / page).read_text()
    assert bench.table_block(name) in text, "run `python benchmarks/chapters.py --render`"


@pytest.mark.parametrize("page", bench.PAGES)
def test_timing_tables_render_as_tables_not_as_text(page):
    tokens = MarkdownIt("commonmark").enable("table").parse((ROOT / page).read_text())
    rows = [t for t in tokens if t.type == "tr_open"]
    assert sum(t.type == "table_open" for t in tokens) >= len(bench.TABLES)
    assert len(rows) >= len(bench.TABLES) * (1 + len(bench.chapter_sources())), "a table lost its rows"
    raw = [t.content for t in tokens if t.type == "inline" and t.content.lstrip().startswith("|")]
    assert raw == [], f"table syntax shown as text: {raw}"


def test_render_page_fills_the_markers_and_refuses_markers_inside_a_table():
    page = (
        "# Page\n\n<!-- timings:table -->\n<!-- /timings:table -->\n\ntext\n\n"
        "<!-- timings:attendee -->\n| stale |\n<!-- /timings:attendee -->\n"
    )
    rendered = bench.render_page(page)
    assert bench.table_block("table") in rendered and bench.table_block("attendee") in rendered
    assert "stale" not in rendered and bench.render_page(rendered) == rendered
    cut = page.replace("<!-- timings:table -->", bench.CHAPTER_HEADER + "\n<!-- timings:table -->")
    with pytest.raises(ValueError, match="enclose the whole table"):
        bench.render_page(cut)
    with pytest.raises(ValueError, match="not found"):
        bench.render_page("# Page\n")


@pytest.mark.parametrize("source", bench.chapter_sources(), ids=lambda p: p.stem)
def test_chapter_header_is_rendered_from_the_results(source):
    assert f"# {bench.header_line(source.stem)}\n" in source.read_text(), "run `python benchmarks/chapters.py --render`"


#: Chapters measured over a budget, each with the open issue that tracks it (the README says
#: "over budget" beside its time). The test fails when another chapter goes over, and when one
#: of these comes back within budget: then remove it here.
KNOWN_OVER_BUDGET: dict[tuple[str, str], str] = {}


@pytest.mark.parametrize("scale", ["smoke", "default"])
def test_every_chapter_was_measured_within_budget(scale):
    results = bench.load_results(scale)
    assert results is not None, f"no benchmarks/results/chapters-{scale}.json"
    over = set()
    for source in bench.chapter_sources():
        record = results["chapters"].get(source.stem)
        assert record is not None, f"{source.stem} was never measured at {scale}"
        if not record["within_budget"]:
            over.add(source.stem)
    known = {stem for known_scale, stem in KNOWN_OVER_BUDGET if known_scale == scale}
    assert over <= known, f"over the {scale} budget: {sorted(over - known)}"
    assert known <= over, f"back within the {scale} budget (remove from KNOWN_OVER_BUDGET): {sorted(known - over)}"


def test_describe_and_budget_logic():
    assert bench.describe(None, "smoke") == "not measured yet"
    assert bench.describe({"wall_s": 12.3, "peak_mb": 512, "within_budget": True}, "default") == "12 s (0.5 GB)"
    assert "over budget" in bench.describe({"wall_s": 400, "peak_mb": 512, "within_budget": False}, "default")
    estimate = {"wall_s": 90_000, "peak_mb": None, "within_budget": True, "estimated": "benchmarks/x.py"}
    assert bench.describe(estimate, "full") == "about 25 h, estimated, not run"
    assert [bench.format_duration(s) for s in (42, 1000, 7300)] == ["42 s", "17 min", "2 h"]


def test_results_files_are_valid_json():
    for pattern in ("chapters-*.json", "attendee-*.json"):
        for path in (ROOT / "benchmarks" / "results").glob(pattern):
            record = json.loads(path.read_text())
            assert record["scale"] in bench.SCALES and record["machine"]["cpus"]


def test_each_entry_records_the_host_speed_before_and_after_its_chapter(monkeypatch, tmp_path):
    readings = iter([0.12, 0.20])  # the host slows down while the chapter runs
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "machine", lambda: {"cpus": 2, "host_reference_s": 0.1})
    monkeypatch.setattr(bench, "host_reference_s", lambda: next(readings))
    monkeypatch.setattr(
        bench, "run_chapter", lambda source, scale: {"wall_s": 30.0, "peak_mb": 100, "within_budget": True}
    )
    assert bench.main(["--scale", "smoke", "01_glm_basics"]) == 0
    entry = json.loads((tmp_path / "chapters-smoke.json").read_text())["chapters"]["01_glm_basics"]
    assert entry["host_reference_s"] == pytest.approx(0.16)
    assert entry["host_reference_range_s"] == [0.12, 0.20]
    assert entry["wall_s"] == 30.0 and entry["measured"]


START = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)


def _stamp(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ran(start: float, seconds: float) -> nbformat.NotebookNode:
    """A code cell as nbclient leaves it: timestamps of busy, input, reply and idle."""
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["execution"] = {
        "iopub.status.busy": _stamp(start),
        "iopub.execute_input": _stamp(start + 0.01),
        "shell.execute_reply": _stamp(start + seconds - 0.01),
        "iopub.status.idle": _stamp(start + seconds),
    }
    return cell


def _executed_notebook(going_further: bool = True) -> list[nbformat.NotebookNode]:
    markdown = nbformat.v4.new_markdown_cell
    return [
        markdown("> **Attendee notebook.**"),
        markdown("# 3 · A chapter\n\nIntro."),
        _ran(0, 1.0),
        markdown("## 1. Fit | select\n\n```python\n# a comment, not a heading\n```"),
        _ran(2, 5.0),
        nbformat.v4.new_code_cell(""),  # empty: nbclient skips it, no timestamps
        markdown("## Going further" if going_further else "## 2. More"),
        _ran(8, 2.0),
        markdown("### Exercise 3"),
        _ran(11, 3.0),
    ]


def test_cell_seconds_spans_busy_to_idle():
    assert bench.cell_seconds(_ran(4, 2.5)) == pytest.approx(2.5)
    assert bench.cell_seconds(nbformat.v4.new_code_cell("")) is None


def test_headings_ignore_fenced_code():
    text = "## 6b. Penalty × rank ##\n\n```python\n# comment\n```\n:::{note}\n# inside\n:::\n#not a heading"
    assert bench.headings(text) == [(2, "6b. Penalty × rank")]


def test_cell_profile_splits_the_core_path_at_going_further():
    profile = bench.cell_profile(_executed_notebook())
    assert profile["going_further"] is True
    assert profile["core_s"] == pytest.approx(6.0) and profile["whole_s"] == pytest.approx(11.0)
    assert profile["longest_cell"] == {"s": 5.0, "heading": "1. Fit | select"}


def test_without_going_further_the_core_path_is_the_whole_notebook():
    profile = bench.cell_profile(_executed_notebook(going_further=False))
    assert profile["going_further"] is False and profile["core_s"] == profile["whole_s"] == 11.0


def test_cell_profile_of_a_notebook_that_did_not_run():
    cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1")]
    assert bench.cell_profile(cells) == {"core_s": 0.0, "whole_s": 0.0, "going_further": False, "longest_cell": None}


ATTENDEE_ENTRY = {
    "wall_s": 130.0,
    "peak_mb": 1200,
    "core_s": 95.4,
    "whole_s": 120.2,
    "going_further": True,
    "longest_cell": {"s": 41.0, "heading": "6b. Penalty | rank"},
    "within_budget": True,
}


def test_describe_attendee():
    budget = bench.ATTENDEE_BUDGETS["default"]
    assert bench.describe_attendee(None, budget)[0] == "not measured yet"
    assert bench.describe_attendee(ATTENDEE_ENTRY, budget) == ["95 s", "120 s", "1.2 GB", r"41 s (6b. Penalty \| rank)"]
    slow = {**ATTENDEE_ENTRY, "core_s": 310.0, "whole_s": 500.0, "peak_mb": 2100, "going_further": False}
    assert bench.describe_attendee(slow, budget)[:3] == [
        "310 s, over budget (the whole notebook)",
        "500 s, over budget",
        "2.1 GB, over budget",
    ]


def test_attendee_table_reads_the_attendee_results(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    bench.save_results("default", {"03_low_rank_ar": ATTENDEE_ENTRY}, {"cpus": 2}, variant="attendee")
    table = bench.attendee_table().splitlines()
    assert table[:2] == bench.ATTENDEE_HEADER.splitlines()
    assert table[2] == "| 1 | GLM basics | not measured yet |  |  |  |"
    assert table[4].startswith("| 3 | Low-rank AR models of photostimulation | 95 s | 120 s | 1.2 GB | 41 s")
    assert len(table) == 2 + len(bench.chapter_sources())


class FakeClient:
    """Stands in for nbclient: records the environment a kernel would inherit, reports a peak."""

    seen: list[dict] = []

    def __init__(self, notebook, **kwargs):
        self.notebook = notebook

    def execute(self):
        FakeClient.seen.append(
            {k: os.environ.get(k) for k in ("COURSE_SCALE", "COURSE_OFFLINE", "COURSE_CHECKS", "XDG_CACHE_HOME")}
        )
        for cell in self.notebook.cells[:-1]:
            cell.metadata["execution"] = _ran(0, 2.0).metadata["execution"]
        output = nbformat.v4.new_output("stream", name="stdout", text=f"PEAK_RSS_BYTES {300 * 2**20}\n")
        self.notebook.cells[-1].outputs = [output]


def test_chapter_runs_strict_and_attendee_lenient_then_the_environment_is_restored(monkeypatch, tmp_path):
    source = tmp_path / "99_fake.py"
    source.write_text("# %% [markdown]\n# # Fake\n\n# %%\nx = 1\n")
    monkeypatch.setattr(bench, "NotebookClient", FakeClient)
    monkeypatch.setattr(bench, "attendee_notebook", lambda s: bench.jupytext.read(s))
    monkeypatch.setenv("COURSE_CHECKS", "record")
    monkeypatch.delenv("COURSE_SCALE", raising=False)
    FakeClient.seen.clear()
    chapter = bench.run_chapter(source, "smoke")
    attendee = bench.run_attendee(source, "default")
    assert [s["COURSE_CHECKS"] for s in FakeClient.seen] == ["strict", "lenient"]
    assert [s["COURSE_SCALE"] for s in FakeClient.seen] == ["smoke", "default"]
    assert all(s["COURSE_OFFLINE"] == "1" and s["XDG_CACHE_HOME"] for s in FakeClient.seen)
    assert os.environ["COURSE_CHECKS"] == "record" and "COURSE_SCALE" not in os.environ
    assert chapter == {"wall_s": chapter["wall_s"], "peak_mb": 300, "within_budget": True}
    assert attendee["core_s"] == attendee["whole_s"] == 2.0 and attendee["within_budget"]
    assert attendee["longest_cell"] == {"s": 2.0, "heading": "Fake"}


def test_attendee_run_records_its_entry_and_fails_over_budget(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "machine", lambda: {"cpus": 2, "host_reference_s": 0.1})
    monkeypatch.setattr(bench, "host_reference_s", lambda: 0.1)
    monkeypatch.setattr(bench, "run_chapter", lambda source, scale: pytest.fail("the chapter ran"))
    over = {**ATTENDEE_ENTRY, "within_budget": False}
    monkeypatch.setattr(bench, "run_attendee", lambda source, scale: over)
    assert bench.main(["--variant", "attendee", "--scale", "default", "03_low_rank_ar"]) == 1
    record = json.loads((tmp_path / "attendee-default.json").read_text())
    entry = record["chapters"]["03_low_rank_ar"]
    assert record["variant"] == "attendee" and record["budget"] == bench.ATTENDEE_BUDGETS["default"]
    assert entry["checks"] == "lenient" and entry["host_reference_s"] == 0.1 and entry["measured"]
    assert not (tmp_path / "chapters-default.json").exists()


dipole_spec = importlib.util.spec_from_file_location("bench_dipole_full", ROOT / "benchmarks" / "dipole_full.py")
dipole_full = importlib.util.module_from_spec(dipole_spec)
dipole_spec.loader.exec_module(dipole_full)


def test_full_estimate_adds_the_default_runs_other_time_to_the_full_simulations():
    timings = {
        "default": {"evaluation_s": 1.0, "one_trial_s": 0.5},
        "full": {"evaluation_s": 100.0, "one_trial_s": 40.0},
    }
    plans = {
        scale: dipole_plan.totals(dipole_plan.planned_simulations(config.sizes("dipole_optimization", scale)))
        for scale in ("default", "full")
    }
    default_simulation_s = plans["default"]["evaluations"] * 1.0 + plans["default"]["one_trial_runs"] * 0.5
    result = dipole_full.estimate(default_simulation_s + 30.0, timings)
    assert result["default"]["other_s"] == pytest.approx(30.0)
    assert result["full"]["wall_s"] == round(
        plans["full"]["evaluations"] * 100.0 + plans["full"]["one_trial_runs"] * 40.0 + 30.0
    )


def test_full_estimate_refuses_a_count_that_exceeds_the_measured_default_run():
    timings = {
        "default": {"evaluation_s": 10.0, "one_trial_s": 5.0},
        "full": {"evaluation_s": 100.0, "one_trial_s": 40.0},
    }
    with pytest.raises(ValueError, match="planned_simulations"):
        dipole_full.estimate(60.0, timings)


def test_the_full_scale_estimate_is_marked_as_one():
    entry = (bench.load_results("full") or {"chapters": {}})["chapters"].get(dipole_full.CHAPTER)
    if entry is None:  # withdrawn: the header must not show a time then
        assert "full: not measured yet" in bench.header_line(dipole_full.CHAPTER)
        return
    assert entry["estimated"] == "benchmarks/dipole_full.py" and entry["wall_s"] > 0
    assert "estimated, not run" in bench.header_line(dipole_full.CHAPTER)


def _install_module():
    spec = importlib.util.spec_from_file_location("bench_install", ROOT / "benchmarks" / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_install_table_is_rendered_from_the_results():
    install = _install_module()
    results = install.load()
    assert results, "no benchmarks/results/install.json: run benchmarks/install.py"
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(install.BEGIN) + len(install.BEGIN) : readme.index(install.END)]
    assert block.strip() == install.table(results), "run `python benchmarks/install.py --render`"
    assert {"3.11", "3.13"} <= set(results), "a fresh install is measured on the oldest and newest Python"


def test_install_table_orders_versions_numerically():
    install = _install_module()
    row = {"wall_s": 100, "size_gb": 1.5, "torch": "2.13.0", "torch_build": "CPU", "measured": "2026-12-03"}
    text = install.table({"3.13": row, "3.11": row, "3.9": row})
    assert text.index("| 3.9 ") < text.index("| 3.11 ") < text.index("| 3.13 ")
