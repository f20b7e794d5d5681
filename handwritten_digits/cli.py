"""The bench scripts' command-line checks: argparse `type=` functions that refuse a value the run could not use,
before anything is trained, with an error (exit status 2) that names the flag, the value and what to give instead;
and what their reports measure with (the machine's name, a GPU's queue)."""

from __future__ import annotations

import argparse
import platform
import re
from collections.abc import Callable
from pathlib import Path

from .checks import device_problem
from .files import folder_problem

DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")


def default_device() -> str:
    """The GPU where it can be used, otherwise the CPU."""
    return "cuda" if device_problem("cuda") is None else "cpu"


def whole_number(lowest: int, why: str = "") -> Callable[[str], int]:
    """A `type=` for a whole number of at least `lowest`; `why` says, where it helps, what the limit is for."""
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lowest:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {lowest}{why}, not {text!r}")
        return value

    return check


positive = whole_number(1)


def device(name: str) -> str:
    """A `type=` for --device: one PyTorch can name, that is here and that the installed PyTorch can drive."""
    if not DEVICE.fullmatch(name):
        raise argparse.ArgumentTypeError(f"must be 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number), not {name!r}")
    problem = device_problem(name)
    if problem:
        raise argparse.ArgumentTypeError(f"{name!r} cannot be used here: {problem}; choose another device "
                                         "(--device cpu always works)")
    return name


def writable_folder(text: str) -> Path:
    """A `type=` for --output-dir: the folder is created if missing and must take a file (the set-up cell's check,
    folder_problem), so that a run never trains for an hour and then fails to save its results."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a folder's path, not ''")
    folder = Path(text).expanduser()
    if problem := folder_problem(folder):
        raise argparse.ArgumentTypeError(f"cannot write in the folder {str(folder)!r}: {problem}; give a folder you "
                                         "can write to (it is created if missing)")
    return folder


def machine(device) -> str:
    """The machine a result was measured on, as the reports name it: the GPU's name, or the CPU's model (Intel and AMD
    round differently in the last digits), its threads, and the PyTorch version."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"CPU {cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def cpu_model() -> str:
    """The processor's model name (with family and model number, which tell Intel's generations apart) where Linux
    says it, otherwise what the platform module knows."""
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
    except OSError:
        fields = {}
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    if "model name" not in fields:
        return platform.processor() or platform.machine()
    return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def synchronize(device) -> None:
    """Wait for the GPU to finish its queued work, so that a timer reads the work's time (a CPU has no queue)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
