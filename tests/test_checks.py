"""What the set-up cell checks (handwritten_digits.checks), in-process, and a data folder on a real read-only mount."""

import re

import pytest
import torch
from conftest import DEFAULTS, in_read_only_mount

from handwritten_digits import checks


@pytest.mark.parametrize("values", [  # in the parameters cell's order
    {"EPOCHS": 2.5, "BATCH_SIZE": 0, "LEARNING_RATE": True, "SEED": 2**32, "DATA_ROOT": "", "OUTPUT_DIR": None,
     "DEVICE": "auto:0", "QUICK": "false"},
    {"EPOCHS": 0, "BATCH_SIZE": 60_001, "LEARNING_RATE": -1, "SEED": -1, "DATA_ROOT": 3, "OUTPUT_DIR": " ",
     "DEVICE": "tpu", "QUICK": 1},
])
def test_every_value_the_notebook_cannot_use_is_named_at_once_before_the_device_and_the_folders(monkeypatch, values):
    monkeypatch.setattr(checks, "device_problem", lambda name: pytest.fail("device looked at first"))
    monkeypatch.setattr(checks, "folder_problem", lambda folder: pytest.fail("folders looked at first"))
    with pytest.raises(ValueError, match=r"^Fix the parameters cell:\n") as caught:
        checks.check_and_fetch({**DEFAULTS, **values})
    assert [f"  {name} must be ... not {value!r}" for name, value in values.items()] == [
        re.sub(" must be .*, not ", " must be ... not ", line) for line in str(caught.value).splitlines()[1:]]


def test_the_notebooks_own_defaults_and_edge_values_pass():
    edges = {"EPOCHS": 1, "BATCH_SIZE": 60_000, "LEARNING_RATE": 10, "SEED": 2**32 - 1, "DEVICE": "cuda:12"}
    assert checks.parameter_problems(DEFAULTS) == checks.parameter_problems({**DEFAULTS, **edges}) == []


@pytest.mark.parametrize(("gpus", "built", "device", "refusal"), [
    (0, [], "cuda", "DEVICE = 'cuda' cannot be used here: there is no NVIDIA GPU here; set"),
    (1, ["sm_75", "sm_80", "sm_90", "sm_100"], "auto", r"DEVICE = 'auto' would train on the NVIDIA GPU, but "
     r"Tesla P100-PCIE-16GB \(compute capability 6\.0\) has no kernels in this PyTorch build"),
    (1, ["sm_60", "sm_70"], "cuda:1", "DEVICE = 'cuda:1' cannot be used here: there is no GPU number 1 here"),
    (1, ["sm_60", "sm_70"], "cuda", None),  # kernels for its generation
    (1, ["compute_50"], "cuda", None),  # or PTX
])
def test_a_device_that_cannot_train_here_is_refused_naming_why(monkeypatch, gpus, built, device, refusal):
    """A P100 (compute capability 6.0), as some hosted notebooks still hand out, under various torch builds."""
    for name, fake in {"is_available": lambda: gpus > 0, "device_count": lambda: gpus, "get_arch_list": lambda: built,
                       "get_device_capability": lambda device=None: (6, 0),
                       "get_device_name": lambda device=None: "Tesla P100-PCIE-16GB"}.items():
        monkeypatch.setattr(torch.cuda, name, fake)
    if refusal is None:
        assert checks.device_problem(device) is None
    else:
        with pytest.raises(ValueError, match=refusal):
            checks.check_and_fetch({**DEFAULTS, "DEVICE": device})


def test_folders_that_cannot_be_written_are_all_named_before_any_data_is_fetched(tmp_path, monkeypatch):
    (blocker := tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setattr(checks, "ensure_mnist", lambda root: pytest.fail("fetched before refusing"))
    with pytest.raises(ValueError, match="choose folders you can write to") as caught:
        checks.check_and_fetch({**DEFAULTS, "OUTPUT_DIR": str(blocker), "DATA_ROOT": str(blocker / "data")})
    assert f"OUTPUT_DIR = {str(blocker)!r} cannot be written to: it is a file, not a folder" in str(caught.value)
    assert f"DATA_ROOT = {str(blocker / 'data')!r} cannot serve: cannot write MNIST files" in str(caught.value)
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("entry", ["check_and_fetch", "command line"])
def test_a_read_only_data_root_is_used_when_it_holds_the_verified_files_and_refused_naming_what_it_lacks(
        tmp_path, mnist_root, entry):
    """As Kaggle mounts its datasets (/kaggle/input): only read when complete; refused before any fetch when not."""
    read_only, empty = tmp_path / "read-only", tmp_path / "empty"
    (empty / "MNIST" / "raw").mkdir(parents=True)
    (empty / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"not MNIST")
    call = (f"checks.check_and_fetch(dict({DEFAULTS!r}, DATA_ROOT={str(read_only)!r}, OUTPUT_DIR={str(tmp_path)!r}))"
            if entry == "check_and_fetch" else f"mnist_data.main([{str(read_only)!r}])")
    code = ("from handwritten_digits import checks, mnist_data\n"
            f"mnist_data.SOURCES[:] = [('a source', lambda scratch: print('FETCHED'))]\n{call}\n"
            f"open({str(read_only / 'probe')!r}, 'w')\n")
    done = in_read_only_mount(mnist_root, read_only, code)
    assert f"MNIST files verified in {read_only}/MNIST/raw" in done.stdout, done.stderr
    assert done.stderr.strip().endswith(f"Read-only file system: '{read_only / 'probe'}'")  # truly read-only
    done = in_read_only_mount(empty, read_only, code)
    assert (done.returncode != 0, "FETCHED" in done.stdout) == (True, False)
    assert f"cannot write MNIST files under {read_only}/MNIST/raw: Read-only file system" in done.stderr
    assert "train-images-idx3-ubyte (missing)" in done.stderr
    assert "t10k-labels-idx1-ubyte (wrong size (9 bytes, expected 10,008))" in done.stderr
    assert "To place them by hand" in done.stderr
    assert ("Traceback" in done.stderr) == (entry == "check_and_fetch")  # the command line: one error, no traceback
