"""What the set-up cell checks (handwritten_digits.checks), in-process, and a data folder on a real read-only mount."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from handwritten_digits import checks, mnist_data

CELLS = json.loads((Path(__file__).parents[1] / "HandWrittenDigitsRecognition.ipynb").read_text())["cells"]
exec("".join(next(cell["source"] for cell in CELLS if "parameters" in cell["metadata"].get("tags", []))),
     NOTEBOOK := {})  # runs the notebook's parameters cell
DEFAULTS = {name: NOTEBOOK[name] for name in checks.PARAMETERS}


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


def test_the_notebooks_own_defaults_and_edge_values_pass():
    assert checks.parameter_problems(DEFAULTS) == []
    edges = {"EPOCHS": 1, "BATCH_SIZE": 60_000, "LEARNING_RATE": 10, "SEED": 2**32 - 1, "DEVICE": "cuda:12",
             "QUICK": True}
    assert checks.parameter_problems({**DEFAULTS, **edges}) == []


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


@pytest.mark.parametrize("built", [["sm_60", "sm_70"], ["compute_50"]])  # its generation's code, or PTX
def test_a_gpu_with_kernels_for_its_generation_or_ptx_is_usable(p100, monkeypatch, built):
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: built)
    assert checks.device_problem("cuda") is None
    assert checks.device_problem("cuda:1") == "there is no GPU number 1 here"


def test_folders_that_cannot_be_written_are_all_named_before_any_data_is_fetched(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(checks, "ensure_mnist", lambda root: pytest.fail("fetched before refusing"))
    with pytest.raises(ValueError, match="choose folders you can write to") as caught:
        checks.check_and_fetch({**DEFAULTS, "OUTPUT_DIR": str(blocker), "DATA_ROOT": str(blocker / "data")})
    assert f"OUTPUT_DIR = {str(blocker)!r} cannot be written to: it is a file, not a folder" in str(caught.value)
    assert f"DATA_ROOT = {str(blocker / 'data')!r} cannot serve: cannot write MNIST files" in str(caught.value)
    assert blocker.read_text() == "not a folder"


def test_parameters_are_checked_before_the_device_and_the_folders(monkeypatch):
    monkeypatch.setattr(checks, "device_problems", lambda device: pytest.fail("device looked at first"))
    monkeypatch.setattr(checks, "folder_problem", lambda folder: pytest.fail("folders looked at first"))
    with pytest.raises(ValueError, match=r"Fix the parameters cell:\n  EPOCHS must be .*\n  SEED must be"):
        checks.check_and_fetch({**DEFAULTS, "EPOCHS": 0, "SEED": -1})


def test_a_data_root_under_the_home_folder_is_expanded(tmp_path, monkeypatch, mnist_root, capsys):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "MNIST").symlink_to(mnist_root / "MNIST")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(mnist_data, "SOURCES", [])  # the verified files are not fetched again
    checks.check_and_fetch({**DEFAULTS, "DATA_ROOT": "~/mnist", "OUTPUT_DIR": str(tmp_path / "out")})
    assert f"MNIST files verified in {tmp_path}/mnist/MNIST/raw" in capsys.readouterr().out


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


@pytest.mark.parametrize("entry", ["check_and_fetch", "command line"])
def test_a_read_only_data_root_is_used_when_it_holds_the_verified_files_and_refused_naming_what_it_lacks(
        tmp_path, mnist_root, entry):
    """As Kaggle mounts its datasets (/kaggle/input): only read when complete; refused before any fetch when not."""
    read_only, empty = tmp_path / "read-only", tmp_path / "empty"
    (empty / "MNIST" / "raw").mkdir(parents=True)
    (empty / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"not MNIST")
    code = ("import sys\nfrom handwritten_digits import checks, mnist_data\n"
            "mnist_data.SOURCES[:] = [('a source', lambda scratch: print('FETCHED'))]\n"
            + (f"checks.check_and_fetch(dict({DEFAULTS!r}, DATA_ROOT={str(read_only)!r}, "
               f"OUTPUT_DIR={str(tmp_path / 'out')!r}))\n" if entry == "check_and_fetch" else
               f"mnist_data.main([{str(read_only)!r}])\n") + f"open({str(read_only / 'probe')!r}, 'w')\n")
    done = in_read_only_mount(mnist_root, read_only, code)
    assert f"MNIST files verified in {read_only}/MNIST/raw" in done.stdout, done.stderr
    assert done.stderr.strip().endswith(f"Read-only file system: '{read_only / 'probe'}'")  # truly read-only
    done = in_read_only_mount(empty, read_only, code)
    assert done.returncode != 0
    assert "FETCHED" not in done.stdout
    assert f"cannot write MNIST files under {read_only}/MNIST/raw: Read-only file system" in done.stderr
    assert "train-images-idx3-ubyte (missing)" in done.stderr
    assert "t10k-labels-idx1-ubyte (wrong size (9 bytes, expected 10,008))" in done.stderr
    assert "To place them by hand" in done.stderr


def test_a_read_only_data_root_in_kaggles_unpacked_layout_gets_the_command_that_copies_it(tmp_path, mnist_root):
    dataset, read_only = tmp_path / "dataset", tmp_path / "read-only"
    for name in mnist_data.MNIST_FILES:
        (dataset / "MNIST" / "raw" / name).mkdir(parents=True)
        (dataset / "MNIST" / "raw" / name / name).symlink_to(mnist_root / "MNIST" / "raw" / name)
    code = ("from handwritten_digits import checks\n"
            f"checks.check_and_fetch(dict({DEFAULTS!r}, DATA_ROOT={str(read_only)!r}, "
            f"OUTPUT_DIR={str(tmp_path / 'out')!r}))\n")
    done = in_read_only_mount(dataset, read_only, code)
    assert done.returncode != 0
    assert f"DATA_ROOT = {str(read_only)!r} cannot serve: " in done.stderr
    assert f"cp {read_only}/MNIST/raw/*/*-ubyte data/MNIST/raw/ then set DATA_ROOT=data" in done.stderr
