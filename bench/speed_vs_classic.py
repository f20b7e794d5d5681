"""Speed: the notebook's recipes (Part I's PLAIN, Part II (B)'s TUNED stored channels-last, Part II (D)'s FAST)
against the classic PyTorch MNIST example, in one run on one machine: seconds per epoch, time to 99.0 % test accuracy,
final accuracy (`make bench`; docs/benchmarks.md). --quick: smoke run; --choose-fast: FAST's schedule on validation."""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import transforms

from handwritten_digits import notebook

# isort: split
import common  # bench/common.py (a script's own folder is on its path)

TARGET = 0.99  # the accuracy whose training time is compared
LABELS = {"classic": "classic example", "plain": "Part I's plain recipe", "tuned": "Part II (B)'s kept recipe",
          "fast": "Part II (D)'s fast recipe"}
# --choose-fast's candidates: (B)'s label smoothing and weight decay or none; the learning rate scaled with the batch.
CANDIDATES = {f"{epochs} epoch{'s' * (epochs > 1)}, batches of {size}{', smoothing and decay' * tuned}": (
    epochs, {"batch_size": size, "learning_rate": 0.15 * size / 128, "whole_batches": True,
             **({"label_smoothing": notebook.LABEL_SMOOTHING, "weight_decay": notebook.WEIGHT_DECAY} if tuned else {})})
    for epochs in (1, 2) for size in (128, 256) for tuned in (False, True)}


def classic(epochs: int, args: argparse.Namespace) -> list[dict]:
    """pytorch/examples' mnist recipe, seed 1: Adadelta(lr 1.0), StepLR(1, 0.7), batches of 64 from transforms."""
    torch.manual_seed(1)
    device, transform = torch.device(args.device), transforms.Compose([transforms.ToTensor(),
                                                                       transforms.Normalize((0.1307,), (0.3081,))])
    train_set, test_set = (common.mnist(args.data_root, train, transform) for train in (True, False))
    if args.limit:
        train_set, test_set = Subset(train_set, range(args.limit)), Subset(test_set, range(args.limit // 2))
    options = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}  # as the example
    test_loader = DataLoader(test_set, 1000, **options)
    # its network, written from its description: two convolutions, max-pooling, two linear layers
    model = nn.Sequential(nn.Conv2d(1, 32, 3, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Dropout(0.25), nn.Flatten(), nn.Linear(9216, 128), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(128, 10), nn.LogSoftmax(dim=1)).to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    history = []  # one row per epoch, as the notebook's train_recipe returns
    for _ in range(epochs):
        start = time.perf_counter()
        for images, labels in DataLoader(train_set, batch_size=64, shuffle=True, **options):
            optimizer.zero_grad()
            F.nll_loss(model.train()(images.to(device)), labels.to(device)).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # the queued work done before the timer reads
        seconds = time.perf_counter() - start
        scheduler.step()
        with torch.no_grad():
            history.append({"seconds": seconds, "val_accuracy": sum(
                (model.eval()(images.to(device)).argmax(1) == labels.to(device)).sum().item()
                for images, labels in test_loader) / len(test_set)})
    return history


def run(recipe: str, epochs: int, seed: int, args: argparse.Namespace) -> dict:
    """One row's training: its seconds and test accuracy by epoch, printed in one line."""
    if recipe == "classic":
        history = classic(epochs, args)
    else:  # the notebook's code on its split, the test set watched after every epoch (nothing is chosen on it)
        train_data, _, test_data, _, _ = common.notebook_data(seed, args.data_root, args.device, args.limit)
        history = common.train(getattr(notebook, recipe.upper()), seed, train_data, test_data, epochs, args.device,
                               channels_last=recipe != "plain",
                               bfloat16=recipe == "fast" and notebook.has_bfloat16(torch.device(args.device)))[1]
    seconds, accuracies = [row["seconds"] for row in history], [row["val_accuracy"] for row in history]
    print(f"  {recipe:<8} seed {seed} {epochs:>2} epochs: {sum(seconds):7.1f} s, test accuracy by "
          f"epoch {' '.join(f'{a:.2%}' for a in accuracies)}", flush=True)
    return {"recipe": recipe, "epochs": epochs, "seed": seed, "epoch_seconds": seconds, "test_accuracy": accuracies}


def time_to_target(whole: dict, args: argparse.Namespace) -> tuple[int | None, float | None]:
    """Epochs and seconds to TARGET: the classic run's first epoch there, else the shortest run that ends there."""
    # the notebook's one-cycle schedule fits the run's length: each shorter run is trained again
    recipe, seed, epochs = whole["recipe"], whole["seed"], whole["epochs"]
    for n in range(1, epochs + 1):
        done = whole if recipe == "classic" or n == epochs else run(recipe, n, seed, args)
        if done["test_accuracy"][n - 1] >= TARGET:
            return n, sum(done["epoch_seconds"][:n])
    return None, None


def summary_of(recipe: str, args: argparse.Namespace) -> dict:
    """Full-length runs for every seed (the classic example: seed 1), then each seed's time to TARGET."""
    # the classic example's --classic-epochs, FAST's own schedule (as --choose-fast chose it), the others' --epochs
    epochs = {"classic": args.classic_epochs, "fast": notebook.FAST_EPOCHS}.get(recipe, args.epochs)
    print(f"{LABELS[recipe]}: {epochs} epochs", flush=True)
    full = [run(recipe, epochs, seed, args) for seed in ([1] if recipe == "classic" else range(args.seeds))]
    reached, fastest = zip(*(time_to_target(whole, args) for whole in full), strict=True)
    final = [r["test_accuracy"][-1] for r in full]
    return {"epochs": epochs, "seconds_per_epoch": statistics.mean(s for r in full for s in r["epoch_seconds"]),
            "time_to_target_s": None if None in fastest else statistics.mean(fastest),
            "time_to_target_s_worst": None if None in fastest else max(fastest), "epochs_to_target": reached,
            "final_test_accuracy_mean": statistics.mean(final), "final_test_accuracy_by_seed": final,
            "final_test_accuracy_stdev": statistics.stdev(final) if len(final) > 1 else 0.0, "runs": full}


def choose_fast(args: argparse.Namespace) -> dict:
    """Every candidate for FAST on validation images, each seed: the quickest whose every seed reaches TARGET."""
    bfloat16, results = notebook.has_bfloat16(torch.device(args.device)), {}
    for seed in range(args.seeds):
        train_data, val_data, *_ = common.notebook_data(seed, args.data_root, args.device, args.limit)
        for name, (epochs, settings) in CANDIDATES.items():
            history = common.train(settings, seed, train_data, val_data, epochs, args.device, bfloat16=bfloat16)[1]
            results.setdefault(name, []).append({"val_accuracy": history[-1]["val_accuracy"],
                                                 "seconds": sum(row["seconds"] for row in history)})
    seconds = {name: statistics.mean(run["seconds"] for run in runs) for name, runs in results.items()}
    for name, runs in results.items():
        print(f"{name:<44} validation " + " ".join(f"{run['val_accuracy']:.2%}" for run in runs)
              + f", {seconds[name]:5.1f} s")
    passing = [name for name, runs in results.items() if all(r["val_accuracy"] >= TARGET for r in runs)]
    chosen = min(passing, key=seconds.get, default=None)
    print(f"chosen: {chosen} (bfloat16: {bfloat16})")
    summary = {"machine": common.machine(args.device), "bfloat16": bfloat16, "chosen": chosen, "candidates": results}
    common.write_json(args.output_dir / "fast_choice.json", summary)
    return summary


def main(args: argparse.Namespace) -> dict:
    common.mnist(args.data_root, train=True)  # fetched once, here: a failure is one line, before any training
    summary = {"machine": common.machine(args.device), "target_accuracy": TARGET}
    print(f"machine: {summary['machine']}")
    for recipe, label in LABELS.items():
        row = summary[recipe] = summary_of(recipe, args)
        if recipe != "classic" and summary["classic"]["time_to_target_s"] and row["time_to_target_s"]:
            row["speedup_time_to_target"] = summary["classic"]["time_to_target_s"] / row["time_to_target_s"]
        reached = row["time_to_target_s"] and f"{row['time_to_target_s']:.1f} s (epochs {row['epochs_to_target']})"
        print(f"{label}: {row['seconds_per_epoch']:.1f} s per epoch; 99 % in {reached or 'none'}; final test accuracy "
              f"{row['final_test_accuracy_mean']:.2%} ± {row['final_test_accuracy_stdev']:.2%}"
              + (f"; {row['speedup_time_to_target']:.1f}x faster to 99 % than the classic example"
                 if "speedup_time_to_target" in row else ""))
    common.write_json(args.output_dir / "speed_vs_classic.json", summary)
    print(f"wrote speed_vs_classic.json in {args.output_dir}")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything is trained."""
    parser = common.training_parser(__doc__)
    parser.add_argument("--classic-epochs", type=common.at_least(1), default=14)
    parser.add_argument("--output-dir", type=common.writable_folder, default=common.DEFAULTS["OUTPUT_DIR"])
    parser.add_argument("--choose-fast", action="store_true", help="choose FAST's schedule on validation images")
    return common.parsed(parser, argv, classic_epochs=1)


if __name__ == "__main__":
    arguments = parse_args()
    choose_fast(arguments) if arguments.choose_fast else main(arguments)
