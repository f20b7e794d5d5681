"""The notebook is the source of handwritten_digits/recipe.py: `make export` writes it, and a test fails, naming the
command, while the two differ. Nothing anywhere runs the notebook's cells with exec."""

import json
import re
import subprocess
import sys

import pytest

from handwritten_digits import export

ROOT = export.NOTEBOOK.parent


def test_the_package_is_what_the_notebook_exports():
    assert export.MODULE.read_text(encoding="utf-8") == export.module_text(), \
        "handwritten_digits/recipe.py differs from the notebook's cells marked '#| export': run `make export`"


def marked_cells(notebook: dict) -> list[dict]:
    return [cell for cell in notebook["cells"] if export.is_marked(cell)]


def test_editing_a_marked_cell_without_exporting_fails_the_check_naming_the_command(tmp_path):
    notebook = json.loads(export.NOTEBOOK.read_text(encoding="utf-8"))
    cell = next(cell for cell in marked_cells(notebook) if "def evaluate(" in "".join(cell["source"]))
    cell["source"] = [line.replace("batch_size=1000", "batch_size=500") for line in cell["source"]]
    edited = tmp_path / export.NOTEBOOK.name
    edited.write_text(json.dumps(notebook), encoding="utf-8")
    check = [sys.executable, "-m", "handwritten_digits.export", "--check", "--module", str(export.MODULE)]
    done = subprocess.run([*check, "--notebook", str(edited)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"{export.MODULE} differs from the cells of {edited.name} marked '#| export': "
                                   "run `make export`")
    done = subprocess.run([*check, "--notebook", str(export.NOTEBOOK)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_every_block_is_headed_by_the_section_that_teaches_it_under_a_generated_file_header():
    text = export.MODULE.read_text(encoding="utf-8")
    assert text.startswith("# GENERATED FILE, do not edit: `make export` writes it")
    headings = re.findall(r"^# Taught in (.+)$", text, flags=re.M)
    assert len(headings) == len(marked_cells(json.loads(export.NOTEBOOK.read_text(encoding="utf-8"))))
    assert "Part I, 5. Build the network" in headings
    assert "Part II, D. Faster on an NVIDIA GPU: the whole step as one CUDA graph (optional; needs only Part I)" \
        in headings
    assert not re.search(r"^#\| export$", text, flags=re.M)  # the marker stays in the notebook


@pytest.mark.parametrize(("source", "message"), [
    ("#| export\n%matplotlib inline\nimport torch\n", r"cell 1 is marked '#\| export' but holds IPython syntax"),
    ("#| export\ndef broken(:\n", r"cell 1 is marked '#\| export' but is not valid Python"),
])
def test_a_marked_cell_that_cannot_be_module_code_is_refused_naming_it(tmp_path, source, message):
    notebook = {"cells": [{"cell_type": "markdown", "source": ["# Part I: x"]},
                          {"cell_type": "code", "source": [source], "metadata": {}}]}
    path = tmp_path / "notebook.ipynb"
    path.write_text(json.dumps(notebook))
    with pytest.raises(export.ExportError, match=message):
        export.module_text(path)


def test_the_exported_module_imports_and_holds_the_notebooks_network():
    from handwritten_digits import recipe

    assert recipe.DigitCNN.__module__ == "handwritten_digits.recipe"
    assert sum(p.numel() for p in recipe.DigitCNN().parameters()) == 98_554  # batch norm included
    assert (recipe.EPOCHS, recipe.BATCH_SIZE, recipe.LEARNING_RATE) == (15, 128, 0.15)  # the parameters cell


def test_no_file_of_the_repository_runs_notebook_cells_with_exec():
    tracked = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in tracked.stdout.split():
        text = (ROOT / name).read_text(encoding="utf-8")
        if re.search(r"\bexec\(", text):
            assert not re.search(r"\.ipynb|nbformat|\"cells\"", text), f"{name} runs notebook code with exec"
    assert not (ROOT / "notebook_recipe.py").exists()
