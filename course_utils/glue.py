"""Paste computed numbers and figures into the book's text: myst-nb's ``glue``, anywhere.

A chapter glues each number its prose quotes (``glue("name", value, display=False)``) and
the book build pastes it with ``{glue:text}`name```. myst-nb, which does the pasting, is
part of the book toolchain (the ``book`` extra); a learner running a chapter on Colab or
Binder needs none of it. So the chapters import :func:`glue` from here: myst-nb's own when
it is installed, otherwise a function that writes the same output (a display of the value
tagged with its name), so a notebook executed without myst-nb still glues what the book
would show.
"""

from __future__ import annotations

from typing import Any

__all__ = ["glue"]

#: myst-nb's prefix for the mime types of a value glued without being displayed.
GLUE_PREFIX = "application/papermill.record/"


def _glue(name: str, variable: Any, display: bool = True) -> None:
    """Show ``variable`` (when ``display``) and record it under ``name``, as myst-nb does.

    Parameters
    ----------
    name
        The name the book's text pastes the value by.
    variable
        A number, a string, a figure: anything IPython can display.
    display
        Also show it in the notebook.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display as ipython_display

    mimebundle, metadata = format_display_data(variable)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = {"name": name, "mime_prefix": prefix}
    ipython_display({prefix + k: v for k, v in mimebundle.items()}, raw=True, metadata=metadata)


try:
    from myst_nb import glue
except ImportError:  # no book toolchain (Colab, a runtime-only install): same output
    glue = _glue
