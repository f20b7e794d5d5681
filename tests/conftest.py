"""Test set-up: the notebook runs in quick mode, the project root is importable, and real MNIST is at hand."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["MNIST_QUICK"] = "1"  # read by the notebook's parameters cell, in the kernel nbval starts
os.environ.setdefault("MPLBACKEND", "Agg")  # figures without a display, in these tests and their kernels


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The project's data root, holding the real MNIST files (fetched and verified by mnist_data if needed)."""
    from mnist_data import ensure_mnist

    ensure_mnist(ROOT / "data", log=lambda _: None)
    return ROOT / "data"


@pytest.fixture(scope="session")
def trained_digit_reader(mnist_root):
    """A function image -> (digit, ten probabilities) with a really trained network: the notebook's recipe, one
    epoch on its 55,000 training images (about 99.2 % test accuracy, 10-20 s on a 2-core CPU), trained once per
    test session and shared, so that these tests run in a fresh clone too, where `make run` has saved no model."""
    import torch
    from torchvision import datasets

    from notebook_recipe import load_recipe, notebook_split, train_on_notebook_split

    recipe, cpu = load_recipe(), torch.device("cpu")
    model, history = train_on_notebook_split(recipe, recipe.DigitCNN, 1, 0, str(mnist_root), cpu)
    assert history["val_accuracy"][-1] > 0.985  # a network that reads digits, not one that failed to train
    _, _, mean, std = notebook_split(datasets.MNIST(str(mnist_root), train=True).data, 0)
    return lambda image: recipe.predict_digit(model, image, mean, std, cpu)
