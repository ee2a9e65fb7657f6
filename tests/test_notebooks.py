"""Every chapter is a paired notebook of the shape DESIGN.md fixes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import jupytext
import pytest
import yaml
from jupytext.compare import compare_notebooks

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks/NN_slug.py found"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_pair_exists_and_agrees(source):
    paired = source.with_suffix(".ipynb")
    assert paired.is_file(), f"{paired.name} is missing: run `jupytext --sync {source.relative_to(ROOT)}`"
    from_py = jupytext.read(source)
    from_ipynb = jupytext.read(paired)
    try:
        compare_notebooks(from_ipynb, from_py, fmt="py:percent")
    except Exception as error:  # jupytext raises its own comparison errors
        pytest.fail(f"{source.name} and {paired.name} differ ({error}); run `jupytext --sync {source.name}`")


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_paired_notebook_has_no_outputs(source):
    notebook = jupytext.read(source.with_suffix(".ipynb"))
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None


def _cells(source: Path):
    return jupytext.read(source).cells


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_shape(source):
    cells = _cells(source)
    text = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    for heading in (
        "Learning goals",
        "Prerequisites",
        "Time to learn",
        "Run time",
        "## Checks",
        "## Summary",
        "## References",
    ):
        assert heading in text, f"{source.name}: no '{heading}'"
    tags = [set(c.metadata.get("tags", [])) for c in cells]
    assert sum("parameters" in t for t in tags) == 1, "exactly one cell tagged parameters"
    exercises = [i for i, t in enumerate(tags) if "exercise" in t]
    solutions = [i for i, t in enumerate(tags) if "solution" in t]
    assert len(exercises) >= 2 and len(exercises) == len(solutions)
    for e, s in zip(exercises, solutions):
        assert e < s, "each solution follows its exercise"
        assert "hide-cell" in tags[s] or "hide-input" in tags[s], "solutions are hidden in the book"
    if source.stem in LEARNER_PATH:
        _assert_learner_path(source, cells, tags, exercises, solutions, text)
    else:
        for s in solutions:
            following = "\n".join(c.source for c in cells[s + 1 : s + 3] if c.cell_type == "markdown")
            assert "Figure check" in following, "a figure check follows each solution"
    for kind in ("attendee", "presenter"):
        link = f'href="../_static/variants/{kind}/{source.stem}.ipynb" download'
        assert link in text, f"{source.name}: no {kind} download link in the header"
    checks = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Checks" in c.source]
    assert cells[checks[0] + 1].cell_type == "code" and "assert" in cells[checks[0] + 1].source


#: Chapters that follow the learner path (issue "A chapter a learner can finish and check"):
#: at least three exercises, each with a check cell, and a Going further part. The issues
#: for chapters 2 to 6 add theirs.
LEARNER_PATH = {
    "01_glm_basics",
    "02_overfitting_ridge",
    "03_low_rank_ar",
    "04_crbm_lambda",
    "05_beta_vae_hh",
    "06_dipole_optimization",
}
CHECK_CALL = re.compile(r"checks\.(value|function|figure)\(")


def _assert_learner_path(source, cells, tags, exercises, solutions, text):
    assert len(exercises) >= 3, f"{source.name}: at least three exercises"
    bounds = exercises[1:] + [len(cells)]
    for e, s, end in zip(exercises, solutions, bounds):
        check = [i for i in range(s + 1, end) if "check" in tags[i]]
        assert check, f"{source.name}: the exercise at cell {e} has no cell tagged check after its solution"
        assert all(CHECK_CALL.search(cells[i].source) for i in check), "check cells call `checks.`"
    going_further = [
        i for i, c in enumerate(cells) if c.cell_type == "markdown" and re.search(r"^## Going further", c.source, re.M)
    ]
    summary = [i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## Summary" in c.source]
    assert going_further and going_further[0] >= summary[0], "a Going further part after the summary"
    assert "Going further" in text.split("**Time to learn.**")[1].split("\n\n")[0], (
        "Time to learn states the Going further part's time too"
    )


def recorded_check_names(source: Path) -> set[str]:
    """Names of the checks in a chapter whose expected answers are recorded (not computed
    on the spot with `expected=` or `reference=`)."""
    names = set()
    for cell in _cells(source):
        if cell.cell_type != "code" or "check" not in cell.metadata.get("tags", []):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "checks"
            ):
                live = {k.arg for k in node.keywords} & {"expected", "reference"}
                if not live:
                    names.add(node.args[0].value)
    return names


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_recorded_answers_cover_every_check_at_smoke_and_default(source):
    from course_utils.exercises import records

    names = recorded_check_names(source)
    answers = records.load_answers(source.stem)
    for scale in ("smoke", "default"):
        recorded = set(answers.get(scale, {}))
        assert names <= recorded, (
            f"{source.name}: no recorded answer at {scale} for "
            f"{sorted(names - recorded)}: run `python -m course_utils "
            f"record-answers {source.stem}`"
        )
        assert recorded <= names, f"{source.name}: stale answers at {scale}: {sorted(recorded - names)}"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_every_glue_reference_is_glued(source):
    cells = _cells(source)
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    glued = set(re.findall(r'glue\(\s*"([^"]+)"', code))
    used = set(re.findall(r"\{glue:\w+\}`([^`:]+)", markdown)) | set(re.findall(r"\{glue:figure\}\s+(\S+)", markdown))
    assert used, "the prose quotes no computed number"
    assert used <= glued, f"referenced but never glued: {used - glued}"


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_no_path_hacks(source):
    code = "\n".join(c.source for c in _cells(source) if c.cell_type == "code")
    assert "sys.path" not in code, "notebooks import course_utils as installed"


def test_toc_lists_every_chapter_by_its_source():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [entry["file"] for part in toc["parts"] for entry in part["chapters"]]
    for source in CHAPTERS:
        assert f"notebooks/{source.name}" in files, f"{source.name} is not in _toc.yml"


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _global_reads(node: ast.AST, local: frozenset[str] = frozenset()) -> set[str]:
    """Names read in ``node`` that are not local to an enclosing function or comprehension."""
    if isinstance(node, _SCOPES):
        inner = set(local)
        if not isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            inner |= {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
        inner |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        local = frozenset(inner)
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
        return set() if node.id in local else {node.id}
    reads = set()
    for child in ast.iter_child_nodes(node):
        reads |= _global_reads(child, local)
    return reads


def _stores_outside_scopes(node: ast.AST) -> set[str]:
    if isinstance(node, _SCOPES):
        return set()
    if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
        return {node.id}
    return set().union(*(_stores_outside_scopes(c) for c in ast.iter_child_nodes(node)))


def _names(code: str) -> tuple[set[str], set[str]]:
    """The global names a cell binds and the global names it reads."""
    tree = ast.parse(code)
    bound = set()
    for statement in tree.body:
        bound |= _stores_outside_scopes(statement)
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(statement.name)
        elif isinstance(statement, (ast.Import, ast.ImportFrom)):
            bound |= {(a.asname or a.name).split(".")[0] for a in statement.names}
    return bound, _global_reads(tree)


def attendee_hazards(cells: list[tuple[str, set[str]]]) -> list[tuple[int, set[str], str]]:
    """Cells that would fail in the attendee notebook although the chapter runs.

    The attendee notebook is the chapter without its solution cells, and its exercise stubs
    return ``...``. So it runs whenever the book build's run of the chapter succeeds, as long
    as no cell other than a solution or a check reads (1) a name only solution cells bind
    (a NameError without them) or (2) a name only exercise stubs bind (a stub's ``...`` used
    as a result). This static argument replaces executing each attendee notebook again in
    the tests: the book build executes every chapter once.

    Parameters
    ----------
    cells
        Each code cell's source and tags, in order.

    Returns
    -------
    list of (int, set of str, str)
        Index of each offending cell, the names it should not read, and why.
    """
    names = [_names(code) for code, _ in cells]

    def bound_by(kind: str, inside: bool) -> set[str]:
        return set().union(*(b for (b, _), (_, t) in zip(names, cells) if (kind in t) == inside))

    others = {"solution", "exercise"}
    elsewhere = set().union(*(b for (b, _), (_, t) in zip(names, cells) if not t & others))
    solution_only = bound_by("solution", True) - bound_by("solution", False)
    stub_only = bound_by("exercise", True) - elsewhere
    hazards = []
    for index, ((_, read), (_, t)) in enumerate(zip(names, cells)):
        if t & {"solution", "check"}:
            continue
        if read & solution_only:
            hazards.append((index, read & solution_only, "only solution cells define"))
        if "exercise" not in t and read & stub_only:
            hazards.append((index, read & stub_only, "an exercise stub defines (its `...` would be used)"))
    return hazards


@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_the_attendee_notebook_runs_where_the_chapter_runs(source):
    """Only solution and check cells read what solutions or exercise stubs alone define."""
    code_cells = [c for c in _cells(source) if c.cell_type == "code"]
    cells = [(c.source, set(c.metadata.get("tags", []))) for c in code_cells]
    for index, leaked, why in attendee_hazards(cells):
        pytest.fail(f"{source.name}: a cell reads {sorted(leaked)}, which {why}:\n{cells[index][0][:300]}")


def test_the_attendee_hazard_detector_finds_both_kinds():
    cells = [
        ("x = 1", set()),
        ("def f():\n    ...", {"exercise"}),
        ("def f():\n    return x\nsecret = f()", {"solution"}),
        ("checks.function('f', f, [()])", {"check"}),  # a check may call the stub
        ("print(secret)", set()),  # NameError without the solution
        ("y = f() + 1", set()),  # ... + 1 in the attendee notebook
        ("def g(secret):\n    return secret", set()),  # a parameter is local
    ]
    found = {index: (names, why) for index, names, why in attendee_hazards(cells)}
    assert set(found) == {4, 5}
    assert found[4][0] == {"secret"} and "solution" in found[4][1]
    assert found[5][0] == {"f"} and "stub" in found[5][1]


def test_the_book_reads_no_file_outside_its_table_of_contents():
    """Sphinx reads every .py (jupytext), .md and .ipynb file that _config.yml does not
    exclude: a script added anywhere else would be executed as a page of the book. (Files on
    disk, not git's list, so that it also works in a copy without .git.)"""
    import fnmatch
    import os

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    excluded = config["exclude_patterns"]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {toc["root"]} | {entry["file"] for part in toc["parts"] for entry in part["chapters"]}

    def is_excluded(name: str) -> bool:
        return any(
            fnmatch.fnmatch(part, pattern) or fnmatch.fnmatch(name, pattern)
            for pattern in [*excluded, ".git"]
            for part in Path(name).parts
        )

    files = []
    for folder, subfolders, names in os.walk(ROOT):
        here = Path(folder).relative_to(ROOT)
        subfolders[:] = [s for s in subfolders if not is_excluded((here / s).as_posix())]
        files += [(here / n).as_posix() for n in names if n.endswith((".py", ".md", ".ipynb"))]
    for name in files:
        if is_excluded(name):
            continue
        stem = str(Path(name).with_suffix(""))
        assert name in listed or stem in listed or Path(name).suffix == ".ipynb" and f"{stem}.py" in listed, (
            f"{name} would be read as a page of the book: exclude it in _config.yml"
        )


_PAGE_GLUE = re.compile(r"\{glue:text\}`\.\./notebooks/([\w]+)\.py::([^`]*)`")


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.md")), ids=lambda p: p.name)
def test_book_pages_glue_from_chapters_by_name_and_format(page):
    """A page's `{glue:text}` from a chapter names a glued value and gives a format: without
    one, myst-nb reads the path's last colon as the separator and the strict build fails."""
    for stem, rest in _PAGE_GLUE.findall(page.read_text()):
        name, _, fmt = rest.partition(":")
        assert fmt, f"{page.name}: {stem}::{name} needs a format (e.g. :s for text, :.2f)"
        source = ROOT / "notebooks" / f"{stem}.py"
        code = "\n".join(c.source for c in _cells(source) if c.cell_type == "code")
        assert re.search(rf'glue\(\s*"{re.escape(name)}"', code), f"{page.name}: {stem} never glues {name!r}"
