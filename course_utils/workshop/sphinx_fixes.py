"""A small Sphinx extension that fixes two console errors of the Jupyter Book 1 stack.

- sphinx-thebe registers its configuration script once per read phase, and a book build
  can run more than one, so pages carried ``const THEBE_JS_URL`` twice, a JavaScript error
  (``Identifier 'THEBE_JS_URL' has already been declared``) on every chapter. Each page's
  scripts are de-duplicated here.
- pydata-sphinx-theme logs ``Got invalid theme mode`` when no default mode is configured;
  the course's books default to the light theme.

Loaded through ``sphinx: extra_extensions`` in ``_config.yml``; the browser test in
``tests/test_browser.py`` fails on any console error.
"""

from __future__ import annotations

from typing import Any


def _script_key(script: Any) -> tuple[str, str]:
    filename = getattr(script, "filename", script) or ""  # inline scripts: None or ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), str(attributes.get("body", ""))


def deduplicate_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    """Drop the second and later copies of identical scripts from a page."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: Sphinx keeps using the same list object


def default_light_mode(app: Any, config: Any) -> None:
    """Give the theme an explicit default mode (a template variable) unless the book sets one."""
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")
    config.html_context = context


def setup(app: Any) -> dict[str, Any]:
    """Register the fixes with Sphinx."""
    app.connect("config-inited", default_light_mode)
    # Last, after every extension has added its scripts to the page.
    app.connect("html-page-context", deduplicate_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
