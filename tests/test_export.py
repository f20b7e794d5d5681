"""The notebook is the source of handwritten_digits/notebook.py: `make export` writes it, and a test fails, naming the
command, while the two differ."""

import json
import subprocess
import sys

import nbformat
import pytest

from handwritten_digits import export


def test_the_package_is_what_the_notebook_exports():
    assert export.MODULE.read_text(encoding="utf-8") == export.module_text(), \
        "handwritten_digits/notebook.py differs from the notebook's cells marked '#| export': run `make export`"


def test_editing_a_marked_cell_without_exporting_fails_the_check_naming_the_command(tmp_path):
    notebook = json.loads(export.NOTEBOOK.read_text(encoding="utf-8"))
    cell = next(cell for cell in notebook["cells"]
                if export.is_marked(cell) and "def evaluate(" in "".join(cell["source"]))
    cell["source"] = [line.replace("batch_size=1000", "batch_size=500") for line in cell["source"]]
    edited = tmp_path / export.NOTEBOOK.name
    edited.write_text(json.dumps(notebook), encoding="utf-8")
    check = [sys.executable, "-m", "handwritten_digits.export", "--check", "--module", str(export.MODULE)]
    done = subprocess.run([*check, "--notebook", str(edited)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr.strip()) == (1, f"{export.MODULE} differs from the cells of {edited.name} "
                                                         "marked '#| export': run `make export`")
    done = subprocess.run([*check, "--notebook", str(export.NOTEBOOK)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def exported(tmp_path, source: str) -> str:
    """The module text of a notebook with one marked cell holding `source`."""
    path = tmp_path / "notebook.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Part I: x\n## 2. Load"),
                                                   nbformat.v4.new_code_cell(f"#| export\n{source}")]), path)
    return export.module_text(path)


@pytest.mark.parametrize(("source", "message"), [
    ("%matplotlib inline\nimport torch\n", r"cell 1 is marked '#\| export' but holds IPython syntax"),
    ("!ls\n", r"cell 1 is marked '#\| export' but holds IPython syntax"),
    ("def broken(:\n", r"cell 1 is marked '#\| export' but is not valid Python"),
])
def test_a_marked_cell_that_cannot_be_module_code_is_refused_naming_it(tmp_path, source, message):
    with pytest.raises(export.ExportError, match=message):
        exported(tmp_path, source)


def test_python_whose_continuation_lines_start_with_percent_or_not_equal_is_exported(tmp_path):
    source = "same = (1\n    != 2)\nrest = (7\n    % 3)\n"
    text = exported(tmp_path, source)
    assert "# Taught in Part I, 2. Load\n\n" + source in text
    assert text.startswith("# GENERATED FILE, do not edit: `make export` writes it")


def test_the_exported_module_holds_the_notebooks_network_and_no_parameter():
    from handwritten_digits import notebook

    assert notebook.DigitCNN.__module__ == "handwritten_digits.notebook"
    assert sum(p.numel() for p in notebook.DigitCNN().parameters()) == 98_554  # batch norm included
    assert not hasattr(notebook, "EPOCHS")  # the parameters cell belongs to a run, not to the package
