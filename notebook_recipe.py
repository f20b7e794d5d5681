"""Load the notebook's own code: its cells tagged "recipe" (definitions) and "parameters" (defaults), so
scripts and tests run the very code the notebook teaches instead of a copy that could drift from it."""

import json
import os
from pathlib import Path
from types import SimpleNamespace

NOTEBOOK = Path(__file__).resolve().parent / "HandWrittenDigitsRecognition.ipynb"


def cells_tagged(tag: str, notebook: Path = NOTEBOOK) -> list[dict]:
    """The notebook's code cells carrying the tag, in order; an error when there is none."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    tagged = [cell for cell in cells if tag in cell.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise RuntimeError(f"{notebook} has no cells tagged {tag!r}")
    return tagged


def load_recipe(notebook: Path = NOTEBOOK) -> SimpleNamespace:
    """Execute the notebook's "recipe" cells (imports, functions, classes) and return what they define."""
    namespace: dict = {"__name__": "notebook_recipe"}
    for cell in cells_tagged("recipe", notebook):
        exec(compile("".join(cell["source"]), f"{Path(notebook).name}:recipe", "exec"), namespace)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


def notebook_parameters(notebook: Path = NOTEBOOK) -> dict:
    """The values the notebook's parameters cell sets (EPOCHS, LEARNING_RATE, BATCH_SIZE, ...)."""
    namespace: dict = {"os": os}
    exec("".join(cells_tagged("parameters", notebook)[0]["source"]), namespace)
    return {name: value for name, value in namespace.items() if name.isupper()}
