"""Measure the answers to the notebook's exercises that the accuracy ablation does not cover.

0. One epoch: Part I's plain recipe trained for 1 epoch, for several seeds: validation accuracy and time.
1. Wider layers: DigitCNN(widths=(32, 64, 128)) and the default widths, trained as the notebook trains, for
   --epochs epochs and several seeds, in turn: parameters, validation accuracy, training time and its ratio.
2. Part I's plain recipe for the default 15 epochs with and without augmentation: training against validation
   accuracy.
3. A digit drawn small in a corner of the drawing canvas: validation digits (the 5,000 training images that the
   notebook's SEED holds out, which its network never trained on) drawn on a 280 x 280 canvas with the canvas's
   22-pixel pen, large and centred, small and centred, or small in a corner, read by Part II (E)'s network, which
   `make run` saves (outputs/digit_cnn_tuned.pt; --model names another).
4. Fine pens: 300 validation digits enlarged six times, strokes thinned with a k x k minimum filter, for
   k = 3, 5, 7, 9, read with and without mnist_style's thickening, by the same model.

Every answer compares settings on validation images, never on the test images. The networks of 1 and 2 are stored
channels-last (Part II's speed variant: the same arithmetic, 1.4 times faster on a CPU), both sides of each
comparison alike.

    python bench/exercise_answers.py                                # about 25 minutes on a 2-core CPU
    python bench/exercise_answers.py --parts canvas fine-pen        # the last two only (under a minute)
    python bench/exercise_answers.py --quick                        # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from handwritten_digits import cli, recipe
from handwritten_digits.checkpoints import load_checkpoint
from handwritten_digits.data import notebook_split, train_on_notebook_split

ROOT = Path(__file__).resolve().parents[1]
PEN = 22  # DrawingPad's line width on its 280 x 280 canvas
CANVAS = 280
SAVED_MODEL = ROOT / "outputs" / "digit_cnn_tuned.pt"  # Part II (B)'s network: `make run` saves it, Part II (E) reads


def train(widths: tuple[int, int, int], augment: bool, epochs: int, seed: int, limit: int | None) -> dict:
    """Part I's plain recipe on the notebook's split (with augment, Part II (B)'s augmentation added), the validation
    images evaluated after every epoch."""
    model, history = train_on_notebook_split(
        lambda: recipe.DigitCNN(widths=widths).to(memory_format=torch.channels_last), epochs, seed, "data",
        torch.device("cpu"), limit, ingredients={**recipe.PLAIN, "augment": augment})
    return {**history, "parameters": sum(p.numel() for p in model.parameters())}


def wider_layers(epochs: int, seeds: int, limit: int | None) -> None:
    """The default widths and twice as wide, trained one after the other for each seed, so that the times compare."""
    runs = {widths: [] for widths in ((16, 32, 64), (32, 64, 128))}
    for seed in range(seeds):
        for widths, done in runs.items():
            done.append(train(widths, False, epochs, seed, limit))
    medians = {}
    for widths, done in runs.items():
        accuracies = [run["val_accuracy"][-1] for run in done]
        medians[widths] = statistics.median(sum(run["seconds"]) for run in done)
        print(f"widths {widths}, {done[0]['parameters']:,} parameters, {epochs} epochs, seeds {list(range(seeds))}: "
              f"validation accuracy {', '.join(f'{a:.2%}' for a in accuracies)} "
              f"(mean {statistics.mean(accuracies):.2%}), "
              f"training {medians[widths]:.1f} s (median)", flush=True)
    print(f"the wider network takes {medians[(32, 64, 128)] / medians[(16, 32, 64)]:.2f} times as long", flush=True)


def one_epoch(seeds: int, limit: int | None) -> None:
    """Part I's plain recipe trained for one epoch (its schedule fitted to that epoch), for several seeds."""
    runs = [train((16, 32, 64), False, 1, seed, limit) for seed in range(seeds)]
    accuracies = [run["val_accuracy"][-1] for run in runs]
    print(f"Part I's plain recipe, 1 epoch, seeds {list(range(seeds))}: validation accuracy "
          f"{', '.join(f'{a:.2%}' for a in accuracies)} (mean {statistics.mean(accuracies):.2%}), "
          f"training {statistics.median(run['seconds'][0] for run in runs):.1f} s (median)", flush=True)


def augmentation_gap(epochs: int, limit: int | None) -> None:
    print(f"Part I's plain recipe, {epochs} epochs, seed 0, with and without augmentation:")
    for augment in (True, False):
        run = train((16, 32, 64), augment, epochs, 0, limit)
        print(f"  augment={augment!s:<6} final training accuracy {run['train_accuracy'][-1]:.2%} (the images as "
              f"trained on, dropout on), validation accuracy {run['val_accuracy'][-1]:.2%}, best validation accuracy "
              f"{max(run['val_accuracy']):.2%} at epoch {run['val_accuracy'].index(max(run['val_accuracy'])) + 1}",
              flush=True)


def drawn_with_the_pen(digit: np.ndarray, size: int, top: int, left: int) -> Image.Image:
    """An MNIST digit as if drawn with the canvas's pen: scaled to size x size, strokes widened to PEN pixels."""
    scaled = Image.fromarray(digit).resize((size, size), Image.BICUBIC).point(lambda v: 255 if v > 127 else 0)
    stroke = 2.33 * size / 28  # MNIST's average stroke width, scaled
    grow = 2 * round(max(PEN - stroke, 0) / 2) + 1
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    canvas.paste(scaled.filter(ImageFilter.MaxFilter(grow)), (left, top))
    return canvas


def saved_model(path: Path) -> tuple[torch.nn.Module, dict]:
    model = recipe.DigitCNN()
    return model, load_checkpoint(path, model, torch.device("cpu"))


def validation_digits(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` of the 5,000 validation images of the notebook's default SEED (uint8) and their labels."""
    from torchvision import datasets

    mnist = datasets.MNIST("data", train=True)
    chosen = notebook_split(mnist.data, recipe.SEED)[1][:count]
    return mnist.data[chosen].numpy(), mnist.targets[chosen].numpy()


def small_in_a_corner(count: int, model_path: Path) -> None:
    (model, saved), cpu = saved_model(model_path), torch.device("cpu")
    digits, labels = validation_digits(count)
    print(f"{count} validation digits drawn on the {CANVAS} x {CANVAS} canvas with its {PEN}-pixel pen, read by "
          f"{model_path.name}")
    for name, size, top, left in (("large, centred (200 px)", 200, 40, 40),
                                  ("small, centred (56 px)", 56, 112, 112),
                                  ("small, top-left corner (56 px)", 56, 8, 8),
                                  ("tiny, bottom-right corner (40 px)", 40, 232, 232)):
        started, predictions = time.perf_counter(), []
        for digit in digits:
            try:
                predictions.append(recipe.predict_digit(model, drawn_with_the_pen(digit, size, top, left),
                                                        saved["mean"], saved["std"], cpu)[0])
            except ValueError:  # refused by mnist_style (too small, or a blot no longer than the pen is wide)
                predictions.append(-1)
        accuracy = float(np.mean(np.array(predictions) == labels))
        refused = predictions.count(-1) / len(predictions)
        print(f"  {name:<36} accuracy {accuracy:6.1%}, refused {refused:6.1%}  ({time.perf_counter() - started:.1f} s)",
              flush=True)


def fine_pens(count: int, model_path: Path) -> None:
    """Validation digits written with a fine pen: enlarged six times (as Part II (E) does), thinned k x k."""
    model, saved = saved_model(model_path)
    digits, truth = validation_digits(count)
    print(f"{count} fine-pen validation digits (enlarged 6 times, then MinFilter(k)), read by {model_path.name}")
    for k in (3, 5, 7, 9):
        fine = [np.asarray(Image.fromarray(digit).resize((168, 168), Image.BICUBIC).filter(ImageFilter.MinFilter(k)))
                for digit in digits]
        accuracies = []
        for thicken in (False, True):
            fields = torch.from_numpy(np.stack([recipe.mnist_style(image, thicken=thicken) for image in fine]))
            inputs = ((fields - saved["mean"]) / saved["std"])[:, None]
            predictions = recipe.predict_probabilities(model, inputs).argmax(1).numpy()
            accuracies.append(float(np.mean(predictions == truth)))
        print(f"  MinFilter({k}): accuracy without thickening {accuracies[0]:6.1%}, with {accuracies[1]:6.1%}",
              flush=True)


PARTS = ("one-epoch", "wider", "augmentation", "canvas", "fine-pen")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything is trained (handwritten_digits/cli.py)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=cli.positive, default=5)
    parser.add_argument("--seeds", type=cli.positive, default=3)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--model", type=Path, default=SAVED_MODEL,
                        help="the network that reads the canvas and fine-pen digits (default: %(default)s)")
    args = parser.parse_args(argv)
    reading = [part for part in args.parts if part in ("canvas", "fine-pen")]
    if reading and not args.model.is_file():
        parser.error(f"argument --parts: {' and '.join(reading)} read digits with the model in {args.model}, which "
                     f"is missing: run `make run` first (it saves that model), or leave out {' and '.join(reading)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from handwritten_digits.mnist_data import ensure_mnist

    ensure_mnist("data")
    quick = args.quick
    runs = {"one-epoch": lambda: one_epoch(1, 2_000) if quick else one_epoch(args.seeds, None),
            "wider": lambda: wider_layers(1, 1, 2_000) if quick else wider_layers(args.epochs, args.seeds, None),
            "augmentation": lambda: augmentation_gap(1, 2_000) if quick else augmentation_gap(recipe.EPOCHS, None),
            "canvas": lambda: small_in_a_corner(20 if quick else 1_000, args.model),
            "fine-pen": lambda: fine_pens(20 if quick else 300, args.model)}
    for part in args.parts:
        runs[part]()


if __name__ == "__main__":
    main()
