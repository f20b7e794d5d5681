"""The notebook on its own, as a hosted service or a downloaded copy runs it: no repository beside it.

Each run copies only the notebook into an empty folder (plus the MNIST files in its data folder, as a
first run would have fetched them) and executes it headless in quick mode. Packages are made
unimportable for the kernel by a sitecustomize module that hides them from Python's path finder, so
they look exactly as if they were not installed.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_data import MNIST_FILES
from notebook_recipe import NOTEBOOK

HIDE_MODULES = '''"""Test helper: hide some installed packages, as if they were not installed."""
import importlib.machinery

HIDDEN = {hidden!r}
_find_spec = importlib.machinery.PathFinder.find_spec.__func__


def _find_spec_unless_hidden(cls, name, path=None, target=None):
    if name.partition(".")[0] in HIDDEN:
        return None
    return _find_spec(cls, name, path, target)


importlib.machinery.PathFinder.find_spec = classmethod(_find_spec_unless_hidden)
'''


def run_alone(tmp_path: Path, mnist_root: Path, hidden: set[str] = frozenset(), path_env: str | None = None) -> str:
    """Run a lone copy of the notebook in quick mode; return the text of all its outputs."""
    folder = tmp_path / "alone"
    raw = folder / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copyfile(mnist_root / "MNIST" / "raw" / name, raw / name)
    shutil.copyfile(NOTEBOOK, folder / NOTEBOOK.name)
    env = {**os.environ, "MNIST_QUICK": "1", "MNIST_PROGRESS": "0", "PYTHONPATH": ""}
    if hidden:
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(HIDE_MODULES.format(hidden=sorted(hidden)))
        env["PYTHONPATH"] = str(site)
    if path_env is not None:
        env["PATH"] = path_env
    done = subprocess.run([sys.executable, "-m", "papermill", NOTEBOOK.name, "executed.ipynb", "--cwd", str(folder),
                           "--no-progress-bar", "-k", "python3"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    cells = json.loads((folder / "executed.ipynb").read_text())["cells"]
    outputs = [output for cell in cells if cell["cell_type"] == "code" for output in cell["outputs"]]
    assert not [output for output in outputs if output["output_type"] == "error"]
    assert {path.name for path in folder.iterdir()} == {"data", "executed.ipynb", NOTEBOOK.name, "outputs"}
    return "\n".join("".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
                     for output in outputs)


def test_notebook_alone_without_torchviz_and_ipycanvas_runs_to_the_end(tmp_path, mnist_root):
    if not shutil.which("dot"):
        pytest.skip("this run checks the notebook with Graphviz's dot present, as hosted notebooks have it")
    text = run_alone(tmp_path, mnist_root, hidden={"torchviz", "ipycanvas"})
    assert "note: optional packages not installed: torchviz, ipycanvas; the notebook goes on without them" in text
    assert "note: mnist_data.py is not beside the notebook" in text
    assert "note: the torchviz package is not installed, so the graph is not drawn here (pip install torchviz)" in text
    assert "Graphviz's `dot` program is not installed" not in text
    assert "note: no example images here" in text
    assert "note: the drawing canvas needs ipycanvas and ipywidgets, which are not installed" in text
    assert "test accuracy: " in text  # the last cell ran


def test_notebook_alone_without_graphviz_dot_runs_to_the_end(tmp_path, mnist_root):
    python_only = str(Path(sys.executable).parent)  # the environment's bin folder: python, no `dot`
    text = run_alone(tmp_path, mnist_root, path_env=python_only)
    assert "all the packages this notebook uses are installed" in text
    assert "note: Graphviz's `dot` program is not installed, so the graph is not drawn here" in text
    assert "torchviz package is not installed" not in text
    assert "pre-rendered graph" not in text  # assets/ is not there to show
    assert "test accuracy: " in text


def test_hidden_package_looks_uninstalled(tmp_path):
    """The helper above hides a package from import and from importlib.util.find_spec alike."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_MODULES.format(hidden=["torchviz"]))
    probe = ("import importlib.util\nassert importlib.util.find_spec('torchviz') is None\n"
             "try:\n    import torchviz\nexcept ModuleNotFoundError as error:\n    print(error)\n")
    done = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "PYTHONPATH": str(site)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "No module named 'torchviz'"


def test_set_up_cell_installs_missing_packages_only_in_a_hosted_session(tmp_path, mnist_root):
    """The notebook's parameters and set-up cells, alone, with torchviz hidden: Kaggle's marker makes it call pip."""
    notebook = json.loads(NOTEBOOK.read_text())
    notebook["cells"] = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"][:2]
    assert "setup" in notebook["cells"][1]["metadata"]["tags"]
    single = tmp_path / "set-up.ipynb"
    single.write_text(json.dumps(notebook))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(HIDE_MODULES.format(hidden=["torchviz"]))
    texts = {}
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
