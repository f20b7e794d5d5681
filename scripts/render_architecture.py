"""Render the model's torchviz graph to assets/architecture.svg (the copy shown where Graphviz is missing).

    python scripts/render_architecture.py      (or: make assets)"""

from pathlib import Path

import torch

from handwritten_digits import notebook
from handwritten_digits.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]


def main(target: Path = ROOT / "assets" / "architecture.svg") -> None:
    torch.manual_seed(0)
    graph = notebook.architecture_graph(notebook.DigitCNN(), torch.zeros(1, 1, 28, 28))
    if graph is None:  # the note above said what is missing
        raise SystemExit(f"error: {target.relative_to(ROOT)} not rendered")
    with atomic_write(target) as temporary:
        temporary.write_bytes(graph.pipe(format="svg"))
    print(f"wrote {target.relative_to(ROOT)} ({target.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
