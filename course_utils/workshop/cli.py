"""The command line: ``python -m course_utils {check,fetch,list,build-book,variants,record-answers,colab-cells}``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from course_utils.config import SCALES


def _check(args: argparse.Namespace) -> int:
    from course_utils.workshop.environment import environment_report, missing_requirements

    print(environment_report())
    problems = missing_requirements()
    if args.require_data:
        from course_utils.data import REGISTRY, is_cached

        problems += [
            f"dataset {name} is not in the cache: run `python -m course_utils fetch {name}`"
            for name in REGISTRY
            if not is_cached(name)
        ]
    if problems:
        print("\nNOT READY:", *problems, sep="\n  - ")
        return 1
    print("\nReady.")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from course_utils.data import DataFetchError, UnknownDatasetError, fetch, fetch_all

    if args.all == bool(args.names):
        print("Name one or more datasets, or pass --all (see `python -m course_utils list`).", file=sys.stderr)
        return 2
    try:
        if args.all:
            paths = fetch_all(timeout=args.timeout)
        else:
            paths = {name: fetch(name, timeout=args.timeout) for name in args.names}
    except (DataFetchError, UnknownDatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from course_utils.data import describe_datasets

    print(describe_datasets())
    return 0


def _build_book(args: argparse.Namespace) -> int:
    from course_utils.workshop.book import build_book

    return build_book(args.scale, args.execute, strict=not args.no_strict, out_dir=args.out)


def _variants(args: argparse.Namespace) -> int:
    from course_utils.workshop.book import chapter_sources, find_book_root, variants_dir
    from course_utils.workshop.variants import write_variants

    try:
        root = find_book_root()
        build = (args.build or root / "_build" / args.scale).resolve()
        paths = write_variants(chapter_sources(root), build, variants_dir(build))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(*paths, sep="\n")
    return 0


def _colab_cells(args: argparse.Namespace) -> int:
    from course_utils.workshop.book import find_book_root
    from course_utils.workshop.colab import sync_install_cells

    try:
        changed = sync_install_cells(find_book_root())
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in changed:
        print(f"updated {path}")
    if not changed:
        print("up to date")
    return 0


def _record_answers(args: argparse.Namespace) -> int:
    from course_utils.workshop.answers import record_all
    from course_utils.workshop.book import chapter_sources, find_book_root

    try:
        sources = chapter_sources(find_book_root())
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    chosen = [s for s in sources if not args.chapters or s.stem in args.chapters]
    unknown = set(args.chapters) - {s.stem for s in sources}
    if unknown:
        print(
            f"error: no chapter named {', '.join(sorted(unknown))}; chapters: {', '.join(s.stem for s in sources)}",
            file=sys.stderr,
        )
        return 2
    for (chapter, scale), count in record_all(chosen, args.scale).items():
        print(f"{chapter} at {scale}: {count} answers recorded")
    return 0


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m course_utils``."""
    main_parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__)
    commands = main_parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="report versions, device, scale, data; exit 1 if not ready")
    check.add_argument(
        "--require-data",
        action="store_true",
        help="also fail when a real dataset is not downloaded (preparing an offline room)",
    )
    check.set_defaults(run=_check)

    fetch = commands.add_parser("fetch", help="download and verify datasets into the cache")
    fetch.add_argument("names", nargs="*", help="dataset names (see `list`)")
    fetch.add_argument("--all", action="store_true", help="every registered dataset")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds without data before giving up")
    fetch.set_defaults(run=_fetch)

    listing = commands.add_parser("list", help="list the registered datasets")
    listing.set_defaults(run=_list)

    book = commands.add_parser("build-book", help="build the executed HTML book at a scale")
    book.add_argument("--scale", choices=SCALES, default="default")
    book.add_argument("--execute", choices=("cache", "force", "off"), default="cache")
    book.add_argument("--no-strict", action="store_true", help="do not turn warnings into errors")
    book.add_argument("--out", type=Path, default=None, help="build folder (default: _build/<scale>)")
    book.set_defaults(run=_build_book)

    variants = commands.add_parser("variants", help="write attendee and presenter notebooks into a built book")
    variants.add_argument("--scale", choices=SCALES, default="default", help="which build to use (_build/<scale>)")
    variants.add_argument("--build", type=Path, default=None, help="a build folder instead")
    variants.set_defaults(run=_variants)

    answers = commands.add_parser("record-answers", help="run the solutions and record the exercises' expected answers")
    answers.add_argument("chapters", nargs="*", help="chapter stems, e.g. 01_glm_basics (default: all)")
    answers.add_argument(
        "--scale",
        nargs="+",
        choices=("smoke", "default"),
        default=["smoke", "default"],
        help="the scales to record at (default: smoke and default)",
    )
    answers.set_defaults(run=_record_answers)

    colab = commands.add_parser(
        "colab-cells", help="write pyproject.toml's repository URL into each chapter's Colab install cell"
    )
    colab.set_defaults(run=_colab_cells)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = parser().parse_args(argv)
    return args.run(args)
