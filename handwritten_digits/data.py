"""The notebook's data and training, for the scripts and the tests: its split, its normalisation and its recipes, at
the defaults of its parameters cell, so that they train exactly as the notebook does."""

from __future__ import annotations

import torch
from torchvision import datasets

from . import recipe


def notebook_split(images: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Section 4's split of the 60,000 training images and the training pixels' statistics:
    (train_index, val_index, mean, std)."""
    train_index, val_index = recipe.split_training_set(len(images), seed)
    return (train_index, val_index, *recipe.pixel_statistics(images[train_index]))


def notebook_data(seed: int, data_root: str, device: torch.device, limit: int | None = None) -> tuple:
    """The notebook's split and normalisation: (images, labels) on the device for training, validation and test.
    With a limit, `limit` training images and limit // 2 of the validation and of the test images."""
    train_set = datasets.MNIST(data_root, train=True)
    test_set = datasets.MNIST(data_root, train=False)
    train_index, val_index, mean, std = notebook_split(train_set.data, seed)
    test_index = torch.arange(len(test_set.data))
    if limit:
        train_index, val_index, test_index = train_index[:limit], val_index[: limit // 2], test_index[: limit // 2]
    return tuple((recipe.to_model_input(images[index], mean, std, device), labels[index].to(device))
                 for images, labels, index in ((train_set.data, train_set.targets, train_index),
                                               (train_set.data, train_set.targets, val_index),
                                               (test_set.data, test_set.targets, test_index)))


def train_on_notebook_split(make_model, epochs: int, seed: int, data_root: str, device: torch.device,
                            limit: int | None = None, watch: str = "validation", ingredients: dict | None = None,
                            graphed: bool = False):
    """make_model() trained as the notebook trains it: its split, seeded right before the network is made and again
    before training, its train_recipe with the ingredients (default: Part I's plain recipe, recipe.PLAIN; Part II
    (B)'s full one is recipe.FULL) at its learning rate and batch size, or with graphed=True Part II (D)'s
    fit_graphed (Part I's recipe, each step a CUDA graph). After every epoch it is evaluated on the validation images
    (as in the notebook) or, with watch="test", on the test images (only for a curve that stands beside another
    program's test curve: no setting may be chosen on it). Returns the model and the history."""
    if watch not in ("validation", "test"):
        raise ValueError(f"watch must be 'validation' or 'test', not {watch!r}")
    if graphed and ingredients not in (None, recipe.PLAIN):
        raise ValueError("the CUDA-graph step (fit_graphed) trains Part I's plain recipe only")
    train_data, val_data, test_data = notebook_data(seed, data_root, device, limit)
    watched = val_data if watch == "validation" else test_data
    torch.manual_seed(seed)
    model = make_model().to(device)
    torch.manual_seed(seed)
    if graphed:
        history = recipe.fit_graphed(model, train_data, watched, epochs, recipe.LEARNING_RATE, recipe.BATCH_SIZE)
    else:
        history = recipe.train_recipe(model, train_data, watched, epochs, recipe.LEARNING_RATE, recipe.BATCH_SIZE,
                                      **(ingredients or recipe.PLAIN))
    return model, history
