"""Reading pynapple objects out of an NWB file, with errors that say what is missing."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pynapple as nap

from course_utils.data.errors import DatasetFormatError
from course_utils.data.loaders._contract import refetch_advice


@contextlib.contextmanager
def open_nwb(path: Path, source: str) -> Iterator[Any]:
    """Open an NWB file with pynapple and close it on exit (extract what you need inside).

    Raises
    ------
    DatasetFormatError
        If pynapple cannot read the file as NWB (another format, or a damaged file).
    """
    with warnings.catch_warnings():
        # hdmf's notice that the file carries its own copy of the NWB schema: harmless.
        warnings.filterwarnings("ignore", message="Ignoring cached namespace")
        try:
            data = nap.load_file(str(path))
        except (OSError, RuntimeError, ValueError, KeyError) as error:
            raise DatasetFormatError(
                f"{path.name} is not an NWB file pynapple can read ({type(error).__name__}: {error}). "
                f"{refetch_advice(path, source)}"
            ) from None
    try:
        yield data
    finally:
        data.close()


def get(data: Any, key: str, expected: type, path: Path, source: str) -> Any:
    """``data[key]``, checked to be a pynapple ``expected``."""
    if key not in data.keys():
        raise DatasetFormatError(
            f"{path.name} has no {key!r} (it has: {', '.join(sorted(data.keys()))}). {refetch_advice(path, source)}"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynapple warns, then returns the raw NWB object
        value = data[key]
    if not isinstance(value, expected):
        raise DatasetFormatError(
            f"{path.name}: {key!r} should read as a pynapple {expected.__name__}, got "
            f"{type(value).__name__}. {refetch_advice(path, source)}"
        )
    return value


def require_column(obj: Any, column: str, key: str, path: Path, source: str) -> None:
    """Check that a pynapple object carries a metadata ``column``."""
    if column not in obj.metadata_columns:
        raise DatasetFormatError(
            f"{path.name}: {key!r} has no metadata column {column!r} (it has: "
            f"{', '.join(obj.metadata_columns) or 'none'}). {refetch_advice(path, source)}"
        )


def has_tag(tags: Any, tag: str) -> bool:
    """Whether an NWB epoch's ``tags`` hold ``tag``."""
    # NWB stores each epoch's tags as a list of strings; some conversions store one string.
    if isinstance(tags, str):
        return tags == tag
    return tag in [str(t) for t in np.atleast_1d(tags)]


def tagged_epochs(nwb: Any, tag: str, path: Path, source: str) -> nap.IntervalSet:
    """The epochs of ``nwb`` whose ``tags`` hold ``tag``.

    Raises
    ------
    DatasetFormatError
        If the file has no ``epochs`` with a ``tags`` column, or no epoch is tagged ``tag``
        (the message lists the tags found).
    """
    table = get(nwb, "epochs", nap.IntervalSet, path, source)
    require_column(table, "tags", "epochs", path, source)
    chosen = np.array([has_tag(tags, tag) for tags in table.tags], dtype=bool)
    if not chosen.any():
        found = sorted({str(name) for tags in table.tags for name in np.atleast_1d(tags)})
        raise DatasetFormatError(
            f"{path.name}: no epoch is tagged {tag!r} (tags found: {', '.join(found)}). {refetch_advice(path, source)}"
        )
    return nap.IntervalSet(start=table.start[chosen], end=table.end[chosen])
