"""What each ingredient of the notebook's recipe buys in accuracy: remove or swap one at a time, measure.

Every variant is the notebook's recipe (its own code, exported into handwritten_digits.recipe) with one change:
no batch normalisation (at the recipe's peak learning rate, and at four times it beside the recipe at
four times it), no augmentation, no label smoothing, no weight decay, Adam or a constant learning rate
instead of the one-cycle schedule, average pooling or stride-2 convolutions instead of max-pooling.
Each is trained by the notebook's fit() for 1 epoch and for --epochs epochs (each run with its schedule fitted to
its length), for several seeds, interleaved so that a busy moment of the machine hits all variants
alike. Variants are compared on the notebook's validation split (the 5,000 training images each seed
holds out), never on the test images: the validation accuracy and the training time are written to
outputs/ablation_accuracy.json and outputs/ablation_accuracy.png. With --default-seeds N, the chosen recipe
alone is also trained for the notebook's default number of epochs with N seeds, and only then tested on the
test images, for the spread of the default run's test accuracy.

Every network is stored channels-last (Part II's speed variant: the same arithmetic in another memory order,
1.4 times faster on a CPU); the notebook's Part I trains the same networks in the default layout.

    python bench/accuracy_ablation.py                   # the ablation (about 60 minutes on a 2-core CPU)
    python bench/accuracy_ablation.py --default-seeds 5 # and the default run with 5 seeds (12 more)
    python bench/accuracy_ablation.py --quick           # smoke run: 2,000 images, 1 seed, 1 and 2 epochs
    python bench/accuracy_ablation.py --from-json assets/ablation_accuracy.json --output-dir assets
                                                        # the table and figure again, from the committed run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from handwritten_digits import cli, recipe
from handwritten_digits.cli import synchronize
from handwritten_digits.data import notebook_data
from handwritten_digits.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    """The notebook's recipe with at most one ingredient removed or swapped."""

    name: str
    what: str
    batch_norm: bool = True
    pooling: str = "max"  # "max", "average" or "stride-2 convolution"
    optimizer: str = "sgd"  # SGD with Nesterov momentum, or "adam"
    schedule: str = "one-cycle"  # or "constant"
    learning_rate: float = recipe.LEARNING_RATE
    weight_decay: float = recipe.WEIGHT_DECAY
    label_smoothing: float = recipe.LABEL_SMOOTHING
    augment: bool = True


def one_cycle_mean(peak: float, steps: int = 2_000) -> float:
    """The average learning rate of the one-cycle schedule with this peak."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=peak)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return round(statistics.mean(rates), 4)


PEAK = recipe.LEARNING_RATE
CONSTANT_RATE = one_cycle_mean(PEAK)  # so that the constant-rate variant differs by the schedule's shape alone

VARIANTS = [
    Variant("recipe", "the notebook's recipe"),
    Variant("no batch norm", "no batch normalisation (convolutions with biases)", batch_norm=False),
    Variant("peak lr 0.6", "the recipe at four times the peak learning rate", learning_rate=0.6),
    Variant("no batch norm, lr 0.6", "no batch normalisation at four times the peak learning rate",
            batch_norm=False, learning_rate=0.6),
    Variant("no augmentation", "no random rotation and shift", augment=False),
    Variant("no label smoothing", "plain cross-entropy", label_smoothing=0.0),
    Variant("no weight decay", "weight decay 0", weight_decay=0.0),
    Variant("Adam, constant lr", "Adam, lr 0.001, no schedule, no weight decay (common defaults)",
            optimizer="adam", schedule="constant", learning_rate=1e-3, weight_decay=0.0),
    Variant("SGD, constant lr", f"SGD + Nesterov at a constant lr {CONSTANT_RATE} (the one-cycle schedule's mean)",
            schedule="constant", learning_rate=CONSTANT_RATE),
    Variant("average pooling", "2 x 2 average pooling instead of max-pooling", pooling="average"),
    Variant("stride-2 convolutions", "3 x 3 convolutions with stride 2 instead of max-pooling",
            pooling="stride-2 convolution"),
]


def build_model(variant: Variant) -> nn.Module:
    """DigitCNN from the notebook, its three blocks changed as the variant says."""
    model = recipe.DigitCNN()
    for block in (model.conv1, model.conv2, model.conv3):
        conv = block[0]
        if not variant.batch_norm:
            block[0] = nn.Conv2d(conv.in_channels, conv.out_channels, 3, padding=1, bias=True)
            block[1] = nn.Identity()
        if variant.pooling == "average":
            block[3] = nn.AvgPool2d(2)
        elif variant.pooling == "stride-2 convolution":
            block[0] = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=2, padding=1,
                                 bias=not variant.batch_norm)
            block[3] = nn.Identity()
    if variant.pooling == "stride-2 convolution":  # 28 -> 14 -> 7 -> 4 instead of 28 -> 14 -> 7 -> 3
        model.fc1 = nn.Linear(model.conv3[0].out_channels * 4 * 4, model.fc1.out_features)
    return model


def optimizer_and_schedule(variant: Variant, model: nn.Module, learning_rate: float, total_steps: int):
    """The variant's optimiser and schedule (stepped once per batch): Part II (B)'s own tuned_sgd_one_cycle unless the
    variant swaps the optimiser or the schedule."""
    if variant.optimizer == "sgd" and variant.schedule == "one-cycle":
        return recipe.tuned_sgd_one_cycle(model, learning_rate, total_steps, variant.weight_decay, nesterov=True,
                                          momentum_range=recipe.MOMENTUM_RANGE)
    if variant.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=variant.weight_decay)
    else:
        optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=sum(recipe.MOMENTUM_RANGE) / 2,
                                    nesterov=True, weight_decay=variant.weight_decay)  # 0.9: the schedule's middle
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def train_variant(variant: Variant, epochs: int, seed: int, train_data, val_data, batch_size: int,
                  test_data=None) -> dict:
    """The variant trained by the notebook's fit() (Part II (B)'s train_recipe, with the variant's model, optimiser and
    schedule), seeded as the notebook seeds; validation accuracy after every
    epoch, and with test_data (for the chosen recipe only) the test accuracy once, at the end. A variant whose loss
    stops being a number (fit stops it) is evaluated as it was left."""
    torch.manual_seed(seed)
    model = build_model(variant).to(train_data[0].device, memory_format=torch.channels_last)
    torch.manual_seed(seed)
    started, diverged = time.perf_counter(), False
    try:
        loader = DataLoader(TensorDataset(*train_data), batch_size=batch_size, shuffle=True,
                            collate_fn=recipe.augmented_batch if variant.augment else None)
        optimizer, scheduler = optimizer_and_schedule(variant, model, variant.learning_rate, epochs * len(loader))
        history = recipe.fit(model, loader, val_data, nn.CrossEntropyLoss(label_smoothing=variant.label_smoothing),
                             optimizer, scheduler, epochs)
    except FloatingPointError as error:
        print(f"  {variant.name}: {error}", flush=True)
        history = {"seconds": [time.perf_counter() - started], "val_accuracy": [recipe.evaluate(model, *val_data)[1]]}
        diverged = True
    synchronize(train_data[0].device)
    run = {"variant": variant.name, "epochs": epochs, "seed": seed, "epoch_seconds": history["seconds"],
           "val_accuracy": history["val_accuracy"], "diverged": diverged}
    return run if test_data is None else {**run, "test_accuracy": recipe.evaluate(model, *test_data)[1]}


def print_run(run: dict) -> None:
    print(f"  seed {run['seed']}  {run['epochs']:>2} epochs  {run['variant']:<22} "
          f"validation accuracy {run['val_accuracy'][-1]:7.2%}  {sum(run['epoch_seconds']):6.1f} s", flush=True)


def summarise(runs: list[dict], variant: str, epochs: int) -> dict | None:
    """Mean, spread and range of the final validation accuracy, and the mean training time, over seeds."""
    chosen = [run for run in runs if run["variant"] == variant and run["epochs"] == epochs]
    if not chosen:
        return None
    final = [run["val_accuracy"][-1] for run in chosen]
    return {"epochs": epochs, "seeds": [run["seed"] for run in chosen], "accuracy_by_seed": final,
            "accuracy_mean": statistics.mean(final),
            "accuracy_stdev": statistics.stdev(final) if len(final) > 1 else 0.0,
            "accuracy_min": min(final), "accuracy_max": max(final),
            "training_seconds_median": statistics.median(sum(run["epoch_seconds"]) for run in chosen),
            **({"test_accuracy_by_seed": [run["test_accuracy"] for run in chosen]} if "test_accuracy" in chosen[0]
               else {})}


def main(args: argparse.Namespace) -> dict:
    from handwritten_digits.mnist_data import ensure_mnist

    ensure_mnist(args.data_root)
    device = torch.device(args.device)
    batch_size, default_epochs = recipe.BATCH_SIZE, recipe.EPOCHS
    lengths = [1, args.epochs]
    started = time.perf_counter()
    print(f"{len(VARIANTS)} variants x seeds {list(range(args.seeds))} x {lengths} epochs on {cli.machine(device)}",
          flush=True)
    runs = []
    for seed in range(max(args.seeds, args.default_seeds)):  # interleaved: the variants share the machine's moments
        train_data, val_data, test_data = notebook_data(seed, args.data_root, device, args.limit)
        for epochs in lengths if seed < args.seeds else []:
            for variant in VARIANTS:
                runs.append(train_variant(variant, epochs, seed, train_data, val_data, batch_size))
                print_run(runs[-1])
        if seed < args.default_seeds and default_epochs not in lengths:
            runs.append(train_variant(VARIANTS[0], default_epochs, seed, train_data, val_data, batch_size, test_data))
            print_run(runs[-1])

    summary = {
        "machine": cli.machine(device), "command": " ".join(["python", "bench/accuracy_ablation.py", *sys.argv[1:]]),
        "training_images": len(train_data[0]), "validation_images": len(val_data[0]), "batch_size": batch_size,
        "wall_seconds": time.perf_counter() - started,
        "variants": [{**asdict(variant), "after_1_epoch": summarise(runs, variant.name, 1),
                      f"after_{args.epochs}_epochs": summarise(runs, variant.name, args.epochs)}
                     for variant in VARIANTS],
        "recipe_default_epochs": summarise(runs, "recipe", default_epochs),
        "runs": runs,
    }
    report(summary, args.epochs)
    print(f"\n{markdown_table(summary)}\n")
    write_outputs(summary, args.epochs, Path(args.output_dir))
    return summary


def report(summary: dict, epochs: int) -> None:
    reference = summary["variants"][0][f"after_{epochs}_epochs"]["training_seconds_median"]
    print(f"\n{summary['machine']}; validation accuracy in %, mean ± standard deviation over seeds (min-max)")
    print(f"{'variant':<24}{'after 1 epoch':>30}{f'after {epochs} epochs':>30}{f'time, {epochs} epochs':>22}")
    for row in summary["variants"]:
        cells = []
        for key in ("after_1_epoch", f"after_{epochs}_epochs"):
            s = row[key]
            cells.append(f"{100 * s['accuracy_mean']:.2f} ± {100 * s['accuracy_stdev']:.2f} "
                         f"({100 * s['accuracy_min']:.2f}-{100 * s['accuracy_max']:.2f})")
        seconds = row[f"after_{epochs}_epochs"]["training_seconds_median"]
        print(f"{row['name']:<24}{cells[0]:>30}{cells[1]:>30}{seconds:>11.1f} s ({seconds / reference:.2f}x)")
    full = summary["recipe_default_epochs"]
    if full:
        print(f"the chosen recipe, {full['epochs']} epochs, seeds {full['seeds']}: validation accuracy "
              f"{full['accuracy_mean']:.2%} ± {full['accuracy_stdev']:.2%}; test accuracy "
              f"{', '.join(f'{a:.2%}' for a in full['test_accuracy_by_seed'])}; "
              f"{full['training_seconds_median']:.1f} s")
    print(f"wall time {summary['wall_seconds'] / 60:.1f} min")


def longer_key(summary: dict) -> str:
    """The summary's key of the longer training ("after_5_epochs"), beside "after_1_epoch"."""
    return next(key for key in summary["variants"][0] if key.startswith("after_") and key != "after_1_epoch")


def markdown_table(summary: dict) -> str:
    """The result as the Markdown table that the README and the notebook quote (a test keeps them equal)."""
    longer = longer_key(summary)
    epochs = longer.split("_")[1]
    recipe_row = summary["variants"][0]
    lines = [f"| variant (one change to the recipe) | validation accuracy after 1 epoch | after {epochs} epochs "
             f"| training time, {epochs} epochs |", "|---|---:|---:|---:|"]
    for row in summary["variants"]:
        cells = []
        for key in ("after_1_epoch", longer):
            result = row[key]
            if result["accuracy_mean"] < 0.5:
                cells.append(f"{100 * result['accuracy_mean']:.1f} % (diverged)")
                continue
            delta = 100 * (result["accuracy_mean"] - recipe_row[key]["accuracy_mean"])
            cells.append(f"{100 * result['accuracy_mean']:.2f} % ± {100 * result['accuracy_stdev']:.2f}"
                         + ("" if row is recipe_row else f" ({delta:+.2f})"))
        seconds = row[longer]["training_seconds_median"]
        ratio = seconds / recipe_row[longer]["training_seconds_median"]
        name = "**the recipe**" if row is recipe_row else row["name"]
        stopped = any(run.get("diverged") for run in summary["runs"]
                      if run["variant"] == row["name"] and run["epochs"] == int(epochs))
        time = "stopped: loss NaN" if stopped else f"{seconds:.0f} s ({ratio:.2f}\N{MULTIPLICATION SIGN})"
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {time} |")
    return "\n".join(lines)


def ingredient_effect(summary: dict, name: str) -> str:
    """What the variant does to the recipe's validation accuracy, in the words Part I of the notebook quotes."""
    longer = longer_key(summary)
    row = next(row for row in summary["variants"] if row["name"] == name)
    recipe_row = summary["variants"][0]
    if row[longer]["accuracy_mean"] < 0.5:
        return f"it diverged, {row[longer]['accuracy_mean']:.1%} after {longer.split('_')[1]} epochs"
    deltas = [100 * (row[key]["accuracy_mean"] - recipe_row[key]["accuracy_mean"]) for key in (longer, "after_1_epoch")]
    return (f"{deltas[0]:+.2f} points of validation accuracy after {longer.split('_')[1]} epochs, "
            f"{deltas[1]:+.2f} after 1")


def write_outputs(summary: dict, epochs: int, output_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir.mkdir(parents=True, exist_ok=True)
    rows = summary["variants"][::-1]  # the recipe on top
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(rows) + 1.2))
    for offset, key, label, colour in ((0.18, "after_1_epoch", "1 epoch", "tab:orange"),
                                       (-0.18, f"after_{epochs}_epochs", f"{epochs} epochs", "tab:blue")):
        means = [100 * row[key]["accuracy_mean"] for row in rows]
        spans = [[100 * (row[key]["accuracy_mean"] - row[key]["accuracy_min"]) for row in rows],
                 [100 * (row[key]["accuracy_max"] - row[key]["accuracy_mean"]) for row in rows]]
        ax.errorbar(means, [i + offset for i in range(len(rows))], xerr=spans, fmt="o", color=colour, capsize=3,
                    label=label)
    low = min(100 * row[key]["accuracy_min"] for row in rows for key in ("after_1_epoch", f"after_{epochs}_epochs"))
    left = max(low - 0.1, 97.0)  # a run that diverged would squash the rest: it is written out instead
    for index, row in enumerate(rows):
        off_scale = [f"{row[key]['accuracy_mean']:.1%}" for key in ("after_1_epoch", f"after_{epochs}_epochs")
                     if 100 * row[key]["accuracy_mean"] < left]
        if off_scale:
            ax.text(left + 0.05, index, f"off the scale: {' / '.join(off_scale)}", va="center", fontsize=8)
    ax.set(yticks=range(len(rows)), yticklabels=[row["name"] for row in rows], xlim=(left, 100),
           xlabel="validation accuracy (%): mean, and min to max over seeds",
           title="One ingredient removed or swapped at a time\n" + textwrap.fill(summary["machine"], 70))
    ax.axvline(100 * summary["variants"][0][f"after_{epochs}_epochs"]["accuracy_mean"], color="tab:blue", alpha=0.3)
    ax.axvline(100 * summary["variants"][0]["after_1_epoch"]["accuracy_mean"], color="tab:orange", alpha=0.3)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    for name, write in (("ablation_accuracy.json", lambda p: p.write_text(json.dumps(summary, indent=2))),
                        ("ablation_accuracy.png", lambda p: fig.savefig(p, dpi=90, format="png"))):
        with atomic_write(output_dir / name) as temporary:  # never a half-written result
            write(temporary)
    print(f"wrote {output_dir / 'ablation_accuracy.json'} and {output_dir / 'ablation_accuracy.png'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything is trained (handwritten_digits/cli.py)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 training images, 1 seed, 1 and 2 epochs")
    parser.add_argument("--epochs", type=cli.whole_number(2, " (1 epoch is always measured)"), default=5,
                        help="the longer training of every variant (default 5)")
    parser.add_argument("--seeds", type=cli.positive, default=3)
    parser.add_argument("--default-seeds", type=cli.whole_number(0), default=0,
                        help="also train the recipe for the notebook's default number of epochs with this many "
                             "seeds, for the spread of the default run's accuracy (5 took 12 minutes here)")
    parser.add_argument("--device", type=cli.device, default=cli.default_device())
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--output-dir", type=cli.writable_folder, default="outputs")
    parser.add_argument("--limit", type=cli.positive, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--from-json", type=Path, default=None, metavar="JSON",
                        help="train nothing: print the table and redraw the figure of an earlier run's JSON "
                             "(assets/ablation_accuracy.json) into --output-dir")
    args = parser.parse_args(argv)
    if args.quick:
        args.limit, args.epochs, args.seeds, args.default_seeds = 2_000, 2, 1, 0
    return args


def redraw(path: Path, output_dir: Path) -> dict:
    """The table and the figure of an earlier run, from its JSON, without training anything."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        epochs = int(longer_key(summary).split("_")[1])
    except (OSError, ValueError, KeyError, StopIteration) as error:
        raise SystemExit(f"{path} cannot be read as this script's JSON: {error}") from error
    report(summary, epochs)
    print(f"\n{markdown_table(summary)}\n")
    write_outputs(summary, epochs, output_dir)
    return summary


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.from_json:
        redraw(arguments.from_json, arguments.output_dir)
    else:
        main(arguments)
