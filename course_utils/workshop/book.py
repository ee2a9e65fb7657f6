"""Build the executed book at a chosen scale: the one place that knows how.

``make book`` and ``make test`` both call :func:`build_book` (through
``python -m course_utils build-book``). Each scale builds into its own folder,
``_build/<scale>``, so that cached outputs of one scale are never shown as another's.
After a successful build the attendee and presenter notebooks are written into the HTML
(:mod:`course_utils.workshop.variants`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from course_utils.config import CHECK_MODE_ENV, SCALE_ENV, SCALES
from course_utils.workshop.variants import write_variants

EXECUTION_MODES: tuple[str, ...] = ("cache", "force", "off")


def find_book_root(start: Path | None = None) -> Path:
    """Return the folder holding ``_config.yml`` and ``_toc.yml``, searching upwards.

    Raises
    ------
    FileNotFoundError
        If no such folder is found: run the command from inside the course checkout.
    """
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "_toc.yml").is_file():
            return folder
    raise FileNotFoundError(f"No _config.yml and _toc.yml found in {here} or above: run this from the course checkout.")


BINDER_URL = "https://mybinder.org"
COLAB_URL = "https://colab.research.google.com"


def repository_url(root: Path) -> str | None:
    """The course's public repository, ``[project.urls] Repository`` of ``pyproject.toml``.

    ``None`` while the course is unpublished: launch buttons need a public repository to
    point Binder and Colab at, and a button to a made-up address would only be a broken link.
    """
    path = root / "pyproject.toml"
    if not path.is_file():
        return None
    urls = tomllib.loads(path.read_text()).get("project", {}).get("urls", {})
    url = str(urls.get("Repository", "")).strip().rstrip("/")
    return url or None


def write_build_config(root: Path, out_dir: Path, execution: str) -> Path:
    """Write a copy of ``_config.yml`` for one build, and return its path.

    The copy sets the execution mode and, once ``pyproject.toml`` names the course's public
    repository (:func:`repository_url`), the repository and the Binder and Colab launch
    buttons, which open each chapter's paired ``.ipynb`` from that repository.
    """
    config = yaml.safe_load((root / "_config.yml").read_text())
    config.setdefault("execute", {})["execute_notebooks"] = execution
    url = repository_url(root)
    if url:
        config["repository"] = {"url": url, "branch": "main", "path_to_book": ""}
        config["launch_buttons"] = {
            "notebook_interface": "jupyterlab",
            "binderhub_url": BINDER_URL,
            "colab_url": COLAB_URL,
        }
        config.setdefault("html", {})["use_repository_button"] = True
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "_config.generated.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def build_book(
    scale: str = "default",
    execution: str = "cache",
    *,
    strict: bool = True,
    root: Path | None = None,
    out_dir: Path | None = None,
) -> int:
    """Build the HTML book with every notebook executed at ``scale``.

    Parameters
    ----------
    scale
        Run scale exported to the notebooks' kernels as ``COURSE_SCALE``.
    execution
        ``"cache"`` re-executes only notebooks whose code changed, ``"force"`` executes all
        (CI), ``"off"`` executes none.
    strict
        Turn Sphinx warnings into errors (``-W``), so a missing glue key or a broken
        reference fails the build.
    root
        The book's folder; found from the working directory by default.
    out_dir
        Where to build; ``<root>/_build/<scale>`` by default. Each folder keeps its own
        execution cache.

    Returns
    -------
    int
        The exit code of ``jupyter-book build``.
    """
    if scale not in SCALES:
        raise ValueError(f"Unknown scale {scale!r}; use one of {', '.join(SCALES)}.")
    if execution not in EXECUTION_MODES:
        raise ValueError(f"Unknown execution mode {execution!r}; use one of {', '.join(EXECUTION_MODES)}.")
    root = root or find_book_root()
    out_dir = Path(out_dir).resolve() if out_dir else root / "_build" / scale
    config = write_build_config(root, out_dir, execution)
    jupyter_book = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    command = [jupyter_book, "build", str(root), "--path-output", str(out_dir), "--config", str(config)]
    if strict:
        command += ["-W", "-n", "--keep-going"]
    # No progress bars in the executed book: a static page cannot animate them, and tqdm's
    # notebook widgets would make each page fetch scripts from a CDN (and fail offline).
    # The book shows the solutions, so every exercise check runs strictly: a solution that
    # no longer matches its recorded answer fails the build.
    env = {**os.environ, SCALE_ENV: scale, CHECK_MODE_ENV: "strict", "TQDM_DISABLE": "1"}
    code = subprocess.run(command, env=env, cwd=root).returncode
    if code == 0:
        write_variants(chapter_sources(root), out_dir, variants_dir(out_dir))
    return code


def chapter_sources(root: Path) -> list[Path]:
    """The chapter sources the table of contents lists (``notebooks/NN_slug.py``), in order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [entry["file"] for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    return [root / f for f in files if f.startswith("notebooks/") and f.endswith(".py")]


def variants_dir(out_dir: Path) -> Path:
    """Where a build keeps the attendee and presenter notebooks: inside its HTML, so that
    each chapter's download links (``../_static/variants/...``) resolve."""
    return out_dir / "_build" / "html" / "_static" / "variants"
