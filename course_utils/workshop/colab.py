"""The Colab install cell: the first code cell of every chapter.

On Google Colab the course's helper package is not installed, so each chapter opens with a
cell (tagged ``colab-install``, removed from the HTML book) that installs it there, from the
course's public repository, and does nothing anywhere else. The repository's address has
one source, ``[project.urls] Repository`` in ``pyproject.toml``; :func:`sync_install_cells`
(``python -m course_utils colab-cells``) writes it into every chapter, and a test fails
while a chapter's cell and ``pyproject.toml`` disagree. While the course is unpublished the
address is ``None`` and the cell, run on Colab, stops with an error that says what to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
from jupytext.cli import jupytext as jupytext_cli
from nbformat import NotebookNode

from course_utils.workshop.book import chapter_sources, repository_url

INSTALL_TAG = "colab-install"
PACKAGE = "course-utils"
#: What a repository address may look like: https, a host, then path segments of URL-safe
#: characters only, so that nothing in it can be read as code or shell syntax.
_SAFE_URL = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~-]+)+")

_TEMPLATE = """\
# On Google Colab, install the course's helper package and what it needs (Colab's own
# numpy, torch, matplotlib ... are kept where their versions fit); anywhere else (your
# machine, Binder) this cell does nothing. If Colab then offers to restart the session,
# accept and run the notebook again from the top. (Written by
# `python -m course_utils colab-cells` from pyproject.toml: do not edit by hand.)
import sys

COURSE_REPOSITORY = {url}  # the course's public repository (None: not published yet)
if "google.colab" in sys.modules:
    if COURSE_REPOSITORY is None:
        raise RuntimeError(
            "This copy of the course names no public repository to install course_utils from. "
            "Upload the course folder and run `pip install -e <folder>` in a cell, then run the "
            "notebook from the top."
        )
    import subprocess

    requirement = f"{package} @ git+{{COURSE_REPOSITORY}}"
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", requirement])"""


def install_cell_source(url: str | None) -> str:
    """The install cell's code for the repository ``url`` (``None`` while unpublished).

    Parameters
    ----------
    url
        The course's public repository, e.g. ``https://github.com/org/course``.

    Returns
    -------
    str
        Python source of the cell.

    Raises
    ------
    ValueError
        If ``url`` is not a plain ``https://host/path`` address of URL-safe characters (the
        cell hands it to pip; nothing in it may be read as code).
    """
    if url is not None and not _SAFE_URL.fullmatch(url):
        raise ValueError(
            f"Repository URL {url!r} is not a plain https://host/path address (letters, digits "
            "and . _ ~ - only): fix [project.urls] Repository in pyproject.toml."
        )
    # Double quotes, as ruff format writes them: the cell must be stable under `make lint`.
    return _TEMPLATE.format(url="None" if url is None else f'"{url}"', package=PACKAGE)


def install_cell_index(notebook: NotebookNode) -> int:
    """Index of the one cell tagged ``colab-install`` in ``notebook``.

    Parameters
    ----------
    notebook
        A chapter, as read by ``jupytext.read``.

    Returns
    -------
    int
        The cell's position in ``notebook.cells``.

    Raises
    ------
    ValueError
        If there is none or more than one, or a code cell comes before it.
    """
    code_cells = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    tagged = [i for i, cell in enumerate(notebook.cells) if INSTALL_TAG in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise ValueError(
            f"expected one code cell tagged {INSTALL_TAG!r}, found {len(tagged)}: add "
            f'`# %% tags=["{INSTALL_TAG}", "remove-cell"]` before the first code cell'
        )
    if not code_cells or tagged[0] != code_cells[0]:
        raise ValueError(f"the cell tagged {INSTALL_TAG!r} must be the first code cell")
    return tagged[0]


def sync_install_cells(root: Path) -> list[Path]:
    """Write the repository of ``pyproject.toml`` into every chapter's install cell.

    Rewrites ``notebooks/NN_slug.py`` through jupytext and updates its paired ``.ipynb``
    (cell ids kept). Only chapters whose cell changes are written.

    Parameters
    ----------
    root
        The course checkout (where ``_config.yml`` and ``pyproject.toml`` are).

    Returns
    -------
    list of Path
        The chapter sources that changed.

    Raises
    ------
    ValueError
        If the repository address is unsafe (:func:`install_cell_source`) or a chapter has no
        install cell as its first code cell; every chapter is checked before any is written.
    """
    source_code = install_cell_source(repository_url(root))
    chapters = []
    for path in chapter_sources(root):
        notebook = jupytext.read(path)
        try:
            chapters.append((path, notebook, install_cell_index(notebook)))
        except ValueError as exc:
            raise ValueError(f"{path.name}: {exc}") from None
    changed = []
    for path, notebook, index in chapters:
        if notebook.cells[index].source == source_code:
            continue
        notebook.cells[index].source = source_code
        jupytext.write(notebook, path, fmt="py:percent")
        jupytext_cli(["--to", "ipynb", "--update", "--quiet", str(path)])
        changed.append(path)
    return changed
