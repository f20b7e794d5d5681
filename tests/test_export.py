"""The notebook is the source of handwritten_digits/notebook.py: `make export` writes it, and a test fails, naming the
command, while the two differ."""

import json
import subprocess
import sys

import nbformat
import pytest

from handwritten_digits import export


def test_the_package_is_what_the_notebook_exports_holding_its_network_and_no_parameter():
    from handwritten_digits import notebook

    assert export.MODULE.read_text(encoding="utf-8") == export.module_text(), \
        "handwritten_digits/notebook.py differs from the notebook's cells marked '#| export': run `make export`"
    assert sum(p.numel() for p in notebook.DigitCNN().parameters()) == 98_554  # batch norm included
    assert not hasattr(notebook, "EPOCHS")  # the parameters cell belongs to a run, not to the package


def test_editing_a_marked_cell_without_exporting_fails_the_check_naming_the_command(tmp_path):
    notebook = json.loads(export.NOTEBOOK.read_text(encoding="utf-8"))
    cell = next(cell for cell in notebook["cells"]
                if export.is_marked(cell) and "def evaluate(" in "".join(cell["source"]))
    cell["source"] = [line.replace("batch_size=1000", "batch_size=500") for line in cell["source"]]
    edited = tmp_path / export.NOTEBOOK.name
    edited.write_text(json.dumps(notebook), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "handwritten_digits.export", "--check", "--module", str(export.MODULE),
                           "--notebook", str(edited)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (1, f"{export.MODULE} differs from the cells of {edited.name} "
                                                         "marked '#| export': run `make export`")


def exported(tmp_path, source: str) -> str:
    path = tmp_path / "notebook.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Part I: x\n## 2. Load"),
                                                   nbformat.v4.new_code_cell(f"#| export\n{source}")]), path)
    return export.module_text(path)


@pytest.mark.parametrize(("source", "message"), [
    ("%matplotlib inline\nimport torch\n", "holds IPython syntax"), ("def broken(:\n", "is not valid Python")])
def test_a_marked_cell_that_cannot_be_module_code_is_refused_naming_it(tmp_path, source, message):
    with pytest.raises(export.ExportError, match=r"cell 1 is marked '#\| export' but " + message):
        exported(tmp_path, source)


def test_python_whose_continuation_lines_start_with_percent_or_not_equal_is_exported(tmp_path):
    source = "same = (1\n    != 2)\nrest = (7\n    % 3)\n"
    text = exported(tmp_path, source)
    assert "# Taught in Part I, 2. Load\n\n" + source in text
    assert text.startswith("# GENERATED FILE, do not edit: `make export` writes it")

