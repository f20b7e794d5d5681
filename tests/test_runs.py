"""End-to-end runs (slow): the notebook given parameters as `make run` gives them, a hosted session, a read-only data
root."""

import subprocess

import pytest
from conftest import NOTEBOOK, ROOT, run_first_cells

pytestmark = pytest.mark.slow  # the slow tier: make test-slow
P100 = """import sys, torch  # a GPU that some hosted notebooks still hand out, under a torch without its kernels
vars(torch.cuda).update(is_available=lambda: True, device_count=lambda: 1, get_arch_list=lambda: ["sm_75", "sm_90"],
                        get_device_capability=lambda device=None: (6, 0),
                        get_device_name=lambda device=None: "Tesla P100-PCIE-16GB")"""


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
    assert "make run failed: ValueError: Fix the parameters cell:\n  EPOCHS must be a whole number" in done.stderr
    for message in ["BATCH_SIZE must be", "SEED must be a whole number from 0 to 4294967295", "QUICK must be True or",
                    "DEVICE must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N'"]:
        assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "device:" not in done.stdout  # stopped at the set-up cell, before the device is chosen
    assert not (tmp_path / "no data" / "MNIST").exists()  # and before MNIST is fetched
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
