"""`make run`'s one line when the notebook stops: the error that stopped it, read from the partial run (or the last
line of papermill's log when no cell ran), and where the whole story is."""

import json
import sys
from pathlib import Path

partial, log = sys.argv[1:3]
try:
    cells = json.loads(Path(partial).read_text(encoding="utf-8"))["cells"]
    error = next(f"{out['ename']}: {out['evalue']}" for cell in cells for out in cell.get("outputs", [])
                 if out["output_type"] == "error")
except (OSError, ValueError, KeyError, StopIteration):
    lines = [line for line in Path(log).read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    error = lines[-1] if lines else "papermill stopped without a message"
print(f"make run failed: {error}\n(the partial run: {partial}; papermill's log: {log}; the last complete run, if any, "
      "is unchanged)", file=sys.stderr)
