"""`make html`: one self-contained page with the live canvas; a refusal is one line and keeps the previous page."""

import json
import re

import pytest

from scripts.notebook_html import NOTEBOOK, WEIGHTS, main, notebook_html

SAVED = json.loads(NOTEBOOK.read_text())


def test_page_embeds_every_figure_holds_the_live_canvas_and_links_nothing_outside():
    page = notebook_html(NOTEBOOK)
    saved = sum(kind in ("image/png", "image/svg+xml") for cell in SAVED["cells"]
                for output in cell.get("outputs", []) for kind in output.get("data", {}))
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert len(sources) == saved >= 12
    assert all(source.startswith(("data:image/png;base64,", "data:image/svg+xml;base64,")) for source in sources)
    assert not re.search(r'<(script|link|iframe)[^>]*\s(src|href)="(https?:)?//', page)
    assert page.count('id="live-digit"') == 1
    assert "var DIGIT_CNN = {" in page  # the weights inline: one file that opens from disk


def spoiled(change=None, weights=None):
    """The arguments for a copy of the notebook that `change` edits or replaces by a text, or for a weights file."""
    def write(folder):
        if weights:
            (folder / "weights.js").write_text(weights(WEIGHTS.read_text()))
            return ["--weights", str(folder / "weights.js")]
        text = change(notebook := json.loads(json.dumps(SAVED)))
        (folder / "notebook.ipynb").write_text(text if isinstance(text, str) else json.dumps(notebook))
        return [str(folder / "notebook.ipynb")]
    return write


CODE = next(index for index, cell in enumerate(SAVED["cells"]) if cell["cell_type"] == "code")  # the first code cell


REFUSALS = {  # how the input is spoiled: what the one line says
    "package.json": (spoiled(lambda notebook: '{"name": "x"}'), "notebook.ipynb is not a Jupyter notebook ("),
    "HTML": (spoiled(lambda notebook: "<html>"), "is not a Jupyter notebook (Notebook does not appear to be JSON"),
    "invalid cell": (spoiled(lambda notebook: notebook["cells"][CODE].update(source=3)), "is not a Jupyter notebook"),
    "no outputs": (spoiled(lambda notebook: [cell.update(outputs=[]) for cell in notebook["cells"]
                                             if cell["cell_type"] == "code"]), "has no outputs: run it first"),
    "a saved error": (spoiled(lambda notebook: notebook["cells"][CODE].update(outputs=[
        {"output_type": "error", "ename": "ValueError", "evalue": "boom", "traceback": []}])), "saved an error"),
    "no weights": (lambda folder: ["--weights", str(folder / "weights.js")], "weights.js is missing or damaged"),
    "no constants": (spoiled(weights=lambda text: re.sub(r'\n "constants": .*,\n', "\n", text)), "missing or damaged"),
}


@pytest.mark.parametrize("spoil", REFUSALS)
def test_a_refusal_is_one_line_and_keeps_the_previous_page(tmp_path, spoil):
    (target := tmp_path / "out" / "page.html").parent.mkdir()
    target.write_text("the previous page")
    with pytest.raises(SystemExit) as refused:
        main([*REFUSALS[spoil][0](tmp_path), "--output", str(target)])
    assert re.fullmatch(f"error: [^\n]*{re.escape(REFUSALS[spoil][1])}[^\n]*", refused.value.code)
    assert target.read_text() == "the previous page"
    assert [path.name for path in target.parent.iterdir()] == ["page.html"]
