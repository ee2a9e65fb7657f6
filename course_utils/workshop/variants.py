"""Attendee and presenter notebooks, made from each chapter's one source by cell tags.

``python -m course_utils variants`` (run by every book build) writes, for each
``notebooks/NN_slug.py``:

``attendee/NN_slug.ipynb``
    The whole lecture with the cells tagged ``solution`` removed. Exercise cells keep their
    prompt and runnable stub; each figure check shows the expected figure as an embedded
    image, and glued numbers show their values, both from what the book build glued.
``presenter/NN_slug.ipynb``
    All code, solutions included, with headings and the exercise prompts as the only text.

The variants are build products: they are written under the build folder and copied into
the HTML (``_static/variants/``), never committed, so they can never go stale.
Cells are chosen by their tags with nbformat; the only text rewriting is of MyST roles that
Jupyter cannot render (glued numbers and figures, citations).
"""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path

import jupytext
import nbformat
from nbformat import NotebookNode

SOLUTION, EXERCISE = "solution", "exercise"
_GLUE_TEXT = re.compile(r"\{glue(?::text|:md)?\}`([^`:]+)(?::([^`]*))?`")
_GLUE_FIGURE = re.compile(r"```\{glue:figure\}\s+(\S+)\n(?::[^\n]*\n)*\n?(.*?)```", re.S)
_CITE = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
_DOC = re.compile(r"\{doc\}`(?:([^`<]+?)\s*<[^`]+>|([^`]+))`")
_BIBLIOGRAPHY = re.compile(r"```\{bibliography\}.*?```", re.S)


def tags(cell: NotebookNode) -> set[str]:
    """The tags of a cell."""
    return set(cell.get("metadata", {}).get("tags", []))


def glued_outputs(path: Path) -> dict[str, dict]:
    """Read the values and figures a chapter glued, as the book build saved them.

    myst-nb writes them next to the executed notebook as ``<stem>.glue.json``: a mapping
    from glue name to a display output (``{"data": {mime type: value}}``).
    """
    import json

    return json.loads(path.read_text())


def _glued_text(glued: dict[str, dict], name: str, spec: str) -> str:
    data = glued.get(name, {}).get("data", {})
    text = data.get("text/plain")
    if text is None:
        return f"⟨`{name}`⟩"
    if spec:
        try:
            return format(float(text), spec)
        except ValueError:
            return text
    return text


def _jupyter_markdown(text: str, glued: dict[str, dict] | None = None) -> str:
    """Turn the MyST roles Jupyter cannot show into plain Markdown.

    Glued numbers become the values of the book build when ``glued`` is given, otherwise
    the name of the variable that holds them, written ⟨`name`⟩.
    """
    glued = glued or {}
    text = _GLUE_TEXT.sub(lambda m: _glued_text(glued, m.group(1), m.group(2) or ""), text)
    text = _CITE.sub(lambda m: "[" + ", ".join(k.strip() for k in m.group(1).split(",")) + "]", text)
    text = _DOC.sub(lambda m: (m.group(1) or m.group(2)).strip(), text)
    return _BIBLIOGRAPHY.sub("See the references page of the book.", text)


def attendee(source: NotebookNode, glued: dict[str, dict] | None) -> NotebookNode:
    """Return the attendee variant: no solution cells, figure checks as embedded images.

    Parameters
    ----------
    source
        The chapter as read from its ``.py`` source.
    glued
        What the book build glued (:func:`glued_outputs`), for the expected figures and the
        numbers in the text; ``None`` leaves placeholders (used to test that the attendee
        notebook runs).

    Raises
    ------
    ValueError
        If a figure check names a figure the book build did not glue.
    """
    result = copy.deepcopy(source)
    cells = []
    for cell in result.cells:
        if SOLUTION in tags(cell):
            continue
        if cell.cell_type == "markdown":
            attachments = {}
            for match in _GLUE_FIGURE.finditer(cell.source):
                name = match.group(1)
                image = (glued or {}).get(name, {}).get("data", {}).get("image/png")
                if glued is not None and image is None:
                    raise ValueError(f"the figure check names {name!r}, which the book build did not glue")
                if image is not None:
                    attachments[f"{name}.png"] = {"image/png": image}
            cell.source = _GLUE_FIGURE.sub(lambda m: _embed(m.group(1), m.group(2).strip(), glued), cell.source)
            if attachments:
                cell["attachments"] = attachments
            cell.source = _jupyter_markdown(cell.source, glued)
        cells.append(cell)
    result.cells = [_intro_cell()] + cells
    return result


def _embed(name: str, caption: str, glued: dict[str, dict] | None) -> str:
    if glued is None:
        return f"*{caption}* (the expected figure is in the book)"
    return f"![expected figure](attachment:{name}.png)\n\n*{caption}*"


def _intro_cell() -> NotebookNode:
    return nbformat.v4.new_markdown_cell(
        "> **Attendee notebook.** Exercises are left for you; their solutions are in the book "
        "and in the presenter notebook. After each attempt, run the cell below the exercise: "
        "it checks your answer and says what is wrong (a shape, a sign, a factor, how far "
        "off) without giving it away. *Run All* always reaches the end, finished exercises "
        "or not. Numbers in the text are those of the book's build; your run computes its "
        "own (print the variables to compare)."
    )


def presenter(source: NotebookNode) -> NotebookNode:
    """Return the presenter variant: all code, with headings and exercise prompts as notes."""
    result = copy.deepcopy(source)
    cells = []
    for cell in result.cells:
        if cell.cell_type == "code":
            cells.append(cell)
            continue
        notes, after_exercise_heading = [], False
        for paragraph in cell.source.split("\n\n"):
            if paragraph.startswith("#"):
                notes.append(paragraph)
                after_exercise_heading = "Exercise" in paragraph
            elif after_exercise_heading:
                notes.append(paragraph)  # the exercise's prompt
                after_exercise_heading = False
        if notes:
            cells.append(nbformat.v4.new_markdown_cell(_jupyter_markdown("\n\n".join(notes))))
    result.cells = cells
    return result


def glue_path(build_dir: Path, source: Path) -> Path:
    """Where the book build leaves what a chapter glued."""
    return build_dir / "_build" / "jupyter_execute" / "notebooks" / f"{source.stem}.glue.json"


def write_variants(sources: list[Path], build_dir: Path, out_dir: Path) -> list[Path]:
    """Write attendee and presenter notebooks of each chapter; return the paths written.

    Parameters
    ----------
    sources
        Chapter sources, ``notebooks/NN_slug.py``.
    build_dir
        The book's build folder (``_build/<scale>``), holding the executed chapters.
    out_dir
        Where to write ``attendee/`` and ``presenter/``.

    Raises
    ------
    FileNotFoundError
        If a chapter has not been executed by a book build yet.
    """
    written = []
    for source in sources:
        glue_file = glue_path(build_dir, source)
        if not glue_file.is_file():
            raise FileNotFoundError(
                f"{glue_file} is missing: build the book first "
                "(`python -m course_utils build-book`), which also writes the variants."
            )
        notebook = jupytext.read(source)
        glued = glued_outputs(glue_file)
        for kind, variant in (("attendee", attendee(notebook, glued)), ("presenter", presenter(notebook))):
            path = out_dir / kind / f"{source.stem}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            variant.metadata.pop("jupytext", None)
            nbformat.write(variant, path)
            written.append(path)
    return written


def decode_attachment(notebook: NotebookNode) -> list[bytes]:
    """The PNG attachments of a notebook (for tests and checks)."""
    return [
        base64.b64decode(data["image/png"]) for cell in notebook.cells for data in cell.get("attachments", {}).values()
    ]
