"""The notebook on its own, as a hosted service or a downloaded copy runs it: no repository beside it.

Each run copies only the notebook into an empty folder (plus the MNIST files in its data folder, as a
first run would have fetched them) and executes it headless in quick mode, without the project's package. Packages
are made unimportable for the kernel by a sitecustomize module that hides them from Python's module finders, so
they look exactly as if they were not installed.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from handwritten_digits.export import NOTEBOOK
from handwritten_digits.mnist_data import MNIST_FILES

pytestmark = pytest.mark.slow  # the slow tier: make test-slow

HIDE_MODULES = '''"""Test helper: hide some installed packages, as if they were not installed."""
import sys

HIDDEN = {hidden!r}


class HidingFinder:
    """One of Python's module finders (the path finder, an editable install's finder, ...), blind to HIDDEN."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        find = getattr(self.finder, "find_spec", None)
        return None if name.partition(".")[0] in HIDDEN or find is None else find(name, path, target)

    def __getattr__(self, attribute):
        return getattr(self.finder, attribute)


sys.meta_path[:] = [HidingFinder(finder) for finder in sys.meta_path]
'''


def hide(tmp_path: Path, hidden: list[str]) -> Path:
    """A folder whose sitecustomize hides these packages from the kernel: put it on PYTHONPATH."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_MODULES.format(hidden=hidden))
    return site


NO_DOT = str(Path(sys.executable).parent)  # a PATH of the environment's bin folder alone: python, no Graphviz `dot`


@pytest.mark.parametrize(("hidden", "path", "notes"), [
    (["torchviz", "ipycanvas"], None, [
        "note: optional packages not installed: torchviz, ipycanvas; the notebook goes on without them",
        "note: the graph is not drawn here: it needs the torchviz package (pip install torchviz)\n",
        "note: the drawing canvas needs ipycanvas and ipywidgets, which are not installed"]),
    ([], NO_DOT, ["all the packages this notebook uses are installed",
                  "note: the graph is not drawn here: it needs Graphviz's `dot` program"]),
])
def test_the_notebook_alone_runs_to_the_end_saying_what_it_goes_without(tmp_path, mnist_root, hidden, path, notes):
    """A lone copy in an empty folder (MNIST's files in its data folder, as a first run fetched them), quick mode,
    the project's package hidden too; no error, nothing written beside it but its data and outputs."""
    if path is None and not shutil.which("dot"):
        pytest.skip("this run checks the notebook with Graphviz's dot present, as hosted notebooks have it")
    folder = tmp_path / "alone"
    raw = folder / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copyfile(mnist_root / "MNIST" / "raw" / name, raw / name)
    shutil.copyfile(NOTEBOOK, folder / NOTEBOOK.name)
    env = {**os.environ, "MNIST_QUICK": "1", "MNIST_PROGRESS": "0",
           "PYTHONPATH": str(hide(tmp_path, [*hidden, "handwritten_digits"])), **({"PATH": path} if path else {})}
    done = subprocess.run([sys.executable, "-m", "papermill", NOTEBOOK.name, "executed.ipynb", "--cwd", str(folder),
                           "--no-progress-bar", "-k", "python3"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    outputs = [output for cell in json.loads((folder / "executed.ipynb").read_text())["cells"]
               for output in cell.get("outputs", [])]
    text = "\n".join("".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                     for output in outputs)
    assert not [output for output in outputs if output["output_type"] == "error"]
    assert {path.name for path in folder.iterdir()} == {"data", "executed.ipynb", NOTEBOOK.name, "outputs"}
    for note in [*notes, "note: the project's package is not installed (a notebook on its own)",
                 "note: no example images here", "test accuracy: "]:
        assert note in text, note
    assert ("torchviz package" in text) == bool(hidden)


def test_set_up_cell_installs_missing_packages_only_in_a_hosted_session(tmp_path, mnist_root):
    """The notebook's parameters and set-up cells, alone, with torchviz hidden: Kaggle's marker makes it call pip."""
    notebook = json.loads(NOTEBOOK.read_text())
    notebook["cells"] = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"][:2]
    assert "setup" in notebook["cells"][1]["metadata"]["tags"]
    single = tmp_path / "set-up.ipynb"
    single.write_text(json.dumps(notebook))
    site, texts = hide(tmp_path, ["torchviz"]), {}
    for where, marker in (("laptop", {}), ("kaggle", {"KAGGLE_KERNEL_RUN_TYPE": "Interactive"})):
        env = {key: value for key, value in os.environ.items() if key != "KAGGLE_KERNEL_RUN_TYPE"}
        env.update(PYTHONPATH=str(site), **marker)
        done = subprocess.run([sys.executable, "-m", "papermill", str(single), str(tmp_path / f"{where}.ipynb"),
                               "--no-progress-bar", "-k", "python3", "--log-output", "-p", "DATA_ROOT",
                               str(mnist_root)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        texts[where] = done.stdout + done.stderr
    assert "note: optional packages not installed: torchviz; the notebook goes on without them" in texts["laptop"]
    assert "installing" not in texts["laptop"]
    # torchviz is installed in fact (only hidden from imports), so pip finds it and downloads nothing
    assert "hosted notebook: installing torchviz into this session" in texts["kaggle"]
    assert "you may need to restart the kernel" in texts["kaggle"]  # what IPython's %pip prints after pip ran
