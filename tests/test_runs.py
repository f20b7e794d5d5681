"""End-to-end runs, the slow tier: the notebook with parameters as `make run` passes them, `make run` itself when it
is refused, and the notebook on a read-only data folder. The set-up cell's checks themselves are tested in-process in
tests/test_checks.py: here, that the notebook calls them before any data is touched."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from handwritten_digits.export import NOTEBOOK

ROOT = NOTEBOOK.parent


def first_cells(tmp_path: Path, count: int = 4) -> Path:
    """A copy of the notebook with only its first code cells: parameters, set-up, imports, seed and device (and,
    with count=6, the quick-run settings and the loading of MNIST)."""
    notebook = json.loads(NOTEBOOK.read_text())
    notebook["cells"] = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"][:count]
    first = tmp_path / "first-cells.ipynb"
    first.write_text(json.dumps(notebook))
    return first


def run_command_line(tmp_path: Path, *parameters: str, count: int = 4, env: dict | None = None):
    """The notebook's first cells through papermill's command line, which types each `-p NAME VALUE` as `make run`
    hands them over (True and False, whole numbers and decimals become Python values; the rest stays text)."""
    pairs = [word for parameter in parameters for word in ("-p", *parameter.split("=", 1))]
    return subprocess.run([sys.executable, "-m", "papermill", str(first_cells(tmp_path, count)),
                           str(tmp_path / "executed.ipynb"), "--cwd", str(ROOT), "-k", "python3", "--no-progress-bar",
                           "--log-output", *pairs],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


P100 = ("import torch\n"  # a GPU that some hosted notebooks still hand out, under a torch without its kernels
        "torch.cuda.is_available = lambda: True\n"
        "torch.cuda.device_count = lambda: 1\n"
        "torch.cuda.get_device_capability = lambda device=None: (6, 0)\n"
        "torch.cuda.get_device_name = lambda device=None: 'Tesla P100-PCIE-16GB'\n"
        "torch.cuda.get_arch_list = lambda: ['sm_75', 'sm_80', 'sm_90', 'sm_120']\n")


@pytest.mark.slow
@pytest.mark.parametrize(("values", "site", "messages"), [
    (["DEVICE=auto:0", "SEED=4294967296", "QUICK=false", "EPOCHS=2.5", "BATCH_SIZE=0"], None,
     ["DEVICE must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number), not 'auto:0'",
      "SEED must be a whole number from 0 to 4294967295", "QUICK must be True or False",
      "EPOCHS must be a whole number of at least 1, not 2.5", "BATCH_SIZE must be a whole number from 1 to 60000"]),
    (["DEVICE=cuda"], None, ["DEVICE = 'cuda' cannot be used here: there is no NVIDIA GPU here"]),
    ([], P100, ["DEVICE = 'auto' would train on the NVIDIA GPU, but Tesla P100-PCIE-16GB (compute capability 6.0) has "
                "no kernels in this PyTorch build"]),
    (["OUTPUT_DIR={tmp}/a file"], None, ["OUTPUT_DIR = '{tmp}/a file' cannot be written to: it is a file"]),
])
def test_values_the_notebook_cannot_use_are_all_named_at_once_before_any_data_is_touched(tmp_path, values, site,
                                                                                        messages):
    if "DEVICE=cuda" in values and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "a file").write_text("not a folder")
    if site:
        (tmp_path / "sitecustomize.py").write_text(site)
    data_root = tmp_path / "empty data root"
    done = run_command_line(tmp_path, *(value.format(tmp=tmp_path) for value in values), f"DATA_ROOT={data_root}",
                            env={"PYTHONPATH": str(tmp_path)} if site else None)
    text = done.stdout + done.stderr
    assert done.returncode != 0
    assert all(message.format(tmp=tmp_path) in text for message in messages), text[-3000:]
    assert "device:" not in text  # stopped at the set-up cell, before the device is chosen
    assert not (data_root / "MNIST").exists()  # and before MNIST is fetched
    assert (tmp_path / "a file").read_text() == "not a folder"


@pytest.mark.slow
def test_usable_values_pass_a_data_root_under_home_is_expanded_and_a_usable_device_trains(tmp_path, mnist_root):
    home = tmp_path / "home"
    (home / "mnist").mkdir(parents=True)
    (home / "mnist" / "MNIST").symlink_to(mnist_root / "MNIST")
    (tmp_path / "sitecustomize.py").write_text(P100)
    done = run_command_line(tmp_path, "QUICK=True", "SEED=4294967295", "DEVICE=cpu", "DATA_ROOT=~/mnist", count=6,
                            env={"HOME": str(home), "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "device: cpu" in done.stdout + done.stderr
    assert "training images (60000, 28, 28)" in done.stdout + done.stderr
    assert not (ROOT / "~").exists()


@pytest.mark.slow
def test_a_refused_make_run_says_why_in_one_line_and_leaves_the_last_executed_notebook_in_place(tmp_path):
    (tmp_path / NOTEBOOK.name).write_text("the last complete run")
    done = subprocess.run(["make", "run", "EPOCHS=0", f"OUTPUT_DIR={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    assert "make run failed: ValueError: Fix the parameters cell:\n  EPOCHS must be a whole number" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert (tmp_path / NOTEBOOK.name).read_text() == "the last complete run"


@pytest.mark.slow
def test_the_notebook_runs_on_a_read_only_data_root_that_holds_the_verified_files(tmp_path, mnist_root):
    """A real read-only mount (tests/test_checks.py's), as Kaggle's /kaggle/input is: the quick notebook to its end."""
    from test_checks import in_read_only_mount

    read_only = tmp_path / "read-only"
    code = ("import papermill\n"
            f"papermill.execute_notebook({str(NOTEBOOK)!r}, {str(tmp_path / 'executed.ipynb')!r}, "
            f"parameters=dict(QUICK=True, DATA_ROOT={str(read_only)!r}, OUTPUT_DIR={str(tmp_path / 'out')!r}), "
            f"cwd={str(ROOT)!r}, progress_bar=False, kernel_name='python3')\n")
    done = in_read_only_mount(mnist_root, read_only, code)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = (tmp_path / "executed.ipynb").read_text()
    assert f"MNIST files verified in {read_only}/MNIST/raw" in executed
    assert "test accuracy: " in executed  # the last cell ran
