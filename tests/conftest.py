"""Test set-up: the notebook runs in quick mode, real MNIST is at hand, and a trained network is read from the committed
weights file instead of being trained for every session."""

import os
from pathlib import Path

import pytest
import torch

from handwritten_digits.weights import CONVOLUTIONS, network_for, read_weights_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "HandWrittenDigitsRecognition.ipynb"
os.environ["MNIST_QUICK"] = "1"  # read by the notebook's parameters cell, in the kernel nbval starts
os.environ.setdefault("MPLBACKEND", "Agg")  # figures without a display, in these tests and their kernels


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The project's data root, holding the real MNIST files (fetched and verified by mnist_data if needed)."""
    from handwritten_digits.mnist_data import ensure_mnist

    ensure_mnist(ROOT / "data", log=lambda _: None)
    return ROOT / "data"


@pytest.fixture(scope="session")
def mnist_data(mnist_root) -> tuple:
    """(training, validation) pairs of 2,000 and 500 real MNIST images, normalised as the notebook does, on the CPU."""
    from torchvision import datasets

    from handwritten_digits import notebook

    mnist = datasets.MNIST(str(mnist_root), train=True)
    images = notebook.to_model_input(mnist.data[:2_500], 0.1307, 0.3081, torch.device("cpu"))
    labels = mnist.targets[:2_500]
    return (images[:2_000], labels[:2_000]), (images[2_000:], labels[2_000:])


def network_from_weights(exported: dict):
    """The network a weights file describes, in PyTorch and eval mode: each block a convolution with the folded bias."""
    state = {f"{name}{'.0' if name in CONVOLUTIONS else ''}.{kind}": torch.from_numpy(array.copy())
             for name, pair in exported["arrays"].items() for kind, array in zip(("weight", "bias"), pair, strict=True)}
    (model := network_for(state)).load_state_dict(state)
    return model.eval()


@pytest.fixture(scope="session")
def committed_network():
    """(DigitCNN, mean, std): the committed run's network, as the static page runs it (assets/digit_cnn_weights.js:
    batch norm folded into the convolutions, which computes what the trained network computes), read in a second."""
    exported = read_weights_script(ROOT / "assets" / "digit_cnn_weights.js")
    return network_from_weights(exported), exported["mean"], exported["std"]


@pytest.fixture(scope="session")
def trained_digit_reader(committed_network):
    """A function image -> (digit, ten probabilities) with a really trained network (the committed run's)."""
    from handwritten_digits import notebook

    model, mean, std = committed_network
    cpu = torch.device("cpu")
    return lambda image: notebook.predict_digit(model, image, mean, std, cpu)


@pytest.fixture
def saved_network(tmp_path, committed_network) -> Path:
    """The committed run's network saved as a checkpoint, as the tools read one (for scripts that take --model)."""
    from handwritten_digits.checkpoints import save_checkpoint

    model, mean, std = committed_network
    path = tmp_path / "digit_cnn.pt"
    save_checkpoint(model, path, mean, std)
    return path
