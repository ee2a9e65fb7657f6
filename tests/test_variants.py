"""Attendee and presenter notebooks: chosen by tags, solutions gone, figure checks kept."""

from __future__ import annotations

import base64
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from course_utils.workshop import book, variants

ROOT = Path(__file__).resolve().parents[1]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def make_chapter() -> nbformat.NotebookNode:
    new_code, new_md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    return nbformat.v4.new_notebook(
        cells=[
            new_md("# Title\n\nSome lecture text with {glue:text}`value:.2f` and {cite}`a2020,b2021`."),
            new_code("x = 1"),
            new_md("## Exercises\n\n### Exercise 1: double it\n\nCompute twice x.\n\nMore detail."),
            new_code("def twice():\n    ...", metadata={"tags": ["exercise"]}),
            new_code("def twice():\n    return 2 * x\nSECRET = twice()", metadata={"tags": ["solution", "hide-cell"]}),
            new_md("**Figure check.** Look.\n\n```{glue:figure} fig_one\n:name: fig-one\n\nExpected: a line.\n```"),
            new_md("## Checks"),
            new_code("assert x == 1"),
            new_md("## References\n\n```{bibliography}\n:filter: docname in docnames\n```"),
        ]
    )


GLUED = {
    "value": {"data": {"text/plain": "3.14159"}},
    "fig_one": {"data": {"image/png": PNG, "text/plain": "<Figure>"}},
}


def test_attendee_removes_solutions_and_embeds_the_expected_figure():
    chapter = make_chapter()
    result = variants.attendee(chapter, GLUED)
    sources = [c.source for c in result.cells]
    assert not any("SECRET" in s for s in sources)
    assert any("def twice():\n    ..." in s for s in sources)  # the stub stays
    check = next(c for c in result.cells if "Figure check" in c.source)
    assert "attachment:fig_one.png" in check.source and "Expected: a line." in check.source
    assert check.attachments["fig_one.png"]["image/png"] == PNG
    assert "{glue" not in "".join(sources) and "{cite}" not in "".join(sources)
    assert "3.14" in sources[1] and "3.141" not in sources[1]  # the glued value, formatted
    assert "[a2020, b2021]" in sources[1]
    assert result.cells[0].source.startswith("> **Attendee notebook.**")
    assert variants.decode_attachment(result) == [base64.b64decode(PNG)]


def test_attendee_without_a_build_names_the_variables():
    result = variants.attendee(make_chapter(), None)
    assert "⟨`value`⟩" in result.cells[1].source
    assert "expected figure is in the book" in "".join(c.source for c in result.cells)


def test_attendee_refuses_a_figure_check_without_its_figure():
    with pytest.raises(ValueError, match="fig_one"):
        variants.attendee(make_chapter(), {"value": GLUED["value"]})


def test_presenter_keeps_all_code_and_only_headings_and_prompts():
    chapter = make_chapter()
    result = variants.presenter(chapter)
    code = [c.source for c in result.cells if c.cell_type == "code"]
    assert code == [c.source for c in chapter.cells if c.cell_type == "code"]
    text = "\n".join(c.source for c in result.cells if c.cell_type == "markdown")
    assert "# Title" in text and "### Exercise 1: double it" in text and "Compute twice x." in text
    assert "Some lecture text" not in text and "More detail." not in text


CHAPTERS = book.chapter_sources(ROOT)


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_has_a_solution_and_a_figure_check(source):
    chapter = jupytext.read(source)
    tags = [variants.tags(c) for c in chapter.cells]
    assert sum("exercise" in t for t in tags) == sum("solution" in t for t in tags) >= 2
    presenter = variants.presenter(chapter)
    assert [c.source for c in presenter.cells if c.cell_type == "code"] == [
        c.source for c in chapter.cells if c.cell_type == "code"
    ], "the presenter notebook runs exactly the book's code, which the book build executes"


@pytest.mark.rerun
@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_attendee_notebook_runs_top_to_bottom_at_smoke_scale(source, monkeypatch):
    """Executes each attendee notebook (not in the default run: the book build executes every
    chapter once, and tests/test_notebooks.py shows statically that the attendee notebook then
    runs too; `pytest -m rerun` runs this anyway)."""
    notebook = variants.attendee(jupytext.read(source), glued=None)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "solution" not in {t for c in notebook.cells for t in variants.tags(c)}
    monkeypatch.setenv("COURSE_SCALE", "smoke")
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}}
    )
    client.execute()  # raises CellExecutionError unless a failing cell is tagged raises-exception
    assert code


def test_build_writes_variants_into_the_html(tmp_path):
    import json
    import re

    build = tmp_path / "build"
    for source in CHAPTERS:  # pretend the build glued every figure the checks name
        path = variants.glue_path(build, source)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = re.findall(r"\{glue:figure\}\s+(\S+)", source.read_text())
        path.write_text(json.dumps({n: {"data": {"image/png": PNG}} for n in names}))
    written = variants.write_variants(CHAPTERS, build, book.variants_dir(build))
    assert len(written) == 2 * len(CHAPTERS)
    assert all(p.is_file() and "_static/variants" in p.as_posix() for p in written)


def test_missing_build_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="build the book first"):
        variants.write_variants(CHAPTERS[:1], tmp_path, tmp_path / "out")
