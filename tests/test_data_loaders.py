"""Tests of course_utils.data's loaders: simulated default and real files in the real format.

The "real" files are small NWB files written by ``nwb_fixtures`` and served from a local
HTTP server, so ``source="real"`` runs the whole path: registry, download, sha256, pynapple.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pynapple as nap
import pytest
from nwb_fixtures import write_current_injection_nwb, write_place_cell_nwb

from course_utils.data import (
    CurrentInjectionSession,
    DatasetFormatError,
    OfflineError,
    PlaceCellSession,
    load_current_injection,
    load_place_cells,
)
from course_utils.data.loaders._nwb import has_tag
from course_utils.data.registry import REGISTRY
from course_utils.simulate.glm import CurrentInjectionSimulation, LinearMazeSimulation

SMALL = dict(seed=3, duration_s=120.0)


@pytest.fixture(scope="module")
def place_cell_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("nwb") / "place_cells.nwb"
    return path, write_place_cell_nwb(path)


@pytest.fixture(scope="module")
def current_injection_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("nwb") / "current_injection.nwb"
    return path, write_current_injection_nwb(path)


@pytest.fixture
def serve(http_server, register, data_cache):
    """``serve(name, path)``: serve the file at the dataset's file name and register it."""

    def _serve(name: str, path: Path) -> None:
        body = path.read_bytes()
        url = http_server.route(REGISTRY[name].filename, http_server.file(body))
        register(name, body, (url,))

    return _serve


def interval_bounds(intervals: nap.IntervalSet) -> np.ndarray:
    return np.column_stack([intervals.start, intervals.end])


# --------------------------------------------------------------------------- real files


def test_real_place_cells(serve, place_cell_file):
    path, written = place_cell_file
    serve("place_cells", path)

    session = load_place_cells(source="real")

    assert isinstance(session, PlaceCellSession)
    assert session.source == "real" and session.truth is None
    assert isinstance(session.units, nap.TsGroup) and len(session.units) == len(written.cell_types)
    assert list(session.units["cell_type"]) == list(written.cell_types)
    for unit, times in zip(session.units.values(), written.spike_times):
        np.testing.assert_allclose(unit.t, times)
    np.testing.assert_allclose(interval_bounds(session.epochs), written.trials)
    np.testing.assert_allclose(interval_bounds(session.position.time_support), written.trials)
    in_trial = np.any(
        (written.position_t[:, None] >= written.trials[:, 0]) & (written.position_t[:, None] <= written.trials[:, 1]),
        axis=1,
    )
    np.testing.assert_allclose(session.position.t, written.position_t[in_trial])
    np.testing.assert_allclose(session.position.values, written.position_cm[in_trial])


def test_real_current_injection_in_picoamperes(serve, current_injection_file):
    path, written = current_injection_file
    serve("current_injection", path)

    session = load_current_injection(source="real")

    assert isinstance(session, CurrentInjectionSession)
    assert session.source == "real" and session.truth is None
    assert len(session.units) == 1
    np.testing.assert_allclose(session.units[0].t, written.spike_times)
    noise = np.array([(s, e) for s, e, tag in written.epochs if tag == "Noise 1"])
    np.testing.assert_allclose(interval_bounds(session.epochs), noise)
    np.testing.assert_allclose(interval_bounds(session.current.time_support), noise)
    inside = np.any((written.stimulus_t[:, None] >= noise[:, 0]) & (written.stimulus_t[:, None] <= noise[:, 1]), axis=1)
    np.testing.assert_allclose(session.current.values, written.stimulus_a[inside] * 1e12)
    assert 50 < np.median(session.current.values) < 150  # ~100 pA, not 1e-10 A


def test_real_data_through_the_mirror_variable(
    http_server, register, data_cache, refused_url, monkeypatch, place_cell_file
):
    path, _ = place_cell_file
    body = path.read_bytes()
    entry = register("place_cells", body, (refused_url,))
    http_server.route(entry.filename, http_server.file(body))
    monkeypatch.setenv("COURSE_DATA_MIRROR", http_server.base_url)

    assert load_place_cells(source="real").source == "real"
    assert http_server.hits[f"/{entry.filename}"] == 1
    assert (data_cache / entry.filename).is_file()


def test_real_data_offline_says_what_to_do(register, data_cache, refused_url):
    register("current_injection", b"whatever", (refused_url,))
    with pytest.raises(OfflineError, match="python -m course_utils fetch --all"):
        load_current_injection(source="real")


def test_real_file_without_trials(serve, tmp_path):
    path = tmp_path / "no_trials.nwb"
    write_place_cell_nwb(path, with_trials=False)
    serve("place_cells", path)
    with pytest.raises(DatasetFormatError, match="has no 'trials' .*it has: .*position"):
        load_place_cells(source="real")


def test_real_file_without_noise_sweeps(serve, tmp_path):
    path = tmp_path / "no_noise.nwb"
    write_current_injection_nwb(path, noise_tag="Ramp")
    serve("current_injection", path)
    with pytest.raises(DatasetFormatError, match="no epoch is tagged 'Noise 1' .*Long Square"):
        load_current_injection(source="real")


@pytest.mark.parametrize("load", [load_place_cells, load_current_injection])
def test_unknown_source(load):
    with pytest.raises(ValueError, match="'simulated' .*'real'.*got 'recorded'"):
        load(source="recorded")


def test_your_own_nwb_files_load_as_the_real_ones(place_cell_file, current_injection_file):
    """source="user" reads your file in the real dataset's layout, with no download."""
    path, _ = place_cell_file
    yours = load_place_cells("user", data=path)
    assert yours.source == "user" and yours.truth is None
    assert "cell_type" in yours.units.metadata_columns and len(yours.position) > 0
    path, _ = current_injection_file
    assert load_current_injection("user", data=str(path)).source == "user"


@pytest.mark.parametrize("load", [load_place_cells, load_current_injection])
def test_the_contract_refuses_mixed_arguments(load, tmp_path):
    with pytest.raises(ValueError, match="needs your data: pass data=<path of your NWB file>"):
        load("user")
    with pytest.raises(ValueError, match="only read with source='user'"):
        load("simulated", data="session.nwb")
    with pytest.raises(ValueError, match="duration_s only apply to source='simulated'"):
        load("real", duration_s=60.0)
    with pytest.raises(FileNotFoundError, match="No file.*NWB file that pynapple reads"):
        load("user", data=tmp_path / "absent.nwb")
    with pytest.raises(ValueError, match="source='user', data='session.nwb'"):
        load("session.nwb")
    with pytest.raises(ValueError, match="seed only apply to source='simulated'"):
        load("real", seed=3)
    not_nwb = tmp_path / "notes.nwb"
    not_nwb.write_text("time,spikes\n")
    with pytest.raises(DatasetFormatError, match="notes.nwb is not an NWB file pynapple can read.*your file"):
        load("user", data=not_nwb)


def test_tags_as_list_or_string():
    assert has_tag(np.array(["Noise 1"]), "Noise 1")
    assert has_tag(["Long Square", "Noise 1"], "Noise 1")
    assert has_tag("Noise 1", "Noise 1")
    assert not has_tag(np.array(["Noise 10"]), "Noise 1")
    assert not has_tag("Noise 10", "Noise 1")


# --------------------------------------------------------------------------- simulated


def field_types(session) -> dict[str, type]:
    return {name: type(getattr(session, name)) for name in ("units", "epochs", "source")}


def test_simulated_and_real_have_the_same_shape(serve, place_cell_file, current_injection_file):
    serve("place_cells", place_cell_file[0])
    serve("current_injection", current_injection_file[0])
    pairs = [
        (load_place_cells(**SMALL), load_place_cells(source="real"), "position"),
        (load_current_injection(**SMALL), load_current_injection(source="real"), "current"),
    ]
    for simulated, real, series in pairs:
        assert type(simulated) is type(real)
        assert field_types(simulated) == field_types(real)
        assert type(getattr(simulated, series)) is type(getattr(real, series)) is nap.Tsd
        assert getattr(simulated, series).ndim == getattr(real, series).ndim == 1
        assert set(simulated.units.metadata_columns) <= set(real.units.metadata_columns)


def test_simulated_place_cells():
    session = load_place_cells(**SMALL)
    sim = session.truth
    assert isinstance(sim, LinearMazeSimulation) and session.source == "simulated"
    assert len(session.units) == sim.counts.shape[1]
    assert set(session.units["cell_type"]) == {"pE"}
    assert [len(unit) for unit in session.units.values()] == list(sim.counts.sum(axis=0))
    np.testing.assert_allclose(interval_bounds(session.epochs), sim.lap_bounds)
    np.testing.assert_allclose(interval_bounds(session.position.time_support), sim.lap_bounds)
    position = session.position.values
    assert 0 <= position.min() <= position.max() <= sim.track_length_cm
    assert session.units.time_support.end[0] == pytest.approx(SMALL["duration_s"])


def test_simulated_current_injection():
    session = load_current_injection(**SMALL)
    sim = session.truth
    assert isinstance(sim, CurrentInjectionSimulation) and session.source == "simulated"
    assert len(session.units) == 1 and len(session.units[0]) == sim.counts.sum()
    np.testing.assert_allclose(interval_bounds(session.epochs), sim.sweep_bounds)
    in_sweep = np.any((sim.t[:, None] >= sim.sweep_bounds[:, 0]) & (sim.t[:, None] <= sim.sweep_bounds[:, 1]), axis=1)
    np.testing.assert_allclose(session.current.values, sim.current[in_sweep])


def test_simulated_data_follow_the_seed():
    first, again = load_place_cells(**SMALL), load_place_cells(**SMALL)
    other = load_place_cells(seed=4, duration_s=120.0)
    np.testing.assert_array_equal(first.units[0].t, again.units[0].t)
    assert len(first.units[0]) != len(other.units[0]) or not np.array_equal(first.units[0].t, other.units[0].t)


# --------------------------------------------------------------------------- head direction

from nwb_fixtures import write_head_direction_nwb  # noqa: E402

from course_utils.data import HeadDirectionSession, load_head_direction  # noqa: E402
from course_utils.simulate.population import HeadDirectionPopulation  # noqa: E402

SMALL_HD = dict(seed=3, duration_s=30.0, n_neurons=4)


@pytest.fixture(scope="module")
def head_direction_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("nwb") / "head_direction.nwb"
    return path, write_head_direction_nwb(path)


def test_real_head_direction_keeps_wake(serve, head_direction_file):
    path, written = head_direction_file
    serve("head_direction", path)

    session = load_head_direction(source="real")

    assert isinstance(session, HeadDirectionSession)
    assert session.source == "real" and session.truth is None
    assert len(session.units) == len(written.locations)
    assert list(session.units["location"]) == list(written.locations)
    for unit, times in zip(session.units.values(), written.spike_times):
        np.testing.assert_allclose(unit.t, times)  # the whole session, sleep included
    wake = np.array([(s, e) for s, e, tag in written.epochs if tag == "wake"])
    np.testing.assert_allclose(interval_bounds(session.epochs), wake)
    np.testing.assert_allclose(interval_bounds(session.heading.time_support), wake)
    inside = (written.heading_t >= wake[0, 0]) & (written.heading_t <= wake[0, 1])
    np.testing.assert_allclose(session.heading.t, written.heading_t[inside])
    np.testing.assert_allclose(session.heading.values, written.heading_rad[inside])


def test_real_head_direction_without_wake(serve, tmp_path):
    path = tmp_path / "no_wake.nwb"
    write_head_direction_nwb(path, wake_tag="awake")
    serve("head_direction", path)
    with pytest.raises(DatasetFormatError, match="no epoch is tagged 'wake' .*awake.*sleep"):
        load_head_direction(source="real")


def test_real_head_direction_offline_says_what_to_do(register, data_cache, refused_url):
    register("head_direction", b"whatever", (refused_url,))
    with pytest.raises(OfflineError, match="python -m course_utils fetch --all") as info:
        load_head_direction(source="real")
    assert "\n" not in info.value.summary  # one line for the notebook


def test_head_direction_unknown_source():
    with pytest.raises(ValueError, match="'simulated' .*'real'.*got 'recorded'"):
        load_head_direction(source="recorded")


def test_simulated_head_direction():
    session = load_head_direction(**SMALL_HD)
    sim = session.truth
    assert isinstance(sim, HeadDirectionPopulation) and session.source == "simulated"
    assert len(session.units) == sim.n_neurons == SMALL_HD["n_neurons"]
    assert set(session.units["location"]) == {"adn"}
    assert [len(unit) for unit in session.units.values()] == list(sim.counts.sum(axis=0))
    np.testing.assert_allclose(session.heading.values, sim.heading)
    assert session.epochs.start[0] == 0.0
    assert session.epochs.end[0] == pytest.approx(SMALL_HD["duration_s"])
    assert 0 <= session.heading.values.min() and session.heading.values.max() < 2 * np.pi


def test_simulated_and_real_head_direction_have_the_same_shape(serve, head_direction_file):
    serve("head_direction", head_direction_file[0])
    simulated, real = load_head_direction(**SMALL_HD), load_head_direction(source="real")
    assert type(simulated) is type(real)
    assert field_types(simulated) == field_types(real)
    assert type(simulated.heading) is type(real.heading) is nap.Tsd
    assert simulated.heading.ndim == real.heading.ndim == 1
    assert set(simulated.units.metadata_columns) <= set(real.units.metadata_columns)
