"""End-to-end runs (slow): the notebook given parameters as `make run` gives them, `make run`, a read-only data root."""

import subprocess

import pytest
import torch
from conftest import NOTEBOOK, ROOT, run_first_cells

pytestmark = pytest.mark.slow  # the slow tier: make test-slow
P100 = """import torch  # a GPU that some hosted notebooks still hand out, under a torch without its kernels
vars(torch.cuda).update(is_available=lambda: True, device_count=lambda: 1, get_arch_list=lambda: ["sm_75", "sm_90"],
                        get_device_capability=lambda device=None: (6, 0),
                        get_device_name=lambda device=None: "Tesla P100-PCIE-16GB")"""


@pytest.mark.parametrize(("values", "site", "messages"), [
    (["DEVICE=auto:0", "SEED=4294967296", "QUICK=false", "EPOCHS=2.5", "BATCH_SIZE=0"], None,
     ["DEVICE must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'", "SEED must be a whole number from 0 to 4294967295",
      "QUICK must be True or False", "EPOCHS must be a whole number of at least 1, not 2.5", "BATCH_SIZE must be"]),
    (["DEVICE=cuda"], None, ["DEVICE = 'cuda' cannot be used here: there is no NVIDIA GPU here"]),
    ([], P100, ["Tesla P100-PCIE-16GB (compute capability 6.0) has no kernels in this PyTorch build"]),
    (["OUTPUT_DIR={tmp}/a file"], None, ["OUTPUT_DIR = '{tmp}/a file' cannot be written to: it is a file"]),
])
def test_values_the_notebook_cannot_use_are_all_named_at_once_before_any_data(tmp_path, values, site, messages):
    if "DEVICE=cuda" in values and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    (tmp_path / "a file").write_text("not a folder")
    (tmp_path / "sitecustomize.py").write_text(site or "")
    done = run_first_cells(tmp_path, 4, *(value.format(tmp=tmp_path) for value in [*values, "DATA_ROOT={tmp}/no data"]),
                           env={"PYTHONPATH": str(tmp_path)})
    text = done.stdout + done.stderr
    assert done.returncode != 0
    assert all(message.format(tmp=tmp_path) in text for message in messages), text[-3000:]
    assert "device:" not in text  # stopped at the set-up cell, before the device is chosen
    assert not (tmp_path / "no data" / "MNIST").exists()  # and before MNIST is fetched
    assert (tmp_path / "a file").read_text() == "not a folder"


def test_usable_values_pass_a_data_root_under_home_is_expanded_and_a_usable_device_trains(tmp_path, mnist_root):
    (home := tmp_path / "home" / "mnist").mkdir(parents=True)
    (home / "MNIST").symlink_to(mnist_root / "MNIST")
    (tmp_path / "sitecustomize.py").write_text(P100)  # the P100 is not used: DEVICE=cpu
    done = run_first_cells(tmp_path, 6, "QUICK=True", "SEED=4294967295", "DEVICE=cpu", "DATA_ROOT=~/mnist",
                           env={"HOME": str(home.parent), "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(line in done.stdout + done.stderr for line in ("device: cpu", "training images (60000, 28, 28)"))
    assert not (ROOT / "~").exists()


def test_a_refused_make_run_says_why_in_one_line_and_leaves_the_last_executed_notebook_in_place(tmp_path):
    (tmp_path / NOTEBOOK.name).write_text("the last complete run")
    done = subprocess.run(["make", "run", "EPOCHS=0", f"OUTPUT_DIR={tmp_path}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    assert "make run failed: ValueError: Fix the parameters cell:\n  EPOCHS must be a whole number" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert (tmp_path / NOTEBOOK.name).read_text() == "the last complete run"


def test_the_notebook_runs_on_a_read_only_data_root_that_holds_the_verified_files(tmp_path, mnist_root):
    from test_checks import in_read_only_mount  # a real read-only mount, as Kaggle's /kaggle/input is

    read_only = tmp_path / "read-only"
    code = ("import papermill\n"
            f"papermill.execute_notebook({str(NOTEBOOK)!r}, {str(tmp_path / 'executed.ipynb')!r}, "
            f"parameters=dict(QUICK=True, DATA_ROOT={str(read_only)!r}, OUTPUT_DIR={str(tmp_path / 'out')!r}), "
            f"cwd={str(ROOT)!r}, progress_bar=False, kernel_name='python3')\n")
    assert (done := in_read_only_mount(mnist_root, read_only, code)).returncode == 0, done.stderr[-3000:]
    executed = (tmp_path / "executed.ipynb").read_text()
    assert f"MNIST files verified in {read_only}/MNIST/raw" in executed
    assert "test accuracy: " in executed  # the last cell ran
