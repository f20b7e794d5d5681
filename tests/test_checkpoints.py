"""The tools' checkpoints (handwritten_digits.checkpoints): a save always loads back or is refused keeping the old file,
and a load refuses anything that is not a checkpoint of the network, naming the file."""

import os
import pickle
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from handwritten_digits.checkpoints import load_checkpoint, save_checkpoint
from handwritten_digits.notebook import DigitCNN, FullyConnectedNet

CPU = torch.device("cpu")


@pytest.fixture
def saved(tmp_path):
    """A DigitCNN whose batch-norm statistics have moved, saved; and its path."""
    torch.manual_seed(0)
    model = DigitCNN().train()
    with torch.no_grad():
        model(torch.randn(16, 1, 28, 28))
    save_checkpoint(model, path := tmp_path / "model.pt", mean=0.13, std=0.31)
    return model.eval(), path


def edited(change):
    """Spoil a saved checkpoint's dict with `change`, as a damaged file or another tool would hold it."""
    def spoil(path):
        checkpoint = torch.load(path, weights_only=True)
        change(checkpoint)
        torch.save(checkpoint, path)
    return spoil


def runs_code(path):
    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {path.parent / 'code-ran'}",)
    torch.save({"model_state": Payload()}, path, pickle_module=pickle)


LOAD_REFUSALS = {  # how the file is spoiled: what the refusal says
    "a folder": (lambda path: path.unlink() or path.mkdir(), "is not a regular file"),
    "a pipe": (lambda path: path.unlink() or os.mkfifo(path), "is not a regular file"),
    "empty": (lambda path: path.write_bytes(b""), "cannot be loaded as a checkpoint: EOFError"),
    "cut short": (lambda path: path.write_bytes(path.read_bytes()[:1000]), "cannot be loaded as a checkpoint"),
    "text": (lambda path: path.write_text("just some text"), "cannot be loaded as a checkpoint"),
    "pickled code": (runs_code, "never unpickled here"),
    "a whole pickled model": (lambda path: torch.save(DigitCNN(), path), "never unpickled here"),
    "no model_state": (lambda path: torch.save({"weights": torch.zeros(3)}, path), "no 'model_state' dict of tensors"),
    "not tensors": (lambda path: torch.save({"model_state": {"fc1.bias": [1.0]}}, path), "dict of tensors"),
    "another network": (lambda path: save_checkpoint(FullyConnectedNet(), path, 0.13, 0.31),
                        "holds a FullyConnectedNet, not a DigitCNN, 32 weights differ (conv1.0.weight: missing"),
    "other widths": (lambda path: save_checkpoint(DigitCNN(widths=(32, 64, 128)), path, 0.13, 0.31),
                     "of other shapes than this DigitCNN, 16 weights differ (conv1.0.weight: [32, 1, 3, 3] in the "
                     "file, [16, 1, 3, 3] in the network; "),
    "NaN and infinity": (edited(lambda saved: saved["model_state"]["fc1.bias"].__setitem__(3, float("inf"))
                                or saved["model_state"]["conv2.0.weight"].fill_(float("nan"))),
                         "not finite numbers (NaN or infinity) or variances below zero in: conv2.0.weight, fc1.bias"),
    "negative variance": (edited(lambda saved: saved["model_state"]["conv2.1.running_var"].fill_(-0.5)),
                          "variances below zero in: conv2.1.running_var"),
    "no mean": (edited(lambda saved: saved.pop("mean")), "'mean' is missing"),
    "mean as text": (edited(lambda saved: saved.update(mean="0.13")), "'mean' is '0.13'"),
    "mean NaN": (edited(lambda saved: saved.update(mean=float("nan"))), "'mean' is nan"),
    "std 0": (edited(lambda saved: saved.update(std=0.0)), "'std' is 0.0"),
    "std True": (edited(lambda saved: saved.update(std=True)), "'std' is True"),
    "0-255 scale": (edited(lambda saved: saved.update(mean=33.3, std=78.6)), "expected on the 0-1 pixel scale"),
}


@pytest.mark.parametrize("spoiled", LOAD_REFUSALS)
def test_a_spoiled_checkpoint_is_refused_naming_the_file_and_the_network_is_untouched(saved, spoiled):
    _, path = saved
    spoil, expected = LOAD_REFUSALS[spoiled]
    spoil(path)
    model = DigitCNN()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(ValueError, match=re.escape(str(path))) as refused:
        load_checkpoint(path, model, CPU)
    assert str(refused.value).startswith(str(path))
    assert expected in str(refused.value)
    assert "weights_only=False" not in str(refused.value)
    assert ("make export" in str(refused.value)) == (spoiled == "other widths")  # only where the package may be stale
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert not (path.parent / "code-ran").exists()


def test_a_saved_checkpoint_loads_back_with_identical_predictions(saved):
    model, path = saved
    fresh = DigitCNN().eval()
    checkpoint = load_checkpoint(path, fresh, CPU)
    images = torch.randn(8, 1, 28, 28)
    assert torch.equal(model(images), fresh(images))
    assert (checkpoint["mean"], checkpoint["std"], checkpoint["classes"]) == (0.13, 0.31, list("0123456789"))


@pytest.mark.parametrize("wrap", [torch.nn.DataParallel, torch.compile])
def test_a_network_saved_inside_data_parallel_or_compile_loads_into_a_plain_one(tmp_path, wrap):
    model, path = DigitCNN(), tmp_path / "wrapped.pt"
    save_checkpoint(wrap(model), path, 0.13, 0.31)
    prefixed = {f"module.{key}": value for key, value in model.state_dict().items()}  # the notebook's own save of a
    torch.save({"model_state": prefixed, "mean": 0.13, "std": 0.31}, tmp_path / "ddp.pt")  # DataParallel or DDP
    for saved_path in (path, tmp_path / "ddp.pt"):
        fresh = DigitCNN()
        load_checkpoint(saved_path, fresh, CPU)
        assert all(torch.equal(value, model.state_dict()[key]) for key, value in fresh.state_dict().items())


def test_a_checkpoint_saved_on_cuda_loads_on_the_cpu(tmp_path, monkeypatch):
    with monkeypatch.context() as patched:
        patched.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        save_checkpoint(DigitCNN(), path := tmp_path / "gpu.pt", 0.13, 0.31)
    load_checkpoint(path, fresh := DigitCNN(), CPU)
    assert all(tensor.device == CPU for tensor in fresh.state_dict().values())


@pytest.mark.parametrize(("mean", "std"), [(np.float32(0.1), np.float64(0.3)), (torch.tensor(0.1), torch.tensor([.3]))])
def test_numpy_and_tensor_normalisation_numbers_are_saved_as_plain_numbers(tmp_path, mean, std):
    save_checkpoint(DigitCNN(), path := tmp_path / "model.pt", mean, std)
    checkpoint = load_checkpoint(path, DigitCNN(), CPU)
    assert (type(checkpoint["mean"]), type(checkpoint["std"])) == (float, float)


def nan_weights():
    model = DigitCNN()
    with torch.no_grad():
        model.fc2.weight[0, 0] = float("nan")
    return model


@pytest.mark.parametrize(("model", "mean", "std", "expected"), [
    (DigitCNN, float("nan"), 0.31, "'mean' is nan"),
    (DigitCNN, 33.3, 78.6, "expected on the 0-1 pixel scale"),
    (nan_weights, 0.13, 0.31, "not finite numbers"),
])
def test_a_save_that_would_not_load_back_is_refused_and_the_old_file_kept(saved, model, mean, std, expected):
    _, path = saved
    before = path.read_bytes()
    with pytest.raises(ValueError, match=f"not saved, {re.escape(str(path))} is unchanged: .*{re.escape(expected)}"):
        save_checkpoint(model(), path, mean, std)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.parametrize("failure", [KeyboardInterrupt(), OSError(28, "No space left on device")])
def test_a_save_that_fails_midway_keeps_the_old_file_and_leaves_no_part(saved, monkeypatch, failure):
    _, path = saved
    before = path.read_bytes()

    def dies_midway(self, data):
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise failure

    monkeypatch.setattr("pathlib.Path.write_bytes", dies_midway)
    with pytest.raises(type(failure), match=None if isinstance(failure, KeyboardInterrupt) else
                       f"cannot write {re.escape(str(path))}: the disk that holds .* is full"):
        save_checkpoint(DigitCNN(), path, 0.13, 0.31)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_two_writers_and_a_reader_at_once_never_clash_nor_see_half_a_file(tmp_path):
    path = tmp_path / "digit_cnn.pt"
    save_checkpoint(DigitCNN(), path, 0.13, 0.31)
    def write(model) -> int:
        return len([save_checkpoint(model, path, 0.13, 0.31) for _ in range(20)])

    with ThreadPoolExecutor(3) as pool:
        jobs = [pool.submit(write, DigitCNN()), pool.submit(write, DigitCNN()),
                pool.submit(lambda: len([load_checkpoint(path, DigitCNN(), CPU) for _ in range(40)]))]
        assert [job.result(timeout=120) for job in jobs] == [20, 20, 40]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert path.stat().st_mode & 0o777 == 0o666 & ~os.umask(os.umask(0o022))  # as a file written in place
