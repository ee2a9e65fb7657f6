"""The command line, the environment check and the book-build configuration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from course_utils.workshop import book, cli, environment
from course_utils.workshop.watch import WatchedRun

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env_extra: dict[str, str] | None = None, tmp_path: Path | None = None):
    import os

    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "course_utils", *args], capture_output=True, text=True, env=env)


def _devices_here() -> tuple[str, list[str]]:
    """The device the course picks on this machine and the accelerators it does not have."""
    import torch

    has = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    chosen = next((name for name in ("cuda", "mps") if has[name]), "cpu")
    return chosen, [name for name in ("cuda", "mps") if not has[name]]


def test_check_reports_and_passes_on_this_environment(tmp_path):
    result = run_cli("check", env_extra={"COURSE_DATA_DIR": str(tmp_path), "COURSE_SCALE": "smoke"})
    assert result.returncode == 0, result.stdout + result.stderr
    device = f"device: {_devices_here()[0]}"  # cpu here and in CI; a GPU machine reports its GPU
    for expected in ("nemos", "torch", "scale: smoke", device, str(tmp_path), "place_cells", "Ready."):
        assert expected in result.stdout


def test_check_fails_on_a_bad_scale_and_says_why(tmp_path):
    result = run_cli("check", env_extra={"COURSE_DATA_DIR": str(tmp_path), "COURSE_SCALE": "huge"})
    assert result.returncode == 1
    assert "NOT READY" in result.stdout and "COURSE_SCALE" in result.stdout


def test_check_fails_when_a_device_is_not_there(tmp_path):
    missing = _devices_here()[1]
    if not missing:
        pytest.skip("this machine has every accelerator the course knows")
    result = run_cli("check", env_extra={"COURSE_DATA_DIR": str(tmp_path), "COURSE_DEVICE": missing[0]})
    assert result.returncode == 1 and "device" in result.stdout


def test_check_require_data_lists_what_to_fetch(tmp_path):
    result = run_cli("check", "--require-data", env_extra={"COURSE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "python -m course_utils fetch place_cells" in result.stdout


def test_missing_package_is_reported(monkeypatch):
    monkeypatch.setitem(environment.REQUIRED_PACKAGES, "no_such_package_xyz", "no-such-package")
    problems = environment.missing_requirements()
    assert any("no-such-package" in p for p in problems)


def test_fetch_needs_a_name_or_all(capsys):
    assert cli.main(["fetch"]) == 2
    assert "--all" in capsys.readouterr().err


def test_fetch_unknown_name_is_a_clear_error(capsys):
    assert cli.main(["fetch", "no_such_data"]) == 1
    assert "known" in capsys.readouterr().err.lower()


def test_fetch_offline_is_a_clear_error(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    assert cli.main(["fetch", "--all"]) == 1
    assert "COURSE_OFFLINE" in capsys.readouterr().err


def test_fetch_downloads_from_a_mirror(capsys, data_cache, register, http_server):
    body = b"from the mirror"
    register("cli_test", body, (http_server.route("cli.bin", http_server.file(body)),))
    assert cli.main(["fetch", "cli_test", "--timeout", "5"]) == 0
    assert (data_cache / "cli_test.bin").read_bytes() == body


def test_report_prints_one_line(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "smoke")
    environment.report(packages=("numpy",))
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "scale: smoke" in out and "numpy" in out


def test_build_config_sets_the_execution_mode(tmp_path):
    path = book.write_build_config(ROOT, tmp_path, "force")
    config = yaml.safe_load(path.read_text())
    assert config["execute"]["execute_notebooks"] == "force"
    original = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert original["execute"]["execute_notebooks"] == "cache"
    assert original["execute"]["allow_errors"] is False


def _book_copy(folder: Path, urls: str = "") -> Path:
    folder.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        (folder / name).write_text((ROOT / name).read_text())
    (folder / "pyproject.toml").write_text(f'[project]\nname = "x"\n{urls}')
    return folder


def test_launch_buttons_appear_only_once_the_course_names_its_public_repository(tmp_path):
    unpublished = _book_copy(tmp_path / "unpublished")
    config = yaml.safe_load(book.write_build_config(unpublished, tmp_path / "a", "off").read_text())
    assert book.repository_url(unpublished) is None
    assert "launch_buttons" not in config and "repository" not in config

    published = _book_copy(
        tmp_path / "published", '[project.urls]\nRepository = "https://github.com/someone/course/"\n'
    )
    config = yaml.safe_load(book.write_build_config(published, tmp_path / "b", "off").read_text())
    assert config["repository"]["url"] == "https://github.com/someone/course"
    assert config["launch_buttons"]["binderhub_url"] == book.BINDER_URL
    assert config["launch_buttons"]["colab_url"] == book.COLAB_URL
    assert config["execute"]["execute_notebooks"] == "off"


def test_build_book_runs_the_notebooks_at_its_scale_without_progress_widgets(tmp_path, monkeypatch):
    seen = {}

    def fake_run(command, *, env, cwd, notebook_limit_s):
        seen.update(command=command, env=env, limit=notebook_limit_s)
        return WatchedRun(1)  # a failed build writes no variants

    monkeypatch.delenv(book.NOTEBOOK_LIMIT_ENV, raising=False)
    monkeypatch.setattr(book, "run_watched", fake_run)
    assert book.build_book("smoke", "off", root=ROOT, out_dir=tmp_path / "site") == 1
    assert seen["env"]["COURSE_SCALE"] == "smoke"
    # tqdm's notebook widgets would make each page load scripts from a CDN.
    assert seen["env"]["TQDM_DISABLE"] == "1"
    assert "-W" in seen["command"]
    assert seen["limit"] == book.NOTEBOOK_LIMIT_S["smoke"]


def test_a_hung_build_is_tried_once_more_then_named(tmp_path, monkeypatch, capsys):
    runs = []

    def hung(command, *, env, cwd, notebook_limit_s):
        runs.append(notebook_limit_s)
        return WatchedRun(-15, "notebooks/06_dipole_optimization.py")

    monkeypatch.setenv(book.NOTEBOOK_LIMIT_ENV, "120")
    monkeypatch.setattr(book, "run_watched", hung)
    assert book.build_book("smoke", "off", root=ROOT, out_dir=tmp_path / "site") == -15
    assert runs == [120.0, 120.0]
    message = capsys.readouterr().err
    assert "06_dipole_optimization.py executed for more than 120 s" in message
    assert "Building again, once." in message
    assert "benchmarks/chapters.py --scale smoke 06_dipole_optimization" in message


@pytest.mark.parametrize(("value", "limit"), [("", 900.0), ("0", None), ("45.5", 45.5)])
def test_notebook_limit_reads_its_variable(monkeypatch, value, limit):
    monkeypatch.setenv(book.NOTEBOOK_LIMIT_ENV, value)
    assert book.notebook_limit("smoke") == limit


def test_notebook_limit_rejects_words(monkeypatch):
    monkeypatch.setenv(book.NOTEBOOK_LIMIT_ENV, "an hour")
    with pytest.raises(ValueError, match="number of seconds"):
        book.notebook_limit("default")


def test_build_book_rejects_unknown_scale_and_mode():
    with pytest.raises(ValueError, match="scale"):
        book.build_book("huge")
    with pytest.raises(ValueError, match="execution"):
        book.build_book("smoke", "sometimes")


def test_book_root_is_found_from_a_subfolder():
    assert book.find_book_root(ROOT / "notebooks") == ROOT
    with pytest.raises(FileNotFoundError, match="checkout"):
        book.find_book_root(Path("/"))
