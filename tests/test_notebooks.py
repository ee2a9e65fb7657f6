"""Every chapter is a paired notebook of the shape DESIGN.md fixes."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest
import yaml
from jupytext.compare import compare_notebooks

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks/NN_slug.py found"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_pair_exists_and_agrees(source):
    paired = source.with_suffix(".ipynb")
    assert paired.is_file(), f"{paired.name} is missing: run `jupytext --sync {source.relative_to(ROOT)}`"
    from_py = jupytext.read(source)
    from_ipynb = jupytext.read(paired)
    try:
        compare_notebooks(from_ipynb, from_py, fmt="py:percent")
    except Exception as error:  # jupytext raises its own comparison errors
        pytest.fail(f"{source.name} and {paired.name} differ ({error}); run `jupytext --sync {source.name}`")


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_paired_notebook_has_no_outputs(source):
    notebook = jupytext.read(source.with_suffix(".ipynb"))
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None


def _cells(source: Path):
    return jupytext.read(source).cells


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_shape(source):
    cells = _cells(source)
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    for heading in ("Learning goals", "Prerequisites", "Time to learn", "Run time", "## Checks", "## Summary", "## References"):
        assert heading in text, f"{source.name}: no '{heading}'"
    tags = [set(c.metadata.get("tags", [])) for c in cells]
    assert sum("parameters" in t for t in tags) == 1, "exactly one cell tagged parameters"
    exercises = [i for i, t in enumerate(tags) if "exercise" in t]
    solutions = [i for i, t in enumerate(tags) if "solution" in t]
    assert len(exercises) >= 2 and len(exercises) == len(solutions)
    for e, s in zip(exercises, solutions):
        assert e < s, "each solution follows its exercise"
        assert "hide-cell" in tags[s] or "hide-input" in tags[s], "solutions are hidden in the book"
        following = "\n".join(c.source for c in cells[s + 1 : s + 3] if c.cell_type == "markdown")
        assert "Figure check" in following, "a figure check follows each solution"
    for kind in ("attendee", "presenter"):
        link = f'href="../_static/variants/{kind}/{source.stem}.ipynb" download'
        assert link in text, f"{source.name}: no {kind} download link in the header"
    checks = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Checks" in c.source]
    assert cells[checks[0] + 1].cell_type == "code" and "assert" in cells[checks[0] + 1].source


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_every_glue_reference_is_glued(source):
    cells = _cells(source)
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    glued = set(re.findall(r'glue\(\s*"([^"]+)"', code))
    used = set(re.findall(r"\{glue:\w+\}`([^`:]+)", markdown)) | set(re.findall(r"\{glue:figure\}\s+(\S+)", markdown))
    assert used, "the prose quotes no computed number"
    assert used <= glued, f"referenced but never glued: {used - glued}"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_no_path_hacks(source):
    code = "\n".join(c.source for c in _cells(source) if c.cell_type == "code")
    assert "sys.path" not in code, "notebooks import course_utils as installed"


def test_toc_lists_every_chapter_by_its_source():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    for source in CHAPTERS:
        assert f"notebooks/{source.name}" in files, f"{source.name} is not in _toc.yml"
