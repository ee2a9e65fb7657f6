"""The book build's watch: a notebook that executes past its limit stops the build."""

import io
import sys
import time

import pytest

from course_utils.workshop.watch import run_watched

# Lines as myst-nb logs them, with Sphinx's colour codes.
STARTED = "\x1b[01m/book/notebooks/{name}.py\x1b[39;49;00m: Executing notebook using local CWD [mystnb]"
ENDED = "/book/notebooks/{name}.py: Executed notebook in 0.10 seconds [mystnb]"


def _script(*lines: str, sleep_s: float = 0.0, code: int = 0) -> list[str]:
    body = "".join(f"print({line!r}, flush=True)\n" for line in lines)
    return [sys.executable, "-c", f"import sys, time\n{body}time.sleep({sleep_s})\nsys.exit({code})"]


def test_a_notebook_past_its_limit_stops_the_build_and_is_named(tmp_path):
    echo = io.StringIO()
    started = time.monotonic()
    command = _script(STARTED.format(name="01_a"), ENDED.format(name="01_a"), STARTED.format(name="06_b"), sleep_s=60)
    run = run_watched(command, env={}, cwd=tmp_path, notebook_limit_s=1.0, echo=echo, poll_s=0.1)
    assert time.monotonic() - started < 30
    assert run.stalled_notebook == "/book/notebooks/06_b.py"
    assert run.returncode != 0
    assert "06_b.py" in echo.getvalue()  # the output is echoed as it comes


def test_notebooks_that_finish_in_time_leave_the_exit_code_alone(tmp_path):
    lines = [STARTED.format(name="01_a"), "/book/notebooks/01_a.py: Executing notebook failed: CellExecutionError"]
    run = run_watched(
        _script(*lines, sleep_s=1.5, code=3), env={}, cwd=tmp_path, notebook_limit_s=1.0, echo=io.StringIO()
    )
    assert run.returncode == 3 and run.stalled_notebook is None


def test_no_limit_watches_nothing(tmp_path):
    run = run_watched(
        _script(STARTED.format(name="01_a"), sleep_s=0.5),
        env={},
        cwd=tmp_path,
        notebook_limit_s=None,
        echo=io.StringIO(),
    )
    assert run.returncode == 0 and run.stalled_notebook is None


def test_the_limit_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        run_watched(["true"], env={}, cwd=tmp_path, notebook_limit_s=0)
