"""Write the notebook's cells marked for export into handwritten_digits/notebook.py (`make export`); a test checks
that the file is what the notebook would write.

The notebook is the source: a code cell whose first line is `#| export` (nbdev's marker, kept visible so that a
reader knows the code is reused) is copied as it stands, under a comment naming the section that teaches it.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import nbformat

from .files import atomic_write

PACKAGE = Path(__file__).resolve().parent
NOTEBOOK = PACKAGE.parent / "HandWrittenDigitsRecognition.ipynb"
MODULE = PACKAGE / "notebook.py"
MARKER = "#| export"

HEADER = f'''# GENERATED FILE, do not edit: `make export` writes it from the cells of {NOTEBOOK.name} whose first
# line is "{MARKER}". Edit those cells, then run `make export`; a test fails while the two differ.
"""The notebook's teaching code, importable: the network, the data preparation, the training loop, evaluation and
Part II's tools, exactly as the notebook shows them (each block names the section that teaches it)."""
'''


class ExportError(ValueError):
    """A cell marked for export that cannot become module code."""


def is_marked(cell: dict) -> bool:
    """Whether a cell is a code cell whose first line is the export marker."""
    return cell.get("cell_type") == "code" and "".join(cell.get("source", "")).split("\n", 1)[0].strip() == MARKER


def module_text(notebook: Path = NOTEBOOK) -> str:
    """The text of notebook.py as the notebook's marked cells make it, each block headed by its section."""
    try:
        cells = nbformat.read(notebook, as_version=4).cells
    except Exception as error:  # not a file, not JSON, not a notebook
        raise ExportError(f"{notebook} cannot be read as a notebook: {error}") from error
    part = section = ""
    parts = [HEADER]
    for number, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if re.match(r"# \S", line):
                    part, section = line[2:].strip().split(":")[0], ""
                elif re.match(r"## \S", line):
                    section = line[3:].strip()
        if not is_marked(cell):
            continue
        code = cell.source.split("\n", 1)[1] if "\n" in cell.source else ""
        try:  # parsed first: a continuation line may start with % or != and still be Python
            ast.parse(code)
        except SyntaxError as error:
            magic = next((line for line in code.splitlines() if line.lstrip().startswith(("%", "!"))), None)
            what = f"holds IPython syntax ({magic.strip()!r})" if magic else f"is not valid Python: {error}"
            raise ExportError(f"cell {number} is marked {MARKER!r} but {what}, which a Python module cannot hold: "
                              "move that line to a cell of its own") from error
        parts.append(f"# {'-' * 116}\n# Taught in {part}{f', {section}' if section else ''}\n\n{code.strip()}\n")
    if len(parts) == 1:
        raise ExportError(f"{notebook} has no cell whose first line is {MARKER!r}")
    return "\n".join(parts)


def main() -> None:
    """Write notebook.py from the notebook's marked cells, unless it is already what they make."""
    try:
        text = module_text()
    except ExportError as error:
        sys.exit(f"error: {error}")
    if MODULE.is_file() and MODULE.read_text(encoding="utf-8") == text:
        print(f"{MODULE} is what {NOTEBOOK.name} exports")
        return
    with atomic_write(MODULE) as temporary:
        temporary.write_text(text, encoding="utf-8")
    print(f"wrote {MODULE} from the cells of {NOTEBOOK.name} marked {MARKER!r}")


if __name__ == "__main__":
    main()
