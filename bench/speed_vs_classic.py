"""Speed: the notebook's recipes against the classic PyTorch MNIST example, trained on one machine in one run.

For each recipe it reports training seconds per epoch, the training time to reach 99.0 % test accuracy, the final
test accuracy and the peak memory, then the ratios. Each training runs in a process of its own, so that its peak
memory is its own. The notebook's recipes are Part I's plain recipe (trained as Part I trains it) and the recipe that
Part II (B) keeps (augmentation, label smoothing and weight decay, chosen on validation images by
bench/recipe_ladder.py; stored channels-last, as Part II (B) trains it).

    python bench/speed_vs_classic.py            # the full run (make bench; about 30 minutes on a 2-core CPU)
    python bench/speed_vs_classic.py --seeds 5  # the notebook's recipes with seeds 0 to 4
    python bench/speed_vs_classic.py --quick    # smoke run on a few thousand images (under a minute)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import time
from concurrent.futures import ProcessPoolExecutor

import matplotlib
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from handwritten_digits import notebook
from handwritten_digits.files import atomic_write

# isort: split
import common  # bench/common.py: the bench scripts' shared helpers (a script's own folder is on its path)

TARGET = 0.99  # the accuracy whose training time is compared
RECIPES = {"plain": ("Part I's plain recipe", False), "tuned": ("Part II (B)'s kept recipe", True)}  # channels-last?


class ClassicNet(nn.Module):
    """pytorch/examples' mnist network: Conv(1->32) ReLU Conv(32->64) ReLU MaxPool Dropout(0.25) Linear(9216->128)
    ReLU Dropout(0.5) Linear(128->10), written from its description."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3, 1), nn.Conv2d(32, 64, 3, 1)
        self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)
        self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = self.dropout1(F.max_pool2d(x, 2)).flatten(1)
        return F.log_softmax(self.fc2(self.dropout2(F.relu(self.fc1(x)))), dim=1)


def run_classic(epochs: int, seed: int, args: argparse.Namespace) -> dict:
    """Adadelta(lr 1.0) with StepLR(1, 0.7), batch 64 through a DataLoader of per-image transforms, as the example."""
    torch.manual_seed(seed)
    device = torch.device(args.device)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set, test_set = (common.mnist(args.data_root, train, transform) for train in (True, False))
    if args.limit:
        train_set, test_set = Subset(train_set, range(args.limit)), Subset(test_set, range(args.limit // 2))
    options = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True, **options)
    test_loader = DataLoader(test_set, batch_size=1000, **options)
    model = ClassicNet().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    seconds, accuracies = [], []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for images, labels in train_loader:
            optimizer.zero_grad()
            F.nll_loss(model(images.to(device)), labels.to(device)).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the queued work done, so that the timer reads its time
        seconds.append(time.perf_counter() - start)
        scheduler.step()
        model.eval()
        with torch.no_grad():
            correct = sum((model(images.to(device)).argmax(1) == labels.to(device)).sum().item()
                          for images, labels in test_loader)
        accuracies.append(correct / len(test_set))
    return {"epoch_seconds": seconds, "test_accuracy": accuracies}


def run(recipe: str, epochs: int, seed: int, args: argparse.Namespace) -> dict:
    """One training, in a process of its own: the classic example, or one of the notebook's recipes trained by its own
    code on its split with the test set watched after every epoch (a curve to stand beside the classic example's: no
    setting is chosen on it). Adds the peak memory: resident (CPU) or allocated on the GPU, in MB."""
    if recipe == "classic":
        result = run_classic(epochs, seed, args)
    else:
        train_data, _, test_data, _, _ = common.notebook_data(seed, args.data_root, args.device, args.limit)
        _, history = common.train(getattr(notebook, recipe.upper()), seed, train_data, test_data, epochs, args.device,
                                  channels_last=RECIPES[recipe][1])
        result = {"epoch_seconds": history["seconds"], "test_accuracy": history["val_accuracy"]}
    result["peak_memory_mb"] = (torch.cuda.max_memory_allocated() / 1e6 if args.device.startswith("cuda")
                                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3)  # kB on Linux
    return result


def spawn(recipe: str, epochs: int, seed: int, args: argparse.Namespace) -> dict:
    """run() in a fresh process, so that its peak memory is its own; its result, printed in one line."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as worker:
        result = worker.submit(run, recipe, epochs, seed, args).result()
    result.update(recipe=recipe, epochs=epochs, seed=seed)
    print(f"  {recipe:<8} seed {seed} {epochs:>2} epochs: {sum(result['epoch_seconds']):7.1f} s training, "
          f"test accuracy by epoch {' '.join(f'{a:.2%}' for a in result['test_accuracy'])}", flush=True)
    return result


def time_to_target(run: dict) -> float | None:
    """Training time until the first epoch-end evaluation at or above TARGET."""
    reached = [epoch for epoch, accuracy in enumerate(run["test_accuracy"]) if accuracy >= TARGET]
    return sum(run["epoch_seconds"][: reached[0] + 1]) if reached else None


def shortest_run(recipe: str, seed: int, args: argparse.Namespace) -> dict | None:
    """The shortest run, in whole epochs, that ends at or above TARGET (the one-cycle schedule is fitted to the run's
    length, so each length is a run of its own), or None."""
    for epochs in range(1, args.epochs + 1):
        if (trial := spawn(recipe, epochs, seed, args))["test_accuracy"][-1] >= TARGET:
            return trial
    return None


def measure_notebook(recipe: str, args: argparse.Namespace) -> dict:
    """Full-length runs for every seed, then per seed the shortest run that reaches TARGET; their summary."""
    seeds = range(args.seeds)
    print(f"{RECIPES[recipe][0]}: {args.epochs} epochs, seeds {list(seeds)}, then the shortest run to 99 %", flush=True)
    full = [spawn(recipe, args.epochs, seed, args) for seed in seeds]
    fastest = [shortest_run(recipe, seed, args) for seed in seeds]
    final = [run["test_accuracy"][-1] for run in full]
    reached = [sum(run["epoch_seconds"]) for run in fastest if run]
    everyone = len(reached) == len(fastest)
    return {"epochs": args.epochs,
            "seconds_per_epoch": statistics.mean(s for run in full for s in run["epoch_seconds"]),
            "time_to_target_s": statistics.mean(reached) if everyone else None,
            "time_to_target_s_worst": max(reached) if everyone else None,
            "epochs_to_target": [len(run["epoch_seconds"]) if run else None for run in fastest],
            "final_test_accuracy_mean": statistics.mean(final),
            "final_test_accuracy_stdev": statistics.stdev(final) if len(final) > 1 else 0.0,
            "final_test_accuracy_by_seed": final,
            "training_seconds_full": [sum(run["epoch_seconds"]) for run in full],
            "peak_memory_mb": max(run["peak_memory_mb"] for run in full),
            "runs": [*full, *[run for run in fastest if run]]}


def ratio(slower: float | None, faster: float | None) -> float | None:
    """How many times faster, or None where either time is missing (target not reached)."""
    return slower / faster if slower and faster else None


def main(args: argparse.Namespace) -> dict:
    common.mnist(args.data_root, train=True)  # fetched once, here: a failure is one line, before any training
    print(f"classic PyTorch example: {args.classic_epochs} epochs, seed 1", flush=True)
    classic = spawn("classic", args.classic_epochs, 1, args)
    summary = {"machine": common.machine(args.device), "target_accuracy": TARGET,
               "classic": {"epochs": args.classic_epochs,
                           "seconds_per_epoch": statistics.mean(classic["epoch_seconds"]),
                           "time_to_target_s": time_to_target(classic),
                           "final_test_accuracy": classic["test_accuracy"][-1],
                           "peak_memory_mb": classic["peak_memory_mb"]}}
    runs = [classic]
    for recipe in RECIPES:
        ours = summary[recipe] = measure_notebook(recipe, args)
        runs += ours.pop("runs")
        theirs = summary["classic"]
        ours["speedup_time_to_target"] = ratio(theirs["time_to_target_s"], ours["time_to_target_s"])
        ours["speedup_time_to_target_worst_seed"] = ratio(theirs["time_to_target_s"], ours["time_to_target_s_worst"])
        ours["speedup_per_epoch"] = ratio(theirs["seconds_per_epoch"], ours["seconds_per_epoch"])
    summary["runs"] = runs
    report(summary)
    write_outputs(summary, args)
    return summary


def report(summary: dict) -> None:
    """The summary as a table, with each recipe's seeds and its ratios to the classic example."""
    def seconds(value):
        return f"{value:8.1f} s" if value is not None else "  not reached"

    theirs = summary["classic"]
    print(f"\nmachine: {summary['machine']}\n{'recipe':<28}{'s/epoch':>9}{'time to 99 %':>14}"
          f"{'final test accuracy':>26}{'peak memory':>14}")
    print(f"{'classic example':<28}{theirs['seconds_per_epoch']:>9.1f}{seconds(theirs['time_to_target_s']):>14}"
          f"{theirs['final_test_accuracy']:>20.2%} ({theirs['epochs']} ep){theirs['peak_memory_mb']:>9.0f} MB")
    for recipe, (label, _) in RECIPES.items():
        ours = summary[recipe]
        spread = f"{ours['final_test_accuracy_mean']:.2%} ± {ours['final_test_accuracy_stdev']:.2%}"
        print(f"{label:<28}{ours['seconds_per_epoch']:>9.1f}{seconds(ours['time_to_target_s']):>14}"
              f"{spread:>20} ({ours['epochs']} ep){ours['peak_memory_mb']:>9.0f} MB")
        print(f"  final accuracy by seed: {', '.join(f'{a:.2%}' for a in ours['final_test_accuracy_by_seed'])}; "
              f"epochs to 99 % by seed: {ours['epochs_to_target']}; {ours['epochs']}-epoch training "
              f"{', '.join(f'{t:.1f}' for t in ours['training_seconds_full'])} s")
        if ours["speedup_time_to_target"]:
            print(f"  time to 99 %: {ours['speedup_time_to_target']:.1f}x faster than the classic example "
                  f"(worst seed {ours['speedup_time_to_target_worst_seed']:.1f}x); "
                  f"per epoch {ours['speedup_per_epoch']:.1f}x faster")
        else:
            print(f"  time to 99 %: not reached by both recipes; per epoch {ours['speedup_per_epoch']:.1f}x faster")


def write_outputs(summary: dict, args: argparse.Namespace) -> None:
    """speed_vs_classic.json, and a figure of test accuracy against training time (seed 0's full-length runs)."""
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_write(args.output_dir / "speed_vs_classic.json") as temporary:
        temporary.write_text(json.dumps(summary, indent=2))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    curves = [("classic PyTorch example", summary["runs"][0])]
    curves += [(f"{label} (seed 0)", next(run for run in summary["runs"] if run["recipe"] == recipe
                                          and run["seed"] == 0 and run["epochs"] == args.epochs))
               for recipe, (label, _) in RECIPES.items()]
    for label, run in curves:
        elapsed = [sum(run["epoch_seconds"][: i + 1]) for i in range(len(run["epoch_seconds"]))]
        ax.plot(elapsed, [100 * a for a in run["test_accuracy"]], "o-", label=label)
    ax.axhline(100 * TARGET, color="gray", linestyle="--", linewidth=1, label="99 %")
    ax.set(xscale="log", xlabel="training time (s, log scale)", ylabel="test accuracy (%)",
           title=f"Test accuracy after each epoch\n{summary['machine']}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(args.output_dir / "speed_vs_classic.png") as temporary:
        fig.savefig(temporary, dpi=90, format="png")
    print(f"wrote {args.output_dir / 'speed_vs_classic.json'} and {args.output_dir / 'speed_vs_classic.png'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything is trained."""
    parser = common.training_parser(__doc__)
    parser.add_argument("--classic-epochs", type=common.at_least(1), default=14)
    parser.add_argument("--output-dir", type=common.writable_folder, default=common.DEFAULTS["OUTPUT_DIR"])
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.classic_epochs, args.seeds, args.limit = 1, 1, 1, 2_000
    return args


if __name__ == "__main__":
    main(parse_args())
