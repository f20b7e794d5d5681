"""What the set-up cell checks (handwritten_digits.checks), in-process: every parameter the notebook cannot use is named
at once, a device that is not usable here is refused, and a data folder is used read-only when it holds the verified
files and refused, before any download, when it lacks them and cannot be written."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from handwritten_digits import checks, mnist_data

DEFAULTS = {"EPOCHS": 15, "BATCH_SIZE": 128, "LEARNING_RATE": 0.15, "SEED": 0, "DATA_ROOT": "data",
            "OUTPUT_DIR": "outputs", "DEVICE": "auto", "QUICK": False}


@pytest.mark.parametrize(("values", "messages"), [
    ({"DEVICE": "auto:0", "SEED": 4294967296, "QUICK": "false", "EPOCHS": 2.5},
     ["DEVICE must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number), not 'auto:0'",
      "SEED must be a whole number from 0 to 4294967295 (the seeds NumPy accepts), not 4294967296",
      "QUICK must be True or False (on the command line QUICK=True or QUICK=False, with a capital letter, which "
      "papermill reads as a truth value), not 'false'",
      "EPOCHS must be a whole number of at least 1, not 2.5"]),
    ({"DEVICE": "cuda:x", "QUICK": "yes", "LEARNING_RATE": -1, "DATA_ROOT": ""},
     ["not 'cuda:x'", "reads as a truth value), not 'yes'",
      "LEARNING_RATE must be a number above 0 and at most 10, not -1",
      "DATA_ROOT must be a folder's path, as text, not ''"]),
    ({"EPOCHS": 0}, ["EPOCHS must be a whole number of at least 1, not 0"]),
    ({"BATCH_SIZE": 0}, ["BATCH_SIZE must be a whole number from 1 to 60000, not 0"]),
    ({"LEARNING_RATE": "fast"}, ["LEARNING_RATE must be a number above 0 and at most 10, not 'fast'"]),
    ({"LEARNING_RATE": True}, ["LEARNING_RATE must be a number above 0 and at most 10, not True"]),
    ({"DEVICE": "tpu"}, ["DEVICE must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number), not 'tpu'"]),
    ({"OUTPUT_DIR": None}, ["OUTPUT_DIR must be a folder's path, as text, not None"]),
])
def test_every_value_the_notebook_cannot_use_is_named_at_once(values, messages):
    problems = checks.parameter_problems({**DEFAULTS, **values})
    assert len(problems) == len(values)
    for message in messages:
        assert any(message in problem for problem in problems), (message, problems)


def test_the_notebooks_defaults_and_edge_values_pass():
    assert checks.parameter_problems(DEFAULTS) == []
    edges = {"EPOCHS": 1, "BATCH_SIZE": 60_000, "LEARNING_RATE": 10, "SEED": 2**32 - 1, "DEVICE": "cuda:12",
             "QUICK": True}
    assert checks.parameter_problems({**DEFAULTS, **edges}) == []


def test_the_defaults_checked_are_the_notebooks_own():
    from handwritten_digits import recipe

    assert {name: getattr(recipe, name) for name in checks.PARAMETERS} == DEFAULTS


def test_a_device_named_that_is_not_here_is_refused_saying_what_to_set():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert checks.device_problems("cuda") == [
        "DEVICE = 'cuda' cannot be used here: there is no NVIDIA GPU here; set DEVICE = \"auto\" (the fastest device "
        "here) or \"cpu\""]
    assert checks.device_problems("cpu") == []
    assert checks.device_problems("auto") == []


@pytest.fixture
def p100(monkeypatch):
    """A P100 (compute capability 6.0), as some hosted notebooks still hand out, under a torch without its kernels."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (6, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla P100-PCIE-16GB")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100"])


def test_a_gpu_this_torch_build_cannot_drive_is_named_before_auto_would_pick_it(p100):
    """The notebook's device line takes the GPU when torch.cuda.is_available(): the set-up cell refuses first."""
    [problem] = checks.device_problems("auto")
    assert problem.startswith("DEVICE = 'auto' would train on the NVIDIA GPU, but Tesla P100-PCIE-16GB (compute "
                              "capability 6.0) has no kernels in this PyTorch build")
    assert problem.endswith("set DEVICE = \"cpu\", or install a PyTorch build for this GPU")
    assert checks.device_problems("cpu") == []


def test_a_gpu_with_kernels_for_its_generation_or_ptx_is_usable(p100, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_60", "sm_70"])
    assert checks.device_problem("cuda") is None
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["compute_50"])  # PTX, compiled for the GPU at load
    assert checks.device_problem("cuda") is None
    assert checks.device_problem("cuda:1") == "there is no GPU number 1 here"


def test_an_output_dir_that_cannot_be_written_is_refused_before_any_data_is_fetched(tmp_path, monkeypatch):
    blocker = tmp_path / "outputs"
    blocker.write_text("not a folder")
    data_root = tmp_path / "empty data root"
    monkeypatch.setattr(checks, "ensure_mnist", lambda root: pytest.fail("fetched before refusing"))
    with pytest.raises(ValueError, match=rf"OUTPUT_DIR = {str(blocker)!r} cannot be written to: it is a file, not a "
                                         "folder"):
        checks.check_and_fetch({**DEFAULTS, "OUTPUT_DIR": str(blocker), "DATA_ROOT": str(data_root)})
    assert blocker.read_text() == "not a folder"


def test_parameters_are_checked_before_the_device_and_the_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "folder_problems", lambda values: pytest.fail("folders looked at first"))
    with pytest.raises(ValueError, match=r"Fix the parameters cell:\n  EPOCHS must be .*\n  SEED must be"):
        checks.check_and_fetch({**DEFAULTS, "EPOCHS": 0, "SEED": -1})


def test_a_data_root_under_the_home_folder_is_expanded(tmp_path, monkeypatch, mnist_root):
    home = tmp_path / "home"
    (home / "mnist").mkdir(parents=True)
    (home / "mnist" / "MNIST").symlink_to(mnist_root / "MNIST")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(checks, "ensure_mnist", lambda root: pytest.fail("the verified files were fetched again"))
    checks.check_and_fetch({**DEFAULTS, "DATA_ROOT": "~/mnist", "OUTPUT_DIR": str(tmp_path / "out")})
    assert not Path("~").exists()


# --- a real read-only file system: a bind mount, read-only, in a mount namespace of the test's own -----------------


def in_read_only_mount(source: Path, mount_point: Path, code: str) -> subprocess.CompletedProcess:
    """Run Python `code` in a mount namespace of its own where mount_point is `source`, bind-mounted read-only: a real
    read-only file system (root could write through mere permissions), gone when the process ends."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is missing")
    mount_point.mkdir(parents=True, exist_ok=True)
    script = (f'mount --bind "{source}" "{mount_point}" && mount -o remount,ro,bind "{mount_point}" && '
              f'exec "{sys.executable}" -c "$0"')
    done = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", script, code],
                          capture_output=True, text=True, timeout=120)
    refused = re.search(r"^(unshare|mount): .*(not permitted|[Pp]ermission denied)", done.stderr, flags=re.M)
    if refused:  # a user namespace or a mount that this machine does not allow
        if os.environ.get("CI") and os.geteuid() == 0:  # as root, as .ci/run runs, it must work
            pytest.fail(f"CI must test a read-only mount: {refused[0]}")
        pytest.skip(f"this machine does not let a test mount: {refused[0]}")
    return done


def test_a_read_only_data_root_holding_the_verified_files_is_used(tmp_path, mnist_root):
    """As Kaggle mounts its datasets (/kaggle/input): nothing is written, nothing refused."""
    read_only = tmp_path / "read-only"
    code = ("from handwritten_digits import checks\n"
            f"values = dict({DEFAULTS!r}, DATA_ROOT={str(read_only)!r}, OUTPUT_DIR={str(tmp_path / 'out')!r})\n"
            "checks.check_and_fetch(values)\n"
            f"open({str(read_only / 'probe')!r}, 'w')\n")
    done = in_read_only_mount(mnist_root, read_only, code)
    assert f"MNIST files verified in {read_only}/MNIST/raw" in done.stdout, done.stderr
    assert done.stderr.strip().endswith(f"OSError: [Errno 30] Read-only file system: '{read_only / 'probe'}'")


def test_a_read_only_data_root_lacking_the_files_is_refused_naming_them_before_any_download(tmp_path):
    empty, read_only = tmp_path / "empty", tmp_path / "read-only"
    (empty / "MNIST" / "raw").mkdir(parents=True)
    (empty / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"not MNIST")
    code = ("from handwritten_digits import checks, mnist_data\n"
            "mnist_data.SOURCES[:] = [('a source', lambda scratch: print('DOWNLOADED'))]\n"
            f"checks.check_and_fetch(dict({DEFAULTS!r}, DATA_ROOT={str(read_only)!r}, "
            f"OUTPUT_DIR={str(tmp_path / 'out')!r}))\n")
    done = in_read_only_mount(empty, read_only, code)
    assert done.returncode != 0
    assert "DOWNLOADED" not in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert f"DATA_ROOT = {str(read_only)!r} cannot be written to: Read-only file system; MNIST cannot be " in last
    assert "train-images-idx3-ubyte (missing)" in last
    assert "t10k-labels-idx1-ubyte (wrong size (9 bytes, expected 10,008))" in last


def test_a_read_only_data_root_in_kaggles_unpacked_layout_gets_that_layouts_advice(tmp_path, mnist_root):
    """Kaggle's MNIST datasets unpack each file into a folder of its own name, which torchvision cannot read."""
    dataset, read_only = tmp_path / "dataset", tmp_path / "read-only"
    for name in mnist_data.MNIST_FILES:
        (dataset / "MNIST" / "raw" / name).mkdir(parents=True)
        (dataset / "MNIST" / "raw" / name / name).symlink_to(mnist_root / "MNIST" / "raw" / name)
    code = ("from handwritten_digits import checks\n"
            f"checks.check_and_fetch(dict({DEFAULTS!r}, DATA_ROOT={str(read_only)!r}, "
            f"OUTPUT_DIR={str(tmp_path / 'out')!r}))\n")
    done = in_read_only_mount(dataset, read_only, code)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert f"DATA_ROOT = {str(read_only)!r} cannot be written to: Read-only file system; " in last
    assert "in Kaggle's unpacked layout" in last
    assert "then set DATA_ROOT to data" in last


def test_the_command_line_fetch_uses_a_read_only_folder_with_the_files_and_names_what_another_lacks(tmp_path,
                                                                                                  mnist_root):
    read_only = tmp_path / "read-only"
    cli = "import sys\nfrom handwritten_digits.mnist_data import main\nsys.argv[1:] = [{!r}]\nmain()\n"
    done = in_read_only_mount(mnist_root, read_only, cli.format(str(read_only)))
    assert done.returncode == 0, done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = in_read_only_mount(empty, read_only, cli.format(str(read_only)))
    assert done.returncode == 1
    message = done.stderr.strip()
    assert message.startswith(f"error: cannot write MNIST files under {read_only}/MNIST/raw: Read-only file system, "
                              "and it lacks train-images-idx3-ubyte (missing),")
    assert "a read-only folder that holds them all is used as it is" in message
    assert not mnist_data.fetch_lock(read_only / "MNIST" / "raw").is_locked
