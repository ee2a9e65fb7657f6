"""pyproject.toml's ranges, constraints.txt's pins and environment.yml agree; the two commands are wired."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line.strip())
        assert match, f"not an exact pin: {line!r} (pin every dependency with ==)"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def constraint_pins() -> dict[str, str]:
    lines = [
        line
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return _pins(lines)


def declared_requirements() -> dict[str, Requirement]:
    """Every requirement of pyproject.toml (dependencies and extras), by normalized name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [d for extra in project["optional-dependencies"].values() for d in extra]
    return {canonicalize_name(Requirement(line).name): Requirement(line) for line in lines}


def environment_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return _pins([line for line in pip_section if not line.startswith("--")])


def test_constraints_pin_exactly_what_pyproject_declares_within_its_ranges():
    pins, declared = constraint_pins(), declared_requirements()
    assert set(pins) == set(declared), set(pins) ^ set(declared)
    for name, requirement in declared.items():
        assert requirement.specifier, f"{name}: declare a compatible range in pyproject.toml"
        assert not any(s.operator == "==" for s in requirement.specifier), (
            f"{name}: pyproject.toml declares ranges; the exact pin belongs in constraints.txt"
        )
        assert pins[name] in requirement.specifier, f"{name}=={pins[name]} is outside {requirement}"


def test_environment_yml_repeats_the_constraints():
    assert environment_pins() == constraint_pins()


def test_the_book_toolchain_is_an_extra_not_a_runtime_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}
    assert not runtime & {
        "jupyter-book",
        "sphinx",
        "myst-nb",
        "jupytext",
        "sphinx-book-theme",
        "sphinxcontrib-bibtex",
        "ipykernel",
        "pytest",
        "dask",
        "distributed",
    }
    assert {"jupyter-book", "myst-nb"} <= {
        canonicalize_name(Requirement(d).name) for d in project["optional-dependencies"]["book"]
    }


def test_torch_is_pinned_to_the_version_with_a_cpu_wheel():
    assert constraint_pins()["torch"] == "2.13.0"


def test_python_versions():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    supported = SpecifierSet(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"])
    assert all(v in supported for v in ("3.11", "3.12", "3.13")) and "3.14" not in supported


def test_installed_versions_are_the_pinned_ones():
    from importlib.metadata import PackageNotFoundError, version

    for name, pinned in constraint_pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            pytest.fail(f"{name} is not installed: `make` installs every extra")
        # torch's local version label (+cpu) names the build, not the version
        assert installed.split("+")[0] == pinned, name


def test_readme_has_exactly_the_two_set_up_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme, flags=re.S)
    first = [line.split("#")[0].strip() for line in blocks[0].splitlines() if line.strip()]
    assert first == ["make book", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()
