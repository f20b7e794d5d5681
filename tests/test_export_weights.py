"""scripts/export_weights.py: the page's network is the checkpoint's, whatever widths or batch norm; one-line errors."""

import re

import pytest
import torch
from conftest import network_from_weights
from torch import nn

from handwritten_digits import notebook
from handwritten_digits.checkpoints import save_checkpoint
from handwritten_digits.weights import notebook_constants, read_weights_script
from scripts.export_weights import WEIGHTS_FILE, main


@pytest.mark.parametrize(("widths", "batch_norm", "bias"), [((8, 40, 96), True, False), ((16, 32, 64), False, True),
                                                            ((16, 32, 64), True, True)])
def test_the_exported_network_computes_what_the_checkpoints_network_computes(tmp_path, widths, batch_norm, bias):
    torch.manual_seed(0)
    model = notebook.DigitCNN(widths=widths)  # a teacher's edit: wider, or blocks as Exercise 4 makes them
    for block in (model.conv1, model.conv2, model.conv3):
        block[0] = nn.Conv2d(block[0].in_channels, block[0].out_channels, 3, padding=1, bias=bias)
        block[1] = block[1] if batch_norm else nn.Identity()
    with torch.no_grad():
        model.train()(torch.randn(32, 1, 28, 28))  # batch-norm statistics as training leaves them
    save_checkpoint(model, checkpoint := tmp_path / "digit_cnn.pt", 0.1307, 0.3081)
    main([str(checkpoint), str(target := tmp_path / "weights.js")])
    exported, images = read_weights_script(target), torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        assert (network_from_weights(exported)(images) - model.eval()(images)).abs().max() < 1e-5
    assert (exported["mean"], exported["std"], exported["constants"]) == (0.1307, 0.3081, notebook_constants())


def five_by_five(path):
    (model := notebook.DigitCNN()).conv1[0] = nn.Conv2d(1, 16, 5, padding=2, bias=False)  # unknown to the package
    save_checkpoint(model, path, 0.13, 0.31)


FAILURES = {  # how the checkpoint is made: what the one line says
    "missing": (lambda path: None, "no such file"),
    "another network": (lambda path: save_checkpoint(notebook.FullyConnectedNet(), path, 0.13, 0.31),
                        "holds a FullyConnectedNet, not a DigitCNN"),
    "an edited network": (five_by_five, "conv1.0.weight: [16, 1, 5, 5] in the file, [16, 1, 3, 3] in the network"
                                        " ... run `make export`"),
}


@pytest.mark.parametrize("made", FAILURES)
def test_every_failure_is_one_line_and_writes_nothing(tmp_path, made):
    FAILURES[made][0](checkpoint := tmp_path / "digit_cnn.pt")
    with pytest.raises(SystemExit) as failed:
        main([str(checkpoint), str(target := tmp_path / "weights.js")])
    assert re.fullmatch(f"error: {re.escape(str(checkpoint))}[^\n]*", failed.value.code)
    assert all(part in failed.value.code for part in FAILURES[made][1].split(" ... "))
    assert not target.exists()


def test_committed_weights_hold_the_notebooks_constants_and_constants_only_brings_an_old_file_up_to_them(tmp_path):
    assert read_weights_script(WEIGHTS_FILE)["constants"] == notebook_constants(), "run `make assets` to renew them"
    (old := tmp_path / "old_weights.js").write_text(re.sub(r'"DOT": [0-9.]+', '"DOT": 9.9', WEIGHTS_FILE.read_text()))
    main(["--constants-only", str(old)])
    assert read_weights_script(old)["constants"] == notebook_constants()
    assert read_weights_script(old)["weights"] == read_weights_script(WEIGHTS_FILE)["weights"]
