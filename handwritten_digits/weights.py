"""The static page's weights file: DigitCNN with batch norm folded into its convolutions, and the notebook's constants
that web/mnist_style.js ports (docs/static-page.md). scripts/export_weights.py is its command line."""

from __future__ import annotations

import base64
import inspect
import json
from pathlib import Path

import numpy as np

from . import recipe
from .checkpoints import load_checkpoint
from .files import atomic_write

CONVOLUTIONS = ("conv1", "conv2", "conv3")  # DigitCNN's blocks: Conv2d (no bias), BatchNorm2d, ReLU, MaxPool2d
LINEAR = ("fc1", "fc2")
# The defaults of the notebook's functions and class that web/*.js port, read from their signatures.
PORTED = ("downsized", "strokes_only", "thickened", "centred_in_field", "mnist_style", "DrawingPad")
HEADER = ("// DigitCNN's trained weights, batch norm folded into each convolution, and the notebook's constants for\n"
          "// mnist_style: written by scripts/export_weights.py (make run, make assets); do not edit.\n"
          "var DIGIT_CNN = ")


def fold_batch_norm(conv_weight: np.ndarray, gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray,
                    running_var: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """A bias-free convolution followed by batch norm in eval mode, as one convolution with a bias (in float64).

    In eval mode batch norm is a fixed affine map per channel, gamma * (x - mean) / sqrt(var + eps) + beta, and x is
    the convolution's output, linear in its weights: scaling the weights by gamma / sqrt(var + eps) and adding
    beta - mean * gamma / sqrt(var + eps) gives the same output with one layer less."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(running_var, np.float64) + eps)
    weight = np.asarray(conv_weight, np.float64) * scale[:, None, None, None]
    bias = np.asarray(beta, np.float64) - np.asarray(running_mean, np.float64) * scale
    return weight, bias


def folded_layers(model) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, weight, bias) of every layer of a DigitCNN, batch norm folded into the convolutions."""
    layers = []
    for name in CONVOLUTIONS:
        conv, norm = getattr(model, name)[0], getattr(model, name)[1]
        weight, bias = fold_batch_norm(*(tensor.detach().double().numpy() for tensor in (
            conv.weight, norm.weight, norm.bias, norm.running_mean, norm.running_var)), norm.eps)
        layers.append((name, weight, bias))
    for name in LINEAR:
        layer = getattr(model, name)
        layers.append((name, layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()))
    return layers


def notebook_constants() -> dict:
    """The constants of the notebook that the page's preprocessing and text use, from its recipe cells."""
    defaults = {name: {parameter.name: parameter.default
                       for parameter in inspect.signature(getattr(recipe, name)).parameters.values()
                       if parameter.default is not inspect.Parameter.empty}
                for name in PORTED}
    return {"PAPER_CONTRAST": recipe.PAPER_CONTRAST, "MIN_DIGIT": recipe.MIN_DIGIT, "DOT": recipe.DOT,
            "PHOTO_SIZE": recipe.PHOTO_SIZE, "MNIST_STROKE": recipe.MNIST_STROKE, "LUMA": list(recipe.LUMA),
            "LABEL_SMOOTHING": recipe.LABEL_SMOOTHING, "defaults": defaults}


def weights_script(layers: list, mean: float, std: float, constants: dict, source: str) -> str:
    """The weights file's text: one JavaScript statement, `var DIGIT_CNN = {...};`, whose object is JSON, one key a
    line. The numbers are float32, little-endian, base64-encoded, layer after layer (weight, then bias), in the order
    of `layers`."""
    blob = b"".join(np.ascontiguousarray(array, dtype="<f4").tobytes() for _, weight, bias in layers
                    for array in (weight, bias))
    exported = {
        "format": "DigitCNN, batch norm folded, float32 little-endian base64", "checkpoint": source,
        "layers": [{"name": name, "weight": list(weight.shape), "bias": list(bias.shape)}
                   for name, weight, bias in layers],
        "mean": float(mean), "std": float(std), "constants": constants,
        "weights": base64.b64encode(blob).decode("ascii"),
    }
    lines = [f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)}" for key, value in exported.items()]
    return HEADER + "{\n" + ",\n".join(lines) + "\n};\n"


def read_weights_script(path: Path) -> dict:
    """The object of a weights file written by weights_script, with "arrays": {name: (weight, bias)} as float32."""
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("//") or "var DIGIT_CNN = " not in text or not text.rstrip().endswith(";"):
        raise ValueError(f"{path} is not a weights file written by scripts/export_weights.py")
    exported = json.loads(text.split("var DIGIT_CNN = ", 1)[1].rstrip().removesuffix(";"))
    missing = [key for key in ("layers", "mean", "std", "constants", "weights") if key not in exported]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: the file is damaged")
    if [layer["name"] for layer in exported["layers"]] != [*CONVOLUTIONS, *LINEAR]:
        raise ValueError(f"{path} holds other layers than DigitCNN's {', '.join((*CONVOLUTIONS, *LINEAR))}")
    numbers, offset, arrays = np.frombuffer(base64.b64decode(exported["weights"]), dtype="<f4"), 0, {}
    for layer in exported["layers"]:
        pair = []
        for shape in (layer["weight"], layer["bias"]):
            size = int(np.prod(shape))
            pair.append(numbers[offset:offset + size].reshape(shape))
            offset += size
        arrays[layer["name"]] = tuple(pair)
    if offset != len(numbers):
        raise ValueError(f"{path} holds {len(numbers)} numbers, its layers {offset}: the file is damaged")
    return {**exported, "arrays": arrays}


def network_from_weights(exported: dict):
    """A DigitCNN in eval mode that computes what the exported file describes: the folded weights in its convolutions,
    each batch norm an identity plus the folded bias (mean 0, variance 1, eps 0), so PyTorch can check the page."""
    import torch

    model = recipe.DigitCNN()
    with torch.no_grad():
        for name in CONVOLUTIONS:
            weight, bias = exported["arrays"][name]
            conv, norm = getattr(model, name)[0], getattr(model, name)[1]
            conv.weight.copy_(torch.from_numpy(weight.copy()))
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(bias.copy()))
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0)
            norm.eps = 0.0
        for name in LINEAR:
            weight, bias = exported["arrays"][name]
            getattr(model, name).weight.copy_(torch.from_numpy(weight.copy()))
            getattr(model, name).bias.copy_(torch.from_numpy(bias.copy()))
    return model.eval()


def export_weights(checkpoint: Path, target: Path) -> dict:
    """Load a checkpoint written by the notebook's save_checkpoint (checked as load_checkpoint checks it), fold its
    batch norms and write the weights file; returns the exported object."""
    import torch

    model = recipe.DigitCNN()
    saved = load_checkpoint(checkpoint, model, torch.device("cpu"))
    text = weights_script(folded_layers(model), saved["mean"], saved["std"], notebook_constants(),
                          Path(checkpoint).name)
    with atomic_write(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return read_weights_script(target)


def refresh_constants(target: Path) -> bool:
    """Rewrite the notebook's constants in an existing weights file, keeping its weights (no checkpoint needed);
    returns whether anything changed."""
    old_text = Path(target).read_text(encoding="utf-8")
    exported = read_weights_script(target)
    layers = [(layer["name"], *exported["arrays"][layer["name"]]) for layer in exported["layers"]]
    text = weights_script(layers, exported["mean"], exported["std"], notebook_constants(), exported["checkpoint"])
    if text == old_text:
        return False
    with atomic_write(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return True
