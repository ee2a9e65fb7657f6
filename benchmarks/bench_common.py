"""What every benchmark script shares: the machine it measured on and how it saves a record."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine(**extra: Any) -> dict[str, Any]:
    """Describe the machine a measurement was taken on (cores, platform, Python), plus ``extra``."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), **extra}


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
