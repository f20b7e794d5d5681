"""Load the notebook's own definitions (its code cells tagged "recipe"), so scripts and tests run the
very code the notebook teaches instead of a copy that could drift from it."""

import json
from pathlib import Path
from types import SimpleNamespace

NOTEBOOK = Path(__file__).resolve().parent / "HandWrittenDigitsRecognition.ipynb"


def load_recipe(notebook: Path = NOTEBOOK) -> SimpleNamespace:
    """Execute the notebook's "recipe" cells (imports, functions, classes) and return what they define."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    namespace: dict = {"__name__": "notebook_recipe"}
    recipe = [cell for cell in cells if "recipe" in cell.get("metadata", {}).get("tags", [])]
    if not recipe:
        raise RuntimeError(f"{notebook} has no cells tagged 'recipe'")
    for cell in recipe:
        exec(compile("".join(cell["source"]), f"{Path(notebook).name}:recipe", "exec"), namespace)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})
