"""Write the committed notebook as one self-contained HTML page (`make html`): nbconvert's JupyterLab look, figures
embedded, no scripts fetched, and a live canvas (web/, the exported network) where the drawing canvas's output stood.

    python scripts/notebook_html.py [NOTEBOOK] [--output outputs/HandWrittenDigitsRecognition.html]"""

import argparse
import sys
from pathlib import Path

import nbformat
from jinja2 import DictLoader
from nbconvert import HTMLExporter

from handwritten_digits.files import atomic_write, first_line
from handwritten_digits.weights import read_weights_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK, WEIGHTS = ROOT / "HandWrittenDigitsRecognition.ipynb", ROOT / "assets" / "digit_cnn_weights.js"
TEMPLATE = "{%- extends 'lab/index.html.j2' -%}" + "".join(  # the lab template less require.js, MathJax and Mermaid
    f"{{%- block html_head_js_{name} -%}}{{%- endblock -%}}" for name in ("requirejs", "mathjax", "mermaidjs"))


def notebook_html(notebook: Path, weights: Path = WEIGHTS) -> str:
    """The page; refuses a file that is not a notebook, and a notebook without outputs or with a saved error."""
    try:
        node = nbformat.read(notebook, as_version=4)
        nbformat.validate(node)
    except (nbformat.ValidationError, ValueError, AttributeError, KeyError, TypeError) as error:
        raise ValueError(f"{notebook} is not a Jupyter notebook ({first_line(error)})") from error
    code = [cell for cell in node.cells if cell.cell_type == "code"]
    if not any(cell.outputs for cell in code):
        raise ValueError(f"{notebook} has no outputs: run it first (make run), then convert the executed copy")
    if failed := [i for i, c in enumerate(node.cells) if "error" in [o.output_type for o in c.get("outputs", ())]]:
        raise ValueError(f"{notebook} saved an error in cell(s) {failed}: fix the notebook and run it again first")
    read_weights_script(weights)  # a missing or damaged file would give a page whose script throws
    scripts = [weights, *(ROOT / "web" / name for name in ("mnist_style.js", "digit_cnn.js", "live_canvas.js"))]
    live_canvas = (ROOT / "web" / "live_canvas.html").read_text(encoding="utf-8") + "".join(
        f"<script>/* {path.name} */\n{path.read_text(encoding='utf-8')}</script>\n" for path in scripts)
    node.metadata.pop("widgets", None)  # saved widget state: only a live Jupyter session can use it
    for cell in code:  # the cell that wires a DrawingPad to an ipycanvas Canvas
        if "DrawingPad(" in cell.source and "Canvas(" in cell.source and "class DrawingPad" not in cell.source:
            cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": live_canvas})]
    exporter = HTMLExporter(template_name="lab", template_file="static.html.j2", embed_images=True,
                            extra_loaders=[DictLoader({"static.html.j2": TEMPLATE})])
    return exporter.from_notebook_node(node, resources={"metadata": {"name": notebook.stem}})[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebook", nargs="?", type=Path, default=NOTEBOOK)
    parser.add_argument("--output", type=Path, default=ROOT / "outputs" / f"{NOTEBOOK.stem}.html")
    parser.add_argument("--weights", type=Path, default=WEIGHTS, help="the live canvas's network")
    args = parser.parse_args(argv)
    try:
        page = notebook_html(args.notebook, args.weights)
        with atomic_write(args.output) as temporary:  # never half a page
            temporary.write_text(page, encoding="utf-8")
    except (OSError, ValueError) as error:
        sys.exit(f"error: {first_line(error)}")
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
