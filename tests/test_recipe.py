"""Unit tests of the notebook's own code (its cells tagged "recipe"): checkpoints, augmentation, training."""

import json
import os
import pickle
import re

import pytest
import torch

from notebook_recipe import NOTEBOOK, load_recipe

recipe = load_recipe()
CPU = torch.device("cpu")


@pytest.fixture
def trained(tmp_path):
    """A DigitCNN with non-default weights (batch-norm statistics included), saved to a checkpoint."""
    torch.manual_seed(0)
    model = recipe.DigitCNN()
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(16, 1, 28, 28))  # moves the batch-norm running statistics
    path = tmp_path / "model.pt"
    recipe.save_checkpoint(model, path, mean=0.13, std=0.31)
    return model, path


def test_checkpoint_reloads_with_identical_predictions(trained):
    model, path = trained
    fresh = recipe.DigitCNN()
    checkpoint = recipe.load_checkpoint(path, fresh, CPU)
    images = torch.randn(32, 1, 28, 28)
    model.eval()
    fresh.eval()
    with torch.inference_mode():
        assert torch.equal(model(images), fresh(images))
    assert checkpoint["mean"] == 0.13
    assert checkpoint["std"] == 0.31
    assert checkpoint["classes"] == [str(d) for d in range(10)]


def test_checkpoint_loading_is_weights_only(trained, monkeypatch):
    _, path = trained
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)
    assert seen.get("weights_only") is True
    assert seen.get("map_location") == CPU


def test_other_architecture_is_refused_naming_the_layers(tmp_path):
    path = tmp_path / "wide.pt"
    recipe.save_checkpoint(recipe.DigitCNN(widths=(32, 64, 128)), path, 0.13, 0.31)
    with pytest.raises(ValueError, match="different architecture") as caught:
        recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)
    message = str(caught.value)
    assert "different architecture" in message
    assert "conv1.0.weight: shape [32, 1, 3, 3] in the file, [16, 1, 3, 3] in the model" in message
    assert "fc1.weight" in message


def test_fully_connected_checkpoint_is_refused_with_missing_and_extra_layers(tmp_path):
    path = tmp_path / "mlp.pt"
    recipe.save_checkpoint(recipe.FullyConnectedNet(), path, 0.13, 0.31)
    expected = r"conv1\.0\.weight: missing from the file[\s\S]*layers\.1\.weight: not in DigitCNN"
    with pytest.raises(ValueError, match=expected):
        recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)


def test_truncated_checkpoint_is_refused(trained):
    _, path = trained
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot be loaded as a checkpoint"):
        recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)


def test_file_that_is_no_checkpoint_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("just some text")
    with pytest.raises(ValueError, match="cannot be loaded as a checkpoint"):
        recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="no 'model_state'"):
        recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)


def test_empty_checkpoint_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.touch()
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} cannot be loaded as a checkpoint: EOFError"):
        recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)
    assert path.read_bytes() == b""


def test_checkpoint_whose_state_is_not_tensors_is_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"model_state": {"conv1.0.weight": [1.0, 2.0]}}, path)
    with pytest.raises(ValueError, match="'model_state' is not a dict of tensors"):
        recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)


def test_checkpoint_with_non_finite_weights_is_refused_naming_the_tensors(trained):
    _model, path = trained
    state = torch.load(path, weights_only=True)
    state["model_state"]["conv2.0.weight"][0, 0, 0, 0] = float("nan")
    state["model_state"]["fc1.bias"][3] = float("inf")
    torch.save(state, path)
    saved = path.read_bytes()
    fresh = recipe.DigitCNN()
    before = {key: value.clone() for key, value in fresh.state_dict().items()}
    with pytest.raises(ValueError, match=r"not finite numbers \(NaN or infinity\) in: conv2\.0\.weight, fc1\.bias$"):
        recipe.load_checkpoint(path, fresh, CPU)
    assert all(torch.equal(before[key], value) for key, value in fresh.state_dict().items())  # model untouched
    assert path.read_bytes() == saved


def test_checkpoint_that_runs_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"model_state": Payload()}, path, pickle_module=pickle)
    with pytest.raises(ValueError, match="cannot be loaded as a checkpoint"):
        recipe.load_checkpoint(path, recipe.DigitCNN(), CPU)
    assert not marker.exists()


def test_interrupted_save_keeps_the_previous_checkpoint(trained, monkeypatch):
    _model, path = trained
    before = path.read_bytes()

    def dies_midway(obj, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        recipe.save_checkpoint(recipe.DigitCNN(), path, 0.5, 0.5)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_random_affine_keeps_shape_and_identity_at_zero():
    images = torch.randn(8, 1, 28, 28)
    assert recipe.random_affine(images).shape == images.shape
    assert torch.allclose(recipe.random_affine(images, max_degrees=0, max_shift=0), images, atol=1e-5)


def test_two_quick_runs_with_the_same_seed_are_identical_on_cpu(mnist_root):
    from torchvision import datasets

    mnist = datasets.MNIST(str(mnist_root), train=True)
    images = recipe.to_model_input(mnist.data[:2_500], 0.1307, 0.3081, CPU)
    labels = mnist.targets[:2_500]

    def quick_run() -> dict:
        torch.manual_seed(0)
        model = recipe.DigitCNN()
        return recipe.fit(model, (images[:2_000], labels[:2_000]), (images[2_000:], labels[2_000:]),
                          epochs=2, learning_rate=0.15, batch_size=128)

    first, second = quick_run(), quick_run()
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert first[key] == second[key], key
    assert first["val_accuracy"][-1] > 0.5  # it did learn something


def test_checkpoint_saved_on_cuda_loads_on_a_cpu_only_machine(tmp_path, monkeypatch):
    """Tag every tensor of a checkpoint as stored on cuda:0, as a GPU run writes it, then load it here."""
    model = recipe.DigitCNN()
    path = tmp_path / "from-gpu.pt"
    with monkeypatch.context() as patched:
        patched.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        recipe.save_checkpoint(model, path, 0.13, 0.31)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):  # what a plain torch.load does on a CPU-only machine
            torch.load(path, weights_only=True)
    fresh = recipe.DigitCNN()
    recipe.load_checkpoint(path, fresh, CPU)
    assert all(tensor.device.type == "cpu" for tensor in fresh.state_dict().values())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True))


def test_notebook_never_hard_codes_a_device_or_waits_for_input():
    cells = [cell for cell in json.loads(NOTEBOOK.read_text())["cells"] if cell["cell_type"] == "code"]
    source = "\n".join("".join(cell["source"]) for cell in cells)
    for forbidden in (r"(?<![\w.])input\(", r"getpass", r"\.cuda\(\)", r"device\(.cuda", r"\.to\(.cuda",
                      r"plt\.show\(block"):
        assert not re.search(forbidden, source), forbidden
