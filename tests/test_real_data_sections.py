"""Each chapter's "On real data" section runs on a small file in the real format.

The chapter's code cells run in this process at smoke scale, up to and including the cell
that loads ``source="real"``, with the dataset served from a local server (the real
recordings cannot be downloaded in tests). This catches a real-data section that no longer
fits the loader or the file format, which the offline book build would only skip.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import jupytext
import matplotlib
import pytest
from nwb_fixtures import write_place_cell_nwb

from course_utils.data.registry import REGISTRY

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[1]


def run_until_real_data(source: Path) -> str:
    """Run a chapter's code cells up to its real-data cell; return what that cell printed."""
    import matplotlib.pyplot as plt

    notebook = jupytext.read(source)
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    last = next(i for i, c in enumerate(cells) if 'source="real"' in c.source)
    namespace: dict = {"__name__": "__main__"}
    output = io.StringIO()
    for index, cell in enumerate(cells[: last + 1]):
        stream = output if index == last else io.StringIO()
        with redirect_stdout(stream):
            exec(compile(cell.source, f"{source.name}[{index}]", "exec"), namespace)
        plt.close("all")
    return output.getvalue()


@pytest.mark.slow
def test_chapter_1_real_data_section(http_server, register, data_cache, tmp_path, monkeypatch):
    path = tmp_path / "Achilles_10252013.nwb"
    write_place_cell_nwb(path, duration_s=120.0)
    body = path.read_bytes()
    register("place_cells", body, (http_server.route(REGISTRY["place_cells"].filename, http_server.file(body)),))
    monkeypatch.setenv("COURSE_SCALE", "smoke")
    monkeypatch.chdir(ROOT / "notebooks")
    printed = run_until_real_data(ROOT / "notebooks" / "01_glm_basics.py")
    assert "skipped" not in printed, printed
    assert "position only: held-out pseudo-R²" in printed, printed
    assert "position + speed: held-out pseudo-R²" in printed, printed
