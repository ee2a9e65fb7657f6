"""Tests of course_utils.config: scale, sizes, seeding, cache folder."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from course_utils import config


@pytest.mark.parametrize(
    "value, expected", [(None, "default"), ("smoke", "smoke"), (" FULL ", "full"), ("", "default")]
)
def test_scale_is_read_from_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("COURSE_SCALE", raising=False)
    else:
        monkeypatch.setenv("COURSE_SCALE", value)
    assert config.get_scale() == expected


def test_unknown_scale_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "huge")
    with pytest.raises(ValueError, match="smoke, default, full"):
        config.get_scale()


def test_sizes_follow_the_scale_and_are_read_only(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "smoke")
    smoke = config.sizes("glm_basics")
    assert smoke == config.sizes("01_glm_basics") == config.sizes("glm_basics", "smoke")
    assert smoke["duration_s"] < config.sizes("glm_basics", "default")["duration_s"]
    with pytest.raises(TypeError):
        smoke["duration_s"] = 1.0  # type: ignore[index]


def test_every_chapter_has_the_same_size_names_at_every_scale():
    for chapter in config.chapters():
        names = {scale: set(config.sizes(chapter, scale)) for scale in config.SCALES}
        assert names["smoke"] == names["default"] == names["full"], chapter


def test_unknown_chapter_and_scale_are_clear_errors():
    with pytest.raises(KeyError, match="known chapters"):
        config.sizes("no_such_chapter")
    with pytest.raises(ValueError, match="Unknown scale"):
        config.sizes("glm_basics", "tiny")


def test_seed_everything_seeds_python_numpy_and_torch():
    generator = config.seed_everything(7)
    first = (random.random(), np.random.rand(), torch.rand(1).item(), generator.random())
    generator = config.seed_everything(7)
    second = (random.random(), np.random.rand(), torch.rand(1).item(), generator.random())
    assert first == second
    config.seed_everything(8)
    assert torch.rand(1).item() != first[2]


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_seed_must_be_a_non_negative_integer(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        config.seed_everything(bad)


def test_data_dir_honours_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "d"))
    assert config.data_dir() == (tmp_path / "d").resolve()
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert config.data_dir().name == "data"


def test_jax_compilation_cache_lives_in_the_course_cache(tmp_path, monkeypatch):
    jax = pytest.importorskip("jax")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    before = (jax.config.jax_compilation_cache_dir, jax.config.jax_persistent_cache_min_compile_time_secs)
    try:
        folder = config.use_jax_compilation_cache()
        assert folder == tmp_path / "course-regtune" / "jax" and folder.is_dir()
        assert jax.config.jax_compilation_cache_dir == str(folder)
        assert config.data_dir() == tmp_path / "course-regtune" / "data"
    finally:
        jax.config.update("jax_compilation_cache_dir", before[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", before[1])


def test_seed_everything_does_not_import_torch():
    """Chapters without torch must not pay for importing it (seconds on a slow host)."""
    code = "import sys; from course_utils import config; config.seed_everything(1); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_check_mode_defaults_to_lenient_and_refuses_unknown_modes(monkeypatch):
    monkeypatch.delenv("COURSE_CHECKS", raising=False)
    assert config.check_mode() == "lenient"
    monkeypatch.setenv("COURSE_CHECKS", " Strict ")
    assert config.check_mode() == "strict"
    monkeypatch.setenv("COURSE_CHECKS", "loose")
    with pytest.raises(ValueError, match="lenient, strict, record"):
        config.check_mode()


def test_environment_sets_then_restores(monkeypatch):
    monkeypatch.setenv("COURSE_SCALE", "default")
    monkeypatch.delenv("COURSE_CHECKS", raising=False)
    with config.environment(COURSE_SCALE="smoke", COURSE_CHECKS="strict"):
        assert config.get_scale() == "smoke" and config.check_mode() == "strict"
    assert config.get_scale() == "default" and "COURSE_CHECKS" not in os.environ
