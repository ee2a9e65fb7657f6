"""The README's timing table and the chapters' run-time lines match the recorded results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from course_utils import config

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("bench_chapters", ROOT / "benchmarks" / "chapters.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.parametrize("page", ["README.md", "book/instructors.md"])
def test_timing_tables_are_rendered_from_the_results(page):
    text = (ROOT / page).read_text()
    assert bench.readme_table() in text, "run `python benchmarks/chapters.py --render`"


@pytest.mark.parametrize("source", bench.chapter_sources(), ids=lambda p: p.stem)
def test_chapter_header_is_rendered_from_the_results(source):
    assert f"# {bench.header_line(source.stem)}\n" in source.read_text(), (
        "run `python benchmarks/chapters.py --render`")


@pytest.mark.parametrize("scale", ["smoke", "default"])
def test_every_chapter_was_measured_within_budget(scale):
    results = bench.load_results(scale)
    assert results is not None, f"no benchmarks/results/chapters-{scale}.json"
    for source in bench.chapter_sources():
        record = results["chapters"].get(source.stem)
        assert record is not None, f"{source.stem} was never measured at {scale}"
        assert record["within_budget"], f"{source.stem} is over its {scale} budget: {record}"


def test_describe_and_budget_logic():
    assert bench.describe(None, "smoke") == "not measured yet"
    assert bench.describe({"wall_s": 12.3, "peak_mb": 512, "within_budget": True}, "default") == "12 s (0.5 GB)"
    assert "over budget" in bench.describe({"wall_s": 400, "peak_mb": 512, "within_budget": False}, "default")
    estimate = {"wall_s": 90_000, "peak_mb": None, "within_budget": True, "estimated": "benchmarks/x.py"}
    assert bench.describe(estimate, "full") == "about 25 h, estimated, not run"
    assert [bench.format_duration(s) for s in (42, 1000, 7300)] == ["42 s", "17 min", "2 h"]


def test_results_files_are_valid_json():
    for path in (ROOT / "benchmarks" / "results").glob("chapters-*.json"):
        record = json.loads(path.read_text())
        assert record["scale"] in bench.SCALES and record["machine"]["cpus"]


def test_each_entry_records_the_host_speed_before_and_after_its_chapter(monkeypatch, tmp_path):
    readings = iter([0.12, 0.20])  # the host slows down while the chapter runs
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    monkeypatch.setattr(bench, "machine", lambda: {"cpus": 2, "host_reference_s": 0.1})
    monkeypatch.setattr(bench, "host_reference_s", lambda: next(readings))
    monkeypatch.setattr(bench, "run_chapter", lambda source, scale: {
        "wall_s": 30.0, "peak_mb": 100, "within_budget": True})
    assert bench.main(["--scale", "smoke", "01_glm_basics"]) == 0
    entry = json.loads((tmp_path / "chapters-smoke.json").read_text())["chapters"]["01_glm_basics"]
    assert entry["host_reference_s"] == pytest.approx(0.16)
    assert entry["host_reference_range_s"] == [0.12, 0.20]
    assert entry["wall_s"] == 30.0 and entry["measured"]


dipole_spec = importlib.util.spec_from_file_location("bench_dipole_full", ROOT / "benchmarks" / "dipole_full.py")
dipole_full = importlib.util.module_from_spec(dipole_spec)
dipole_spec.loader.exec_module(dipole_full)


@pytest.mark.parametrize("size", ["n_trials", "budget", "n_restarts", "restart_budget", "polish_budget",
                                  "slice_grid"])
def test_every_size_that_sets_simulations_is_counted(size):
    sizes = config.sizes("dipole_optimization", "default")
    before = dipole_full.totals(dipole_full.planned_simulations(sizes))
    after = dipole_full.totals(dipole_full.planned_simulations({**sizes, size: sizes[size] + 1}))
    assert sum(after.values()) > sum(before.values()), size


def test_full_estimate_adds_the_default_runs_other_time_to_the_full_simulations():
    timings = {"default": {"evaluation_s": 1.0, "one_trial_s": 0.5},
               "full": {"evaluation_s": 100.0, "one_trial_s": 40.0}}
    plans = {scale: dipole_full.totals(dipole_full.planned_simulations(config.sizes("dipole_optimization", scale)))
             for scale in ("default", "full")}
    default_simulation_s = plans["default"]["evaluations"] * 1.0 + plans["default"]["one_trial_runs"] * 0.5
    result = dipole_full.estimate(default_simulation_s + 30.0, timings)
    assert result["default"]["other_s"] == pytest.approx(30.0)
    assert result["full"]["wall_s"] == round(
        plans["full"]["evaluations"] * 100.0 + plans["full"]["one_trial_runs"] * 40.0 + 30.0)


def test_full_estimate_refuses_a_count_that_exceeds_the_measured_default_run():
    timings = {"default": {"evaluation_s": 10.0, "one_trial_s": 5.0},
               "full": {"evaluation_s": 100.0, "one_trial_s": 40.0}}
    with pytest.raises(ValueError, match="planned_simulations"):
        dipole_full.estimate(60.0, timings)


def test_the_full_scale_estimate_is_marked_as_one():
    entry = (bench.load_results("full") or {"chapters": {}})["chapters"].get(dipole_full.CHAPTER)
    assert entry is not None, "run `python benchmarks/dipole_full.py`"
    assert entry["estimated"] == "benchmarks/dipole_full.py" and entry["wall_s"] > 0
    assert "estimated, not run" in bench.header_line(dipole_full.CHAPTER)
