"""Render the model's torchviz graph to assets/architecture.svg (the copy shown where Graphviz is missing).

    python scripts/render_architecture.py      (or: make assets)
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from notebook_recipe import load_recipe  # noqa: E402


def main(target: Path = ROOT / "assets" / "architecture.svg") -> None:
    recipe = load_recipe()
    torch.manual_seed(0)
    graph = recipe.architecture_graph(recipe.DigitCNN(), torch.zeros(1, 1, 28, 28))
    with recipe.atomic_write(target) as temporary:
        temporary.write_bytes(graph.pipe(format="svg"))
    print(f"wrote {target.relative_to(ROOT)} ({target.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
