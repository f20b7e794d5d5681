"""The notebook is the source of handwritten_digits/notebook.py: `make export` writes it, and a test fails, naming the
command, while the two differ."""

import nbformat
import pytest

from handwritten_digits import export


def test_the_package_is_what_the_notebook_exports_holding_its_network_and_no_parameter():
    from handwritten_digits import notebook

    assert export.MODULE.read_text(encoding="utf-8") == export.module_text(), \
        "handwritten_digits/notebook.py differs from the notebook's cells marked '#| export': run `make export`"
    # 98,554 parameters, batch norm included; the parameters cell belongs to a run, not to the package
    assert (sum(p.numel() for p in notebook.DigitCNN().parameters()), hasattr(notebook, "EPOCHS")) == (98_554, False)


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
    assert "# Taught in Part I, 2. Load\n\n" + source in exported(tmp_path, source)

