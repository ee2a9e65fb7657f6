"""Install the course as Colab's install cell does, into an environment that imitates Colab.

Run by ``.ci/run`` (it installs packages from the package index, which no unit test may
reach). Steps:

1. A Python 3.13 virtual environment (Colab's runtime since August 2026) gets what Colab
   ships before the course arrives: versions of numpy, scipy, matplotlib, scikit-learn,
   JAX, pandas and ipywidgets other than the course's tested ones but inside its ranges,
   Jupyter's kernel, and torch 2.12.0, as an installed-package record only (the CUDA build
   is several GB and chapter 1 does not import torch; pip sees torch 2.12.0 either way).
2. A ``google.colab`` module, so that the notebooks believe they run on Colab.
3. Chapter 1's first code cell, the install cell, runs as it is, with the repository
   address pointed at this checkout (``git+file://``; the committed state is installed).
4. Nothing Colab shipped is downgraded or removed (an upgrade that a new dependency needs
   is reported); chapter 1 runs at the smoke scale, without the book toolchain (no myst-nb,
   no jupytext).

Usage: ``python .ci/colab_imitation.py [--python python3.13]``; exit code 0 when it holds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
#: What the imitation's "Colab" has before the course is installed.
COLAB_PACKAGES = {
    "numpy": "2.3.5",
    "scipy": "1.16.3",
    "matplotlib": "3.10.8",
    "scikit-learn": "1.7.2",
    "jax": "0.8.3",
    "jaxlib": "0.8.3",
    "pandas": "2.3.3",
    "ipywidgets": "7.7.1",
}
COLAB_TOOLS = ["ipykernel", "nbclient", "nbformat"]
FAKE_TORCH = "2.12.0"


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, echoing it; raise if it fails."""
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=True, text=True, **kwargs)


def site_packages(python: Path) -> Path:
    """The environment's site-packages folder."""
    out = run(
        str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", capture_output=True
    ).stdout
    return Path(out.strip())


def fake_distribution(site: Path, name: str, version: str) -> None:
    """Record ``name`` ``version`` as installed (metadata only, no code)."""
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "INSTALLER").write_text("colab-imitation\n")
    (info / "RECORD").write_text("")


def versions(python: Path) -> dict[str, str]:
    """Installed distributions and their versions."""
    out = run(str(python), "-m", "pip", "list", "--format", "json", capture_output=True).stdout
    return {d["name"].lower(): d["version"] for d in json.loads(out)}


def install_cell(chapter: Path) -> str:
    """The source of a chapter's first code cell (its install cell), from its .ipynb pair."""
    notebook = json.loads(chapter.with_suffix(".ipynb").read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    assert "colab-install" in cell["metadata"].get("tags", []), "the first code cell installs"
    return "".join(cell["source"])


def main(argv: list[str] | None = None) -> int:
    """Build the imitation, install, check; return 0 when every check holds."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default="python3.13")
    args = parser.parse_args(argv)
    chapter = ROOT / "notebooks" / "01_glm_basics.py"
    with tempfile.TemporaryDirectory(prefix="colab-imitation-") as folder:
        folder = Path(folder)
        run(args.python, "-m", "venv", str(folder / "venv"))
        python = folder / "venv" / "bin" / "python"
        run(
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            *[f"{n}=={v}" for n, v in COLAB_PACKAGES.items()],
            *COLAB_TOOLS,
        )
        fake_distribution(site_packages(python), "torch", FAKE_TORCH)
        colab = folder / "colab" / "google" / "colab"
        colab.mkdir(parents=True)
        (colab / "__init__.py").write_text('"""Stands in for Colab\'s module."""\n')
        (colab.parent / "__init__.py").write_text("")
        before = versions(python)

        # The install cell as the chapter has it; only the repository address differs.
        cell = install_cell(chapter).replace(
            "COURSE_REPOSITORY = None", f"COURSE_REPOSITORY = {('file://' + str(ROOT))!r}"
        )
        assert "file://" in cell, "the install cell no longer sets COURSE_REPOSITORY = None"
        start = time.perf_counter()
        run(
            str(python),
            "-c",
            f"import google.colab\n{cell}",
            env={"PYTHONPATH": str(folder / "colab"), "PATH": "/usr/bin:/bin"},
        )
        install_s = time.perf_counter() - start
        after = versions(python)

        changed = {n: (before[n], after.get(n)) for n in [*COLAB_PACKAGES, "torch"] if after.get(n) != before[n]}
        problems = [
            f"{n} went from {old} to {new or 'nothing'}"
            for n, (old, new) in changed.items()
            if new is None or Version(new) < Version(old)
        ]
        upgraded = [
            f"{n} {old} -> {new}"
            for n, (old, new) in changed.items()
            if new is not None and Version(new) > Version(old)
        ]
        if "course-utils" not in after:
            problems.append("course-utils was not installed")
        for tool in ("myst-nb", "jupytext", "jupyter-book", "sphinx"):
            if tool in after:
                problems.append(f"the runtime install pulled in the book toolchain ({tool})")

        # Chapter 1 at the smoke scale, in that environment, as Colab would run its .ipynb.
        execute = textwrap.dedent(f"""
            import nbformat, os
            from nbclient import NotebookClient
            os.environ.update(COURSE_SCALE="smoke", COURSE_OFFLINE="1", MPLBACKEND="agg")
            nb = nbformat.read({str(chapter.with_suffix(".ipynb"))!r}, 4)
            NotebookClient(nb, timeout=900, kernel_name="python3").execute()
            print("chapter 1 ran to the end")
        """)
        start = time.perf_counter()
        result = subprocess.run(
            [str(python), "-c", execute],
            text=True,
            capture_output=True,
            cwd=chapter.parent,
            env={"PYTHONPATH": str(folder / "colab"), "PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(folder)},
        )
        chapter_s = time.perf_counter() - start
        if result.returncode != 0:
            problems.append("chapter 1 failed:\n" + result.stdout[-3000:] + result.stderr[-3000:])
    print(f"install cell: {install_s:.0f} s; chapter 1 at smoke: {chapter_s:.0f} s")
    print("kept:", ", ".join(f"{n} {before[n]}" for n in [*COLAB_PACKAGES, "torch"] if n not in changed))
    # pip picks the newest version of each new dependency; one may need a newer version of
    # a package Colab has (lineax 0.1.1, which nemos's solvers use, needs JAX >= 0.10).
    # An upgrade is allowed and reported; a downgrade or a removal fails.
    print("upgraded by the install (allowed):", ", ".join(upgraded) or "nothing")
    if problems:
        print("COLAB IMITATION FAILED:", *problems, sep="\n  - ")
        return 1
    print("Colab imitation passed: nothing Colab ships was downgraded, and chapter 1 ran.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
