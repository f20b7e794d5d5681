"""The static page's weights file: a trained DigitCNN, batch norm folded into its convolutions, and the notebook's
constants that web/mnist_style.js ports (docs/static-page.md). scripts/export_weights.py is its command line."""

import base64
import inspect
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from . import notebook
from .checkpoints import check_checkpoint, read_checkpoint
from .files import atomic_write

CONVOLUTIONS, LINEAR = ("conv1", "conv2", "conv3"), ("fc1", "fc2")  # DigitCNN's layers that hold weights
PORTED = ("strokes_only", "thickened", "centred_in_field", "mnist_style", "DrawingPad")  # their defaults go to the page
HEADER = ("// DigitCNN's trained weights, batch norm folded into each convolution, and the notebook's constants for\n"
          "// mnist_style: written by scripts/export_weights.py (make run, make assets); do not edit.\n"
          "var DIGIT_CNN = ")


def network_for(state: dict) -> nn.Module:
    """A DigitCNN of the state's own widths, so that a teacher's wider network exports; a block saved without batch
    norm (nn.Identity, as Exercise 4 asks) or with a convolution's bias gets the same. A state that is no DigitCNN's
    gets the default network, which check_checkpoint refuses naming the differences."""
    if not all(f"{name}.weight" in state for name in (*(f"{conv}.0" for conv in CONVOLUTIONS), *LINEAR)):
        return notebook.DigitCNN()
    model = notebook.DigitCNN(widths=[len(state[f"{name}.0.weight"]) for name in CONVOLUTIONS],
                              hidden=len(state["fc1.weight"]))
    for name in CONVOLUTIONS:
        block = getattr(model, name)
        if f"{name}.0.bias" in state:
            block[0] = nn.Conv2d(block[0].in_channels, block[0].out_channels, kernel_size=3, padding=1)
        if f"{name}.1.running_mean" not in state:
            block[1] = nn.Identity()
    return model


def folded_layers(model: nn.Module) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, weight, bias) of each layer, in float64; a convolution and the batch norm after it as one convolution
    (in eval mode batch norm is a fixed affine map per channel: docs/static-page.md)."""
    model, layers = model.double().eval(), []
    for name in (*CONVOLUTIONS, *LINEAR):
        layer = getattr(model, name)
        if name in CONVOLUTIONS:
            layer = fuse_conv_bn_eval(layer[0], layer[1]) if isinstance(layer[1], nn.BatchNorm2d) else layer[0]
        bias = layer.bias if layer.bias is not None else torch.zeros(len(layer.weight), dtype=torch.float64)
        layers.append((name, layer.weight.detach().numpy(), bias.detach().numpy()))
    return layers


def notebook_constants() -> dict:
    """The notebook's constants and default arguments that the page's treatment of a drawing and its text use."""
    defaults = {name: {key: parameter.default for key, parameter in
                       inspect.signature(getattr(notebook, name)).parameters.items()
                       if parameter.default is not inspect.Parameter.empty} for name in PORTED}
    return {"MIN_DIGIT": notebook.MIN_DIGIT, "DOT": notebook.DOT, "MNIST_STROKE": notebook.MNIST_STROKE,
            "LUMA": list(notebook.LUMA), "LABEL_SMOOTHING": notebook.LABEL_SMOOTHING, "defaults": defaults}


def weights_script(layers: list, mean: float, std: float, constants: dict, source: str) -> str:
    """`var DIGIT_CNN = {...};`, its object JSON, one key a line; the numbers float32, little-endian, base64, layer
    after layer (weight, then bias)."""
    blob = b"".join(np.asarray(array, dtype="<f4").tobytes() for _, *pair in layers for array in pair)
    exported = {"format": "DigitCNN, batch norm folded, float32 little-endian base64", "checkpoint": source,
                "layers": [{"name": name, "weight": list(weight.shape), "bias": list(bias.shape)}
                           for name, weight, bias in layers],
                "mean": float(mean), "std": float(std), "constants": constants,
                "weights": base64.b64encode(blob).decode("ascii")}
    lines = [f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)}" for key, value in exported.items()]
    return HEADER + "{\n" + ",\n".join(lines) + "\n};\n"


def read_weights_script(path: Path) -> dict:
    """The object of a weights file, with "arrays": {name: (weight, bias)} as float32; a ValueError naming the file
    when it is missing or damaged."""
    try:
        exported = json.loads(Path(path).read_text(encoding="utf-8").split(HEADER, 1)[1].rstrip().removesuffix(";"))
        numbers, offset, exported["arrays"] = np.frombuffer(base64.b64decode(exported["weights"]), "<f4"), 0, {}
        for layer in exported["layers"]:
            pair = []
            for shape in (layer["weight"], layer["bias"]):
                pair.append(numbers[offset:offset + int(np.prod(shape))].reshape(shape))
                offset += int(np.prod(shape))
            exported["arrays"][layer["name"]] = tuple(pair)
        if list(exported["arrays"]) != [*CONVOLUTIONS, *LINEAR] or offset != len(numbers) or not all(
                key in exported for key in ("mean", "std", "constants")):
            raise ValueError("not DigitCNN's layers and numbers")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"{path} is missing or damaged ({str(error).splitlines()[0] if str(error) else 'empty'}): "
                         "check out the committed file, or write it again (make assets)") from error
    return exported


def network_from_weights(exported: dict) -> nn.Module:
    """The network a weights file describes, in PyTorch (each block a convolution with the folded bias, no batch
    norm), in eval mode, so that tests can hold the page to PyTorch."""
    state = {f"{name}{'.0' if name in CONVOLUTIONS else ''}.{kind}": torch.from_numpy(array.copy())
             for name, pair in exported["arrays"].items() for kind, array in zip(("weight", "bias"), pair, strict=True)}
    model = network_for(state)
    model.load_state_dict(state)
    return model.eval()


def export_weights(checkpoint: Path, target: Path) -> dict:
    """Write the weights file from a checkpoint of the notebook's save_checkpoint, checked as load_checkpoint checks
    one, of the checkpoint's own widths; returns the exported object."""
    saved = read_checkpoint(checkpoint, torch.device("cpu"))
    model = network_for(saved["model_state"])
    check_checkpoint(saved, model, checkpoint)
    model.load_state_dict(saved["model_state"])
    write(target, weights_script(folded_layers(model), saved["mean"], saved["std"], notebook_constants(),
                                 Path(checkpoint).name))
    return read_weights_script(target)


def refresh_constants(target: Path) -> bool:
    """Rewrite the notebook's constants in a weights file, keeping its weights; returns whether anything changed."""
    exported = read_weights_script(target)
    layers = [(name, *pair) for name, pair in exported["arrays"].items()]
    text = weights_script(layers, exported["mean"], exported["std"], notebook_constants(), exported["checkpoint"])
    return text != Path(target).read_text(encoding="utf-8") and write(target, text)


def write(target: Path, text: str) -> bool:
    """Write the text through a temporary file renamed into place (never half a file)."""
    with atomic_write(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return True
