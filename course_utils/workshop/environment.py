"""The environment check: versions, device, scale, data cache, and what is missing.

``python -m course_utils check`` prints :func:`environment_report` and exits non-zero when
:func:`missing_requirements` finds anything; notebooks call :func:`report` for a one-line
summary under their title.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
from dataclasses import dataclass

from course_utils.config import DATA_DIR_ENV, SCALE_ENV, data_dir, get_scale

#: Import name -> distribution name of everything a chapter needs.
REQUIRED_PACKAGES: dict[str, str] = {
    "numpy": "numpy",
    "scipy": "scipy",
    "torch": "torch",
    "jax": "jax",
    "nemos": "nemos",
    "pynapple": "pynapple",
    "sklearn": "scikit-learn",
    "matplotlib": "matplotlib",
    "pynwb": "pynwb",
    "pooch": "pooch",
    "tqdm": "tqdm",
    "hnn_core": "hnn-core",
    "neuron": "NEURON",
}
#: The book toolchain (``pip install course-utils[book]``): needed to build the book, not to
#: run a chapter, so the check reports it without requiring it.
BOOK_PACKAGES: dict[str, str] = {
    "myst_nb": "myst-nb",
    "jupytext": "jupytext",
    "jupyter_book": "jupyter-book",
}


@dataclass(frozen=True)
class PackageStatus:
    """Whether one package imports, and its installed version."""

    name: str
    version: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        """True when the package imported."""
        return self.error is None


def package_status(import_name: str, distribution: str) -> PackageStatus:
    """Import a package and report its version, or the import error."""
    try:
        importlib.import_module(import_name)
    except Exception as exc:  # a broken install raises more than ImportError
        return PackageStatus(distribution, None, f"{type(exc).__name__}: {exc}")
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return PackageStatus(distribution, version, None)


def device_description() -> str:
    """Describe the torch device the chapters will use, or why none could be chosen."""
    try:
        from course_utils.training import get_device
    except ImportError as exc:
        return f"unknown (torch did not import: {exc})"
    try:
        device = get_device()
    except RuntimeError as exc:
        return f"error: {exc}"
    if device.type == "cuda":
        import torch

        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def missing_requirements() -> list[str]:
    """Return one line per problem that stops the chapters from running (empty when ready)."""
    problems = [
        f"package {status.name} does not import ({status.error}); reinstall with `make book` or `pip install -e .`"
        for status in (package_status(i, d) for i, d in REQUIRED_PACKAGES.items())
        if not status.ok
    ]
    try:
        get_scale()
    except ValueError as exc:
        problems.append(str(exc))
    device = device_description()
    if device.startswith("error"):
        problems.append(f"device: {device}")
    return problems


def dataset_lines() -> list[str]:
    """One line per registered dataset: cached (verified) or missing, with its size."""
    from course_utils.data import REGISTRY, is_cached

    lines = []
    for name, entry in REGISTRY.items():
        size = f"{entry.size_bytes / 1e6:.0f} MB" if entry.size_bytes else "size unknown"
        if entry.bundled:
            state = "ships with the package, checksum ok" if is_cached(name) else "BUNDLED FILE BROKEN: reinstall"
        else:
            state = "cached, checksum ok" if is_cached(name) else "missing (simulated default works)"
        lines.append(f"  {name:<18} {entry.filename:<26} {size:>13}  {state}")
    return lines


def environment_report() -> str:
    """The full report printed by ``python -m course_utils check``."""
    from course_utils import __version__

    lines = [f"course_utils {__version__}", "packages:"]
    for import_name, distribution in REQUIRED_PACKAGES.items():
        status = package_status(import_name, distribution)
        lines.append(f"  {distribution:<14} {status.version if status.ok else 'MISSING: ' + str(status.error)}")
    lines.append("book toolchain (optional: only to build the book):")
    for import_name, distribution in BOOK_PACKAGES.items():
        status = package_status(import_name, distribution)
        lines.append(f"  {distribution:<14} {status.version if status.ok else 'not installed'}")
    try:
        scale = get_scale()
    except ValueError as exc:
        scale = f"INVALID ({exc})"
    lines += [
        f"scale: {scale}  ({SCALE_ENV}={os.environ.get(SCALE_ENV, '<unset>')})",
        f"device: {device_description()}",
        f"data cache: {data_dir()}  ({DATA_DIR_ENV}={os.environ.get(DATA_DIR_ENV, '<unset>')})",
        "datasets:",
        *dataset_lines(),
    ]
    return "\n".join(lines)


def report(packages: tuple[str, ...] = ("numpy",), device: bool = False) -> None:
    """Print one line for a notebook's setup cell: scale, versions and (optionally) device.

    Parameters
    ----------
    packages
        Distribution names whose versions to show.
    device
        Also show the torch device (imports torch).
    """
    versions = " · ".join(f"{name} {metadata.version(name)}" for name in packages)
    parts = [f"scale: {get_scale()}", versions]
    if device:
        parts.append(f"device: {device_description()}")
    print(" | ".join(parts))
