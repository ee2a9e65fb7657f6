"""Tests of course_utils.data's registry and fetching, against HTTP servers on 127.0.0.1.

Every fault test checks three things: the error type, that the message says what to do, and
that the cache folder holds no partial or temporary file afterwards.
"""

from __future__ import annotations

import ast
import errno
import hashlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_utils.data import (
    CacheWriteError,
    ChecksumError,
    DataFetchError,
    DownloadError,
    OfflineError,
    UnknownDatasetError,
    cache_path,
    candidate_urls,
    describe_datasets,
    download,
    fetch,
    fetch_all,
    get_dataset,
    is_cached,
)
from course_utils.data.registry import REGISTRY

BODY = os.urandom(64 * 1024)  # several pooch chunks of 1 KiB
FAST = dict(progress=False, timeout=2.0, retries=0)


def cache_files(cache: Path) -> list[str]:
    """Names of everything in the cache folder (empty if it does not exist)."""
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --------------------------------------------------------------------------- registry


def nemos_registry() -> tuple[dict[str, str], dict[str, str]]:
    """NeMoS's sha256 and OSF ids per file, read from its source (importing nemos is slow)."""
    spec = importlib.util.find_spec("nemos")
    source = (Path(spec.origin).parent / "fetch" / "fetch_data.py").read_text()
    tree = ast.parse(source)
    hashes = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "REGISTRY_DATA"
    )
    osf_ids = dict(re.findall(r'"([^"]+)": OSF_TEMPLATE\.format\("(\w+)"\)', source))
    return hashes, osf_ids


def test_registry_matches_nemos_fetch_registry():
    hashes, osf_ids = nemos_registry()
    expected = {
        "place_cells": "Achilles_10252013.nwb",
        "current_injection": "allen_478498617.nwb",
        "head_direction": "Mouse32-140822.nwb",
    }
    for name, filename in expected.items():
        entry = get_dataset(name)
        assert entry.filename == filename
        assert entry.sha256 == hashes[filename]
        assert entry.urls[0] == f"https://osf.io/download/{osf_ids[filename]}/"
        assert entry.size_bytes is None  # not measured: no invented numbers
        assert entry.chapters and entry.citation and entry.license and entry.description


def test_listing_says_size_unknown():
    listing = describe_datasets()
    for name in ("place_cells", "current_injection", "head_direction"):
        assert name in listing
    assert "size unknown" in listing


@pytest.mark.parametrize("call", [fetch, is_cached, cache_path, get_dataset])
def test_unknown_name_lists_known_names(call, data_cache):
    with pytest.raises(KeyError) as info:
        call("plaec_cells")
    assert isinstance(info.value, UnknownDatasetError)
    message = str(info.value)
    assert "Did you mean 'place_cells'" in message
    assert all(name in message for name in REGISTRY)
    assert not data_cache.exists()


def test_nothing_is_downloaded_at_import(tmp_path):
    code = (
        "import socket\n"
        "def refuse(*args): raise AssertionError('network used at import')\n"
        "socket.socket.connect = refuse\n"
        "import course_utils.data, course_utils.data.loaders\n"
    )
    env = dict(os.environ, COURSE_DATA_DIR=str(tmp_path / "cache"))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
    assert not (tmp_path / "cache").exists()


# --------------------------------------------------------------------------- success


def test_fetch_downloads_verifies_and_caches(http_server, data_cache, register):
    url = http_server.route("tiny.bin", http_server.file(BODY))
    register("tiny", BODY, (url,))
    assert not is_cached("tiny")

    path = fetch("tiny", **FAST)

    assert path == cache_path("tiny") == data_cache / "tiny.bin"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == get_dataset("tiny").sha256
    assert is_cached("tiny")
    assert fetch("tiny", **FAST) == path
    assert http_server.hits["/tiny.bin"] == 1  # the second fetch used the cache
    assert cache_files(data_cache) == ["tiny.bin"]


def test_slow_drip_within_timeout_succeeds(http_server, data_cache, register):
    url = http_server.route("tiny.bin", http_server.drip(BODY, chunk=16 * 1024, delay_s=0.05))
    register("tiny", BODY, (url,))
    assert fetch("tiny", progress=False, timeout=1.0, retries=0).read_bytes() == BODY


def test_a_server_that_trickles_bytes_is_given_up_on(http_server, data_cache, register, monkeypatch):
    """A byte a second never trips the per-read timeout; the average rate does."""
    monkeypatch.setattr(download, "MIN_RATE_BYTES_S", 2_000.0)
    url = http_server.route("tiny.bin", http_server.drip(BODY, chunk=1, delay_s=0.5))
    register("tiny", BODY, (url,))
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        fetch("tiny", progress=False, timeout=1.0, retries=2)
    assert time.monotonic() - started < 10.0
    assert caught.value.attempts[0].kind == "slow"
    assert "(" not in caught.value.attempts[0].reason  # not retried: a slow server stays slow
    assert "too slowly" in str(caught.value) and "kB/s" in caught.value.summary
    assert cache_files(data_cache) == []


def test_the_progress_bar_path_downloads_too(http_server, data_cache, register):
    register("tiny", BODY, (http_server.route("tiny.bin", http_server.file(BODY)),))
    assert fetch("tiny", progress=True, timeout=2.0, retries=0).read_bytes() == BODY


def test_mirror_is_tried_first(http_server, data_cache, register, monkeypatch):
    primary = http_server.route("primary/tiny.bin", http_server.file(BODY))
    http_server.route("mirror/tiny.bin", http_server.file(BODY))
    register("tiny", BODY, (primary,))
    monkeypatch.setenv("COURSE_DATA_MIRROR", http_server.url("mirror/"))

    assert candidate_urls(get_dataset("tiny")) == (http_server.url("mirror/tiny.bin"), primary)
    fetch("tiny", **FAST)
    assert http_server.hits == {"/mirror/tiny.bin": 1}


def test_next_url_is_tried_after_a_failure(http_server, data_cache, register, refused_url):
    missing = http_server.route("gone.bin", http_server.not_found())
    good = http_server.route("tiny.bin", http_server.file(BODY))
    register("tiny", BODY, (refused_url, missing, good))
    assert fetch("tiny", **FAST).read_bytes() == BODY
    assert http_server.hits["/gone.bin"] == 1


def test_transient_failure_is_retried(http_server, data_cache, register):
    flaky = http_server.fail_first(1, http_server.truncated(BODY, keep=1000), then=http_server.file(BODY))
    register("tiny", BODY, (http_server.route("tiny.bin", flaky),))
    assert fetch("tiny", progress=False, timeout=2.0, retries=1).read_bytes() == BODY
    assert http_server.hits["/tiny.bin"] == 2


def test_fetch_all(http_server, data_cache, register, monkeypatch):
    for name in list(REGISTRY):
        monkeypatch.delitem(REGISTRY, name)
    other = BODY[::-1]
    register("one", BODY, (http_server.route("one.bin", http_server.file(BODY)),))
    register("two", other, (http_server.route("two.bin", http_server.file(other)),))

    paths = fetch_all(**FAST)

    assert set(paths) == {"one", "two"}
    assert paths["one"].read_bytes() == BODY and paths["two"].read_bytes() == other
    assert cache_files(data_cache) == ["one.bin", "two.bin"]


def test_fetch_all_tries_every_dataset_and_reports_failures(http_server, data_cache, register, refused_url):
    register("one", BODY, (http_server.route("one.bin", http_server.file(BODY)),))
    register("two", BODY[::-1], (refused_url,))
    with pytest.raises(OfflineError) as info:
        fetch_all(["two", "one"], **FAST)
    message = str(info.value)
    assert "1 of 2" in message and "fetched: one" in message and "[two]" in message
    assert is_cached("one")
    assert cache_files(data_cache) == ["one.bin"]


# --------------------------------------------------------------------------- faults


def test_no_network_says_offline_and_what_to_do(data_cache, register, refused_url):
    register("tiny", BODY, (refused_url,))
    with pytest.raises(OfflineError) as info:
        fetch("tiny", progress=False, timeout=2.0, retries=2)
    message = str(info.value)
    assert "offline" in message
    assert "python -m course_utils fetch --all" in message
    assert "COURSE_DATA_MIRROR" in message
    assert refused_url in message and "refused" in message.lower()
    assert [a.kind for a in info.value.attempts] == ["unreachable"]
    assert cache_files(data_cache) == []


def test_http_404(http_server, data_cache, register):
    url = http_server.route("gone.bin", http_server.not_found())
    register("tiny", BODY, (url,))
    with pytest.raises(DownloadError) as info:
        fetch("tiny", progress=False, timeout=2.0, retries=2)
    message = str(info.value)
    assert f"{url}: HTTP 404" in message
    assert "may have moved" in message and "report it" in message
    assert http_server.hits["/gone.bin"] == 1  # a 404 is not retried
    assert cache_files(data_cache) == []


def test_truncated_body_is_retried_a_bounded_number_of_times(http_server, data_cache, register):
    url = http_server.route("tiny.bin", http_server.truncated(BODY, keep=len(BODY) // 2))
    register("tiny", BODY, (url,))
    with pytest.raises(DownloadError) as info:
        fetch("tiny", progress=False, timeout=2.0, retries=2)
    message = str(info.value)
    assert "closed before the whole file arrived (3 attempts)" in message
    assert "Try again" in message
    assert http_server.hits["/tiny.bin"] == 3
    assert cache_files(data_cache) == []


def test_wrong_checksum_deletes_the_download(http_server, data_cache, register):
    url = http_server.route("tiny.bin", http_server.file(b"not the registered bytes" * 100))
    register("tiny", BODY, (url,))
    with pytest.raises(ChecksumError) as info:
        fetch("tiny", **FAST)
    message = str(info.value)
    assert "corrupted" in message and "changed upstream" in message
    assert "deleted" in message
    assert cache_files(data_cache) == []


def test_server_that_never_answers_times_out(http_server, data_cache, register):
    url = http_server.route("tiny.bin", http_server.never_answer())
    register("tiny", BODY, (url,))
    start = time.monotonic()
    with pytest.raises(DownloadError) as info:
        fetch("tiny", progress=False, timeout=0.3, retries=1)
    assert time.monotonic() - start < 3.0
    message = str(info.value)
    assert "sent nothing for 0.3 s" in message and "timeout=120" in message
    assert http_server.hits["/tiny.bin"] == 2
    assert cache_files(data_cache) == []


def test_stall_mid_download_times_out_without_partial_file(http_server, data_cache, register):
    url = http_server.route("tiny.bin", http_server.stall_after(BODY, sent=len(BODY) // 2))
    register("tiny", BODY, (url,))
    start = time.monotonic()
    with pytest.raises(DownloadError, match="sent nothing for 0.3 s"):
        fetch("tiny", progress=False, timeout=0.3, retries=0)
    assert time.monotonic() - start < 3.0
    assert cache_files(data_cache) == []


def test_every_url_is_listed_in_order_when_all_fail(http_server, data_cache, register, refused_url, monkeypatch):
    http_server.route("mirror/tiny.bin", http_server.not_found())
    wrong = http_server.route("wrong.bin", http_server.file(b"x" * 10))
    register("tiny", BODY, (refused_url, wrong))
    monkeypatch.setenv("COURSE_DATA_MIRROR", http_server.url("mirror"))
    with pytest.raises(ChecksumError) as info:
        fetch("tiny", **FAST)
    attempts = info.value.attempts
    assert [a.url for a in attempts] == [http_server.url("mirror/tiny.bin"), refused_url, wrong]
    assert [a.kind for a in attempts] == ["http", "unreachable", "checksum"]
    message = str(info.value)
    for i, attempt in enumerate(attempts, start=1):
        assert f"{i}. {attempt.url}: {attempt.reason}" in message
    assert cache_files(data_cache) == []


def test_keyboard_interrupt_mid_download_leaves_no_partial_file(http_server, data_cache, register):
    interrupt = http_server.interrupt_client_after(BODY, sent=len(BODY) // 2)
    url = http_server.route("tiny.bin", interrupt)
    register("tiny", BODY, (url,))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            fetch("tiny", progress=False, timeout=5.0, retries=0)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert cache_files(data_cache) == []

    http_server.route("tiny.bin", http_server.file(BODY))
    assert fetch("tiny", **FAST).read_bytes() == BODY


class FullDisk:
    """A downloader whose disk fills up after 1,000 bytes have been written."""

    def __init__(self, downloader):
        self.downloader = downloader

    def __call__(self, url, output_file, pooch, check_only=False):
        with open(output_file, "w+b") as raw:
            self.downloader(url, _FailingFile(raw), pooch)


class _FailingFile:
    CAPACITY = 1_000

    def __init__(self, raw):
        self.raw, self.written = raw, 0

    def write(self, chunk):
        room = self.CAPACITY - self.written
        if len(chunk) > room:
            self.raw.write(chunk[:room])
            self.written = self.CAPACITY
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written += len(chunk)
        return self.raw.write(chunk)

    def flush(self):
        self.raw.flush()


def test_disk_full_mid_download(http_server, data_cache, register, monkeypatch):
    register("tiny", BODY, (http_server.route("tiny.bin", http_server.file(BODY)),))
    real = download._make_downloader
    monkeypatch.setattr(download, "_make_downloader", lambda *a: FullDisk(real(*a)))
    with pytest.raises(CacheWriteError) as info:
        fetch("tiny", **FAST)
    message = str(info.value)
    assert "disk is full" in message and "COURSE_DATA_DIR" in message
    assert cache_files(data_cache) == []

    monkeypatch.setattr(download, "_make_downloader", real)
    assert fetch("tiny", **FAST).read_bytes() == BODY


def test_corrupted_cached_file_is_downloaded_again(http_server, data_cache, register):
    register("tiny", BODY, (http_server.route("tiny.bin", http_server.file(BODY)),))
    data_cache.mkdir()
    (data_cache / "tiny.bin").write_bytes(BODY[:-1] + bytes([BODY[-1] ^ 0xFF]))  # always differs from BODY
    assert not is_cached("tiny")
    with pytest.warns(UserWarning, match="does not match the sha256"):
        path = fetch("tiny", **FAST)
    assert path.read_bytes() == BODY
    assert http_server.hits["/tiny.bin"] == 1


def test_corrupted_cached_file_is_never_used_offline(data_cache, register, refused_url):
    register("tiny", BODY, (refused_url,))
    data_cache.mkdir()
    (data_cache / "tiny.bin").write_bytes(b"truncated")
    with pytest.warns(UserWarning), pytest.raises(OfflineError):
        fetch("tiny", **FAST)
    assert cache_files(data_cache) == []


def test_stale_pooch_temporaries_are_removed(http_server, data_cache, register):
    register("tiny", BODY, (http_server.route("tiny.bin", http_server.file(BODY)),))
    data_cache.mkdir()
    stale, live = data_cache / "tmpab12cd_3", data_cache / "tmpzz99yy88"
    stale.write_bytes(b"partial")
    live.write_bytes(b"partial")
    old = time.time() - 2 * download.STALE_TEMP_AGE_S
    os.utime(stale, (old, old))
    fetch("tiny", **FAST)
    assert cache_files(data_cache) == ["tiny.bin", "tmpzz99yy88"]  # a live download's file stays


def test_malformed_mirror_variable(data_cache, register, monkeypatch):
    register("tiny", BODY, ("http://127.0.0.1:9/tiny.bin",))
    monkeypatch.setenv("COURSE_DATA_MIRROR", "my-laptop:8000")
    with pytest.raises(DataFetchError, match="is not an http.s. base URL.*unset it"):
        fetch("tiny", **FAST)


@pytest.mark.parametrize("options", [dict(timeout=0), dict(timeout=-1.0), dict(retries=-1), dict(retries=1.5)])
def test_bad_options(data_cache, options):
    with pytest.raises(ValueError):
        fetch("place_cells", progress=False, **options)


def test_offline_switch_never_connects_and_says_how_to_fetch(data_cache, register, http_server, monkeypatch):
    body = b"offline switch"
    url = http_server.route("off.bin", http_server.file(body))
    register("switch_test", body, (url,))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        fetch("switch_test", progress=False)
    assert http_server.hits["/off.bin"] == 0
    assert "COURSE_OFFLINE" in str(info.value) and "fetch switch_test" in info.value.summary
    assert not data_cache.exists() or not any(data_cache.iterdir())
    monkeypatch.setenv("COURSE_OFFLINE", "0")
    assert fetch("switch_test", progress=False).read_bytes() == body
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert fetch("switch_test", progress=False).read_bytes() == body  # cached files still load
