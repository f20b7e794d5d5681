"""The notebook on its own, as a hosted service or a downloaded copy runs it: copied alone into an empty folder (MNIST's
files in its data folder, as a first run fetched them), quick mode, with the project's package and others hidden."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NOTEBOOK, run_first_cells

pytestmark = pytest.mark.slow  # the slow tier: make test-slow


def hide(tmp_path: Path, hidden: list[str]) -> str:
    """A PYTHONPATH whose sitecustomize makes these packages look uninstalled (None in sys.modules: find_spec too)."""
    (tmp_path / "sitecustomize.py").write_text(f"import sys\n\nsys.modules.update(dict.fromkeys({hidden!r}))\n")
    return str(tmp_path)


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
    site = hide(tmp_path, [*hidden, "handwritten_digits"])
    env = {**os.environ, "MNIST_PROGRESS": "0", "PATH": path, "PYTHONPATH": site}
    done = subprocess.run([sys.executable, "-m", "papermill", NOTEBOOK.name, "executed.ipynb", "--no-progress-bar",
                           "--log-output", "-k", "python3"], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]  # papermill stops at the first error
    text = done.stdout + done.stderr  # every output, logged
    assert {entry.name for entry in folder.iterdir()} == {"data", "executed.ipynb", NOTEBOOK.name, "outputs"}
    for note in [*notes, "note: the project's package is not installed (a notebook on its own)",
                 "note: no example images here", "test accuracy: "]:
        assert note in text, note
    assert ("torchviz package" in text) == bool(hidden)
    assert "installing" not in text  # only a hosted session installs what is missing


def test_set_up_cell_installs_missing_packages_in_a_hosted_session(tmp_path, mnist_root):
    site = hide(tmp_path, ["torchviz"])  # installed in fact, so pip finds it and downloads nothing
    done = run_first_cells(tmp_path, 2, f"DATA_ROOT={mnist_root}",
                           env={"PYTHONPATH": site, "KAGGLE_KERNEL_RUN_TYPE": "Interactive"})  # Kaggle's marker
    assert done.returncode == 0, done.stderr[-3000:]
    assert "hosted notebook: installing torchviz into this session" in done.stdout + done.stderr
    assert "you may need to restart the kernel" in done.stdout + done.stderr  # what %pip prints after pip ran
