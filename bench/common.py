"""What the bench scripts share: the notebook's defaults, MNIST (fetched where missing), its split, training, flags."""

import argparse
import ast
import functools
import json
import platform
import re
from pathlib import Path

import papermill
import torch
from torchvision import datasets

from handwritten_digits import checks, notebook
from handwritten_digits.files import atomic_write, folder_problem
from handwritten_digits.mnist_data import ensure_mnist

ROOT = Path(__file__).resolve().parents[1]
# The notebook's parameters cell, as papermill reads it: {"EPOCHS": 15, "BATCH_SIZE": 128, ...}.
DEFAULTS = {name: ast.literal_eval(parameter["default"]) for name, parameter
            in papermill.inspect_notebook(str(ROOT / "HandWrittenDigitsRecognition.ipynb")).items()}


@functools.cache  # once per process: every later load of the same root reads files already verified
def fetched(root: str) -> Path:
    """MNIST's files in root, fetched where missing and verified; a failed fetch stops with its reason in one line."""
    try:
        return ensure_mnist(root)
    except (OSError, RuntimeError) as error:
        raise SystemExit(f"MNIST is not in {root} and could not be fetched: {error}") from None


def mnist(root: str | Path, train: bool, transform=None) -> datasets.MNIST:
    """MNIST's training or test set, fetched first where missing."""
    fetched(str(root))
    return datasets.MNIST(str(root), train=train, transform=transform)


def notebook_data(seed: int, root: str | Path, device, limit: int | None = None) -> tuple:
    """The notebook's split and normalisation, on the device: (training, validation, test, mean, std)."""
    train_set, test_set = mnist(root, train=True), mnist(root, train=False)
    train_index, val_index = notebook.split_training_set(len(train_set.data), seed)
    mean, std = notebook.pixel_statistics(train_set.data[train_index])
    half = limit and limit // 2  # None: every image
    parts = (train_set, train_index[:limit]), (train_set, val_index[:half]), (test_set, slice(half))
    return (*[(notebook.to_model_input(dataset.data[index], mean, std, device), dataset.targets[index].to(device))
              for dataset, index in parts], mean, std)


def train(ingredients: dict, seed: int, train_data: tuple, watched: tuple, epochs: int, device, channels_last=True,
          bfloat16=False):
    """A DigitCNN seeded and trained as the notebook does, `watched` evaluated after every epoch: (model, history)."""
    torch.manual_seed(seed)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = notebook.DigitCNN().to(device, memory_format=layout)
    torch.manual_seed(seed)
    settings = {"learning_rate": DEFAULTS["LEARNING_RATE"], "batch_size": DEFAULTS["BATCH_SIZE"], **ingredients}
    # FAST's ingredients set the learning rate and the batch size too; bfloat16: Part II (D)'s autocast
    return model, notebook.train_recipe(notebook.Bfloat16(model) if bfloat16 else model, train_data, watched, epochs,
                                        **settings)


def write_json(path: Path, data: dict) -> None:
    """`data` as JSON in `path`, written whole (files.atomic_write)."""
    with atomic_write(path) as temporary:
        temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def device(name: str) -> str:
    """A `type=` for --device: one PyTorch can name (the parameters cell's rule, "auto" aside), usable here."""
    if name == "auto" or checks.parameter_problems({**DEFAULTS, "DEVICE": name}):
        raise argparse.ArgumentTypeError(f"must be 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number), not {name!r}")
    if problem := checks.device_problem(name):
        raise argparse.ArgumentTypeError(f"{name!r} cannot be used here: {problem}; choose another device "
                                         "(--device cpu always works)")
    return name


def writable_folder(text: str) -> Path:
    """A `type=` for an output folder: created if missing, and refused (before any training) unless it takes a file."""
    if problem := folder_problem(folder := Path(text).expanduser()):
        raise argparse.ArgumentTypeError(f"cannot write in the folder {text!r} ({problem}): give a folder you can "
                                         "write to (it is created if missing)")
    return folder


def output_file(text: str) -> Path:
    """A `type=` for a result file: a file's name (not a folder's) in a folder that can take it."""
    if (path := Path(text).expanduser()).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: give the result's file name, such as {path / 'x.json'}")
    return writable_folder(str(path.parent)) / path.name


def at_least(lowest: int):
    """A `type=` for a whole number of at least `lowest`."""
    def whole_number(text: str) -> int:
        if not re.fullmatch(r"\s*[+-]?\d+\s*", text) or int(text) < lowest:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {lowest}, not {text!r}")
        return int(text)
    return whole_number


def training_parser(description: str) -> argparse.ArgumentParser:
    """The flags of the scripts that train: --quick, --epochs, --seeds, --device, --data-root."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 training images, 1 epoch, 1 seed")
    parser.add_argument("--epochs", type=at_least(1), default=DEFAULTS["EPOCHS"], help="default: the notebook's")
    parser.add_argument("--seeds", type=at_least(1), default=3, help="seeds 0 to N-1 (default 3)")
    parser.add_argument("--device", type=device, default="cpu" if checks.device_problem("cuda") else "cuda")
    parser.add_argument("--data-root", default=DEFAULTS["DATA_ROOT"])
    return parser


def parsed(parser: argparse.ArgumentParser, argv: list[str] | None, **quick) -> argparse.Namespace:
    """The parsed command line, with `limit`, the training images to use: None (all), or 2,000 with --quick, which
    also sets 1 epoch, 1 seed and the script's own `quick` settings."""
    args = parser.parse_args(argv)
    vars(args).update({"limit": 2_000, "epochs": 1, "seeds": 1, **quick} if args.quick else {"limit": None})
    return args


def machine(device) -> str:
    """Where a result was measured: the GPU, or the CPU (Linux names it only in /proc/cpuinfo) and threads; torch."""
    if torch.device(device).type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    cpu = found[1] if (found := re.search(r"model name\s*:\s*(.*)", info)) else platform.processor()
    return f"CPU {cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"
