"""The chapters' glue writes what myst-nb's writes, with or without myst-nb installed."""

from __future__ import annotations

import pytest

from course_utils import glue as glue_module


def _displayed(monkeypatch, function, *args, **kwargs):
    calls = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: calls.append((a, k)))
    function(*args, **kwargs)
    return calls


@pytest.mark.parametrize("display", [True, False])
def test_fallback_writes_the_same_output_as_myst_nb(monkeypatch, display):
    myst_glue = pytest.importorskip("myst_nb.ext.glue")
    ours = _displayed(monkeypatch, glue_module._glue, "ratio", 0.25, display=display)
    monkeypatch.setattr(myst_glue, "ipy_display", lambda *a, **k: theirs.append((a, k)))
    theirs = []
    myst_glue.glue("ratio", 0.25, display=display)
    assert ours == theirs
    assert glue_module.GLUE_PREFIX == myst_glue.GLUE_PREFIX


def test_the_chapters_glue_through_course_utils():
    from pathlib import Path

    for source in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.py")):
        text = source.read_text()
        assert "from myst_nb import glue" not in text, f"{source.name}: import glue from course_utils.glue"
        assert "from course_utils.glue import glue" in text, source.name
