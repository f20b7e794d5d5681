"""Speed: the notebook's recipes against the classic PyTorch MNIST example, trained on one machine in one run.

For each recipe it reports training seconds per epoch, the training time to reach 99.0 % test accuracy,
the final test accuracy and the peak memory, then the ratios. Each training run happens in a child
process of its own, so that peak memory is measured per run. The notebook's recipes are Part I's plain recipe
(trained as Part I trains it) and the recipe that Part II (B) keeps (augmentation, label smoothing and weight
decay, chosen on validation images by bench/recipe_ladder.py; stored channels-last, as Part II (B) trains it).
On an NVIDIA GPU the plain recipe also runs with each step replayed as a CUDA graph (Part II (D); the warm-up
and capture are counted in the training time and also reported on their own).

    python bench/speed_vs_classic.py            # the full run (make bench; about 30 minutes on a 2-core CPU)
    python bench/speed_vs_classic.py --seeds 5  # the notebook's recipes with seeds 0 to 4
    python bench/speed_vs_classic.py --quick    # smoke run on a few thousand images (under a minute)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from handwritten_digits import cli
from handwritten_digits.cli import synchronize

ROOT = Path(__file__).resolve().parents[1]

TARGET = 0.99  # the accuracy whose training time is compared


# --- the classic PyTorch MNIST example, written from its description --------------------------

def classic_net():
    """Conv(1->32) ReLU Conv(32->64) ReLU MaxPool Dropout(0.25) Linear(9216->128) ReLU Dropout(0.5) Linear(128->10)."""
    import torch.nn as nn
    import torch.nn.functional as F

    class ClassicNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.relu(self.conv2(F.relu(self.conv1(x))))
            x = self.dropout1(F.max_pool2d(x, 2)).flatten(1)
            x = self.dropout2(F.relu(self.fc1(x)))
            return F.log_softmax(self.fc2(x), dim=1)

    return ClassicNet()


def run_classic(epochs: int, seed: int, data_root: str, device_name: str, limit: int | None) -> dict:
    """Adadelta(lr 1.0) with StepLR(1, 0.7), batch 64 through a DataLoader of per-image transforms."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    device = torch.device(device_name)
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    train_set = datasets.MNIST(data_root, train=True, transform=transform)
    test_set = datasets.MNIST(data_root, train=False, transform=transform)
    if limit:
        train_set, test_set = Subset(train_set, range(limit)), Subset(test_set, range(limit // 2))
    loader_options = {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    train_loader = DataLoader(train_set, batch_size=64, shuffle=True, **loader_options)
    test_loader = DataLoader(test_set, batch_size=1000, **loader_options)

    model = classic_net().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    seconds, accuracies = [], []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for images, labels in train_loader:
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad()
            F.nll_loss(model(images), labels).backward()
            optimizer.step()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
        scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for images, labels in test_loader:
                correct += (model(images.to(device)).argmax(1) == labels.to(device)).sum().item()
        accuracies.append(correct / len(test_set))
    return {"epoch_seconds": seconds, "test_accuracy": accuracies}


# --- the notebook's recipes, its own code exported into handwritten_digits.recipe ------------

RECIPES = {  # child name: (the notebook's ingredients, channels-last, graphed)
    "plain": ("PLAIN", False, False),        # Part I's recipe, as Part I trains it
    "tuned": ("TUNED", True, False),         # the recipe Part II (B) keeps, stored channels-last as it trains it
    "plain-graph": ("PLAIN", True, True),    # Part I's recipe with each step replayed as a CUDA graph (Part II (D))
}
LABELS = {"plain": "Part I's plain recipe", "tuned": "Part II (B)'s kept recipe", "plain-graph": "plain, CUDA graph"}


def run_notebook(epochs: int, seed: int, data_root: str, device_name: str, limit: int | None, name: str) -> dict:
    """One of the notebook's recipes, trained by its own code on its split, with the test set evaluated after every
    epoch, as the classic example does (a curve to compare with its curve: no setting is chosen on it)."""
    import torch

    from handwritten_digits import recipe
    from handwritten_digits.data import train_on_notebook_split

    device = torch.device(device_name)
    ingredients, channels_last, graphed = RECIPES[name]

    def make_model():
        return recipe.DigitCNN().to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    _, history = train_on_notebook_split(make_model, epochs, seed, data_root, device, limit, watch="test",
                                         ingredients=getattr(recipe, ingredients), graphed=graphed)
    synchronize(device)
    setup = history.get("capture_seconds", 0.0)  # the CUDA graph's warm-up and capture: training time too
    return {"epoch_seconds": [history["seconds"][0] + setup, *history["seconds"][1:]],
            "test_accuracy": history["val_accuracy"], "setup_seconds": setup}


def peak_memory_mb(device_name: str) -> float:
    """Peak resident memory of this process (CPU) or peak allocated GPU memory (CUDA), in MB."""
    import torch

    if device_name.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 1e6
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # kB on Linux


# --- orchestration ----------------------------------------------------------------------------

def child_main(args: argparse.Namespace) -> None:
    """Run one training in this process and print its result as JSON on the last line."""
    if args.child == "classic":
        result = run_classic(args.epochs, args.seed, args.data_root, args.device, args.limit)
    else:
        result = run_notebook(args.epochs, args.seed, args.data_root, args.device, args.limit, args.child)
    result["peak_memory_mb"] = peak_memory_mb(args.device)
    print(json.dumps(result))


def spawn(recipe: str, epochs: int, seed: int, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", recipe, "--epochs", str(epochs),
               "--seed", str(seed), "--data-root", args.data_root, "--device", args.device,
               "--output-dir", str(args.output_dir)]
    if args.limit:
        command += ["--limit", str(args.limit)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{recipe} run failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(recipe=recipe, epochs=epochs, seed=seed)
    print(f"  {recipe:<14} seed {seed} {epochs:>2} epochs: {sum(result['epoch_seconds']):7.1f} s training, "
          f"test accuracy by epoch {' '.join(f'{a:.2%}' for a in result['test_accuracy'])}", flush=True)
    return result


def time_to_target(seconds: list[float], accuracies: list[float]) -> float | None:
    """Training time until the first epoch-end evaluation at or above TARGET."""
    for epoch, accuracy in enumerate(accuracies):
        if accuracy >= TARGET:
            return sum(seconds[: epoch + 1])
    return None


def main(args: argparse.Namespace) -> dict:
    from handwritten_digits.mnist_data import ensure_mnist

    ensure_mnist(args.data_root)
    seeds = list(range(args.seeds))
    print(f"classic PyTorch example: {args.classic_epochs} epochs, seed 1", flush=True)
    classic = spawn("classic", args.classic_epochs, 1, args)

    recipes = ["plain", "tuned", "plain-graph"] if args.device.startswith("cuda") else ["plain", "tuned"]
    results = {recipe: measure_notebook(recipe, seeds, args) for recipe in recipes}
    classic_time = time_to_target(classic["epoch_seconds"], classic["test_accuracy"])
    summary = {
        "machine": cli.machine(args.device),
        "target_accuracy": TARGET,
        "classic": {
            "epochs": args.classic_epochs,
            "seconds_per_epoch": statistics.mean(classic["epoch_seconds"]),
            "time_to_target_s": classic_time,
            "final_test_accuracy": classic["test_accuracy"][-1],
            "peak_memory_mb": classic["peak_memory_mb"],
        },
        **{recipe.replace("-", "_"): summarise_notebook(*results[recipe], args.epochs) for recipe in recipes},
        "runs": [classic, *[run for full, fastest in results.values() for run in [*full, *fastest] if run]],
    }
    theirs = summary["classic"]
    for key in [recipe.replace("-", "_") for recipe in recipes]:
        ours = summary[key]
        ours["speedup_time_to_target"] = ratio(theirs["time_to_target_s"], ours["time_to_target_s"])
        ours["speedup_time_to_target_worst_seed"] = ratio(theirs["time_to_target_s"], ours["time_to_target_s_worst"])
        ours["speedup_per_epoch"] = ratio(theirs["seconds_per_epoch"], ours["seconds_per_epoch"])
    report(summary)
    write_outputs(summary, Path(args.output_dir), classic, {name: results[name][0][0] for name in recipes})
    return summary


def measure_notebook(recipe: str, seeds: list[int], args: argparse.Namespace) -> tuple[list[dict], list[dict | None]]:
    """Full-length runs for every seed, then per seed the shortest run (in whole epochs) that reaches TARGET."""
    label = LABELS[recipe]
    print(f"{label}: {args.epochs} epochs, seeds {seeds}", flush=True)
    full_runs = [spawn(recipe, args.epochs, seed, args) for seed in seeds]
    print(f"{label}: shortest run reaching {TARGET:.0%}, seeds {seeds}", flush=True)
    fastest = []
    for seed in seeds:
        for epochs in range(1, args.epochs + 1):
            run = spawn(recipe, epochs, seed, args)
            if run["test_accuracy"][-1] >= TARGET:
                fastest.append(run)
                break
        else:
            fastest.append(None)
    return full_runs, fastest


def summarise_notebook(full_runs: list[dict], fastest: list[dict | None], epochs: int) -> dict:
    """Time to TARGET counted from the first step (set-up included), speed per epoch, accuracy over seeds."""
    final = [run["test_accuracy"][-1] for run in full_runs]
    reached = [sum(run["epoch_seconds"]) for run in fastest if run]
    everyone = len(reached) == len(fastest)
    return {
        "epochs": epochs,
        "seconds_per_epoch": statistics.mean(s for run in full_runs for s in run["epoch_seconds"]),
        "setup_seconds": statistics.mean(run["setup_seconds"] for run in full_runs),
        "time_to_target_s": statistics.mean(reached) if everyone else None,
        "time_to_target_s_worst": max(reached) if everyone else None,
        "epochs_to_target": [len(run["epoch_seconds"]) if run else None for run in fastest],
        "final_test_accuracy_mean": statistics.mean(final),
        "final_test_accuracy_stdev": statistics.stdev(final) if len(final) > 1 else 0.0,
        "final_test_accuracy_by_seed": final,
        "training_seconds_full": [sum(run["epoch_seconds"]) for run in full_runs],
        "peak_memory_mb": max(run["peak_memory_mb"] for run in full_runs),
    }


def ratio(slower: float | None, faster: float | None) -> float | None:
    """How many times faster, or None where either time is missing (target not reached)."""
    return slower / faster if slower and faster else None


def report(summary: dict) -> None:
    def seconds(value):
        return f"{value:8.1f} s" if value is not None else "  not reached"

    theirs = summary["classic"]
    print(f"\nmachine: {summary['machine']}")
    print(f"{'recipe':<28}{'s/epoch':>9}{'time to 99 %':>14}{'final test accuracy':>26}{'peak memory':>14}")
    print(f"{'classic example':<28}{theirs['seconds_per_epoch']:>9.1f}{seconds(theirs['time_to_target_s']):>14}"
          f"{theirs['final_test_accuracy']:>20.2%} ({theirs['epochs']} ep){theirs['peak_memory_mb']:>9.0f} MB")
    for key, label in LABELS.items():
        key = key.replace("-", "_")
        if key not in summary:
            continue
        ours = summary[key]
        spread = f"{ours['final_test_accuracy_mean']:.2%} ± {ours['final_test_accuracy_stdev']:.2%}"
        print(f"{label:<28}{ours['seconds_per_epoch']:>9.1f}{seconds(ours['time_to_target_s']):>14}"
              f"{spread:>20} ({ours['epochs']} ep){ours['peak_memory_mb']:>9.0f} MB")
        by_seed = ", ".join(f"{a:.2%}" for a in ours["final_test_accuracy_by_seed"])
        print(f"  final accuracy by seed: {by_seed}; epochs to 99 % by seed: {ours['epochs_to_target']}; "
              f"{ours['epochs']}-epoch training {', '.join(f'{t:.1f}' for t in ours['training_seconds_full'])} s; "
              f"set-up (in the first epoch's time) {ours['setup_seconds']:.2f} s")
        if ours["speedup_time_to_target"]:
            print(f"  time to 99 %: {ours['speedup_time_to_target']:.1f}x faster than the classic example "
                  f"(worst seed {ours['speedup_time_to_target_worst_seed']:.1f}x); "
                  f"per epoch {ours['speedup_per_epoch']:.1f}x faster")
        else:
            print(f"  time to 99 %: not reached by both recipes; per epoch {ours['speedup_per_epoch']:.1f}x faster")


def write_outputs(summary: dict, output_dir: Path, classic: dict, ours: dict[str, dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from handwritten_digits.files import atomic_write  # never a half-written result, even with two runs at once

    with atomic_write(output_dir / "speed_vs_classic.json") as temporary:
        temporary.write_text(json.dumps(summary, indent=2))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for run, label in ((classic, "classic PyTorch example"),
                       *((run, f"{LABELS[name]} (seed 0)") for name, run in ours.items())):
        elapsed = [sum(run["epoch_seconds"][: i + 1]) for i in range(len(run["epoch_seconds"]))]
        ax.plot(elapsed, [100 * a for a in run["test_accuracy"]], "o-", label=label)
    ax.axhline(100 * TARGET, color="gray", linestyle="--", linewidth=1, label="99 %")
    ax.set(xscale="log", xlabel="training time (s, log scale)", ylabel="test accuracy (%)",
           title=f"Test accuracy after each epoch\n{summary['machine']}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_write(output_dir / "speed_vs_classic.png") as temporary:
        fig.savefig(temporary, dpi=90, format="png")
    print(f"wrote {output_dir / 'speed_vs_classic.json'} and {output_dir / 'speed_vs_classic.png'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything is trained (handwritten_digits/cli.py)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 training images, 1 epoch, 1 seed")
    parser.add_argument("--epochs", type=cli.positive, default=None,
                        help="epochs of the notebook recipe (default: the notebook's EPOCHS)")
    parser.add_argument("--classic-epochs", type=cli.positive, default=14)
    parser.add_argument("--seeds", type=cli.positive, default=3, help="seeds of the notebook recipe")
    parser.add_argument("--device", type=cli.device, default=cli.default_device())
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--output-dir", type=cli.writable_folder, default="outputs")
    parser.add_argument("--limit", type=cli.positive, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=["classic", *RECIPES],
                        help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=cli.whole_number(0), default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.limit, args.epochs, args.classic_epochs, args.seeds = 2_000, 1, 1, 1
    if args.epochs is None:
        from handwritten_digits import recipe

        args.epochs = recipe.EPOCHS
    return args


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.child:
        child_main(arguments)
    else:
        main(arguments)
