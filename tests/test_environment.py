"""The pins of pyproject.toml and environment.yml agree, and the two commands are wired."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        assert match, f"not an exact pin: {line!r} (pin every dependency with ==)"
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    return _pins(lines)


def environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return _pins([line for line in pip_section if not line.startswith("--")])


def test_pins_agree():
    assert pyproject_pins() == environment_pins()


def test_torch_is_pinned_to_the_version_with_a_cpu_wheel():
    assert pyproject_pins()["torch"] == "2.13.0"


def test_environment_python_matches_the_package():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert ">=3.11" in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]


def test_installed_versions_are_the_pinned_ones():
    from importlib.metadata import version

    for name, pinned in pyproject_pins().items():
        assert version(name).split("+")[0] == pinned, name


def test_readme_has_exactly_the_two_set_up_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme, flags=re.S)
    first = [line.split("#")[0].strip() for line in blocks[0].splitlines() if line.strip()]
    assert first == ["make book", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
