"""What every benchmark script shares: the machine it measured on and how it saves a record."""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine(**extra: Any) -> dict[str, Any]:
    """Describe the machine a measurement was taken on (cores, platform, Python, speed on
    :func:`host_reference_s`), plus ``extra``."""
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "host_reference_s": host_reference_s(),
        **extra,
    }


def host_reference_s(repeats: int = 3) -> float:
    """Seconds a fixed single-threaded Python workload takes here (best of ``repeats``).

    Machines of the same kind (same cores, same CPU name) can differ in speed from one day
    to the next; recorded next to a timing, this number tells whether two timings came from
    equally fast hosts. Lower is faster.
    """
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        total = 0.0
        for step in range(1_000_000):
            total += math.exp(-step * 1e-7)
        best = min(best, time.perf_counter() - start)
    return round(best, 3)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded: a busy machine makes timings slow."""
    return [round(value, 2) for value in os.getloadavg()]


def write_record(path: Path, record: dict[str, Any], *, sort_keys: bool = False) -> Path:
    """Write ``record`` as JSON to ``path`` atomically: a reader never sees half a file.

    Parameters
    ----------
    path
        The results file; its folder is created if missing.
    record
        JSON-serialisable measurements.
    sort_keys
        Sort the keys, so that a file rewritten in parts keeps a stable order.

    Returns
    -------
    Path
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(record, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n")
    temporary.replace(path)
    return path
