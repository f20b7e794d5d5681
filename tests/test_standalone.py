"""The notebook on its own, as a hosted service or a downloaded copy runs it: copied alone into an empty folder (MNIST's
files in its data folder, as a first run fetched them), quick mode, with the project's package and others hidden."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NOTEBOOK

pytestmark = pytest.mark.slow  # the slow tier: make test-slow


@pytest.mark.parametrize(("hidden", "path", "notes"), [
    (["torchviz", "ipycanvas"], os.environ["PATH"], [
        "note: optional packages not installed: torchviz, ipycanvas; the notebook goes on without them",
        "note: the graph is not drawn here: it needs the torchviz package (pip install torchviz)\n",
        "note: the drawing canvas needs ipycanvas and ipywidgets, which are not installed"]),
    ([], str(Path(sys.executable).parent), [  # a PATH of the environment's bin folder alone: no Graphviz `dot`
        "all the packages this notebook uses are installed",
        "note: the graph is not drawn here: it needs Graphviz's `dot` program"]),
])
def test_the_notebook_alone_runs_to_the_end_saying_what_it_goes_without(tmp_path, mnist_root, hidden, path, notes):
    if hidden and not shutil.which("dot"):
        pytest.skip("this run checks the notebook with Graphviz's dot present, as hosted notebooks have it")
    shutil.copytree(mnist_root / "MNIST" / "raw", (folder := tmp_path / "alone") / "data" / "MNIST" / "raw")
    shutil.copyfile(NOTEBOOK, folder / NOTEBOOK.name)
    as_uninstalled = [*hidden, "handwritten_digits"]  # None in sys.modules, where find_spec looks too
    (tmp_path / "sitecustomize.py").write_text(f"import sys\nsys.modules.update(dict.fromkeys({as_uninstalled!r}))")
    env = {**os.environ, "PATH": path, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "papermill", NOTEBOOK.name, "executed.ipynb", "-p", "QUICK", "True",
                           "--no-progress-bar", "--log-output", "-k", "python3"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]  # papermill stops at the first error
    text = done.stdout + done.stderr  # every output, logged
    assert {entry.name for entry in folder.iterdir()} == {"data", "executed.ipynb", NOTEBOOK.name, "outputs"}
    for note in [*notes, "note: the project's package is not installed (a notebook on its own)",
                 "note: no example images here", "test accuracy: "]:
        assert note in text, note
    assert ("torchviz package" in text) == bool(hidden)
    assert "installing" not in text  # only a hosted session installs what is missing
