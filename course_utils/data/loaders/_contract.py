"""The contract every loader keeps: which sources exist and what each one takes.

Every loader is called as ``load_<dataset>(source, *, data=None, seed=None, <simulation options>)``:

- ``"simulated"`` (the default) makes the data, with its ground truth in ``truth``; it takes
  the simulation options and no ``data``;
- ``"real"`` reads the recording the course names (downloaded once and verified, or shipped
  with the package); it takes neither;
- ``"user"`` reads your own recording, passed as ``data=`` (a file path or arrays, as each
  loader says); it takes no simulation options.

The seed is a simulation option (default 0), except in :func:`load_photostim`, where it also
chooses which of your patterns are held out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SOURCES: tuple[str, ...] = ("simulated", "real", "user")


def check_source(
    source: Any,
    data: Any,
    *,
    user_data: str,
    real_missing: str | None = None,
    simulation_options: Mapping[str, Any] | None = None,
    takes_path: bool = True,
) -> str:
    """Check ``source`` and what came with it; return ``source``.

    Parameters
    ----------
    source
        What the caller asked for.
    data
        The caller's ``data=`` argument.
    user_data
        What ``data`` must be for ``source="user"``, in words (used in the messages).
    real_missing
        Why this dataset has no ``"real"`` source and what to do instead; ``None`` when it has one.
    simulation_options
        The simulation options the caller set (those left at ``None`` excluded).
    takes_path
        Whether ``data`` is a file path (else arrays, which the caller loads first).

    Raises
    ------
    ValueError
        If ``source`` is not one of :data:`SOURCES` (a path given as the source is pointed at
        ``data=``), if ``"real"`` does not exist for this dataset, if ``data`` is missing for
        ``"user"`` or given for another source, or if simulation options come with real or
        user data.
    """
    options = sorted(name for name, value in (simulation_options or {}).items() if value is not None)
    if not isinstance(source, str) or source not in SOURCES:
        hint = ""
        if isinstance(source, os.PathLike) or (isinstance(source, str) and ("/" in source or "." in source)):
            hint = (
                f" To read your own file, pass source='user', data={str(source)!r}."
                if takes_path
                else f" To use your own recording, load {str(source)!r} yourself (e.g. with numpy.load) "
                f"and pass source='user', data={user_data}."
            )
        real = "" if real_missing else "'real' (the course's recording), "
        raise ValueError(
            f"source must be 'simulated' (ground truth, works offline), {real}or 'user' (your own: "
            f"data={user_data}), got {source!r}.{hint}"
        )
    if source == "real" and real_missing is not None:
        raise ValueError(f"There is no 'real' source for this dataset: {real_missing}")
    if source == "user" and data is None:
        raise ValueError(f"source='user' needs your data: pass data={user_data}.")
    if source != "user" and data is not None:
        raise ValueError(f"data= is only read with source='user'; source={source!r} brings its own.")
    if source != "simulated" and options:
        raise ValueError(f"{', '.join(options)} only apply to source='simulated', not to source={source!r}.")
    return source


def refetch_advice(path: os.PathLike | str, source: str) -> str:
    """What to do about a file that is not what the loader expects."""
    if source == "user":
        return f"{path} is your file: check that it holds what the loader's docstring lists."
    return (
        f"This is not the file the course expects: delete {path} and fetch it again; if the "
        "error persists, the registry points at a different file: report it."
    )


def source_file(source: str, data: Any, dataset: str, layout: str) -> Path:
    """The file to read for ``source="real"`` (fetched and verified) or ``"user"`` (``data``).

    Raises
    ------
    ValueError
        If ``data`` is not a path.
    FileNotFoundError
        If your file does not exist.
    DataFetchError
        If the real file cannot be fetched (see :func:`course_utils.data.fetch`).
    """
    if source == "real":
        from course_utils.data.download import fetch

        return fetch(dataset)
    if not isinstance(data, (str, os.PathLike)):
        raise ValueError(f"data= must be the path of your file ({layout}), got {type(data).__name__}.")
    path = Path(data).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"No file {str(data)!r}. data= must be the path of your own file: {layout}.")
    return path


def default(value: Any, fallback: Any) -> Any:
    """``value``, or ``fallback`` where the caller left it at ``None``."""
    return fallback if value is None else value
