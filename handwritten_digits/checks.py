"""What the notebook's set-up cell checks before any data is touched: its parameters, the device, the folders; then
the verified MNIST files (`check_and_fetch`)."""

import os
import re
from math import inf

import torch

from .files import folder_problem
from .mnist_data import check_files, ensure_mnist, fetch_problem, raw_dir

PARAMETERS = ("EPOCHS", "BATCH_SIZE", "LEARNING_RATE", "SEED", "DATA_ROOT", "OUTPUT_DIR", "DEVICE", "QUICK")


def whole(value, lowest: int, highest: float = inf) -> bool:
    """Whether the value is a whole number (not a truth value) from lowest to highest."""
    return isinstance(value, int) and not isinstance(value, bool) and lowest <= value <= highest


def parameter_problems(values: dict) -> list[str]:
    """One line for each value of the parameters cell that the notebook could not use as meant."""
    get = values.get
    rate, device, quick = get("LEARNING_RATE"), get("DEVICE"), get("QUICK")
    rules = {  # name: (acceptable?, what is expected)
        "EPOCHS": (whole(get("EPOCHS"), 1), "a whole number of at least 1"),
        "BATCH_SIZE": (whole(get("BATCH_SIZE"), 1, 60_000), "a whole number from 1 to 60000"),
        "LEARNING_RATE": (isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 < rate <= 10,
                          "a number above 0 and at most 10"),
        "SEED": (whole(get("SEED"), 0, 2**32 - 1), f"a whole number from 0 to {2**32 - 1} (the seeds NumPy accepts)"),
        "DATA_ROOT": (isinstance(get("DATA_ROOT"), str) and get("DATA_ROOT").strip() != "", "a folder's path, as text"),
        "OUTPUT_DIR": (isinstance(get("OUTPUT_DIR"), str) and get("OUTPUT_DIR").strip() != "",
                       "a folder's path, as text"),
        "DEVICE": (isinstance(device, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device) is not None,
                   "'auto', 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number)"),
        "QUICK": (isinstance(quick, bool), "True or False (on the command line QUICK=True or QUICK=False, with a "
                                           "capital letter, which papermill reads as a truth value)"),
    }
    return [f"{name} must be {expected}, not {get(name)!r}" for name, (good, expected) in rules.items() if not good]


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


def device_problems(device: str) -> list[str]:
    """The device parameter's problem, if any: a device named that is not here, or, for "auto", the NVIDIA GPU that
    the notebook would pick (torch.cuda.is_available()) when this PyTorch build cannot drive it."""
    if device != "auto":
        problem = device_problem(device)
        return [f"DEVICE = {device!r} cannot be used here: {problem}; set DEVICE = \"auto\" (the fastest device "
                "here) or \"cpu\""] if problem else []
    if torch.cuda.is_available() and (problem := device_problem("cuda")):
        return [f"DEVICE = 'auto' would train on the NVIDIA GPU, but {problem}; set DEVICE = \"cpu\", or install a "
                "PyTorch build for this GPU"]
    return []


def check_and_fetch(values: dict) -> None:
    """The set-up cell's work, before any data is touched: raise ValueError naming every parameter the notebook cannot
    use, then a device that is not usable here, then every folder that cannot serve; then fetch MNIST if needed."""
    if problems := parameter_problems(values) or device_problems(values["DEVICE"]):  # the device once DEVICE is valid
        raise ValueError("Fix the parameters cell:\n  " + "\n  ".join(problems))
    data_root, output_dir = (os.path.expanduser(values[name]) for name in ("DATA_ROOT", "OUTPUT_DIR"))
    problems = [f"OUTPUT_DIR = {output_dir!r} cannot be written to: {problem}"] if (
        problem := folder_problem(output_dir)) else []
    if (lacking := check_files(raw_dir(data_root))) and (  # DATA_ROOT is only read when it holds verified files
            problem := fetch_problem(raw_dir(data_root), lacking, folder_problem(data_root))):
        problems.append(f"DATA_ROOT = {data_root!r} cannot serve: {problem}")
    if problems:  # found now, not after training, when the network is saved
        raise ValueError("Fix the parameters cell (choose folders you can write to):\n  " + "\n  ".join(problems))
    ensure_mnist(data_root)
