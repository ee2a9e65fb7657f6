"""The built book in a real browser: pages load cleanly, images show, solutions open, and no
page shows markdown table syntax as text.

Runs after the smoke build (``make test`` builds first, then runs ``pytest -m browser``),
against Debian's Chromium driven by Playwright (no browser download). Screenshots of each
chapter's first screen are saved in ``_build/smoke/screenshots/`` as test artifacts.
Without Chromium the tests skip, unless ``COURSE_REQUIRE_BROWSER=1`` (CI) makes that a failure.
The tests that need the browser are marked ``browser``; the unit test of the table-syntax
detection is not, and runs with the unit tests.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from conftest import serve_directory

from course_utils.workshop import book

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build" / "smoke"
HTML = BUILD / "_build" / "html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHAPTERS = book.chapter_sources(ROOT)

_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TABLE_RULE = re.compile(r"\|\s*:?-{3,}:?\s*\|")
# What a reader sees, without code blocks (a printed table in a cell's output is fine) and
# formulas (MathJax's hidden MathML would show |x| on a line of its own).
_VISIBLE_PROSE = """() => {
  for (const node of document.querySelectorAll("pre, .math, mjx-container")) node.style.display = "none";
  return document.body.innerText;
}"""


def book_pages(root: Path) -> list[str]:
    """Every page of the table of contents, as its path in the HTML build (``book/intro.html``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    entries = [entry for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    files = [toc["root"]]
    while entries:
        entry = entries.pop(0)
        files.append(entry["file"])
        entries[:0] = entry.get("sections", [])
    return [Path(f).with_suffix(".html").as_posix() for f in files]


def raw_table_lines(text: str) -> list[str]:
    """The lines of a page's visible text that are markdown table syntax.

    A table the renderer did not recognise (an HTML comment between its header and its
    rows ends it) is shown as a paragraph of ``| a | b |`` text; a rendered table's text
    has no pipes.
    """
    return [line.strip() for line in text.splitlines() if _TABLE_ROW.match(line) or _TABLE_RULE.search(line)]


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    _require((HTML / "index.html").is_file(), f"no smoke build in {HTML}: run `make test` (it builds first)")
    with serve_directory(HTML) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    _require(CHROMIUM is not None, "Chromium is not installed (Debian: apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: page.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: page.problems.append(f"failed request: {r.url}"))
    yield page
    context.close()


def _open(page, url: str) -> None:
    response = page.goto(url, wait_until="networkidle")
    assert response is not None and response.ok, f"{url}: HTTP {response and response.status}"


@pytest.mark.browser
def test_front_page_loads(page, site):
    _open(page, f"{site}/index.html")
    assert page.problems == []
    assert page.locator("nav").count() > 0


@pytest.mark.browser
@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_page_loads_cleanly_with_its_figures(page, site, source):
    url = f"{site}/notebooks/{source.stem}.html"
    _open(page, url)
    shots = BUILD / "screenshots"
    shots.mkdir(exist_ok=True)
    page.screenshot(path=str(shots / f"{source.stem}.png"))
    assert page.problems == [], "\n".join(page.problems)
    images = page.locator("main img")
    assert images.count() >= 3, "a chapter shows its figures"
    broken = page.evaluate(
        "Array.from(document.querySelectorAll('main img'))"
        ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert broken == [], f"broken images: {broken}"
    assert page.locator("mjx-container").count() > 0, "formulas are rendered by MathJax"


@pytest.mark.browser
@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_hidden_solution_opens_on_click(page, site, source):
    _open(page, f"{site}/notebooks/{source.stem}.html")
    hidden = page.locator("details.hide")
    assert hidden.count() >= 2, "solutions are hidden behind a toggle"
    solution = hidden.first
    code = solution.locator("pre").first
    assert not code.is_visible()
    solution.locator("summary").first.click()
    code.wait_for(state="visible", timeout=5000)
    assert code.is_visible()


@pytest.mark.browser
@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_download_links_resolve(page, site, source):
    _open(page, f"{site}/notebooks/{source.stem}.html")
    for kind in ("attendee", "presenter"):
        link = page.locator(f'a[href$="_static/variants/{kind}/{source.stem}.ipynb"]')
        assert link.count() == 1, f"no {kind} download link"
        href = link.first.get_attribute("href")
        response = page.request.get(f"{site}/notebooks/{href}")
        assert response.ok and b'"cells"' in response.body()


@pytest.mark.browser
@pytest.mark.parametrize("source", CHAPTERS, ids=lambda p: p.stem)
def test_launch_links_open_the_chapters_notebook_once_the_repository_is_public(page, site, source):
    repository = book.repository_url(ROOT)
    if repository is None:  # unpublished: no launch buttons by design (book/contributing.md)
        _open(page, f"{site}/notebooks/{source.stem}.html")
        assert page.locator('a[href^="https://colab.research.google.com"]').count() == 0
        return
    _open(page, f"{site}/notebooks/{source.stem}.html")
    path = repository.split("://", 1)[1].split("/", 1)[1]  # <org>/<repo>
    notebook = f"notebooks/{source.stem}.ipynb"
    for service in (book.COLAB_URL, book.BINDER_URL):
        links = page.locator(f'a[href^="{service}"]')
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert any(path in href and href.endswith(notebook) for href in hrefs), (service, hrefs)


@pytest.mark.browser
@pytest.mark.parametrize("path", book_pages(ROOT))
def test_page_shows_no_markdown_table_syntax(page, site, path):
    _open(page, f"{site}/{path}")
    lines = raw_table_lines(page.evaluate(_VISIBLE_PROSE))
    shown = "\n".join(lines)
    assert not lines, f"{path} shows markdown table syntax as text (a table that did not render):\n{shown}"


def test_raw_table_lines_finds_table_syntax_and_nothing_else():
    rendered = "Measured times:\n#\tchapter\trun time\n1\tGLM basics\t25 s\nThe norm |w| grows."
    assert raw_table_lines(rendered) == []
    unrendered = (
        "Measured times:\n| # | chapter | run time |\n| --- | --- | --- |\n"
        "  | 1 | GLM basics | 25 s |  \ntext | with a pipe"
    )
    assert raw_table_lines(unrendered) == [
        "| # | chapter | run time |",
        "| --- | --- | --- |",
        "| 1 | GLM basics | 25 s |",
    ]
    assert raw_table_lines("a header | --- | ran on") == ["a header | --- | ran on"]


def test_book_pages_lists_every_page_of_the_table_of_contents():
    pages = book_pages(ROOT)
    assert pages[0] == "book/intro.html" and "book/instructors.html" in pages
    assert [p for p in pages if p.startswith("notebooks/")] == [f"notebooks/{s.stem}.html" for s in CHAPTERS]
