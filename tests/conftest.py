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
