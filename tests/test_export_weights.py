"""scripts/export_weights.py's errors: short (a list of weights shortened to a count and a few names), naming the file,
and never pointing at unsafe loading (PyTorch's hint to retry with weights_only=False)."""

import subprocess
import sys

import torch

from handwritten_digits import recipe
from handwritten_digits.checkpoints import save_checkpoint
from handwritten_digits.export import NOTEBOOK

ROOT = NOTEBOOK.parent


def export(*arguments) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/export_weights.py", *map(str, arguments)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_checkpoint_of_another_architecture_gets_a_short_error_and_no_file(tmp_path):
    checkpoint, target = tmp_path / "mlp.pt", tmp_path / "weights.js"
    save_checkpoint(recipe.FullyConnectedNet(), checkpoint, 0.13, 0.31)
    done = export(checkpoint, target)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[0] == (f"error: {checkpoint} holds a different architecture (FullyConnectedNet) than DigitCNN, 32 "
                        "weights differ:")
    assert lines[-1] == "  ... and 29 more"
    assert len(lines) == 5
    assert not target.exists()


def test_a_whole_pickled_model_is_refused_without_suggesting_weights_only_false(tmp_path):
    checkpoint, target = tmp_path / "whole.pt", tmp_path / "weights.js"
    torch.save(recipe.DigitCNN(), checkpoint)  # the whole module, pickled: loading it would run its classes' code
    done = export(checkpoint, target)
    assert done.returncode == 1
    message = done.stderr.strip()
    assert message.startswith(f"error: {checkpoint} cannot be loaded as a checkpoint: it holds more than tensors and "
                              "plain data")
    assert "never unpickled here" in message
    assert "weights_only=False" not in message
    assert "can still be loaded" not in message
    assert len(message.splitlines()) == 1
    assert not target.exists()
