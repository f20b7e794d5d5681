"""What the notebook's set-up cell checks before any data is touched: its parameters, the device, the folders; then
the verified MNIST files (`check_and_fetch`)."""

import os
import re

import torch

from .files import folder_problem
from .mnist_data import check_files, ensure_mnist, fetch_problem, raw_dir

FOLDER = (lambda value: isinstance(value, str) and value.strip() != "", "a folder's path, as text")
RULES = {  # each parameter: (acceptable?, what is expected); type(value) is int, as True is an int to isinstance
    "EPOCHS": (lambda value: type(value) is int and value >= 1, "a whole number of at least 1"),
    "BATCH_SIZE": (lambda value: type(value) is int and 1 <= value <= 60_000, "a whole number from 1 to 60000"),
    "LEARNING_RATE": (lambda value: type(value) in (int, float) and 0 < value <= 10, "a number above 0 and at most 10"),
    "SEED": (lambda value: type(value) is int and 0 <= value < 2**32,
             f"a whole number from 0 to {2**32 - 1} (the seeds NumPy accepts)"),
    "DATA_ROOT": FOLDER,
    "OUTPUT_DIR": FOLDER,
    "DEVICE": (lambda value: isinstance(value, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value) is not None,
               "'auto', 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number)"),
    "QUICK": (lambda value: isinstance(value, bool), "True or False (on the command line QUICK=True or QUICK=False, "
              "with a capital letter, which papermill reads as a truth value)"),
}
PARAMETERS = tuple(RULES)


def parameter_problems(values: dict) -> list[str]:
    """One line for each value of the parameters cell that the notebook could not use as meant."""
    return [f"{name} must be {expected}, not {values.get(name)!r}" for name, (good, expected) in RULES.items()
            if not good(values.get(name))]


def device_problem(name: str) -> str | None:
    """Why the device named ("cpu", "cuda", "cuda:1", "mps") cannot be used here, or None when it can."""
    kind, _, index = name.partition(":")
    if kind == "mps" and not torch.backends.mps.is_available():
        return "there is no Apple GPU (MPS) here"
    if kind != "cuda":
        return None
    if not torch.cuda.is_available():
        return "there is no NVIDIA GPU here"
    if (gpu := int(index or 0)) >= torch.cuda.device_count():
        return f"there is no GPU number {index} here"
    major, minor = torch.cuda.get_device_capability(gpu)
    built = [re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", arch) for arch in torch.cuda.get_arch_list()]
    if not any(found and (int(found[2]), int(found[3])) <= (major, minor)  # machine code for its generation, or PTX
               and (found[1] == "compute" or int(found[2]) == major) for found in built):
        return (f"{torch.cuda.get_device_name(gpu)} (compute capability {major}.{minor}) has no kernels in this "
                f"PyTorch build, which has them for {', '.join(torch.cuda.get_arch_list())}")
    return None


def check_and_fetch(values: dict) -> None:
    """Raise ValueError naming every unusable parameter, else the device, else every folder; then fetch MNIST."""
    if problems := parameter_problems(values):
        raise ValueError("Fix the parameters cell:\n  " + "\n  ".join(problems))
    auto = (device := values["DEVICE"]) == "auto"
    if problem := device_problem(device if not auto else "cuda" if torch.cuda.is_available() else "cpu"):
        raise ValueError(f"Fix the parameters cell:\n  DEVICE = {device!r} " + (
            f"would train on the NVIDIA GPU, but {problem}; set DEVICE = 'cpu', or install a PyTorch build for this GPU"
            if auto else f"cannot be used here: {problem}; set DEVICE = 'auto' (the fastest device here) or 'cpu'"))
    data_root, output_dir = (os.path.expanduser(values[name]) for name in ("DATA_ROOT", "OUTPUT_DIR"))
    problems = [f"OUTPUT_DIR = {output_dir!r} cannot be written to: {problem}"] if (
        problem := folder_problem(output_dir)) else []
    # A folder that cannot be written to serves only when it holds the four verified files; one that can is checked
    # by ensure_mnist below, so that the files are hashed once.
    if folder_problem(data_root) and (lacking := check_files(raw_dir(data_root))):
        problems.append(f"DATA_ROOT = {data_root!r} cannot serve: {fetch_problem(data_root, lacking)}")
    if problems:  # found now, not after training, when the network is saved
        raise ValueError("Fix the parameters cell (choose folders you can write to):\n  " + "\n  ".join(problems))
    ensure_mnist(data_root)
