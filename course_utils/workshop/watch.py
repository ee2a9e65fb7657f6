"""Run the book build so that a notebook whose kernel hangs cannot hold it forever.

Each cell has its own timeout (``execute.timeout`` in ``_config.yml``), but a kernel can also
hang outside any cell: CI once waited 75 minutes, until it was killed, on a chapter whose
kernel had failed to bind its heartbeat port (``zmq.error.ZMQError: Address already in
use``), a race on the TCP ports Jupyter picks for each kernel. :func:`run_watched` follows
the build's log, times each notebook's execution from its ``Executing notebook`` line, and
stops the whole build (kernels included) when one notebook runs past its limit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

# myst-nb logs "<path>: Executing notebook using local CWD" and "<path>: Executed notebook in
# ... seconds" (or "Executing notebook failed: ..."), each path once per notebook.
_STARTED = re.compile(r"(?P<path>\S+): Executing notebook using")
_ENDED = re.compile(r"(?P<path>\S+): Execut(ed notebook|ing notebook failed)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class WatchedRun:
    """How a watched command ended.

    Attributes
    ----------
    returncode
        The command's exit code (negative: killed by that signal).
    stalled_notebook
        The notebook that ran past its limit, when the watch stopped the command; else ``None``.
    """

    returncode: int
    stalled_notebook: str | None = None


def run_watched(
    command: list[str],
    *,
    env: dict[str, str],
    cwd: os.PathLike | str,
    notebook_limit_s: float | None,
    echo: TextIO | None = None,
    poll_s: float = 0.5,
) -> WatchedRun:
    """Run ``command``, echo its output, and stop it if one notebook executes too long.

    Parameters
    ----------
    command, env, cwd
        As for :func:`subprocess.run`; stdout and stderr are merged and echoed.
    notebook_limit_s
        Seconds one notebook may execute, from its ``Executing notebook`` line; ``None``
        watches nothing.
    echo
        Where to copy the output; ``sys.stdout`` by default.
    poll_s
        How often to look at the clock.

    Returns
    -------
    WatchedRun
        The exit code, and the notebook that stalled if the command was stopped.
    """
    if notebook_limit_s is not None and notebook_limit_s <= 0:
        raise ValueError(f"notebook_limit_s must be positive or None, not {notebook_limit_s!r}.")
    echo = echo or sys.stdout
    # A session of its own, so that stopping the build stops its kernels and their workers.
    process = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=os.name == "posix",
    )
    running: dict[str, float] = {}
    lock = threading.Lock()

    def follow() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            echo.write(line)
            echo.flush()
            plain = _ANSI.sub("", line)
            with lock:
                if started := _STARTED.search(plain):
                    running[started["path"]] = time.monotonic()
                elif ended := _ENDED.search(plain):
                    running.pop(ended["path"], None)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    stalled = None
    while process.poll() is None:
        time.sleep(poll_s)
        if notebook_limit_s is None:
            continue
        with lock:
            late = [path for path, since in running.items() if time.monotonic() - since > notebook_limit_s]
        if late:
            stalled = late[0]
            _stop(process)
            break
    process.wait()
    reader.join(timeout=5)
    return WatchedRun(process.returncode, stalled)


def _stop(process: subprocess.Popen) -> None:
    """Terminate the command and its session, and kill what is left after 10 s.

    The kernels run in sessions of their own (jupyter_client starts them so); each exits
    when it sees its parent, the build, gone (ipykernel's parent poller).
    """
    for polite in (True, False):
        try:
            if os.name == "posix":
                os.killpg(process.pid, signal.SIGTERM if polite else signal.SIGKILL)
            elif polite:
                process.terminate()
            else:
                process.kill()
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
            return
        except subprocess.TimeoutExpired:
            continue
