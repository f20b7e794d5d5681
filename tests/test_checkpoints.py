"""Checkpoints: a save loads back or is refused keeping the old file; a load refuses what is not the network's."""

import os
import pickle
import re
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import numpy as np
import pytest
import torch

from handwritten_digits.checkpoints import load_checkpoint, save_checkpoint
from handwritten_digits.notebook import DigitCNN, FullyConnectedNet

CPU = torch.device("cpu")


@pytest.fixture
def saved(tmp_path):
    """A DigitCNN whose batch-norm statistics have moved, saved with NumPy and tensor constants; and its path."""
    with torch.no_grad():
        (model := DigitCNN().train())(torch.randn(16, 1, 28, 28))
    save_checkpoint(model, path := tmp_path / "model.pt", mean=np.float64(0.13), std=torch.tensor([0.31], dtype=float))
    return model.eval(), path


def edited(change):
    """Spoil a saved checkpoint's dict with `change`, as a damaged file or another tool would hold it."""
    def spoil(path):
        change(checkpoint := torch.load(path, weights_only=True))
        torch.save(checkpoint, path)
    return spoil


class RunsCode:
    def __reduce__(self):
        return os.system, ("touch code-ran",)


LOAD_REFUSALS = {  # how the file is spoiled: what the refusal says
    "a folder": (lambda path: path.unlink() or path.mkdir(), "is not a regular file"),
    "empty": (lambda path: path.write_bytes(b""), "cannot be loaded as a checkpoint: EOFError"),
    "pickled code": (lambda path: torch.save({"model_state": RunsCode()}, path, pickle_module=pickle), "unpickled"),
    "a whole pickled model": (lambda path: torch.save(DigitCNN(), path), "never unpickled here"),
    "no model_state": (lambda path: torch.save({"weights": torch.zeros(3)}, path), "no 'model_state' dict of tensors"),
    "another network": (lambda path: save_checkpoint(FullyConnectedNet(), path, 0.13, 0.31),
                        "holds a FullyConnectedNet, not a DigitCNN, 32 weights differ (conv1.0.weight: missing"),
    "other widths": (lambda path: save_checkpoint(DigitCNN(widths=(32, 64, 128)), path, 0.13, 0.31), "other shapes "
                     "than this DigitCNN, 16 weights differ (conv1.0.weight: [32, 1, 3, 3] in the file, [16, 1, 3, 3]"),
    "NaN and infinity": (edited(lambda saved: saved["model_state"]["fc1.bias"].__setitem__(3, float("inf"))
                                or saved["model_state"]["conv2.0.weight"].fill_(float("nan"))),
                         "not finite numbers (NaN or infinity) or variances below zero in: conv2.0.weight, fc1.bias"),
    "negative variance": (edited(lambda saved: saved["model_state"]["conv2.1.running_var"].fill_(-0.5)),
                          "variances below zero in: conv2.1.running_var"),
    "no mean": (edited(lambda saved: saved.pop("mean")), "'mean' is missing"),
    "mean NaN": (edited(lambda saved: saved.update(mean=float("nan"))), "'mean' is nan"),
    "std 0": (edited(lambda saved: saved.update(std=0.0)), "'std' is 0.0"),
    "0-255 scale": (edited(lambda saved: saved.update(mean=33.3, std=78.6)), "'mean' is 33.3 (expected on the 0-1"),
}


@pytest.mark.parametrize(("spoil", "message"), LOAD_REFUSALS.values(), ids=LOAD_REFUSALS)
def test_a_spoiled_checkpoint_is_refused_naming_the_file_and_untouched_network(saved, spoil, message, monkeypatch):
    monkeypatch.chdir((path := saved[1]).parent)
    spoil(path)
    model = DigitCNN()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}.*{re.escape(message)}") as refused:
        load_checkpoint(path, model, CPU)
    assert "weights_only=False" not in str(refused.value)
    assert ("make export" in str(refused.value)) == ("other shapes" in message)  # only where the package may be stale
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert not (path.parent / "code-ran").exists()


def test_a_checkpoint_of_a_data_parallel_compiled_or_gpu_network_loads_into_a_plain_one(saved, tmp_path, monkeypatch):
    (model, plain), images = saved, torch.randn(8, 1, 28, 28)
    torch.save({"model_state": {f"module.{key}": value for key, value in model.state_dict().items()}, "mean": 0.13,
                "std": 0.31}, prefixed := tmp_path / "ddp.pt")  # the notebook's own save of a DataParallel or DDP one
    save_checkpoint(torch.nn.DataParallel(model), parallel := tmp_path / "parallel.pt", 0.13, 0.31)
    monkeypatch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")  # as saved on a GPU
    save_checkpoint(torch.compile(model), compiled := tmp_path / "compiled.pt", 0.13, 0.31)
    for path in (plain, prefixed, parallel, compiled):
        checkpoint = load_checkpoint(path, fresh := DigitCNN().eval(), CPU)
        assert torch.equal(model(images), fresh(images))
        assert [(checkpoint[key], type(checkpoint[key])) for key in ("mean", "std")] == [(0.13, float), (0.31, float)]
    assert load_checkpoint(plain, DigitCNN(), CPU)["classes"] == list("0123456789")


@pytest.mark.parametrize(("model", "mean", "failure"), [
    (DigitCNN, float("nan"), "'mean' is nan"), (DigitCNN, 33.3, "expected on the 0-1 pixel scale"),
    (lambda: DigitCNN().apply(lambda layer: isinstance(layer, torch.nn.Linear) and layer.weight.data.fill_(np.nan)),
     0.13, "not finite numbers"), (DigitCNN, 0.13, KeyboardInterrupt()), (DigitCNN, 0.13, OSError(28, "Disk full"))])
def test_a_save_refused_or_cut_short_keeps_the_old_file_and_leaves_no_part(saved, monkeypatch, model, mean, failure):
    before = (path := saved[1]).read_bytes()
    if isinstance(failure, str):  # a save that would not load back
        refused = pytest.raises(ValueError, match=f"not saved, {re.escape(str(path))} is unchanged: .*{failure}")
    else:  # the file's last step fails
        refused = pytest.raises(type(failure))
        monkeypatch.setattr(os, "replace", mock.Mock(side_effect=failure))
    with refused:
        save_checkpoint(model(), path, mean, 0.31)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_two_writers_and_a_reader_at_once_never_clash_nor_see_half_a_file(tmp_path):
    save_checkpoint(DigitCNN(), path := tmp_path / "digit_cnn.pt", 0.13, 0.31)
    with ThreadPoolExecutor(3) as pool:
        jobs = [*(pool.submit(lambda model: [save_checkpoint(model, path, 0.13, 0.31) for _ in range(20)], DigitCNN())
                  for _ in range(2)), pool.submit(lambda: [load_checkpoint(path, DigitCNN(), CPU) for _ in range(40)])]
        assert [len(job.result(timeout=120)) for job in jobs] == [20, 20, 40]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.stat().st_mode & 0o777 == 0o666 & ~os.umask(os.umask(0o022))  # as a file written in place
