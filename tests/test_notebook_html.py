"""`make html` (scripts/notebook_html.py): one self-contained page with the live canvas; every refusal is one line
`error: ...` and leaves the previous page as it was."""

import base64
import json
import re

import pytest

from scripts.notebook_html import NOTEBOOK, WEIGHTS, main, notebook_html

SAVED = json.loads(NOTEBOOK.read_text())


@pytest.fixture(scope="module")
def page() -> str:
    return notebook_html(NOTEBOOK)


def test_page_embeds_every_figure_and_links_nothing_outside(page):
    saved = sum(kind in ("image/png", "image/svg+xml") for cell in SAVED["cells"]
                for output in cell.get("outputs", []) for kind in output.get("data", {}))
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(sources) == saved >= 12
    assert all(source.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for source in sources)
    assert not re.search(r'<(script|link|iframe)[^>]*\s(src|href)="(https?:)?//', page)
    assert any(b"ConvolutionBackward0" in base64.b64decode(source.split(",", 1)[1]) for source in sources)


def test_the_live_canvas_stands_where_the_canvas_cells_output_stood(page):
    assert page.count('id="live-digit"') == 1
    assert page.index("on_client_ready") < page.index('id="live-digit"') < page.index("Where to go from here")
    assert "var DIGIT_CNN = {" in page  # the weights inline: one file that opens from disk
    assert len(page.encode()) <= 2_100_000


def spoiled_notebook(change):
    def write(folder):
        notebook = json.loads(json.dumps(SAVED))
        change(notebook)
        (folder / "notebook.ipynb").write_text(json.dumps(notebook))
        return [str(folder / "notebook.ipynb")]
    return write


def damaged_weights(text):
    def write(folder):
        (folder / "weights.js").write_text(text(WEIGHTS.read_text()))
        return ["--weights", str(folder / "weights.js")]
    return write


def written(path, text: str) -> list[str]:
    path.write_text(text)
    return [str(path)]


def first_code_cell(notebook):
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")


REFUSALS = {  # how the input is spoiled: what the one line says
    "package.json": (lambda folder: written(folder / "package.json", '{"name": "x"}'), "is not a Jupyter notebook ("),
    "a list": (lambda folder: written(folder / "list.ipynb", "[1, 2]"), "list.ipynb is not a Jupyter notebook ("),
    "HTML": (lambda folder: written(folder / "page.ipynb", "<html>"), "Notebook does not appear to be JSON"),
    "invalid cell": (spoiled_notebook(lambda notebook: first_code_cell(notebook).pop("source")), "not a Jupyter"),
    "no outputs": (spoiled_notebook(lambda notebook: [cell.update(outputs=[]) for cell in notebook["cells"]
                                                      if cell["cell_type"] == "code"]), "has no outputs: run it first"),
    "a saved error": (spoiled_notebook(lambda notebook: first_code_cell(notebook).update(outputs=[
        {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}])), "saved an error"),
    "no weights": (lambda folder: ["--weights", str(folder / "weights.js")], "weights.js is missing or damaged"),
    "empty weights": (damaged_weights(lambda text: ""), "weights.js is missing or damaged"),
    "weights cut in half": (damaged_weights(lambda text: text[: len(text) // 2]), "weights.js is missing or damaged"),
    "no constants": (damaged_weights(lambda text: re.sub(r'\n "constants": .*,\n', "\n", text)), "missing or damaged"),
}


@pytest.mark.parametrize("spoiled", REFUSALS)
def test_a_refusal_is_one_line_and_keeps_the_previous_page(tmp_path, spoiled):
    spoil, expected = REFUSALS[spoiled]
    arguments = spoil(tmp_path)
    (target := tmp_path / "out" / "page.html").parent.mkdir()
    target.write_text("the previous page")
    with pytest.raises(SystemExit) as refused:
        main([*arguments, "--output", str(target)])
    assert refused.value.code.startswith("error: ")
    assert expected in refused.value.code
    assert "\n" not in refused.value.code
    assert target.read_text() == "the previous page"
    assert [path.name for path in target.parent.iterdir()] == ["page.html"]
