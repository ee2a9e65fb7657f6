"""Tests of load_evoked_dipole: the MEG file format served locally, your own files, the simulation.

The recording ships with the package (its sha256 and notice are checked here). The download
tests register a small file in the exact format of HNN's ``yes_trial_S1_ERP_all_avg.txt``
(two columns written with ``%.18e``) and serve it from a local HTTP server, so that
``source="real"`` of a downloaded copy runs the whole path: registry, download, sha256, parsing.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from course_utils.data import (
    ChecksumError,
    DatasetFormatError,
    EvokedDipole,
    OfflineError,
    download,
    fetch,
    get_dataset,
    is_cached,
    load_evoked_dipole,
)

TIMES = np.arange(12) * 1.664960109653179643
DIPOLE = np.sin(TIMES / 10.0) * 40.0 - 3.0


def dipole_text(columns: np.ndarray) -> bytes:
    """Text as numpy.savetxt writes it, as in the hnn repository's file."""
    return "".join(" ".join(f"{v:.18e}" for v in row) + "\n" for row in columns).encode()


BODY = dipole_text(np.column_stack([TIMES, DIPOLE]))


def test_the_registry_entry_is_the_hnn_file():
    entry = get_dataset("evoked_dipole")
    assert entry.filename == "yes_trial_S1_ERP_all_avg.txt"
    assert entry.urls[0].startswith("https://raw.githubusercontent.com/jonescompneurolab/hnn/")
    assert entry.urls[0].endswith("/data/MEG_detection_data/yes_trial_S1_ERP_all_avg.txt")
    assert entry.loader == "load_evoked_dipole" and 6 in entry.chapters


def test_real_dipole_downloads_verifies_and_parses(http_server, data_cache, register):
    url = http_server.route("yes_trial_S1_ERP_all_avg.txt", http_server.file(BODY))
    register("evoked_dipole", BODY, (url,))

    loaded = load_evoked_dipole(source="real")

    assert isinstance(loaded, EvokedDipole)
    assert loaded.source == "real" and loaded.truth is None
    np.testing.assert_array_equal(loaded.times, TIMES)
    np.testing.assert_array_equal(loaded.dipole, DIPOLE)
    cached = data_cache / "yes_trial_S1_ERP_all_avg.txt"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == hashlib.sha256(BODY).hexdigest()
    with pytest.raises(ValueError):
        loaded.dipole[0] = 0.0  # read-only
    load_evoked_dipole(source="real")
    assert http_server.hits["/yes_trial_S1_ERP_all_avg.txt"] == 1  # cached after the first


def test_the_recording_ships_with_the_package_and_loads_offline(data_cache, monkeypatch):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    entry = get_dataset("evoked_dipole")
    path = fetch("evoked_dipole")
    assert entry.bundled and path.parent == download.BUNDLED_DIR
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry.sha256
    assert path.stat().st_size == entry.size_bytes == 5201
    notice = (download.BUNDLED_DIR / "NOTICE_hnn.txt").read_text()
    assert "Brown University" in notice and entry.sha256 in notice.replace("\n", "")
    loaded = load_evoked_dipole(source="real")
    assert loaded.times.shape == loaded.dipole.shape == (103,)
    assert loaded.times[0] == 0.0 and abs(loaded.times[-1] - 169.8259311846297) < 1e-9
    assert not data_cache.exists() or not any(data_cache.iterdir())  # nothing copied to the cache
    assert is_cached("evoked_dipole")


def test_an_edited_bundled_file_is_refused_with_advice(tmp_path, monkeypatch):
    (tmp_path / "yes_trial_S1_ERP_all_avg.txt").write_bytes(BODY)
    monkeypatch.setattr(download, "BUNDLED_DIR", tmp_path)
    with pytest.raises(ChecksumError, match="Reinstall") as caught:
        load_evoked_dipole(source="real")
    assert "\n" not in caught.value.summary and "evoked_dipole" in caught.value.summary
    assert not is_cached("evoked_dipole")
    (tmp_path / "yes_trial_S1_ERP_all_avg.txt").unlink()
    with pytest.raises(ChecksumError, match="is missing"):
        fetch("evoked_dipole")


def test_a_downloaded_copy_offline_gives_one_line(data_cache, monkeypatch, register):
    register("evoked_dipole", BODY, ("http://127.0.0.1:9/yes_trial_S1_ERP_all_avg.txt",))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    with pytest.raises(OfflineError) as caught:
        load_evoked_dipole(source="real")
    assert "\n" not in caught.value.summary and "evoked_dipole" in caught.value.summary


def test_a_corrupted_real_file_is_refused(http_server, data_cache, register):
    url = http_server.route("yes_trial_S1_ERP_all_avg.txt", http_server.file(b"1 2 3\n4 5 6\n"))
    register("evoked_dipole", b"1 2 3\n4 5 6\n", (url,))
    with pytest.raises(DatasetFormatError, match="2 \\(or 4\\) columns"):
        load_evoked_dipole(source="real")


def test_your_own_file_in_the_same_format(tmp_path):
    path = tmp_path / "my_dipole.txt"
    path.write_bytes(BODY)
    for data in (path, str(path)):
        loaded = load_evoked_dipole("user", data=data)
        assert loaded.source == "user" and loaded.truth is None
        np.testing.assert_array_equal(loaded.dipole, DIPOLE)
    four = tmp_path / "hnn_core_output.txt"  # time, aggregate, L2, L5
    four.write_bytes(dipole_text(np.column_stack([TIMES, DIPOLE, DIPOLE / 2, DIPOLE / 2])))
    np.testing.assert_array_equal(load_evoked_dipole("user", data=four).dipole, DIPOLE)


@pytest.mark.parametrize(
    "body, message",
    [
        (b"0 1 2\n1 2 3\n", "2 \\(or 4\\) columns"),
        (b"0 1\n", "at least two rows"),
        (b"0 1\n1 nan\n", "NaN"),
        (b"1 1\n0 2\n", "must increase"),
        (b"time dipole\n0 1\n", "could not be read"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path, body, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(body)
    with pytest.raises(DatasetFormatError, match=message):
        load_evoked_dipole("user", data=path)


def test_a_missing_file_or_unknown_source_is_explained(tmp_path):
    with pytest.raises(ValueError, match="'simulated'.*'real'.*'user'"):
        load_evoked_dipole("reel")
    with pytest.raises(FileNotFoundError, match="No file.*column 1 time"):
        load_evoked_dipole("user", data=tmp_path / "absent.txt")
    # The older call, a path as the source, is pointed at the contract.
    with pytest.raises(ValueError, match="source='user', data='my_dipole.txt'"):
        load_evoked_dipole("my_dipole.txt")
    with pytest.raises(ValueError, match="needs your data"):
        load_evoked_dipole("user")
    with pytest.raises(ValueError, match="n_trials only apply to source='simulated'"):
        load_evoked_dipole("real", n_trials=3)


def test_simulated_dipole_carries_its_truth():
    from course_utils.simulate.dipole import PLANTED_PARAMS, TARGET_TIMES_MS, PlantedDipole

    loaded = load_evoked_dipole(mesh_shape=(2, 2), n_trials=1, dt=0.1, noise_fraction=0.0)
    assert loaded.source == "simulated" and isinstance(loaded.truth, PlantedDipole)
    assert dict(loaded.truth.params) == dict(PLANTED_PARAMS)
    np.testing.assert_array_equal(loaded.times, TARGET_TIMES_MS)
    np.testing.assert_array_equal(loaded.dipole, loaded.truth.clean)  # no noise asked
