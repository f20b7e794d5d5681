"""From Part I's plain recipe to the full one: add the ingredients one at a time, and measure each on validation.

Part II (B) of the notebook draws its table and figure from this script's JSON (assets/recipe_ladder.json). Each rung
is the one before it plus one ingredient: augmentation, label smoothing, weight decay, Nesterov momentum, then the
one-cycle schedule's momentum range. Each rung is trained with the notebook's own train_recipe (exported into
handwritten_digits.recipe), for the notebook's 15 epochs, with seeds 0, 1 and 2, on each seed's validation split
(the 5,000 training images that seed holds out), all in one run on one machine, interleaved seed by seed so that a
busy moment of the machine hits every rung alike. Every choice is made on those validation figures; only the full
recipe, the chosen one, is then tested, once per seed, on the 10,000 test images.

Every network is stored channels-last (Part II (B)'s speed step: the same arithmetic in another memory order, faster
on a CPU). With --save-networks the seed-0 networks of the plain and the full recipe are kept, for
bench/handwriting_devset.py.

    python bench/recipe_ladder.py                 # the ladder (about 45 minutes on a 2-core CPU): make ladder
    python bench/recipe_ladder.py --quick         # smoke run: 2,000 images, 1 seed, 1 epoch
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torchvision import datasets

from handwritten_digits import cli, recipe
from handwritten_digits.checkpoints import save_checkpoint
from handwritten_digits.cli import synchronize
from handwritten_digits.data import notebook_data, notebook_split
from handwritten_digits.files import atomic_write

ROOT = Path(__file__).resolve().parents[1]

STEPS = (  # each rung is the one before it plus one ingredient, from Part I's recipe to the full one
    ("plain (Part I)", {}),
    ("+ augmentation", {"augment": True}),
    ("+ label smoothing", {"label_smoothing": recipe.LABEL_SMOOTHING}),
    ("+ weight decay", {"weight_decay": recipe.WEIGHT_DECAY}),
    ("+ Nesterov", {"nesterov": True}),
    ("+ momentum range (full)", {"momentum_range": recipe.MOMENTUM_RANGE}),
)
RUNGS, _ingredients = {}, recipe.PLAIN
for _name, _added in STEPS:
    _ingredients = RUNGS[_name] = {**_ingredients, **_added}
KEPT = {"plain (Part I)": "plain", "+ momentum range (full)": "full"}  # the networks --save-networks keeps
KEPT_RUNG = "+ weight decay"  # the rung Part II (B) keeps: the best on validation in the committed ladder


def train_rung(ingredients: dict, seed: int, data: tuple, epochs: int, device: torch.device) -> tuple:
    """One network trained as the notebook trains it, seeded before it is made and again before training."""
    train_data, val_data, _ = data
    torch.manual_seed(seed)
    model = recipe.DigitCNN().to(device, memory_format=torch.channels_last)
    torch.manual_seed(seed)
    synchronize(device)
    start = time.perf_counter()
    history = recipe.train_recipe(model, train_data, val_data, epochs, recipe.LEARNING_RATE, recipe.BATCH_SIZE,
                                  **ingredients)
    synchronize(device)
    return model, history, time.perf_counter() - start


def save_seed0(model: torch.nn.Module, name: str, args: argparse.Namespace) -> None:
    """A seed-0 network saved as the notebook saves one, with seed 0's normalisation constants."""
    _, _, mean, std = notebook_split(datasets.MNIST(args.data_root, train=True).data, 0)
    save_checkpoint(model, args.save_networks / f"ladder_{name}_seed0.pt", mean, std)


def summary_of(runs: list[dict]) -> dict:
    """Mean, standard deviation, lowest and highest of the runs' last validation accuracy (and test accuracy)."""
    summary = {"seeds": [run["seed"] for run in runs]}
    for key in ("val_accuracy", "test_accuracy"):
        values = [run[key] for run in runs if key in run]
        if values:
            summary[f"{key}_mean"] = statistics.mean(values)
            summary[f"{key}_stdev"] = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[f"{key}_min"], summary[f"{key}_max"] = min(values), max(values)
    summary["training_seconds_median"] = statistics.median(run["training_seconds"] for run in runs)
    return summary


def table(result: dict) -> str:
    """The ladder as a markdown table: mean ± standard deviation over the seeds, each seed, and the step from the
    rung before. (The training times are in the JSON; they are only comparable in a run that had the machine to
    itself.)"""
    lines = ["| rung | validation accuracy | seeds | step |", "|---|---:|---:|---:|"]
    previous = None
    for name, rung in result["rungs"].items():
        summary = rung["summary"]
        mean, spread = 100 * summary["val_accuracy_mean"], 100 * summary["val_accuracy_stdev"]
        seeds = ", ".join(f"{100 * run['val_accuracy']:.2f}" for run in rung["runs"])
        step = "" if previous is None else f"{mean - previous:+.2f}"
        lines.append(f"| {name} | {mean:.2f} % ± {spread:.2f} | {seeds} | {step} |")
        previous = mean
    return "\n".join(lines)


def main(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    epochs, seeds, limit = (1, 1, 2_000) if args.quick else (args.epochs, args.seeds, args.limit)
    print(f"{len(RUNGS)} rungs x seeds {list(range(seeds))} x {epochs} epochs on {cli.machine(device)}", flush=True)
    result = {"machine": cli.machine(device),
              "command": " ".join(["python", "bench/recipe_ladder.py", *(sys.argv[1:])]),
              "epochs": epochs, "batch_size": recipe.BATCH_SIZE, "learning_rate": recipe.LEARNING_RATE,
              "memory_format": "channels_last",
              "rungs": {name: {"ingredients": ingredients, "runs": []} for name, ingredients in RUNGS.items()}}
    started = time.perf_counter()
    for seed in range(seeds):
        data = notebook_data(seed, args.data_root, device, limit)
        for name, ingredients in RUNGS.items():
            model, history, seconds = train_rung(ingredients, seed, data, epochs, device)
            run = {"seed": seed, "val_accuracy": history["val_accuracy"][-1],
                   "val_accuracy_by_epoch": history["val_accuracy"], "training_seconds": seconds}
            if ingredients == recipe.FULL:  # the chosen recipe, and only it, meets the test images
                run["test_accuracy"] = recipe.evaluate(model, *data[2])[1]
            if args.save_networks and seed == 0 and name in KEPT:
                save_seed0(model, KEPT[name], args)
            result["rungs"][name]["runs"].append(run)
            print(f"seed {seed}  {name:<26} validation {run['val_accuracy']:.2%}"
                  + (f", test {run['test_accuracy']:.2%}" if "test_accuracy" in run else "")
                  + f"  ({seconds:.0f} s)", flush=True)
            for rung in result["rungs"].values():
                if rung["runs"]:
                    rung["summary"] = summary_of(rung["runs"])
            result["wall_seconds"] = time.perf_counter() - started
            args.output.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(args.output) as temporary:
                temporary.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(table(result))
    full = result["rungs"]["+ momentum range (full)"]["summary"]
    print(f"full recipe, test accuracy over seeds {full['seeds']}: {100 * full['test_accuracy_mean']:.2f} % "
          f"± {100 * full['test_accuracy_stdev']:.2f} (from {100 * full['test_accuracy_min']:.2f} "
          f"to {100 * full['test_accuracy_max']:.2f} %)")
    print(f"wrote {args.output}")
    return result


def test_kept(args: argparse.Namespace) -> dict:
    """After the ladder: train the rung that validation chose (KEPT_RUNG, recipe.TUNED) for the ladder's seeds and
    test it once per seed, adding the results to the ladder's JSON under "kept"."""
    device = torch.device(args.device)
    result = json.loads(args.output.read_text(encoding="utf-8"))
    if result["rungs"][KEPT_RUNG]["ingredients"] != recipe.TUNED:
        raise SystemExit(f"{args.output}: the rung {KEPT_RUNG!r} is not recipe.TUNED")
    runs = []
    for seed in result["rungs"][KEPT_RUNG]["summary"]["seeds"]:
        data = notebook_data(seed, args.data_root, device, args.limit)
        model, history, _ = train_rung(recipe.TUNED, seed, data, result["epochs"], device)
        runs.append({"seed": seed, "val_accuracy": history["val_accuracy"][-1],
                     "test_accuracy": recipe.evaluate(model, *data[2])[1]})
        print(f"seed {seed}  {KEPT_RUNG:<26} validation {runs[-1]['val_accuracy']:.2%}, "
              f"test {runs[-1]['test_accuracy']:.2%}", flush=True)
        if args.save_networks and seed == 0:
            save_seed0(model, "tuned", args)
    tests = [run["test_accuracy"] for run in runs]
    result["kept"] = {"rung": KEPT_RUNG, "ingredients": recipe.TUNED, "runs": runs,
                      "command": " ".join(["python", "bench/recipe_ladder.py", *(sys.argv[1:])]),
                      "test_accuracy_mean": statistics.mean(tests),
                      "test_accuracy_stdev": statistics.stdev(tests) if len(tests) > 1 else 0.0}
    with atomic_write(args.output) as temporary:
        temporary.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"kept recipe ({KEPT_RUNG}), test accuracy: {100 * statistics.mean(tests):.2f} % "
          f"± {100 * result['kept']['test_accuracy_stdev']:.2f}; added to {args.output}")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything is trained (handwritten_digits/cli.py)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 training images, 1 seed, 1 epoch")
    parser.add_argument("--epochs", type=cli.positive, default=recipe.EPOCHS)
    parser.add_argument("--seeds", type=cli.positive, default=3)
    parser.add_argument("--device", type=cli.device, default=cli.default_device())
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--output", type=Path, default=Path("outputs/recipe_ladder.json"))
    parser.add_argument("--save-networks", type=cli.writable_folder, default=None, metavar="FOLDER")
    parser.add_argument("--test-kept", action="store_true",
                        help=f"after a ladder run (--output): train the rung validation chose ({KEPT_RUNG}) again and "
                             "test it once per seed")
    parser.add_argument("--limit", type=cli.positive, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    test_kept(arguments) if arguments.test_kept else main(arguments)
