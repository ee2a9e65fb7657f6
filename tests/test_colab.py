"""The Colab install cell: present in every chapter, in step with pyproject.toml, and doing
exactly one thing on Colab and nothing elsewhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from pathlib import Path

import jupytext
import pytest
from packaging.requirements import Requirement

from course_utils.workshop import cli
from course_utils.workshop.book import chapter_sources, repository_url
from course_utils.workshop.colab import (
    INSTALL_TAG,
    PACKAGE,
    install_cell_index,
    install_cell_source,
    sync_install_cells,
)

ROOT = Path(__file__).resolve().parents[1]
URL = "https://github.com/example-org/reg-course"


@pytest.mark.parametrize("source", chapter_sources(ROOT), ids=lambda p: p.stem)
def test_every_chapter_opens_with_the_install_cell_of_pyproject(source):
    notebook = jupytext.read(source)
    cell = notebook.cells[install_cell_index(notebook)]
    assert cell.source == install_cell_source(repository_url(ROOT)), "run `python -m course_utils colab-cells`"
    assert "remove-cell" in cell.metadata["tags"], "the HTML book is not where one installs"


def _run_cell(monkeypatch, url, on_colab):
    """Run the cell's code with pip replaced by a recorder; return the commands it ran."""
    calls = []
    monkeypatch.setattr(subprocess, "check_call", lambda command: calls.append(command))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(install_cell_source(url), "<install cell>", "exec"), {})
    return calls


def test_the_cell_does_nothing_off_colab(monkeypatch):
    assert _run_cell(monkeypatch, URL, on_colab=False) == []
    assert _run_cell(monkeypatch, None, on_colab=False) == []


def test_on_colab_the_cell_pip_installs_the_course_from_its_repository(monkeypatch):
    calls = _run_cell(monkeypatch, URL, on_colab=True)
    assert len(calls) == 1
    assert calls[0][:5] == [sys.executable, "-m", "pip", "install", "--quiet"]
    requirement = Requirement(calls[0][5])
    assert requirement.name == PACKAGE and requirement.url == f"git+{URL}"


def test_on_colab_an_unpublished_course_stops_with_what_to_do(monkeypatch):
    with pytest.raises(RuntimeError, match="no public repository.*pip install -e"):
        _run_cell(monkeypatch, None, on_colab=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com/x/y",
        "https://github.com/x/y' ; rm -rf ~",
        "https://github.com",
        "https://github.com/x/y{__import__('os').getpid()}",
        "https://github.com/x/$HOME",
        "https://github.com/x/y\tz",
        "https://github.com/x\\y",
        "https://github.com/x/y\n",
    ],
)
def test_a_repository_that_is_not_a_plain_https_address_is_refused(url):
    with pytest.raises(ValueError, match="pyproject.toml"):
        install_cell_source(url)


def _copy_course(tmp_path: Path) -> Path:
    for name in ("_config.yml", "_toc.yml", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(
        ROOT / "notebooks",
        tmp_path / "notebooks",
        ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints", "__pycache__"),
    )
    return tmp_path


def test_publishing_writes_the_repository_into_every_chapter_and_its_pair(tmp_path, monkeypatch):
    course = _copy_course(tmp_path)
    pyproject = course / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + f'\n[project.urls]\nRepository = "{URL}/"\n')
    monkeypatch.chdir(course)
    assert cli.main(["colab-cells"]) == 0
    for source in chapter_sources(course):
        for path in (source, source.with_suffix(".ipynb")):
            notebook = jupytext.read(path)
            assert notebook.cells[install_cell_index(notebook)].source == install_cell_source(URL)
    assert sync_install_cells(course) == []  # a second run changes nothing


def test_a_chapter_without_the_cell_is_named(tmp_path):
    course = _copy_course(tmp_path)
    source = chapter_sources(course)[0]
    source.write_text(source.read_text().replace(f'tags=["{INSTALL_TAG}", ', "tags=["))
    with pytest.raises(ValueError, match=f"{source.name}: expected one code cell tagged"):
        sync_install_cells(course)
