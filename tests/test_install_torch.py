"""tools/install_torch.py: PyTorch's CPU index on Linux, a fast fallback when it is out of reach.

The index is imitated by a wheel index served on 127.0.0.1 (no other network in tests).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from conftest import serve_directory

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("install_torch", ROOT / "tools" / "install_torch.py")
install_torch = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_torch)


@pytest.fixture
def wheel_index(tmp_path):
    """A PEP 503 index on 127.0.0.1 with one project, torch, holding a placeholder file."""
    project = tmp_path / "torch"
    project.mkdir()
    wheel = "torch-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(project / wheel, "w") as archive:  # a wheel with metadata, no code
        info = "torch-0.0.0.dist-info"
        archive.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: torch\nVersion: 0.0.0\n")
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
    (project / "index.html").write_text(f'<a href="{wheel}">{wheel}</a>')
    with serve_directory(tmp_path) as url:
        yield url


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_linux_takes_torch_alone_from_the_index(wheel_index):
    arguments = install_torch.plan(wheel_index, "Linux", "constraints.txt")
    assert arguments == ["install", "--quiet", "-c", "constraints.txt", "torch", "--index-url", wheel_index]


def test_cpu_means_pytorchs_cpu_index():
    assert install_torch.index_url("cpu") == "https://download.pytorch.org/whl/cpu"
    assert install_torch.index_url("https://example.org/whl/cu126/") == "https://example.org/whl/cu126"


def test_an_unreachable_index_falls_back_at_once_and_says_so(capsys):
    start = time.perf_counter()
    assert install_torch.plan(closed_port(), "Linux", "constraints.txt", timeout=5) is None
    assert time.perf_counter() - start < 5
    assert "cannot be reached, so torch comes from the package index" in capsys.readouterr().out


@pytest.mark.parametrize("torch, system", [("pypi", "Linux"), ("cpu", "Darwin"), ("cpu", "Windows")])
def test_nothing_to_do_where_the_package_index_is_right(torch, system, wheel_index):
    assert install_torch.plan(torch if torch == "pypi" else wheel_index, system, "c.txt") is None


def test_the_makefile_installs_torch_through_the_script_before_the_package():
    makefile = (ROOT / "Makefile").read_text()
    torch_step = makefile.index("tools/install_torch.py --torch $(TORCH)")
    assert torch_step < makefile.index('$(PIP) -e ".[book,dev,cluster]"')


def test_pip_accepts_the_command(wheel_index, tmp_path):
    """pip resolves torch from the local index with the command the script builds (dry run)."""
    constraints = tmp_path / "c.txt"
    constraints.write_text("torch==0.0.0\n")
    arguments = install_torch.plan(wheel_index, "Linux", str(constraints))
    arguments.remove("--quiet")
    result = subprocess.run(
        [sys.executable, "-m", "pip", *arguments, "--dry-run", "--no-deps", "--isolated", "--no-cache-dir"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "Would install torch-0.0.0" in result.stdout, result.stdout
