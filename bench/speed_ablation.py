"""Measure what the notebook's speed choices are worth, one at a time, on this machine.

Times training steps of DigitCNN in the default and the channels-last memory layout (identical
results), and one epoch of feeding batches three ways: a DataLoader with per-image transforms, a DataLoader
over normalised tensors held in memory (Part I's), and slicing those tensors. Prints seconds and ratios.

    python bench/speed_ablation.py          (or: make ablation-speed)
    python bench/speed_ablation.py --rounds 5 --data-root data
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from handwritten_digits import cli, recipe

ROOT = Path(__file__).resolve().parents[1]


class StepTimer:
    """Times training steps (forward, backward, SGD update) of one model variant on fixed random images."""

    def __init__(self, model: nn.Module, channels_last: bool, batch_size: int = 128):
        torch.manual_seed(0)
        self.images, self.labels = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        self.times: list[float] = []
        self.step(warm_up=5)

    def step(self, count: int = 1, warm_up: int = 0) -> None:
        for index in range(warm_up + count):
            start = time.perf_counter()
            loss = F.cross_entropy(self.model(self.images), self.labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if index >= warm_up:
                self.times.append(time.perf_counter() - start)

    def milliseconds(self) -> float:
        return 1000 * statistics.median(self.times)


def data_feeding_seconds(data_root: str = "data") -> dict[str, float]:
    """One epoch of batches of 128 from the 60,000 training images, three ways: a DataLoader over torchvision's MNIST
    with per-image transforms, a DataLoader over normalised tensors in memory (Part I's), and slicing those tensors
    with a shuffled index (no DataLoader)."""
    from torch.utils.data import DataLoader, TensorDataset
    from torchvision import datasets, transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train = datasets.MNIST(data_root, train=True)
    images = recipe.to_model_input(train.data, 0.1307, 0.3081, torch.device("cpu"))

    def sliced():
        order = torch.randperm(len(images))
        for start in range(0, len(images), 128):
            chosen = order[start:start + 128]
            yield images[chosen], train.targets[chosen]

    feeds = {"DataLoader, per-image transforms": lambda: DataLoader(
                 datasets.MNIST(data_root, train=True, transform=transform), batch_size=128, shuffle=True),
             "DataLoader over tensors (Part I)": lambda: DataLoader(
                 TensorDataset(images, train.targets), batch_size=128, shuffle=True),
             "slicing the tensors": sliced}
    seconds = {}
    for name, feed in feeds.items():
        start = time.perf_counter()
        for _ in feed():
            pass
        seconds[name] = time.perf_counter() - start
    return seconds


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything is measured (handwritten_digits/cli.py)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=cli.positive, default=15,
                        help="rounds of 10 training steps per variant, interleaved (default 15)")
    parser.add_argument("--data-root", default="data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from handwritten_digits.mnist_data import ensure_mnist

    ensure_mnist(args.data_root)
    rounds = args.rounds
    print(f"{cli.machine('cpu')}; median of {rounds * 10} training steps per variant, interleaved, batch 128")
    timers = [StepTimer(recipe.DigitCNN(), channels_last=False), StepTimer(recipe.DigitCNN(), channels_last=True)]
    for _ in range(rounds):  # interleaved, so that a busy moment of the machine hits both variants alike
        for timer in timers:
            timer.step(count=10)
    default, channels_last = (timer.milliseconds() for timer in timers)
    print(f"  {'default layout (NCHW, Part I)':<34}{default:7.2f} ms/step")
    print(f"  {'channels-last (Part II (B))':<34}{channels_last:7.2f} ms/step   {default / channels_last:.2f}x faster")

    print("feeding one epoch of 60,000 images in batches of 128 (no training):")
    for name, seconds in data_feeding_seconds(args.data_root).items():
        print(f"  {name:<34}{seconds:7.2f} s")
    steps = -(-60_000 // 128)
    print(f"for scale: {steps} training steps in the default layout take about {steps * default / 1000:.1f} s")


if __name__ == "__main__":
    main()
