"""`make html` (scripts/notebook_html.py): a self-contained page, and refusals that leave nothing behind."""

import base64
import json
import re
import subprocess
import sys

import pytest

from handwritten_digits.export import NOTEBOOK
from scripts.notebook_html import WEIGHTS, live_canvas_html, notebook_html, write_html

ROOT = NOTEBOOK.parent


@pytest.fixture(scope="module")
def page() -> str:
    return notebook_html(NOTEBOOK)


def test_page_embeds_every_figure_and_links_no_script_or_stylesheet(page):
    figures = json.loads(NOTEBOOK.read_text())["cells"]
    saved = sum(1 for cell in figures for output in cell.get("outputs", [])
                for kind in output.get("data", {}) if kind in ("image/png", "image/svg+xml"))
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(sources) == saved
    assert all(source.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for source in sources)
    assert not re.search(r'<(script|link)[^>]*\s(src|href)="https?:', page)
    svg = [base64.b64decode(s.split(",", 1)[1]).decode() for s in sources if s.startswith("data:image/svg")]
    assert any("ConvolutionBackward0" in graph for graph in svg)


def test_live_canvas_stands_in_place_of_the_widgets_note_and_adds_at_most_700_kilobytes(page):
    assert page.count('<div class="live-digit" id="live-digit">') == 1
    sources = "".join("".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"])
    assert page.count("No canvas above?") == sources.count("No canvas above?")  # in the code, not its output
    assert page.index("on_client_ready") < page.index('id="live-digit"') < page.index("Where to go from here")
    assert "var DIGIT_CNN = {" in page  # the weights inline, as the page's code: one file that opens from disk
    assert not re.search(r"<script[^>]*\ssrc=", page)
    assert len(live_canvas_html().encode()) <= 700_000
    assert len(page.encode()) <= 2_100_000


def test_page_without_the_exported_weights_is_refused_and_nothing_written(tmp_path):
    target = tmp_path / "page.html"
    with pytest.raises(ValueError, match=r"digit_cnn_weights\.js is missing: the page's live canvas needs"):
        write_html(NOTEBOOK, target, weights=tmp_path / "digit_cnn_weights.js")
    assert not target.exists()


def damaged_weights(folder, damage: str):
    """A copy of the committed weights file, damaged so that the page's script would throw."""
    text = WEIGHTS.read_text(encoding="utf-8")
    damaged = {"empty": "", "cut in half": text[: len(text) // 2],
               "no constants": re.sub(r'\n "constants": .*,\n', "\n", text),
               "not JSON": text.replace('"mean": ', '"mean": ,', 1)}[damage]
    weights = folder / "digit_cnn_weights.js"
    weights.write_text(damaged, encoding="utf-8")
    return weights


@pytest.mark.parametrize("damage", ["empty", "cut in half", "no constants", "not JSON"])
def test_a_damaged_or_empty_weights_file_is_refused_naming_it_and_no_page_is_written(tmp_path, damage):
    weights, target = damaged_weights(tmp_path, damage), tmp_path / "page.html"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(weights))} is empty or damaged \(.*make assets, after "
                                         "make run has saved outputs/digit_cnn_tuned.pt"):
        write_html(NOTEBOOK, target, weights=weights)
    assert not target.exists()
    assert not list(tmp_path.glob("*.partial"))


def test_make_html_with_a_weights_file_cut_in_half_fails_in_one_line_and_writes_no_page(tmp_path):
    weights, target = damaged_weights(tmp_path, "cut in half"), tmp_path / "page.html"
    done = subprocess.run([sys.executable, "scripts/notebook_html.py", "--output", str(target), "--weights",
                           str(weights)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: {weights} is empty or damaged (")
    assert len(done.stderr.strip().splitlines()) == 1
    assert not target.exists()


def test_notebook_without_outputs_is_refused_and_nothing_written(tmp_path):
    notebook = json.loads(NOTEBOOK.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    bare = tmp_path / "bare.ipynb"
    bare.write_text(json.dumps(notebook))
    target = tmp_path / "out" / "bare.html"
    with pytest.raises(ValueError, match="has no outputs: run it first"):
        write_html(bare, target)
    assert not target.exists()
    assert not list(tmp_path.rglob("*.partial"))


def test_notebook_that_saved_an_error_is_refused_from_the_command_line(tmp_path):
    notebook = json.loads(NOTEBOOK.read_text())
    code = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    code["outputs"] = [{"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}]
    broken = tmp_path / "broken.ipynb"
    broken.write_text(json.dumps(notebook))
    target = tmp_path / "broken.html"
    target.write_text("the previous page")
    done = subprocess.run([sys.executable, "scripts/notebook_html.py", str(broken), "--output", str(target)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "saved an error in cell(s)" in done.stderr
    assert "Traceback" not in done.stderr
    assert target.read_text() == "the previous page"


EXPECTED = "expected the JSON of a Jupyter notebook (an .ipynb file: an object with nbformat, metadata and cells)"


@pytest.mark.parametrize(("content", "message"), [
    ('{"name": "my-package", "version": "1.0"}', f"is not a notebook: {EXPECTED}, found an object with the keys name, "
                                                 "version"),
    ("[1, 2, 3]", f"is not a notebook: {EXPECTED}, found a list"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}',
     "is not a valid notebook ("),
    ("<html>not JSON</html>", "is not JSON (Expecting value: line 1 column 1 (char 0)): " + EXPECTED),
])
def test_file_that_is_not_a_notebook_is_refused_and_nothing_written(tmp_path, content, message):
    source = tmp_path / "package.json"
    source.write_text(content)
    target = tmp_path / "out" / "page.html"
    with pytest.raises(ValueError, match=f"^{re.escape(f'{source} {message}')}") as caught:
        write_html(source, target)
    assert "\n" not in str(caught.value)
    assert not target.parent.exists()


def test_json_that_is_not_a_notebook_gets_one_line_from_the_command_line(tmp_path):
    source = tmp_path / "package.json"
    source.write_text('{"name": "my-package", "version": "1.0"}')
    target = tmp_path / "page.html"
    done = subprocess.run([sys.executable, "scripts/notebook_html.py", str(source), "--output", str(target)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr == (f"error: {source} is not a notebook: {EXPECTED}, found an object with the keys name, "
                           "version\n")
    assert not target.exists()
