"""Time a fresh install, as a newcomer's `make` does it, and weigh the environment it makes.

Usage::

    python benchmarks/install.py --python python3.11            # measure, record
    python benchmarks/install.py --python python3.13 --write    # and update the README
    python benchmarks/install.py --render                       # only rewrite the README

The committed state of the checkout (``git clone`` of HEAD into a temporary folder) gets
``make venv PYTHON=<python>`` with pip's cache turned off, so every package is downloaded as
on a fresh machine. The wall time and the size of the virtual environment go to
``benchmarks/results/install.json``, one entry per Python version, with the torch build
that was installed (CPU or CUDA: where PyTorch's CPU index cannot be reached, the package
index's Linux build is the CUDA one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: find bench_common
from bench_common import host_reference_s, write_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "install.json"
BEGIN, END = "<!-- install:table -->", "<!-- /install:table -->"
#: The issue's goal for a fresh install with the CPU build of torch.
GOAL = {"wall_s": 180.0, "size_gb": 2.5}


def folder_size(path: Path) -> int:
    """Bytes in the files below ``path`` (links not followed)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def measure(python: str, torch: str = "cpu") -> dict:
    """Install a fresh clone's environment with ``python``; return time, size and torch build.

    Raises
    ------
    subprocess.CalledProcessError
        If ``make venv`` fails (its output is shown).
    """
    with tempfile.TemporaryDirectory(prefix="course-install-") as folder:
        checkout = Path(folder) / "course"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(checkout)], check=True)
        env = {**os.environ, "PIP_NO_CACHE_DIR": "1"}
        start = time.perf_counter()
        subprocess.run(["make", "venv", f"PYTHON={python}", f"TORCH={torch}"], cwd=checkout, env=env, check=True)
        wall = time.perf_counter() - start
        venv = checkout / ".venv"
        probe = (
            "import sys, torch; print(f'{sys.version_info[0]}.{sys.version_info[1]}', "
            "torch.__version__, torch.version.cuda or 'cpu')"
        )
        version, torch_version, cuda = subprocess.run(
            [str(venv / "bin" / "python"), "-c", probe],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        return {
            "python": version,
            "wall_s": round(wall),
            "size_gb": round(folder_size(venv) / 1e9, 2),
            "torch": torch_version,
            "torch_build": "CPU" if cuda == "cpu" else f"CUDA {cuda}",
            "measured": datetime.now(UTC).strftime("%Y-%m-%d"),
            "host_reference_s": host_reference_s(),
        }


def load() -> dict:
    """Recorded installs by Python version."""
    return json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}


def table(results: dict) -> str:
    """The README's table of measured installs, in Python order."""
    rows = ["| Python | fresh install | environment size | torch build | measured |", "| --- | --- | --- | --- | --- |"]
    for version in sorted(results, key=lambda v: tuple(int(p) for p in v.split("."))):
        r = results[version]
        rows.append(
            f"| {version} | {r['wall_s']:.0f} s | {r['size_gb']:.1f} GB | {r['torch']} "
            f"({r['torch_build']}) | {r['measured']} |"
        )
    return "\n".join(rows)


def render(readme: Path = ROOT / "README.md") -> None:
    """Write the table between the README's install markers (outside the table)."""
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    body = "\n\n" + table(load()) + "\n\n" if load() else "\n"
    readme.write_text(text[:start] + body + text[end:])


def main(argv: list[str] | None = None) -> int:
    """Measure one install (or only render); return 0."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default="python3.11", help="the interpreter make is given")
    parser.add_argument("--torch", default="cpu", help="make's TORCH setting")
    parser.add_argument("--write", action="store_true", help="update the README's table")
    parser.add_argument("--render", action="store_true", help="only rewrite the README's table")
    args = parser.parse_args(argv)
    if not args.render:
        result = measure(args.python, args.torch)
        print(json.dumps(result))
        write_record(RESULTS, {**load(), result["python"]: result}, sort_keys=True)
    if args.render or args.write:
        render()
    return 0


if __name__ == "__main__":
    sys.exit(main())
