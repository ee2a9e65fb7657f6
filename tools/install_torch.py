"""Install the PyTorch build the set-up asks for, before the rest of the course's packages.

``make`` runs this with the new environment's Python, before ``pip install -e .``:

``TORCH=cpu`` (the default)
    On Linux, torch from PyTorch's CPU wheel index: the package index's Linux wheel is the
    CUDA build, several GB that a laptop without a GPU does not need.
``TORCH=pypi``
    Nothing here: torch comes from the package index with the rest.
``TORCH=<URL>``
    On Linux, torch from that wheel index (e.g. PyTorch's index of a CUDA version).

The index is asked for torch alone, and first probed with a short timeout: pip retries an
unreachable index for every package it looks up, so a whole install against one would take
many minutes. When the probe fails the script says so and leaves torch to the package index.
On macOS and Windows the package index's wheel is the CPU build, so nothing is done.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
import urllib.error
import urllib.request

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def index_url(torch: str) -> str | None:
    """The wheel index to take torch from, or None for the package index."""
    if torch == "pypi":
        return None
    return CPU_INDEX if torch == "cpu" else torch.rstrip("/")


def reachable(url: str, timeout: float = 10.0) -> bool:
    """Whether the index answers for torch within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"{url}/torch/", timeout=timeout):
            return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


def plan(torch: str, system: str, constraints: str, timeout: float = 10.0) -> list[str] | None:
    """The pip arguments that install torch, or None when the package index provides it.

    Parameters
    ----------
    torch
        ``"cpu"``, ``"pypi"`` or a wheel index URL (make's ``TORCH``).
    system
        ``platform.system()``: only Linux's package-index wheel is a CUDA build.
    constraints
        The constraints file of the tested versions.
    timeout
        Seconds the probe of the index may take.
    """
    url = index_url(torch)
    if url is None or system != "Linux":
        return None
    if not reachable(url, timeout):
        print(
            f"note: {url} cannot be reached, so torch comes from the package index (on Linux "
            "its CUDA build, several GB, unless pip finds a CPU wheel of its own)",
            flush=True,
        )
        return None
    return ["install", "--quiet", "-c", constraints, "torch", "--index-url", url]


def main(argv: list[str] | None = None) -> int:
    """Install torch as asked; return pip's exit code (0 when there is nothing to do)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch", default="cpu", help="cpu, pypi or a wheel index URL")
    parser.add_argument("--constraints", default="constraints.txt")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds for the index probe")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    arguments = plan(args.torch, platform.system(), args.constraints, args.timeout)
    if arguments is None:
        return 0
    print(f"installing torch from {arguments[-1]} (probe: {time.perf_counter() - start:.1f} s)", flush=True)
    return subprocess.call([sys.executable, "-m", "pip", *arguments])


if __name__ == "__main__":
    sys.exit(main())
