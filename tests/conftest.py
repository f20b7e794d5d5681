"""Test set-up: the notebook runs in quick mode, and the project root is importable."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["MNIST_QUICK"] = "1"  # read by the notebook's parameters cell, in the kernel nbval starts
os.environ.setdefault("MPLBACKEND", "Agg")  # figures without a display, in these tests and their kernels
