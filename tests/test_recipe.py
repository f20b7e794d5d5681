"""Unit tests of the notebook's exported code (handwritten_digits.recipe: augmentation, training) and of the tools'
hardened checkpoints (handwritten_digits.checkpoints), in-process."""

import json
import os
import pickle
import re

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from handwritten_digits import recipe
from handwritten_digits.checkpoints import load_checkpoint, save_checkpoint
from handwritten_digits.data import notebook_data
from handwritten_digits.export import NOTEBOOK
from handwritten_digits.files import folder_problem

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
    save_checkpoint(model, path, mean=0.13, std=0.31)
    return model, path


def test_checkpoint_reloads_with_identical_predictions(trained):
    model, path = trained
    fresh = recipe.DigitCNN()
    checkpoint = load_checkpoint(path, fresh, CPU)
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
    load_checkpoint(path, recipe.DigitCNN(), CPU)
    assert seen.get("weights_only") is True
    assert seen.get("map_location") == CPU


def test_other_architecture_is_refused_naming_the_layers(tmp_path):
    path = tmp_path / "wide.pt"
    save_checkpoint(recipe.DigitCNN(widths=(32, 64, 128)), path, 0.13, 0.31)
    with pytest.raises(ValueError, match="different architecture") as caught:
        load_checkpoint(path, recipe.DigitCNN(), CPU)
    message = str(caught.value)
    assert "different architecture (DigitCNN) than DigitCNN, 16 weights differ:" in message
    assert "conv1.0.weight: shape [32, 1, 3, 3] in the file, [16, 1, 3, 3] in the model" in message
    assert message.endswith("... and 13 more")  # a few lines, not one per weight
    assert len(message.splitlines()) == 5


def test_fully_connected_checkpoint_is_refused_with_missing_and_extra_layers(tmp_path):
    path = tmp_path / "mlp.pt"
    save_checkpoint(recipe.FullyConnectedNet(), path, 0.13, 0.31)
    expected = r"architecture \(FullyConnectedNet\) than DigitCNN, [0-9]+ weights differ:\n  conv1\.0\.weight: missing"
    with pytest.raises(ValueError, match=expected):
        load_checkpoint(path, recipe.DigitCNN(), CPU)


def test_truncated_checkpoint_is_refused(trained):
    _, path = trained
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="cannot be loaded as a checkpoint"):
        load_checkpoint(path, recipe.DigitCNN(), CPU)


def test_file_that_is_no_checkpoint_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("just some text")
    with pytest.raises(ValueError, match="cannot be loaded as a checkpoint"):
        load_checkpoint(path, recipe.DigitCNN(), CPU)
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="no 'model_state'"):
        load_checkpoint(path, recipe.DigitCNN(), CPU)


def test_empty_checkpoint_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.touch()
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} cannot be loaded as a checkpoint: EOFError"):
        load_checkpoint(path, recipe.DigitCNN(), CPU)
    assert path.read_bytes() == b""


def test_checkpoint_whose_state_is_not_tensors_is_refused(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"model_state": {"conv1.0.weight": [1.0, 2.0]}}, path)
    with pytest.raises(ValueError, match="'model_state' is not a dict of tensors"):
        load_checkpoint(path, recipe.DigitCNN(), CPU)


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
        load_checkpoint(path, fresh, CPU)
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
        load_checkpoint(path, recipe.DigitCNN(), CPU)
    assert not marker.exists()


def test_interrupted_save_keeps_the_previous_checkpoint(trained, monkeypatch):
    _model, path = trained
    before = path.read_bytes()

    def dies_midway(self, data):
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr("pathlib.Path.write_bytes", dies_midway)  # save_checkpoint writes its bytes so
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(recipe.DigitCNN(), path, 0.5, 0.5)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_random_affine_keeps_shape_and_identity_at_zero():
    images = torch.randn(8, 1, 28, 28)
    assert recipe.random_affine(images).shape == images.shape
    assert torch.allclose(recipe.random_affine(images, max_degrees=0, max_shift=0), images, atol=1e-5)


def test_augmented_batch_stacks_the_samples_then_moves_each_image_and_keeps_the_labels():
    samples = [(torch.randn(1, 28, 28), torch.tensor(digit)) for digit in range(6)]
    images, labels = recipe.augmented_batch(samples)
    assert images.shape == (6, 1, 28, 28)
    assert labels.tolist() == list(range(6))
    assert not torch.allclose(images, torch.stack([image for image, _ in samples]))


def test_part_ones_training_cell_is_train_recipe_with_the_plain_ingredients():
    """Section 6's cell (a DataLoader, sgd_one_cycle, plain cross-entropy, fit) and Part II (B)'s train_recipe(**PLAIN),
    from the same seed: the same weights, so that the ladder's first rung is Part I's run."""
    images, labels = torch.randn(300, 1, 28, 28), torch.randint(0, 10, (300,))
    train, validation = (images[:256], labels[:256]), (images[256:], labels[256:])
    models = []
    for way in ("Part I", "train_recipe"):
        torch.manual_seed(0)
        model = recipe.DigitCNN()
        torch.manual_seed(0)
        if way == "Part I":
            loader = DataLoader(TensorDataset(*train), batch_size=64, shuffle=True)
            optimizer, scheduler = recipe.sgd_one_cycle(model, 0.15, total_steps=2 * len(loader))
            recipe.fit(model, loader, validation, torch.nn.CrossEntropyLoss(), optimizer, scheduler, 2)
        else:
            recipe.train_recipe(model, train, validation, 2, 0.15, 64, **recipe.PLAIN)
        models.append(model.state_dict())
    for name, value in models[0].items():
        assert torch.equal(models[1][name], value), name


def test_the_full_recipe_adds_each_ingredient_and_the_plain_one_none():
    model = torch.nn.Linear(2, 2)
    plain = recipe.sgd_one_cycle(model, 0.15, 100)[0].param_groups[0]
    also_plain = recipe.tuned_sgd_one_cycle(model, 0.15, 100, **{key: value for key, value in recipe.PLAIN.items()
                                                                  if key not in ("augment", "label_smoothing")})
    assert {key: value for key, value in also_plain[0].param_groups[0].items() if key != "params"} == \
           {key: value for key, value in plain.items() if key != "params"}
    optimizer, scheduler = recipe.tuned_sgd_one_cycle(model, 0.15, 100, recipe.WEIGHT_DECAY, True, (0.95, 0.85))
    group = optimizer.param_groups[0]
    assert (group["nesterov"], group["weight_decay"]) == (True, 5e-4)
    momenta = []
    for _ in range(100):
        momenta.append(group["momentum"])
        optimizer.step()
        scheduler.step()
    assert (min(momenta), max(momenta)) == (pytest.approx(0.85), pytest.approx(0.95))
    assert plain["momentum"] == 0.9


def test_evaluate_reports_plain_cross_entropy():
    torch.manual_seed(0)
    model = recipe.DigitCNN()
    images, labels = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    loss, accuracy = recipe.evaluate(model, images, labels)
    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    assert accuracy == pytest.approx((logits.argmax(1) == labels).float().mean().item())


def test_two_quick_runs_with_the_same_seed_are_identical_on_cpu(mnist_root):
    from torchvision import datasets

    mnist = datasets.MNIST(str(mnist_root), train=True)
    images = recipe.to_model_input(mnist.data[:2_500], 0.1307, 0.3081, CPU)
    labels = mnist.targets[:2_500]

    def quick_run() -> dict:
        torch.manual_seed(0)
        model = recipe.DigitCNN()
        return recipe.train_recipe(model, (images[:2_000], labels[:2_000]), (images[2_000:], labels[2_000:]),
                                   epochs=2, learning_rate=0.15, batch_size=128, **recipe.FULL)

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
        save_checkpoint(model, path, 0.13, 0.31)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):  # what a plain torch.load does on a CPU-only machine
            torch.load(path, weights_only=True)
    fresh = recipe.DigitCNN()
    load_checkpoint(path, fresh, CPU)
    assert all(tensor.device.type == "cpu" for tensor in fresh.state_dict().values())
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True))


def test_notebook_never_hard_codes_a_device_or_waits_for_input():
    cells = [cell for cell in json.loads(NOTEBOOK.read_text())["cells"] if cell["cell_type"] == "code"]
    source = "\n".join("".join(cell["source"]) for cell in cells)
    for forbidden in (r"(?<![\w.])input\(", r"getpass", r"\.cuda\(\)", r"device\(.cuda", r"\.to\(.cuda",
                      r"plt\.show\(block"):
        assert not re.search(forbidden, source), forbidden


@pytest.mark.parametrize(("change", "message"), [
    (lambda saved: saved.pop("mean"), r"'mean' is missing"),
    (lambda saved: saved.pop("std"), r"'std' is missing"),
    (lambda saved: saved.update(mean="0.13"), r"'mean' is '0\.13'"),
    (lambda saved: saved.update(std=0.0), r"'std' is 0\.0"),
    (lambda saved: saved.update(std=-0.3), r"'std' is -0\.3"),
    (lambda saved: saved.update(mean=float("nan")), r"'mean' is nan"),
    (lambda saved: saved.update(std=True), r"'std' is True"),
])
def test_checkpoint_without_usable_normalisation_is_refused_naming_it(trained, change, message):
    _model, path = trained
    saved = torch.load(path, weights_only=True)
    change(saved)
    torch.save(saved, path)
    fresh = recipe.DigitCNN()
    before = {key: value.clone() for key, value in fresh.state_dict().items()}
    with pytest.raises(ValueError, match=rf"no usable normalisation constants: .*{message}"):
        load_checkpoint(path, fresh, CPU)
    assert all(torch.equal(before[key], value) for key, value in fresh.state_dict().items())  # model untouched


def test_the_readme_example_works_on_every_checkpoint_that_loads(trained):
    """docs/handwriting.md's lines: load_checkpoint, then predict_digit with the saved mean and std."""
    _model, path = trained
    model = recipe.DigitCNN()
    saved = load_checkpoint(path, model, CPU)
    image = np.full((100, 80), 255, dtype=np.uint8)
    image[20:80, 36:44] = 0  # a dark bar on white paper: a 1
    digit, probabilities = recipe.predict_digit(model, image, saved["mean"], saved["std"], CPU)
    assert 0 <= digit <= 9
    assert np.isfinite(probabilities).all()
    assert abs(probabilities.sum() - 1) < 1e-5


def test_a_checkpoint_path_that_is_not_a_regular_file_is_refused_without_opening_it(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"pipe\.pt is not a regular file"):
        load_checkpoint(fifo, recipe.DigitCNN(), CPU)
    with pytest.raises(ValueError, match="is not a regular file"):
        load_checkpoint(tmp_path, recipe.DigitCNN(), CPU)


def test_two_writers_saving_one_checkpoint_at_once_never_clash_nor_show_a_reader_half_a_file(tmp_path):
    """Two runs saving the same model at once, while a third loads it: every save and every load succeeds."""
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "digit_cnn.pt"
    models = [recipe.DigitCNN() for _ in range(2)]
    save_checkpoint(models[0], path, 0.13, 0.31)

    def write(model) -> int:
        for _ in range(25):
            save_checkpoint(model, path, 0.13, 0.31)
        return 25

    def read(_) -> int:
        for _ in range(50):
            load_checkpoint(path, recipe.DigitCNN(), CPU)
        return 50

    with ThreadPoolExecutor(3) as pool:
        done = [pool.submit(write, models[0]), pool.submit(write, models[1]), pool.submit(read, None)]
        assert [future.result(timeout=120) for future in done] == [25, 25, 50]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())  # as a file written in place


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_save_into_a_folder_that_cannot_be_written_names_the_file(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=rf"cannot write {re.escape(str(blocker))}/model\.pt: .*OUTPUT_DIR"):
        save_checkpoint(recipe.DigitCNN(), blocker / "model.pt", 0.13, 0.31)
    assert blocker.read_text() == "not a folder"

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refused)  # what a folder without write permission gives a user
    with pytest.raises(PermissionError, match=r"cannot write .*model\.pt: Permission denied"):
        save_checkpoint(recipe.DigitCNN(), tmp_path / "model.pt", 0.13, 0.31)
    assert not (tmp_path / "model.pt").exists()


def test_training_that_diverges_stops_naming_the_learning_rate(capsys):
    images, labels = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    torch.manual_seed(0)
    expected = r"training diverged; the learning rate 1e\+30 \(LEARNING_RATE; .*\) is too high"
    with pytest.raises(FloatingPointError, match=expected):
        recipe.train_recipe(recipe.DigitCNN(), (images, labels), (images[:64], labels[:64]), epochs=2,
                            learning_rate=1e30, batch_size=64, **recipe.PLAIN)


def test_training_that_stays_at_chance_says_so_naming_the_learning_rate(mnist_root, capsys):
    train, validation, _ = notebook_data(0, str(mnist_root), CPU, limit=2_000)
    torch.manual_seed(0)
    recipe.train_recipe(recipe.DigitCNN(), train, validation, epochs=1, learning_rate=10, batch_size=128,
                        **recipe.PLAIN)
    printed = capsys.readouterr().out
    assert "no better than guessing among 10 digits: the learning rate 10 (LEARNING_RATE; the notebook's is 0.15) is " \
           "probably too high" in printed


@pytest.mark.parametrize(("mean", "std"), [(np.float32(0.13), np.float32(0.31)), (np.float64(0.13), np.float64(0.31)),
                                           (torch.tensor(0.13), torch.tensor(0.31)), (torch.tensor([0.13]), 0.31)])
def test_numpy_and_tensor_normalisation_numbers_are_saved_as_plain_numbers_that_load_back(tmp_path, mean, std):
    path = tmp_path / "model.pt"
    save_checkpoint(recipe.DigitCNN(), path, mean, std)
    saved = load_checkpoint(path, recipe.DigitCNN(), CPU)
    assert type(saved["mean"]) is float
    assert type(saved["std"]) is float
    assert saved["mean"] == pytest.approx(0.13)
    assert saved["std"] == pytest.approx(0.31)


def nan_weights() -> torch.nn.Module:
    model = recipe.DigitCNN()
    with torch.no_grad():
        model.fc2.weight[0, 0] = float("nan")
    return model


@pytest.mark.parametrize(("model", "mean", "std", "message"), [
    (recipe.DigitCNN, float("nan"), 0.31, r"no usable normalisation constants: 'mean' is nan"),
    (recipe.DigitCNN, 0.13, float("nan"), r"no usable normalisation constants: 'std' is nan"),
    (recipe.DigitCNN, 33.3, 78.6, r"'mean' is 33\.3 and 'std' 78\.6, expected on the 0-1 pixel scale"),
    (nan_weights, 0.13, 0.31, r"weights that are not finite numbers \(NaN or infinity\) in: fc2\.weight"),
])
def test_a_save_that_could_not_be_loaded_back_is_refused_and_the_old_file_kept(trained, model, mean, std, message):
    _model, path = trained
    before = path.read_bytes()
    expected = rf"not saved, {re.escape(str(path))} is unchanged: the checkpoint .*{message}"
    with pytest.raises(ValueError, match=expected):
        save_checkpoint(model(), path, mean, std)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left behind


def test_a_compiled_network_is_saved_as_the_network_it_wraps(tmp_path):
    model = recipe.DigitCNN()
    compiled = torch.compile(model)  # compiles lazily: nothing is compiled unless it is called
    path = tmp_path / "compiled.pt"
    save_checkpoint(compiled, path, 0.13, 0.31)
    fresh = recipe.DigitCNN()
    saved = load_checkpoint(path, fresh, CPU)
    assert saved["architecture"] == "DigitCNN"
    assert not any(key.startswith("_orig_mod.") for key in saved["model_state"])
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in fresh.state_dict().items())


def test_normalisation_on_the_0_to_255_scale_is_refused_naming_the_expected_scale(trained):
    _model, path = trained
    saved = torch.load(path, weights_only=True)
    saved.update(mean=0.13 * 255, std=0.31 * 255)
    torch.save(saved, path)
    with pytest.raises(ValueError, match=r"expected on the 0-1 pixel scale \(pixels divided by 255"):
        load_checkpoint(path, recipe.DigitCNN(), CPU)


def test_a_negative_batch_norm_variance_is_refused_naming_the_layer(trained):
    _model, path = trained
    saved = torch.load(path, weights_only=True)
    saved["model_state"]["conv2.1.running_var"][3] = -0.5
    torch.save(saved, path)
    with pytest.raises(ValueError, match=r"batch-norm variances below zero in: conv2\.1\.running_var"):
        load_checkpoint(path, recipe.DigitCNN(), CPU)


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a disk with no room for a checkpoint: a 64 kB tmpfs where this machine lets root mount one,
    otherwise a folder whose writes fail as a full disk's do (ENOSPC)."""
    import subprocess

    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if mounted:
        yield folder, None
        subprocess.run(["umount", str(folder)], check=True)
    else:
        yield folder, OSError(28, "No space left on device")


def test_a_full_disk_at_save_time_names_the_file_and_the_folder_and_keeps_the_old_file(full_disk, monkeypatch):
    import pathlib

    folder, fake_error = full_disk
    path = folder / "digit_cnn.pt"
    path.write_bytes(b"the previous checkpoint")
    if fake_error:
        def no_room(self, data):
            raise fake_error

        monkeypatch.setattr(pathlib.Path, "write_bytes", no_room)
    with pytest.raises(OSError, match=rf"cannot write {re.escape(str(path))}: the disk that holds "
                                      rf"{re.escape(str(folder))} is full .* the previous digit_cnn\.pt, if there was "
                                      "one, is unchanged"):
        save_checkpoint(recipe.DigitCNN(), path, 0.13, 0.31)
    monkeypatch.undo()
    assert path.read_bytes() == b"the previous checkpoint"
    assert [p.name for p in folder.iterdir()] == [path.name]


def test_a_folder_that_cannot_hold_files_is_named_with_the_reason(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert folder_problem(blocker) == "it is a file, not a folder"
    assert folder_problem(blocker / "inside") is not None
    assert folder_problem("/proc/no-such-folder") is not None
    assert folder_problem(tmp_path / "new" / "outputs") is None
    assert list((tmp_path / "new" / "outputs").iterdir()) == []  # the probe file is gone
