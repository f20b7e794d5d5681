"""The static page's weights file: a trained DigitCNN with batch norm folded into its convolutions, and the notebook's
constants that web/mnist_style.js ports (docs/static-page.md). scripts/export_weights.py is its command line."""

import base64
import inspect
import json
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
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
    """A DigitCNN of the state's own widths, convolution biases and batch norms (nn.Identity where a block has none);
    the default DigitCNN for a state that is no DigitCNN's, which check_checkpoint then refuses naming what differs."""
    if not all(f"{name}.weight" in state for name in (*(f"{conv}.0" for conv in CONVOLUTIONS), *LINEAR)):
        return notebook.DigitCNN()
    model = notebook.DigitCNN([len(state[f"{name}.0.weight"]) for name in CONVOLUTIONS], len(state["fc1.weight"]))
    for name, block in ((name, getattr(model, name)) for name in CONVOLUTIONS):
        if f"{name}.0.bias" in state:
            block[0] = nn.Conv2d(block[0].in_channels, block[0].out_channels, kernel_size=3, padding=1)
        if f"{name}.1.running_mean" not in state:
            block[1] = nn.Identity()
    return model


def folded_layers(model: nn.Module) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, weight, bias) of each layer in float64, each convolution with its batch norm folded in."""
    model, layers = model.double().eval(), []
    for name in (*CONVOLUTIONS, *LINEAR):
        layer = getattr(model, name)
        if name in CONVOLUTIONS:
            layer = fuse_conv_bn_eval(layer[0], layer[1]) if isinstance(layer[1], nn.BatchNorm2d) else layer[0]
        bias = layer.bias if layer.bias is not None else torch.zeros(len(layer.weight), dtype=torch.float64)
        layers.append((name, layer.weight.detach().numpy(), bias.detach().numpy()))
    return layers


def notebook_constants() -> dict:
    """The notebook's constants and the default arguments of the functions that the page ports."""
    defaults = {name: {key: parameter.default for key, parameter in
                       inspect.signature(getattr(notebook, name)).parameters.items()
                       if parameter.default is not inspect.Parameter.empty} for name in PORTED}
    return {"MIN_DIGIT": notebook.MIN_DIGIT, "DOT": notebook.DOT, "MNIST_STROKE": notebook.MNIST_STROKE,
            "LUMA": list(notebook.LUMA), "LABEL_SMOOTHING": notebook.LABEL_SMOOTHING, "defaults": defaults,
            "VIRIDIS": colormaps["viridis"](range(256), bytes=True)[:, :3].tobytes().hex()}  # feature_maps_html's


def read_weights_script(path: Path) -> dict:
    """A weights file's object, with "arrays": {name: (weight, bias)} in float32; a ValueError if missing or damaged."""
    try:
        exported = json.loads(Path(path).read_text(encoding="utf-8").split(HEADER, 1)[1].rstrip().removesuffix(";"))
        shapes = [layer[kind] for layer in exported["layers"] for kind in ("weight", "bias")]
        numbers = np.frombuffer(base64.b64decode(exported["weights"]), "<f4")
        *parts, rest = np.split(numbers, np.cumsum([np.prod(shape, dtype=int) for shape in shapes]))
        arrays = iter(part.reshape(shape) for part, shape in zip(parts, shapes, strict=True))
        exported["arrays"] = {layer["name"]: (next(arrays), next(arrays)) for layer in exported["layers"]}
        missing = {"mean", "std", "constants"} - exported.keys()
        if list(exported["arrays"]) != [*CONVOLUTIONS, *LINEAR] or rest.size or missing:
            raise ValueError("not DigitCNN's layers and numbers")
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        raise ValueError(f"{path} is missing or damaged ({str(error).splitlines()[0] if str(error) else 'empty'}): "
                         "check out the committed file, or write it again (make assets)") from error
    return exported


def export_weights(checkpoint: Path | None, target: Path) -> dict:
    """Write the weights file from a checkpoint, checked as load_checkpoint checks one; with no checkpoint, renew the
    notebook's constants in the file, keeping its weights. Returns the object written."""
    if checkpoint is None:
        old = read_weights_script(target)
        layers = [(name, *pair) for name, pair in old["arrays"].items()]
        mean, std, source = old["mean"], old["std"], old["checkpoint"]
    else:
        saved = read_checkpoint(checkpoint, torch.device("cpu"))
        check_checkpoint(saved, model := network_for(saved["model_state"]), checkpoint)
        model.load_state_dict(saved["model_state"])
        layers, mean, std, source = folded_layers(model), saved["mean"], saved["std"], Path(checkpoint).name
    blob = b"".join(np.asarray(array, dtype="<f4").tobytes() for _, *pair in layers for array in pair)
    exported = {"format": "DigitCNN, batch norm folded, float32 little-endian base64", "checkpoint": source,
                "layers": [{"name": name, "weight": list(weight.shape), "bias": list(bias.shape)}
                           for name, weight, bias in layers],
                "mean": float(mean), "std": float(std), "constants": notebook_constants(),
                "weights": base64.b64encode(blob).decode("ascii")}
    lines = [f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)}" for key, value in exported.items()]
    with atomic_write(target) as temporary:
        temporary.write_text(HEADER + "{\n" + ",\n".join(lines) + "\n};\n", encoding="utf-8")
    return read_weights_script(target)
