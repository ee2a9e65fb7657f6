"""Tests of load_evoked_dipole: the MEG file format served locally, your own files, the simulation.

The "real" file is a small file in the exact format of HNN's ``yes_trial_S1_ERP_all_avg.txt``
(two columns written with ``%.18e``), served from a local HTTP server so that
``source="real"`` runs the whole path: registry, download, sha256, parsing.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from course_utils.data import (
    DatasetFormatError,
    EvokedDipole,
    OfflineError,
    get_dataset,
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


def test_real_dipole_offline_gives_one_line(data_cache, monkeypatch):
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
    for source in (path, str(path)):
        loaded = load_evoked_dipole(source)
        assert loaded.source == str(path) and loaded.truth is None
        np.testing.assert_array_equal(loaded.dipole, DIPOLE)
    four = tmp_path / "hnn_core_output.txt"  # time, aggregate, L2, L5
    four.write_bytes(dipole_text(np.column_stack([TIMES, DIPOLE, DIPOLE / 2, DIPOLE / 2])))
    np.testing.assert_array_equal(load_evoked_dipole(four).dipole, DIPOLE)


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
        load_evoked_dipole(path)


def test_a_missing_file_or_unknown_source_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="'simulated'.*'real'"):
        load_evoked_dipole("reel")
    with pytest.raises(FileNotFoundError, match="No file"):
        load_evoked_dipole(tmp_path / "absent.txt")


def test_simulated_dipole_carries_its_truth():
    from course_utils.simulate.dipole import PLANTED_PARAMS, TARGET_TIMES_MS, PlantedDipole

    loaded = load_evoked_dipole(mesh_shape=(2, 2), n_trials=1, dt=0.1, noise_fraction=0.0)
    assert loaded.source == "simulated" and isinstance(loaded.truth, PlantedDipole)
    assert dict(loaded.truth.params) == dict(PLANTED_PARAMS)
    np.testing.assert_array_equal(loaded.times, TARGET_TIMES_MS)
    np.testing.assert_array_equal(loaded.dipole, loaded.truth.clean)  # no noise asked
