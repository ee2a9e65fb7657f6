"""The README's timing table and the chapters' run-time lines match the recorded results."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

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
