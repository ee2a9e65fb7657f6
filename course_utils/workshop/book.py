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
import sys
import tomllib
from pathlib import Path

import yaml

from course_utils.config import CHECK_MODE_ENV, SCALE_ENV, SCALES
from course_utils.workshop.variants import write_variants
from course_utils.workshop.watch import run_watched

EXECUTION_MODES: tuple[str, ...] = ("cache", "force", "off")

# How long one notebook may execute before the build is stopped as hung: many times each
# scale's whole-chapter budget (smoke 60 s, default 480 s; DESIGN.md), so that only a hang
# trips it, even on a laptop a few times slower than CI. The full scale is meant for a GPU
# and has no limit. COURSE_NOTEBOOK_LIMIT_S overrides it (0: no limit).
NOTEBOOK_LIMIT_S: dict[str, float | None] = {"smoke": 900.0, "default": 3600.0, "full": None}
NOTEBOOK_LIMIT_ENV = "COURSE_NOTEBOOK_LIMIT_S"


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
        The exit code of ``jupyter-book build``. A notebook that executes longer than
        :func:`notebook_limit` stops the build, which is tried once more.
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
    limit = notebook_limit(scale)
    for attempt in (1, 2):
        run = run_watched(command, env=env, cwd=root, notebook_limit_s=limit)
        if run.stalled_notebook is None:
            break
        print(
            f"\ncourse_utils: {run.stalled_notebook} executed for more than {limit:.0f} s and the build was "
            "stopped: its kernel hung (CI once saw a kernel fail to bind its port: 'Address already in use')."
            + (" Building again, once." if attempt == 1 else ""),
            file=sys.stderr,
        )
    else:
        print(
            f"course_utils: it hung twice. Run that chapter alone to see where: "
            f"python benchmarks/chapters.py --scale {scale} {Path(run.stalled_notebook).stem}; "
            f"set {NOTEBOOK_LIMIT_ENV} to allow more time (0: no limit).",
            file=sys.stderr,
        )
    if run.returncode == 0:
        write_variants(chapter_sources(root), out_dir, variants_dir(out_dir))
    return run.returncode


def notebook_limit(scale: str) -> float | None:
    """Seconds one notebook may execute at ``scale`` (``None``: no limit).

    Raises
    ------
    ValueError
        If ``COURSE_NOTEBOOK_LIMIT_S`` is set to something other than a number of seconds.
    """
    value = os.environ.get(NOTEBOOK_LIMIT_ENV, "").strip()
    if not value:
        return NOTEBOOK_LIMIT_S[scale]
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(
            f"{NOTEBOOK_LIMIT_ENV}={value!r} is not a number of seconds; use e.g. 3600, or 0 for no limit."
        ) from None
    return seconds if seconds > 0 else None


def chapter_sources(root: Path) -> list[Path]:
    """The chapter sources the table of contents lists (``notebooks/NN_slug.py``), in order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [entry["file"] for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    return [root / f for f in files if f.startswith("notebooks/") and f.endswith(".py")]


def variants_dir(out_dir: Path) -> Path:
    """Where a build keeps the attendee and presenter notebooks: inside its HTML, so that
    each chapter's download links (``../_static/variants/...``) resolve."""
    return out_dir / "_build" / "html" / "_static" / "variants"
