"""The course's datasets: a registry, verified downloads, and loaders with a simulated default.

Every chapter works on simulated ground truth by default, so the book builds offline; the
real recording is one argument away::

    from course_utils.data import load_place_cells
    session = load_place_cells()                 # simulated, with the truth attached
    session = load_place_cells(source="real")    # downloads once, verifies the sha256

Datasets: ``place_cells`` (Achilles_10252013.nwb, chapter 1), ``current_injection``
(allen_478498617.nwb, chapter 1) and ``head_direction`` (Mouse32-140822.nwb, chapter 2).
Chapter 6 adds ``evoked_dipole`` (yes_trial_S1_ERP_all_avg.txt), which ships with the package
(``course_utils/data/files``, with its license notice) and is never downloaded.
Chapter 4's zebrafish recordings are large and not fetched: :func:`load_assemblies`
simulates planted assemblies or takes your own binarized array (``source="user", data=...``).
Chapter 3's photostimulation recordings are not public: :func:`load_photostim` simulates
one or takes your own arrays (``source="user", data=(activity, stimulation)``). Every loader
also reads your own file or arrays with ``source="user", data=...`` (:mod:`course_utils.data.loaders`).
:func:`describe_datasets` lists them with citations and licenses.

Environment variables
---------------------
``COURSE_DATA_DIR``
    The cache folder (default: the platform's user cache, see
    :func:`course_utils.config.data_dir`). Created on the first download.
``COURSE_DATA_MIRROR``
    A base URL tried *first* for every file, as ``<mirror>/<filename>``, before the
    registry's URLs. This is how a workshop room without internet is served: the
    instructor fetches everything beforehand (``python -m course_utils fetch --all``, or
    :func:`fetch_all`), then serves the cache folder, e.g.
    ``python -m http.server 8000 --directory <cache folder>``, and attendees set
    ``COURSE_DATA_MIRROR=http://<instructor's address>:8000/``. The tests use the same
    variable to point the real code path at a local server.

Downloads are written to a temporary file and renamed only once their sha256 matches, so
the cache never holds a partial or corrupted file; each failure raises a subclass of
:class:`DataFetchError` that lists every URL tried, why it failed, and what to do.
Nothing is downloaded at import time.
"""

from __future__ import annotations

from typing import Any

from course_utils.data.download import (
    MIRROR_ENV,
    cache_path,
    candidate_urls,
    fetch,
    fetch_all,
    is_cached,
)
from course_utils.data.errors import (
    Attempt,
    CacheWriteError,
    ChecksumError,
    DataFetchError,
    DatasetFormatError,
    DownloadError,
    OfflineError,
    UnknownDatasetError,
)
from course_utils.data.registry import (
    REGISTRY,
    Dataset,
    dataset_names,
    describe_datasets,
    get_dataset,
)

_LOADERS = (
    "load_place_cells",
    "load_current_injection",
    "PlaceCellSession",
    "CurrentInjectionSession",
    "load_head_direction",
    "HeadDirectionSession",
    "load_evoked_dipole",
    "EvokedDipole",
    "load_photostim",
    "PhotostimSession",
    "load_assemblies",
    "AssemblyData",
)

__all__ = [
    "Attempt",
    "CacheWriteError",
    "ChecksumError",
    "DataFetchError",
    "Dataset",
    "DatasetFormatError",
    "DownloadError",
    "MIRROR_ENV",
    "OfflineError",
    "REGISTRY",
    "UnknownDatasetError",
    "cache_path",
    "candidate_urls",
    "dataset_names",
    "describe_datasets",
    "fetch",
    "fetch_all",
    "get_dataset",
    "is_cached",
    *_LOADERS,
]


def __getattr__(name: str) -> Any:
    # The loaders need pynapple (half a second to import); fetching alone does not.
    if name in _LOADERS:
        from course_utils.data import loaders

        return getattr(loaders, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
