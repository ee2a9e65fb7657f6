"""Errors raised by :mod:`course_utils.data`, each saying what happened and what to do."""

from __future__ import annotations

from dataclasses import dataclass


class UnknownDatasetError(KeyError):
    """A dataset name that the registry does not know."""

    def __str__(self) -> str:
        # KeyError.__str__ would show the repr of the message, quotes and escaped newlines.
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Attempt:
    """One failed download attempt.

    Attributes
    ----------
    url
        The address tried.
    kind
        What went wrong: ``"unreachable"``, ``"timeout"``, ``"slow"`` (data arrived, too
        slowly), ``"http"``, ``"truncated"``, ``"dropped"``, ``"checksum"``, ``"bad_url"``
        or ``"network"``.
    reason
        One line for a human.
    """

    url: str
    kind: str
    reason: str


class DataFetchError(RuntimeError):
    """A dataset could not be fetched; the message lists each URL tried and why it failed.

    Attributes
    ----------
    attempts
        The failed attempts, in the order they were made (empty when none were made).
    summary
        One line for a notebook's output: what failed and what to do.
    """

    def __init__(self, message: str, attempts: tuple[Attempt, ...] = (), summary: str | None = None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.summary = summary or message.splitlines()[0]


class OfflineError(DataFetchError):
    """No URL of the dataset could be reached: no network, or every server refused."""


class DownloadError(DataFetchError):
    """A server was reached but the download failed (HTTP error, timeout, cut-off body)."""


class ChecksumError(DataFetchError):
    """A downloaded file did not match the sha256 in the registry; it was deleted."""


class CacheWriteError(DataFetchError):
    """The file could not be written to the cache folder (disk full, no permission)."""


class DatasetFormatError(ValueError):
    """A data file loaded but lacks what the loader expects (a key, a column, a tag)."""
