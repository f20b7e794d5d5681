"""Write the committed notebook as one static HTML page, for people who read rather than run (`make html`).

The figures are in the notebook's saved outputs and go into the page as data (PNG as base64, the
architecture graph as inline SVG), and so do images that markdown cells link to. The page loads
nothing from the network: the notebook has no formulas or diagrams for MathJax or Mermaid, and the
drawing canvas of Part II (E), an ipycanvas widget, needs a Jupyter kernel, so none of their scripts
are linked. In the canvas cell's place the page has a live canvas that needs no kernel: the trained
network's exported weights (assets/digit_cnn_weights.js, written by scripts/export_weights.py) and
the plain JavaScript of web/, inline, so that the page stays one file (docs/static-page.md).

    python scripts/notebook_html.py [NOTEBOOK] [--output outputs/HandWrittenDigitsRecognition.html]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter

from handwritten_digits.files import atomic_write
from handwritten_digits.weights import read_weights_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "HandWrittenDigitsRecognition.ipynb"
WEIGHTS = ROOT / "assets" / "digit_cnn_weights.js"
WEB = ROOT / "web"
LIVE_SCRIPTS = ("mnist_style.js", "digit_cnn.js", "live_canvas.js")  # in this order, after the weights file
# JupyterLab's look, without the scripts it would fetch from a CDN (require.js for widgets, MathJax, Mermaid).
STATIC_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


NOTEBOOK_JSON = "the JSON of a Jupyter notebook (an .ipynb file: an object with nbformat, metadata and cells)"


def read_notebook(notebook: Path) -> nbformat.NotebookNode:
    """The notebook, as nbformat 4; a one-line ValueError naming the file when it is not a notebook."""
    text = notebook.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{notebook} is not JSON ({error}): expected {NOTEBOOK_JSON}") from error
    if not isinstance(data, dict) or not isinstance(data.get("nbformat"), int) or "cells" not in data:
        kinds = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true or false"}
        found = (f"an object with the keys {', '.join(sorted(data))}" if isinstance(data, dict) and data
                 else "an empty object" if isinstance(data, dict) else kinds.get(type(data), "null"))
        raise ValueError(f"{notebook} is not a notebook: expected {NOTEBOOK_JSON}, found {found}")
    try:
        return nbformat.reads(text, as_version=4)
    except (nbformat.ValidationError, AttributeError, KeyError, TypeError) as error:
        reason = getattr(error, "message", None) or str(error)
        raise ValueError(f"{notebook} is not a valid notebook ({reason.splitlines()[0]}): expected "
                         f"{NOTEBOOK_JSON}") from error


def is_canvas_cell(cell: nbformat.NotebookNode) -> bool:
    """Whether the cell is the one that shows Part II (E)'s drawing canvas (it wires a DrawingPad to an ipycanvas
    Canvas), rather than the recipe cell that defines DrawingPad."""
    return (cell.cell_type == "code" and "DrawingPad(" in cell.source and "Canvas(" in cell.source
            and "class DrawingPad" not in cell.source)


def live_canvas_html(weights: Path = WEIGHTS) -> str:
    """The live canvas as one piece of HTML: web/live_canvas.html's markup, then the weights file and web/*.js as
    inline scripts."""
    remake = ("check out the committed file, or export it again (make assets, after make run has saved "
              "outputs/digit_cnn_tuned.pt)")
    if not weights.is_file():
        raise ValueError(f"{weights} is missing: the page's live canvas needs the exported weights; {remake}")
    try:  # a damaged file would give a page whose script throws: refuse it here
        read_weights_script(weights)
    except (ValueError, KeyError, TypeError, IndexError) as error:
        reason = (str(error).strip() or type(error).__name__).splitlines()[0]
        raise ValueError(f"{weights} is empty or damaged ({reason}), so the page's live canvas could not run: "
                         f"{remake}") from error
    paths = [weights, *(WEB / name for name in LIVE_SCRIPTS)]
    scripts = {path.name: path.read_text(encoding="utf-8") for path in paths}
    for name, text in scripts.items():
        if "</script" in text.lower():  # it would end the inline script early
            raise ValueError(f"{name} contains '</script', which cannot stand inside an inline script")
    return (WEB / "live_canvas.html").read_text(encoding="utf-8") + "".join(
        f"<script>/* {name} */\n{text}</script>\n" for name, text in scripts.items())


def notebook_html(notebook: Path, weights: Path = WEIGHTS) -> str:
    """The notebook as a self-contained HTML page, with the live canvas where the canvas cell's output stood; refuses
    a file that is not a notebook, and a notebook that has no outputs or saved an error."""
    node = read_notebook(notebook)
    code = [cell for cell in node.cells if cell.cell_type == "code" and cell.source.strip()]
    if not any(cell.outputs for cell in code):
        raise ValueError(f"{notebook} has no outputs: run it first (make run), then convert the executed copy")
    failed = [index for index, cell in enumerate(node.cells) if cell.cell_type == "code"
              and any(output.output_type == "error" for output in cell.outputs)]
    if failed:
        raise ValueError(f"{notebook} saved an error in cell(s) {failed}: fix the notebook and run it again first")
    node.metadata.pop("widgets", None)  # saved widget state: only a live Jupyter session can use it
    for cell in filter(is_canvas_cell, node.cells):  # its "No canvas above?" note: here is one that works
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": live_canvas_html(weights)})]
    exporter = HTMLExporter(template_name="lab", template_file="static.html.j2", embed_images=True,
                            extra_loaders=[DictLoader({"static.html.j2": STATIC_TEMPLATE})])
    resources = {"metadata": {"name": notebook.stem, "path": str(notebook.parent)}}
    body, _ = exporter.from_notebook_node(node, resources=resources)
    return body


def write_html(notebook: Path, target: Path, weights: Path = WEIGHTS) -> None:
    """Write the page through a temporary file of its own (atomic_write), so that the target is never half written,
    even with two writers at once."""
    page = notebook_html(notebook, weights)
    with atomic_write(target) as temporary:
        temporary.write_text(page, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", nargs="?", type=Path, default=NOTEBOOK)
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / f"{NOTEBOOK.stem}.html")
    parser.add_argument("--weights", type=Path, default=WEIGHTS,
                        help="the live canvas's network (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        write_html(args.notebook, args.output, args.weights)
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
