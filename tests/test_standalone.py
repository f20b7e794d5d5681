"""The notebook end to end, in processes of its own (slow): alone in an empty folder, as a hosted service or a download
runs it; given parameters as `make run` gives them; refused by `make run`; on a read-only data root."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NOTEBOOK, ROOT, in_read_only_mount, run_first_cells

pytestmark = pytest.mark.slow  # the slow tier: make test-slow
P100 = """import sys, torch  # a GPU that some hosted notebooks still hand out, under a torch without its kernels
vars(torch.cuda).update(is_available=lambda: True, device_count=lambda: 1, get_arch_list=lambda: ["sm_75", "sm_90"],
                        get_device_capability=lambda device=None: (6, 0),
                        get_device_name=lambda device=None: "Tesla P100-PCIE-16GB")"""


@pytest.mark.parametrize(("hidden", "path", "notes"), [  # the second PATH: no Graphviz `dot`
    (["torchviz", "ipycanvas"], os.environ["PATH"], ["not installed: torchviz, ipycanvas",
                                                     "it needs the torchviz package (pip install torchviz)\n",
                                                     "canvas needs ipycanvas and ipywidgets"]),
    ([], str(Path(sys.executable).parent), ["all the packages this notebook uses are installed", "it needs Graphviz"]),
])
def test_the_notebook_alone_runs_to_the_end_saying_what_it_goes_without(tmp_path, mnist_root, hidden, path, notes):
    # copied alone into an empty folder (MNIST's files in its data folder, as a first run fetched them), quick mode,
    # with the project's package and others hidden
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
    for note in [*notes, "the project's package is not installed", "no example images here", "test accuracy: "]:
        assert note in text, note
    assert ("torchviz package" in text) == bool(hidden)
    assert "installing" not in text  # only a hosted session installs what is missing


def test_usable_values_pass_home_is_expanded_the_cpu_trains_beside_a_gpu_it_cannot_use_and_kaggle_installs_a_package(
        tmp_path, mnist_root):
    (home := tmp_path / "home" / "mnist").mkdir(parents=True)
    (home / "MNIST").symlink_to(mnist_root / "MNIST")
    # the P100 is not used (DEVICE=cpu); torchviz looks uninstalled, but is installed, so pip downloads nothing
    (tmp_path / "sitecustomize.py").write_text(P100 + "\nsys.modules['torchviz'] = None\n")
    done = run_first_cells(tmp_path, 6, "QUICK=True", "SEED=4294967295", "DEVICE=cpu", "DATA_ROOT=~/mnist",
                           env={"HOME": str(home.parent), "PYTHONPATH": str(tmp_path),
                                "KAGGLE_KERNEL_RUN_TYPE": "Interactive"})  # Kaggle's marker of a hosted session
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("hosted notebook: installing torchviz into this session", "you may need to restart the kernel",
                 "device: cpu", "training images (60000, 28, 28)"):  # the restart note: %pip's, after pip ran
        assert line in done.stdout + done.stderr, line
    assert not (ROOT / "~").exists()


def test_a_refused_make_run_names_every_unusable_value_before_any_data_and_keeps_the_last_executed_notebook(tmp_path):
    (tmp_path / NOTEBOOK.name).write_text("the last complete run")
    done = subprocess.run(["make", "run", "EPOCHS=2.5", "BATCH_SIZE=0", "SEED=4294967296", "QUICK=false",
                           "DEVICE=auto:0", f"DATA_ROOT={tmp_path}/no data", f"OUTPUT_DIR={tmp_path}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "make run failed: ValueError: Fix the parameters cell:\n  EPOCHS must be " in done.stderr, done.stderr
    named = [line.split(" must be ")[0].strip() for line in done.stderr.splitlines() if " must be " in line]
    assert named == ["EPOCHS", "BATCH_SIZE", "SEED", "DEVICE", "QUICK"]  # each once, in the parameters cell's order
    assert "Traceback" not in done.stdout + done.stderr
    assert "device:" not in done.stdout  # stopped at the set-up cell, before the device is chosen
    assert not (tmp_path / "no data" / "MNIST").exists()  # and before MNIST is fetched
    assert (tmp_path / NOTEBOOK.name).read_text() == "the last complete run"


def test_the_notebook_runs_on_a_read_only_data_root_that_holds_the_verified_files(tmp_path, mnist_root):
    read_only = tmp_path / "read-only"  # a real read-only mount, as Kaggle's /kaggle/input is
    code = ("import papermill\n"
            f"papermill.execute_notebook({str(NOTEBOOK)!r}, {str(tmp_path / 'executed.ipynb')!r}, "
            f"parameters=dict(QUICK=True, DATA_ROOT={str(read_only)!r}, OUTPUT_DIR={str(tmp_path / 'out')!r}), "
            f"cwd={str(ROOT)!r}, progress_bar=False, kernel_name='python3')\n")
    assert (done := in_read_only_mount(mnist_root, read_only, code)).returncode == 0, done.stderr[-3000:]
    executed = (tmp_path / "executed.ipynb").read_text()
    assert f"MNIST files verified in {read_only}/MNIST/raw" in executed
    assert "test accuracy: " in executed  # the last cell ran
