"""The notebook's exported training code (handwritten_digits.notebook), in-process: augmentation, the optimiser and
its schedule, Part I's loop against Part II (B)'s train_recipe, evaluation, and a training that goes wrong."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from handwritten_digits import notebook


def random_data(count: int = 300) -> tuple:
    """(training, validation) pairs of random images and labels."""
    images, labels = torch.randn(count, 1, 28, 28), torch.randint(0, 10, (count,))
    return (images[:256], labels[:256]), (images[256:], labels[256:])


def test_random_affine_keeps_shape_and_is_the_identity_at_zero():
    images = torch.randn(8, 1, 28, 28)
    assert notebook.random_affine(images).shape == images.shape
    assert torch.allclose(notebook.random_affine(images, max_degrees=0, max_shift=0), images, atol=1e-5)


def test_augmented_batch_stacks_the_samples_then_moves_each_image_and_keeps_the_labels():
    samples = [(torch.randn(1, 28, 28), torch.tensor(digit)) for digit in range(6)]
    images, labels = notebook.augmented_batch(samples)
    assert images.shape == (6, 1, 28, 28)
    assert labels.tolist() == list(range(6))
    assert not torch.allclose(images, torch.stack([image for image, _ in samples]))


def test_part_ones_training_cell_is_train_recipe_with_the_plain_ingredients():
    """Section 6's cell (a DataLoader, sgd_one_cycle, plain cross-entropy, fit) and train_recipe(**PLAIN), from the
    same seed: the same weights, so that the ladder's first rung is Part I's run."""
    train, validation = random_data()
    models = []
    for way in ("Part I", "train_recipe"):
        torch.manual_seed(0)
        model = notebook.DigitCNN()
        torch.manual_seed(0)
        if way == "Part I":
            loader = DataLoader(TensorDataset(*train), batch_size=64, shuffle=True)
            optimizer, scheduler = notebook.sgd_one_cycle(model, 0.15, total_steps=2 * len(loader))
            notebook.fit(model, loader, validation, torch.nn.CrossEntropyLoss(), optimizer, scheduler, 2)
        else:
            notebook.train_recipe(model, train, validation, 2, 0.15, 64, **notebook.PLAIN)
        models.append(model.state_dict())
    assert all(torch.equal(models[1][name], value) for name, value in models[0].items())


def test_the_optimiser_options_are_part_two_b_ingredients_and_part_one_uses_none():
    model = torch.nn.Linear(2, 2)
    plain = notebook.sgd_one_cycle(model, 0.15, 100)[0].param_groups[0]
    assert (plain["momentum"], plain["nesterov"], plain["weight_decay"]) == (0.9, False, 0.0)
    optimizer, scheduler = notebook.sgd_one_cycle(model, 0.15, 100, weight_decay=notebook.WEIGHT_DECAY,
                                                  nesterov=True, momentum_range=notebook.MOMENTUM_RANGE)
    group, momenta = optimizer.param_groups[0], []
    assert (group["nesterov"], group["weight_decay"]) == (True, 5e-4)
    for _ in range(100):
        momenta.append(group["momentum"])
        optimizer.step()
        scheduler.step()
    assert (min(momenta), max(momenta)) == (pytest.approx(0.85), pytest.approx(0.95))
    changed = {key for key, value in notebook.TUNED.items() if value != notebook.PLAIN[key]}
    assert changed == {"augment", "label_smoothing", "weight_decay"}


def test_evaluate_reports_plain_cross_entropy_and_accuracy():
    torch.manual_seed(0)
    model = notebook.DigitCNN()
    images, labels = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    loss, accuracy = notebook.evaluate(model, images, labels)
    model.eval()
    with torch.no_grad():
        logits = model(images)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    assert accuracy == pytest.approx((logits.argmax(1) == labels).float().mean().item())


def test_two_runs_of_the_tuned_recipe_with_the_same_seed_are_identical_on_cpu(mnist_data):
    train, validation = mnist_data

    def run() -> dict:
        torch.manual_seed(0)
        return notebook.train_recipe(notebook.DigitCNN(), train, validation, epochs=2, learning_rate=0.15,
                                     batch_size=128, **notebook.TUNED)

    first, second = run(), run()
    assert all(first[key] == second[key] for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"))
    assert first["val_accuracy"][-1] > 0.5  # it did learn


def test_a_training_that_diverges_stops_naming_the_learning_rate():
    train, validation = random_data()
    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match=r"training diverged; the learning rate 1e\+30 .* is too high"):
        notebook.train_recipe(notebook.DigitCNN(), train, validation, epochs=2, learning_rate=1e30, batch_size=64,
                              **notebook.PLAIN)


def test_a_training_that_stays_at_chance_says_so_naming_the_learning_rate(mnist_data, capsys):
    train, validation = mnist_data
    torch.manual_seed(0)
    notebook.train_recipe(notebook.DigitCNN(), train, validation, epochs=1, learning_rate=10, batch_size=128,
                          **notebook.PLAIN)
    assert "no better than guessing among 10 digits: the learning rate 10" in capsys.readouterr().out
