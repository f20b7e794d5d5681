"""Checkpoints for the tools: the notebook's save and load (section 8), hardened.

The notebook saves with `torch.save` of a dict and loads with `torch.load(..., weights_only=True)` and
`load_state_dict`. These versions write the same files and read the same files, and do more: the save goes through a
temporary file unique to its writer (two runs saving at once never clash), reports a full disk as such and refuses to
write what could not be loaded back; the load refuses a folder, an empty or cut-short file, another architecture,
weights that are not finite and normalisation constants that cannot be used, each in a short message naming the file.
"""

from __future__ import annotations

import io
import os
from math import isfinite

import torch
from torch import nn

from .files import atomic_write, first_line
from .recipe import regular_file  # Part II (E) of the notebook defines it, for image files

ARCHITECTURE_KEY = "architecture"


def plain_number(value):
    """A NumPy number or a tensor holding one number as a plain Python number, which torch.load(weights_only=True)
    reads back; anything else as it is."""
    one_tensor = isinstance(value, torch.Tensor) and value.numel() == 1
    numpy_scalar = type(value).__module__ == "numpy" and getattr(value, "shape", None) == ()
    return value.item() if one_tensor or numpy_scalar else value


def shape_problems(state: dict, model: nn.Module) -> list[str]:
    """One line for each weight of the model that the state lacks or holds in another shape, and for each extra."""
    expected = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    found = {key: tuple(value.shape) for key, value in state.items()}
    problems = [f"{key}: missing from the file" for key in expected if key not in found]
    problems += [f"{key}: not in {type(model).__name__}" for key in found if key not in expected]
    return problems + [f"{key}: shape {list(found[key])} in the file, {list(expected[key])} in the model"
                       for key in expected if key in found and found[key] != expected[key]]


def shortened(problems: list[str], shown: int = 3) -> str:
    """The first few problem lines, and how many more there are, so that an error stays a few lines long."""
    lines = problems[:shown]
    if len(problems) > shown:
        lines.append(f"... and {len(problems) - shown} more")
    return "\n  ".join(lines)


def normalisation_problems(checkpoint: dict) -> list[str]:
    """What is wrong with the checkpoint's mean and std, which predict_digit divides by: finite numbers, std > 0."""
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and isfinite(value)

    problems = [f"'{key}' is missing" if key not in checkpoint else f"'{key}' is {checkpoint[key]!r}"
                for key in ("mean", "std") if not number(checkpoint.get(key))]
    if problems:
        return problems
    mean, std = checkpoint["mean"], checkpoint["std"]
    if std <= 0:
        return [f"'std' is {std!r}"]
    if not (0 <= mean <= 1 and std <= 1):  # 0-255 values would turn every input into nonsense
        return [f"'mean' is {mean!r} and 'std' {std!r}, expected on the 0-1 pixel scale (pixels divided by 255: "
                "MNIST's are about 0.13 and 0.31)"]
    return []


def check_checkpoint(checkpoint, model: nn.Module, path) -> None:
    """Raise ValueError naming what is wrong, unless the checkpoint holds finite weights of the model's shapes and
    usable normalisation constants."""
    if not isinstance(checkpoint, dict) or "model_state" not in checkpoint:
        raise ValueError(f"{path} is not a checkpoint saved by this notebook (it has no 'model_state')")
    state = checkpoint["model_state"]
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f"{path} is not a checkpoint saved by this notebook ('model_state' is not a dict of tensors)")
    if problems := shape_problems(state, model):
        raise ValueError(f"{path} holds a different architecture ({checkpoint.get(ARCHITECTURE_KEY, 'unknown')}) "
                         f"than {type(model).__name__}, {len(problems)} weights differ:\n  " + shortened(problems))
    broken = [key for key, value in state.items() if value.is_floating_point() and not torch.isfinite(value).all()]
    if broken:  # a training run that diverged: such weights would predict nonsense
        raise ValueError(f"{path} holds weights that are not finite numbers (NaN or infinity) in: {', '.join(broken)}")
    if negative := [key for key, value in state.items() if key.endswith("running_var") and (value < 0).any()]:
        raise ValueError(f"{path} holds batch-norm variances below zero in: {', '.join(negative)}; the file was "
                         "changed or damaged")
    if problems := normalisation_problems(checkpoint):
        raise ValueError(f"{path} has no usable normalisation constants: {', '.join(problems)} (save_checkpoint "
                         "writes both as finite numbers on the 0-1 scale, the standard deviation above 0)")


def save_checkpoint(model: nn.Module, path: str | os.PathLike, mean: float, std: float) -> None:
    """Save the weights and the normalisation constants, through a temporary file renamed into place."""
    model = getattr(model, "_orig_mod", model)  # a torch.compile'd network: save the network it wraps
    checkpoint = {ARCHITECTURE_KEY: type(model).__name__, "model_state": model.state_dict(),
                  "mean": plain_number(mean), "std": plain_number(std), "classes": [str(digit) for digit in range(10)]}
    check_checkpoint(checkpoint, model, f"not saved, {path} is unchanged: the checkpoint")  # what loading refuses
    torch.save(checkpoint, in_memory := io.BytesIO())  # then written as plain bytes: a full disk is reported as such
    with atomic_write(path) as temporary:
        temporary.write_bytes(in_memory.getvalue())


def load_checkpoint(path: str | os.PathLike, model: nn.Module, device: torch.device) -> dict:
    """Load a checkpoint into the model; refuse anything that is not one, in a message of a few lines."""
    path = regular_file(path)  # not a folder, a pipe or a missing file
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # empty, cut short, not a checkpoint, or a pickle that wants to run code
        raise ValueError(f"{path} cannot be loaded as a checkpoint: {unpickling_reason(error)}") from error
    check_checkpoint(checkpoint, model, path)
    model.load_state_dict(checkpoint["model_state"])
    return checkpoint


def unpickling_reason(error: BaseException) -> str:
    """Why torch.load refused a file, in one line, without PyTorch's advice to load it with weights_only=False,
    which would let an untrusted file run code on this machine."""
    if "weights_only" not in str(error):
        return first_line(error)
    detail = next((line.strip() for line in str(error).splitlines() if line.strip().startswith("Unsupported")), "")
    return ("it holds more than tensors and plain data (a whole pickled model, or objects that could run code while "
            "loading), which is never unpickled here" + (f" ({detail.rstrip('.')})" if detail else "")
            + "; save the network's state_dict, as the notebook does")
