"""Load the notebook's own code: its cells tagged "recipe" (definitions), the definitions of its "setup" cell and the
defaults of its "parameters" cell, so that scripts and tests run the very code the notebook teaches, not a copy."""

import ast
import json
from pathlib import Path
from types import SimpleNamespace

from IPython.core.inputtransformer2 import TransformerManager

NOTEBOOK = Path(__file__).resolve().parent / "HandWrittenDigitsRecognition.ipynb"
DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)


def cells_tagged(tag: str, notebook: Path = NOTEBOOK) -> list[dict]:
    """The notebook's code cells carrying the tag, in order; an error when there is none."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    tagged = [cell for cell in cells if tag in cell.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise RuntimeError(f"{notebook} has no cells tagged {tag!r}")
    return tagged


def load_recipe(notebook: Path = NOTEBOOK) -> SimpleNamespace:
    """Run, in the notebook's order, its "recipe" cells and the imports, functions and classes of its "setup" cell
    (not the set-up's checks and downloads, which act on the notebook's parameters); return what they define."""
    namespace: dict = {"__name__": "notebook_recipe"}
    for cell in json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "recipe" not in tags and "setup" not in tags:
            continue
        tree = ast.parse(TransformerManager().transform_cell("".join(cell["source"])))  # IPython's %magics too
        if "recipe" not in tags:
            tree.body = [node for node in tree.body if isinstance(node, DEFINITIONS)]
        exec(compile(tree, f"{Path(notebook).name}:{'+'.join(tags)}", "exec"), namespace)
    return SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})


def notebook_parameters(notebook: Path = NOTEBOOK) -> dict:
    """The values the notebook's parameters cell sets (EPOCHS, LEARNING_RATE, BATCH_SIZE, ...)."""
    namespace: dict = {}
    exec("".join(cells_tagged("parameters", notebook)[0]["source"]), namespace)
    return {name: value for name, value in namespace.items() if name.isupper()}


def notebook_split(images, seed: int):
    """The notebook's seeded split of the 60,000 training images into 55,000 to train on and 5,000 to validate on, and
    the mean and std of the training pixels: (train_index, val_index, mean, std)."""
    import torch

    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    train_index, val_index = order[:55_000], order[55_000:]
    pixels = images[train_index].float() / 255
    return train_index, val_index, pixels.mean().item(), pixels.std().item()


def notebook_data(recipe, seed: int, data_root: str, device, limit: int | None = None):
    """The notebook's split and normalisation: (images, labels) on the device for training, validation and test.
    With a limit, `limit` training images and limit // 2 of the validation and of the test images."""
    import torch
    from torchvision import datasets

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


def train_on_notebook_split(recipe, make_model, epochs: int, seed: int, data_root: str, device,
                            limit: int | None = None, trainer=None, watch: str = "validation", **options):
    """make_model() trained as the notebook trains it: its split, seeded right before the network is made and again
    before training, `trainer` (default: its fit) at its learning rate and batch size, evaluated after every epoch on
    the validation images (as in the notebook) or, with watch="test", on the test images (only for a curve that
    stands beside another program's test curve: no setting may be chosen on it). Returns the model and the history."""
    import torch

    if watch not in ("validation", "test"):
        raise ValueError(f"watch must be 'validation' or 'test', not {watch!r}")
    train_data, val_data, test_data = notebook_data(recipe, seed, data_root, device, limit)
    parameters = notebook_parameters()
    torch.manual_seed(seed)
    model = make_model().to(device)
    torch.manual_seed(seed)
    history = (trainer or recipe.fit)(model, train_data, val_data if watch == "validation" else test_data, epochs,
                                      parameters["LEARNING_RATE"], parameters["BATCH_SIZE"], **options)
    return model, history
