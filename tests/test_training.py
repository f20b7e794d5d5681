"""The notebook's exported training code (handwritten_digits.notebook), in-process: augmentation, the optimiser and
its schedule, Part I's training cell against Part II's train_recipe, evaluation, and a training that diverges."""

import inspect

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from handwritten_digits import notebook


def trained_from_seed(*args, make=notebook.DigitCNN, train=notebook.train_recipe, **options) -> tuple[nn.Module, list]:
    """Seed 0, make the network and train it: the network and the training's rows."""
    torch.manual_seed(0)  # the same initial weights, shuffling and dropout
    model = make()
    return model, train(model, *args, **options)


def same_weights(first: nn.Module, second: nn.Module) -> bool:
    return all(map(torch.equal, first.state_dict().values(), second.state_dict().values()))


def fast_network() -> nn.Module:
    """Part II (D)'s network: a channels-last DigitCNN under bfloat16 autocast."""
    return notebook.Bfloat16(notebook.DigitCNN().to(memory_format=torch.channels_last))


def test_augmentation_moves_each_image_keeps_the_labels_and_is_the_identity_at_zero():
    samples = [(torch.randn(1, 28, 28), torch.tensor(digit)) for digit in range(6)]
    images, labels = notebook.augmented_batch(samples)
    stacked = torch.stack([image for image, _ in samples])
    assert (images.shape, labels.tolist()) == (stacked.shape, list(range(6)))
    assert not torch.allclose(images, stacked)
    assert torch.allclose(notebook.random_affine(stacked, max_degrees=0, max_shift=0), stacked, atol=1e-5)


def test_train_recipe_with_the_plain_ingredients_trains_with_sgd_momentum_and_a_one_cycle_learning_rate(mnist_data):
    """train_recipe's defaults, which are PLAIN, give the weights of the recipe that section 6's cell writes out: SGD
    with momentum 0.9, OneCycleLR without a momentum cycle, train_one_epoch."""
    def part_one(model):
        loader = DataLoader(TensorDataset(*mnist_data[0]), batch_size=64, shuffle=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.15, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.15, cycle_momentum=False,
                                                        total_steps=len(loader))
        notebook.train_one_epoch(model, loader, torch.nn.CrossEntropyLoss(), optimizer, scheduler, "cpu")

    defaults = inspect.signature(notebook.train_recipe).parameters
    assert {name: defaults[name].default for name in notebook.PLAIN} == notebook.PLAIN
    recipe = trained_from_seed(*mnist_data, 1, 0.15, 64)[0]
    assert same_weights(trained_from_seed(train=part_one)[0], recipe)


def test_the_optimisers_options_add_nesterov_weight_decay_and_a_momentum_cycle():
    optimizer, scheduler = notebook.sgd_one_cycle(torch.nn.Linear(2, 2), 0.15, 100, weight_decay=notebook.WEIGHT_DECAY,
                                                  nesterov=True, momentum_range=notebook.MOMENTUM_RANGE)
    group, momenta = optimizer.param_groups[0], []
    assert (group["nesterov"], group["weight_decay"]) == (True, 5e-4)
    for _ in range(100):
        momenta.append(group["momentum"])
        optimizer.step()
        scheduler.step()
    assert (min(momenta), max(momenta)) == (pytest.approx(0.85), pytest.approx(0.95))


def test_evaluate_reports_plain_cross_entropy_and_accuracy(mnist_data):
    model, (images, labels) = notebook.DigitCNN(), mnist_data[1]
    loss, accuracy = notebook.evaluate(model, images, labels)
    with torch.no_grad():
        logits = model.eval()(images)
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
    assert accuracy == pytest.approx((logits.argmax(1) == labels).float().mean().item())


def test_two_runs_of_the_tuned_recipe_with_the_same_seed_are_identical_on_cpu(mnist_data):
    runs = [trained_from_seed(*mnist_data, 2, 0.15, 128, **notebook.TUNED)[1] for _ in range(2)]
    assert [{**row, "seconds": 0} for row in runs[0]] == [{**row, "seconds": 0} for row in runs[1]]  # all but the time
    assert runs[0][-1]["val_accuracy"] > 0.5  # it did learn


def test_whole_batches_are_the_standard_loaders_and_the_fast_recipe_learns_in_bfloat16_channels_last(mnist_data):
    """Part II (D)'s tools: whole_batches gives the very weights of the standard DataLoader; Bfloat16 hands back
    float32 logits and trains a channels-last network with FAST's settings."""
    standard, sliced = (trained_from_seed(*mnist_data, 1, 0.15, 64, whole_batches=whole)[0] for whole in (False, True))
    assert same_weights(standard, sliced)
    fast, history = trained_from_seed(*mnist_data, 5, make=fast_network, **notebook.FAST)  # 40 steps of 2,000 images
    assert fast(mnist_data[1][0][:4]).dtype == torch.float32
    assert history[-1]["val_accuracy"] > 0.5


@pytest.mark.slow
def test_the_compiled_fast_network_learns_as_the_uncompiled_one(mnist_data):
    accuracies = [trained_from_seed(*mnist_data, 5, make=make, **notebook.FAST)[1][-1]["val_accuracy"]
                  for make in (fast_network, lambda: torch.compile(fast_network()))]
    assert min(accuracies) > 0.5
    assert abs(accuracies[0] - accuracies[1]) < 0.05


def test_a_training_whose_weights_stop_being_numbers_stops_naming_the_learning_rate(mnist_data):
    """A learning rate far too high leaves weights or batch-norm statistics that are not finite: the epoch stops."""
    torch.manual_seed(0)
    with pytest.raises(FloatingPointError, match=r"training diverged: the learning rate 100 may be too high"):
        notebook.train_recipe(notebook.DigitCNN(), *mnist_data, 1, 100, 64, **notebook.PLAIN)


def test_whole_batches_refuse_the_augmentation_they_would_skip(mnist_data):
    with pytest.raises(ValueError, match="whole_batches=True cannot augment"):
        notebook.train_recipe(notebook.DigitCNN(), *mnist_data, 1, 0.15, 64, augment=True, whole_batches=True)
