"""The tools' checkpoints: the notebook's save and load (Part I, section 8), hardened. A save is written whole, and only
if it would load back; a load refuses, in a short message naming the file, anything but a checkpoint of the network."""

import io
import os

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from .files import atomic_write, first_line, regular_file


def check_checkpoint(checkpoint: dict, model: nn.Module, path) -> None:
    """Raise a ValueError naming what is wrong, unless the checkpoint holds finite weights of the model's shapes and
    usable normalisation constants."""
    state, network = checkpoint["model_state"], type(model).__name__
    expected = {key: list(value.shape) for key, value in model.state_dict().items()}
    found = {key: list(value.shape) for key, value in state.items()}
    if problems := [f"{key}: " + ("missing from the file" if key not in found else "not in the network" if key not in
                                  expected else f"{found[key]} in the file, {expected[key]} in the network")
                    for key in {**expected, **found} if found.get(key) != expected.get(key)]:
        saved = checkpoint.get("architecture", "network")
        head = (f"{path} holds a {network} of other shapes than this {network}" if saved == network
                else f"{path} holds a {saved}, not a {network}")
        shown = "; ".join(problems[:3] + ([f"... and {len(problems) - 3} more"] if len(problems) > 3 else []))
        stale = f"; if you changed {network} in the notebook, run `make export`" if saved == network else ""
        raise ValueError(f"{head}, {len(problems)} weights differ ({shown}){stale}")
    broken = [key for key, value in state.items() if (value.is_floating_point() and not torch.isfinite(value).all())
              or (key.endswith("running_var") and (value < 0).any())]
    if broken:  # a training run that diverged, or a damaged file: such weights would predict nonsense
        raise ValueError(f"{path} holds weights that are not finite numbers (NaN or infinity) or variances below "
                         f"zero in: {', '.join(broken)}")
    for key in ("mean", "std"):  # what predict_digit divides by; NaN and infinity fail the range check too
        value = checkpoint.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not (
                0 < value <= 1 if key == "std" else 0 <= value <= 1):
            raise ValueError(f"{path} has no usable normalisation constants: '{key}' is "
                             f"{repr(value) if key in checkpoint else 'missing'} (expected on the 0-1 pixel scale, "
                             "pixels divided by 255, the std above 0: MNIST's are about 0.13 and 0.31)")


def save_checkpoint(model: nn.Module, path: str | os.PathLike, mean: float, std: float) -> None:
    """Save the weights and the normalisation constants, through a temporary file renamed into place."""
    model = getattr(model, "_orig_mod", model)  # torch.compile's wrapper: save the network it wraps
    model = getattr(model, "module", model)  # nn.DataParallel's or DDP's wrapper, likewise
    mean, std = (value.item() if (value.numel() if isinstance(value, torch.Tensor) else getattr(value, "size", 0)) == 1
                 else value for value in (mean, std))  # NumPy numbers and one-number tensors as plain numbers
    checkpoint = {"architecture": type(model).__name__, "model_state": model.state_dict(), "mean": mean, "std": std,
                  "classes": [str(digit) for digit in range(10)]}
    check_checkpoint(checkpoint, model, f"not saved, {path} is unchanged: the checkpoint")  # what loading refuses
    torch.save(checkpoint, in_memory := io.BytesIO())  # then written as plain bytes: a full disk is reported as such
    with atomic_write(path) as temporary:
        temporary.write_bytes(in_memory.getvalue())


def read_checkpoint(path: str | os.PathLike, device: torch.device) -> dict:
    """A checkpoint's dict, read without running any code it may hold, the `module.` prefix of nn.DataParallel's and
    DDP's weights stripped."""
    path = regular_file(path)  # not a folder, a pipe or a missing file
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # empty, cut short, not a checkpoint, or a pickle that wants to run code
        reason = first_line(error) if "weights_only" not in str(error) else (
            "it holds more than tensors and plain data (a whole pickled model, or objects that could run code while "
            "loading), which is never unpickled here; save the network's state_dict, as the notebook does")
        raise ValueError(f"{path} cannot be loaded as a checkpoint: {reason}") from error
    state = checkpoint.get("model_state") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise ValueError(f"{path} is not a checkpoint saved by this notebook (no 'model_state' dict of tensors)")
    consume_prefix_in_state_dict_if_present(state, "module.")
    return checkpoint


def load_checkpoint(path: str | os.PathLike, model: nn.Module, device: torch.device) -> dict:
    """Load a checkpoint into the model, or refuse it in a short message."""
    checkpoint = read_checkpoint(path, device)
    check_checkpoint(checkpoint, model, path)
    model.load_state_dict(checkpoint["model_state"])
    return checkpoint
