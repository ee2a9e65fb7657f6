"""Verified downloads into the course cache, built on pooch.

Each file is streamed by pooch to a temporary file in the cache folder, checked against its
sha256 and only then renamed to its final name, so an interrupted or corrupted download never
leaves a file that looks complete. The addresses of a dataset are tried in order (the
``COURSE_DATA_MIRROR`` mirror first when set, then the registry's URLs); transient failures
(timeouts, cut-off bodies, server errors) are retried a bounded number of times per address.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import socket
import sys
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pooch
import requests
import urllib3.exceptions

from course_utils.config import data_dir
from course_utils.data.errors import (
    Attempt,
    CacheWriteError,
    ChecksumError,
    DataFetchError,
    DownloadError,
    OfflineError,
)
from course_utils.data.registry import REGISTRY, Dataset, get_dataset
from course_utils.validation import check_ints, check_positive_numbers

MIRROR_ENV = "COURSE_DATA_MIRROR"
#: When set (to anything but "" or "0"), nothing is downloaded: a dataset missing from the
#: cache raises OfflineError at once. ``make test`` sets it, so tests never reach a network.
OFFLINE_ENV = "COURSE_OFFLINE"
#: The slowest download accepted, in bytes per second on average, once ``timeout`` seconds
#: have passed: the timeout alone is per read, so a server that sends a byte now and then
#: would otherwise hold a download for hours (1 byte/s: 14 hours for 50 kB).
MIN_RATE_BYTES_S = 10_000.0
#: Seconds to wait before the n-th retry of one URL is ``n * RETRY_BACKOFF_S``.
RETRY_BACKOFF_S = 0.5
#: A leftover pooch temporary file untouched for this long belongs to no live download
#: (a live one is written at least every ``timeout`` seconds).
STALE_TEMP_AGE_S = 600.0
# Names made by tempfile.NamedTemporaryFile, which pooch uses for its partial downloads.
_POOCH_TEMP_NAME = re.compile(r"^tmp[a-z0-9_]{8}$")
_TRANSIENT_KINDS = frozenset({"timeout", "truncated", "dropped", "network"})

_OFFLINE_ADVICE = (
    "You seem to be offline: no server could be reached. Where you have network, run "
    "`python -m course_utils fetch --all`, then copy the cache folder to this machine (or "
    "point COURSE_DATA_DIR at the copy); or set {env} to a local mirror, e.g. "
    "{env}=http://127.0.0.1:8000/ (see `help(course_utils.data)`)."
)
_ADVICE = {
    "timeout": (
        "A server accepted the connection but sent nothing for {timeout:g} s. Try again "
        "later, pass a longer timeout, e.g. fetch({name!r}, timeout=120), or set {env} to a "
        "local mirror."
    ),
    "http": (
        "A server answered with an HTTP error: the file may have moved or the server may be "
        "down. If {env} is set, check that the mirror serves {filename}; if the primary URL is "
        "gone, report it to the course maintainers (the URLs are in "
        "course_utils/data/registry.py)."
    ),
    "broken": (
        "The connection broke before the download finished. Try again; on an unstable "
        "network, set {env} to a local mirror."
    ),
    "checksum": (
        "The downloaded file did not match its sha256 checksum: it was corrupted on the way "
        "or the file changed upstream. The download was deleted. Try again; if it fails the "
        "same way, the file changed upstream: report it to the course maintainers."
    ),
    "bad_url": "An address is not a valid http(s) URL: check {env} and the registry.",
    "slow": (
        "A server sent data too slowly to finish in reasonable time (under {min_rate_kb:g} "
        "kB/s on average). Try again later or on another network, or set {env} to a local "
        "mirror."
    ),
}


# Which advice follows which kinds of failure, in the order the advice is given.
_ADVICE_GROUPS = (
    ("checksum", {"checksum"}),
    ("http", {"http"}),
    ("timeout", {"timeout"}),
    ("broken", {"truncated", "dropped", "network"}),
    ("bad_url", {"bad_url"}),
    ("slow", {"slow"}),
)


def cache_path(name: str) -> Path:
    """Return where dataset ``name`` is (or will be) stored; the file may not exist yet.

    Parameters
    ----------
    name
        Short dataset name, e.g. ``"place_cells"``.

    Returns
    -------
    pathlib.Path
        ``<cache folder>/<filename>``, the cache folder being :func:`course_utils.config.data_dir`.

    Raises
    ------
    UnknownDatasetError
        If ``name`` is not registered.
    """
    return data_dir() / get_dataset(name).filename


def is_cached(name: str) -> bool:
    """Return whether dataset ``name`` is in the cache with the right sha256.

    Hashing reads the whole file, which takes a moment for large files.

    Parameters
    ----------
    name
        Short dataset name.

    Returns
    -------
    bool
        ``True`` only if the file exists and its checksum matches the registry (for a
        bundled dataset, its copy in the package).
    """
    dataset = get_dataset(name)
    path = BUNDLED_DIR / dataset.filename if dataset.bundled else cache_path(name)
    return path.is_file() and _sha256_matches(path, get_dataset(name).sha256)


def candidate_urls(dataset: Dataset) -> tuple[str, ...]:
    """Return the addresses to try for ``dataset``, in order, without duplicates.

    Parameters
    ----------
    dataset
        A registry entry.

    Returns
    -------
    tuple of str
        ``<COURSE_DATA_MIRROR>/<filename>`` first when the variable is set, then the
        registry's URLs (primary, then mirrors).

    Raises
    ------
    DataFetchError
        If ``COURSE_DATA_MIRROR`` is set but is not an http(s) URL.
    """
    urls = list(dataset.urls)
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        parts = urlsplit(mirror)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DataFetchError(
                f"{MIRROR_ENV}={mirror!r} is not an http(s) base URL. Set it to the address "
                f"of a server that holds the data files, e.g. http://127.0.0.1:8000/, or unset it."
            )
        urls.insert(0, f"{mirror.rstrip('/')}/{dataset.filename}")
    return tuple(dict.fromkeys(urls))


def fetch(name: str, *, progress: bool = True, timeout: float = 30.0, retries: int = 2) -> Path:
    """Return the local path of dataset ``name``, downloading and verifying it if needed.

    Parameters
    ----------
    name
        Short dataset name, e.g. ``"place_cells"`` (see :func:`dataset_names`).
    progress
        Show a progress bar while downloading.
    timeout
        Seconds to wait for a connection and for each read from the server. A read timeout
        alone does not bound the download (a server may send a byte at a time), so after
        ``timeout`` seconds a download slower than :data:`MIN_RATE_BYTES_S` on average is
        abandoned too, without a retry.
    retries
        Extra attempts per URL after a transient failure (timeout, cut-off download,
        server error). A missing file (HTTP 404), a refused connection or a wrong checksum
        moves on to the next URL at once.

    Returns
    -------
    pathlib.Path
        The verified file in the cache folder.

    Raises
    ------
    UnknownDatasetError
        If ``name`` is not registered.
    OfflineError
        If no URL could be reached.
    ChecksumError
        If a downloaded file did not match the registry's sha256 (it is deleted).
    DownloadError
        If servers were reached but every download failed (HTTP error, timeout, cut-off).
    CacheWriteError
        If the cache folder could not be written (disk full, no permission).
    DataFetchError
        The base class of the four above, also raised for a malformed ``COURSE_DATA_MIRROR``.

    Notes
    -----
    A cached file whose checksum does not match is deleted (with a warning) and downloaded
    again. No failure leaves a partial file in the cache.
    """
    _check_options(timeout, retries)
    dataset = get_dataset(name)
    if dataset.bundled:
        return bundled_path(dataset)
    folder = data_dir()
    target = folder / dataset.filename
    if target.is_file():
        if _sha256_matches(target, dataset.sha256):
            return target
        warnings.warn(
            f"The cached file {target} does not match the sha256 of dataset {name!r} "
            "(corrupted or replaced): deleting it and downloading it again.",
            stacklevel=2,
        )
        _remove(target, dataset, folder)
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        raise OfflineError(
            f"Dataset {name!r} ({dataset.filename}) is not in the cache folder {folder}, and "
            f"{OFFLINE_ENV} is set, so no download was attempted. Unset {OFFLINE_ENV} to "
            f"download it, or pre-download it with `python -m course_utils fetch {name}`.",
            summary=f"{name!r} is not downloaded and {OFFLINE_ENV} is set "
            f"(pre-download with `python -m course_utils fetch {name}`).",
        )
    urls = candidate_urls(dataset)
    _remove_stale_temporaries(folder)

    failures = []
    for url in urls:
        failure = _try_url(url, dataset, folder, progress=progress, timeout=timeout, retries=retries)
        if failure is None:
            return target
        failures.append(failure)
    raise _failure_error(dataset, folder, tuple(failures), timeout)


def fetch_all(
    names: Iterable[str] | None = None,
    *,
    progress: bool = True,
    timeout: float = 30.0,
    retries: int = 2,
) -> dict[str, Path]:
    """Fetch several datasets (all registered ones by default), e.g. before going offline.

    Every dataset is attempted even when an earlier one fails.

    Parameters
    ----------
    names
        Short dataset names; ``None`` means every registered dataset.
    progress, timeout, retries
        As in :func:`fetch`.

    Returns
    -------
    dict
        Dataset name to verified local path.

    Raises
    ------
    DataFetchError
        After trying them all, if any dataset failed; the message gives each failure. It is
        an :class:`OfflineError` when every failure was one.
    """
    wanted = list(REGISTRY) if names is None else list(names)
    for name in wanted:
        get_dataset(name)  # unknown names fail before any download
    paths: dict[str, Path] = {}
    errors: dict[str, DataFetchError] = {}
    for name in wanted:
        try:
            paths[name] = fetch(name, progress=progress, timeout=timeout, retries=retries)
        except DataFetchError as exc:
            errors[name] = exc
    if errors:
        done = ", ".join(paths) or "none"
        details = "\n\n".join(f"[{name}] {exc}" for name, exc in errors.items())
        all_offline = all(isinstance(e, OfflineError) for e in errors.values())
        raise (OfflineError if all_offline else DataFetchError)(
            f"{len(errors)} of {len(wanted)} datasets could not be fetched (fetched: {done}).\n\n{details}",
            tuple(a for exc in errors.values() for a in exc.attempts),
        )
    return paths


def _check_options(timeout: float, retries: int) -> None:
    check_positive_numbers(unit="seconds", timeout=timeout)
    check_ints(minimum=0, retries=retries)


#: Where bundled datasets (``Dataset.bundled``) live inside the package.
BUNDLED_DIR = Path(__file__).resolve().parent / "files"


def bundled_path(dataset: Dataset) -> Path:
    """Return the verified copy of a dataset that ships with the package.

    Parameters
    ----------
    dataset
        A registry entry with ``bundled=True``.

    Returns
    -------
    pathlib.Path
        The file in :data:`BUNDLED_DIR`; nothing is downloaded.

    Raises
    ------
    ChecksumError
        If the file is missing or does not match the registry's sha256 (an incomplete or
        edited installation): reinstall the package.
    """
    path = BUNDLED_DIR / dataset.filename
    if not path.is_file() or not _sha256_matches(path, dataset.sha256):
        problem = "is missing" if not path.is_file() else "does not match its sha256"
        raise ChecksumError(
            f"Dataset {dataset.name!r} ships with course_utils, but {path} {problem}: the "
            "installation is incomplete or the file was edited. Reinstall the package "
            "(`pip install -e .` in the course folder, or `make venv`).",
            summary=f"the bundled file of {dataset.name!r} {problem} (reinstall course_utils).",
        )
    return path


def _sha256_matches(path: Path, sha256: str) -> bool:
    return pooch.file_hash(str(path), alg="sha256") == sha256


class TooSlowError(requests.exceptions.Timeout):
    """A server kept the connection alive but sent data under :data:`MIN_RATE_BYTES_S`."""


class RateLimitedDownloader:
    """A pooch downloader that also gives up on a server that sends data too slowly.

    requests' ``timeout`` bounds each read, not the download: a server that sends a byte
    every few seconds never trips it. This downloader reads whatever each read returns
    (``read1``, not a fixed chunk that would itself wait for many such bytes) and, once
    ``timeout`` seconds have passed, stops with :class:`TooSlowError` whenever the average
    rate falls under ``min_rate`` bytes per second. pooch wrote into a temporary file, which
    it deletes when the downloader raises.

    Parameters
    ----------
    timeout
        Seconds for the connection and for each read; also the grace period before the rate
        is enforced.
    progress
        Show a tqdm progress bar.
    min_rate
        Slowest accepted average rate, bytes per second.
    """

    def __init__(self, timeout: float, progress: bool, min_rate: float = MIN_RATE_BYTES_S) -> None:
        self.timeout = float(timeout)
        self.progress = bool(progress)
        self.min_rate = float(min_rate)

    def __call__(self, url: str, output_file, pooch_instance, check_only: bool = False):
        """Download ``url`` into ``output_file`` (a path or a binary file object)."""
        if check_only:
            response = requests.head(url, timeout=self.timeout, allow_redirects=True)
            return response.status_code == 200
        owns_file = not hasattr(output_file, "write")
        sink = open(output_file, "w+b") if owns_file else output_file
        bar = None
        try:
            with requests.get(url, timeout=self.timeout, stream=True) as response:
                response.raise_for_status()
                total = int(response.headers.get("content-length", 0) or 0)
                if self.progress:
                    from tqdm.auto import tqdm

                    bar = tqdm(
                        total=total or None,
                        unit="B",
                        unit_scale=True,
                        ncols=79,
                        ascii=sys.platform == "win32",
                        leave=True,
                    )
                started = time.monotonic()
                received = 0
                while True:
                    try:
                        chunk = response.raw.read1(1 << 16, decode_content=True)
                    except urllib3.exceptions.ProtocolError as exc:
                        raise requests.exceptions.ChunkedEncodingError(exc) from exc
                    except urllib3.exceptions.ReadTimeoutError as exc:
                        raise requests.exceptions.ReadTimeout(exc) from exc
                    if not chunk:
                        break
                    sink.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                    elapsed = time.monotonic() - started
                    if elapsed > self.timeout and received < self.min_rate * (elapsed - self.timeout):
                        raise TooSlowError(
                            f"the server sent {received} bytes in {elapsed:.0f} s, under {self.min_rate / 1000:g} kB/s"
                        )
                if total and received < total:
                    raise requests.exceptions.ChunkedEncodingError(
                        f"the connection closed after {received} of {total} bytes"
                    )
                sink.flush()
        finally:
            if bar is not None:
                bar.close()
            if owns_file:
                sink.close()
        return None


def _make_downloader(timeout: float, progress: bool) -> RateLimitedDownloader:
    """The downloader of one attempt (a seam for tests that break the disk mid-download)."""
    return RateLimitedDownloader(timeout=timeout, progress=progress)


def _try_url(
    url: str, dataset: Dataset, folder: Path, *, progress: bool, timeout: float, retries: int
) -> Attempt | None:
    """Download from one URL with bounded retries; return ``None`` or the last failure."""
    for attempt in range(retries + 1):
        try:
            with _pooch_log_level(logging.INFO if progress else logging.WARNING):
                pooch.retrieve(
                    url,
                    known_hash=f"sha256:{dataset.sha256}",
                    fname=dataset.filename,
                    path=folder,
                    downloader=_make_downloader(timeout, progress),
                )
            return None
        except (requests.RequestException, ValueError) as exc:
            failure, transient = _classify(url, exc, timeout)
        except OSError as exc:  # after RequestException, which is an OSError too
            raise _cache_write_error(dataset, folder, exc) from exc
        if not transient or attempt == retries:
            break
        time.sleep(RETRY_BACKOFF_S * (attempt + 1))
    if attempt:
        failure = Attempt(failure.url, failure.kind, f"{failure.reason} ({attempt + 1} attempts)")
    return failure


def _classify(url: str, exc: Exception, timeout: float) -> tuple[Attempt, bool]:
    """Turn a download exception into a one-line reason, and say if a retry may help."""
    if isinstance(exc, ValueError):
        if "hash" not in str(exc).lower():
            raise exc
        got = re.search(r"but got (\w+)", str(exc))
        detail = f" (got {got.group(1)[:12]}...)" if got else ""
        return Attempt(url, "checksum", f"sha256 did not match the registry{detail}"), False
    if isinstance(exc, requests.HTTPError):
        response = exc.response
        status = response.status_code if response is not None else 0
        text = response.reason if response is not None else ""
        return Attempt(url, "http", f"HTTP {status} {text}".strip()), status >= 500 or status == 429
    if isinstance(
        exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)
    ):
        return Attempt(url, "bad_url", f"not a valid URL ({exc})"), False
    if isinstance(exc, TooSlowError):
        return Attempt(url, "slow", str(exc)), False
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        reason = "the connection closed before the whole file arrived"
        return Attempt(url, "truncated", reason), True
    chain = _exception_chain(exc)
    if any(isinstance(e, urllib3.exceptions.NameResolutionError) for e in chain):
        return Attempt(url, "unreachable", "could not resolve the host name"), False
    if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        return Attempt(url, "unreachable", f"could not connect ({_os_reason(chain)})"), False
    if isinstance(exc, requests.ConnectTimeout) or any(
        isinstance(e, urllib3.exceptions.ConnectTimeoutError) for e in chain
    ):
        return Attempt(url, "unreachable", f"no connection within {timeout:g} s"), False
    if isinstance(exc, requests.Timeout) or any(
        isinstance(e, (urllib3.exceptions.ReadTimeoutError, socket.timeout)) for e in chain
    ):
        return Attempt(url, "timeout", f"the server sent nothing for {timeout:g} s"), True
    if isinstance(exc, requests.ConnectionError):
        return Attempt(url, "dropped", f"the connection broke ({_os_reason(chain)})"), True
    return Attempt(url, "network", f"{type(exc).__name__}: {exc}"), True


def _exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (causes, contexts, urllib3 reasons, exception args)."""
    found: list[BaseException] = []
    todo = [exc]
    while todo and len(found) < 20:
        current = todo.pop()
        if any(current is seen for seen in found):
            continue
        found.append(current)
        wrapped = [getattr(current, "reason", None), current.__cause__, current.__context__]
        wrapped += list(current.args)
        todo += [w for w in wrapped if isinstance(w, BaseException)]
    return found


def _os_reason(chain: list[BaseException]) -> str:
    for exc in chain:
        if type(exc).__module__ == "builtins" and isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
    return str(chain[-1])


def _failure_error(dataset: Dataset, folder: Path, failures: tuple[Attempt, ...], timeout: float) -> DataFetchError:
    kinds = {f.kind for f in failures}
    if "checksum" in kinds:
        error_class: type[DataFetchError] = ChecksumError
    elif kinds == {"unreachable"}:
        error_class = OfflineError
    else:
        error_class = DownloadError
    fields = dict(
        env=MIRROR_ENV,
        name=dataset.name,
        filename=dataset.filename,
        timeout=timeout,
        min_rate_kb=MIN_RATE_BYTES_S / 1000,
    )
    advice = []
    if kinds == {"unreachable"}:
        advice.append(_OFFLINE_ADVICE.format(**fields))
    for advice_key, group in _ADVICE_GROUPS:
        if kinds & group:
            advice.append(_ADVICE[advice_key].format(**fields))
    if "unreachable" in kinds and kinds != {"unreachable"}:
        advice.append(f"Some servers could not be reached: check the network or {MIRROR_ENV}.")
    tried = "\n".join(f"  {i}. {f.url}: {f.reason}" for i, f in enumerate(failures, start=1))
    message = (
        f"Could not download dataset {dataset.name!r} ({dataset.filename}). Tried:\n{tried}\n"
        + "\n".join(advice)
        + f"\nNo partial file was left in the cache folder {folder}."
    )
    if error_class is OfflineError:
        summary = (
            f"{dataset.name!r} could not be downloaded: no network (pre-download with "
            f"`python -m course_utils fetch {dataset.name}` where you have network)."
        )
    else:
        summary = f"{dataset.name!r} could not be downloaded ({failures[-1].reason})."
    return error_class(message, failures, summary=summary)


def _cache_write_error(dataset: Dataset, folder: Path, exc: OSError) -> CacheWriteError:
    hint = "The disk is full: free some space" if exc.errno == errno.ENOSPC else "Check the folder"
    return CacheWriteError(
        f"Could not write {dataset.filename} (dataset {dataset.name!r}) to the cache folder "
        f"{folder}: {exc}. {hint}, or set COURSE_DATA_DIR to a writable folder with enough "
        "space. No partial file was kept."
    )


def _remove(path: Path, dataset: Dataset, folder: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _cache_write_error(dataset, folder, exc) from exc


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete pooch temporary files left by a download that was killed (not interrupted)."""
    if not folder.is_dir():
        return
    now = time.time()
    for path in folder.iterdir():
        if not _POOCH_TEMP_NAME.match(path.name):
            continue
        with contextlib.suppress(OSError):  # gone already, or not ours to delete
            if path.is_file() and now - path.stat().st_mtime > STALE_TEMP_AGE_S:
                path.unlink()


@contextlib.contextmanager
def _pooch_log_level(level: int) -> Iterator[None]:
    logger = pooch.get_logger()
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)
