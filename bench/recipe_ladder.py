"""From Part I's plain recipe to the full one, one ingredient a rung, compared on validation (`make ladder`; Part II (B)
reads its JSON; docs/benchmarks.md). Only the top rung is tested; --test-kept then trains the rung validation chose
(the notebook's TUNED) again and tests it once per seed. --quick is a smoke run: 2,000 images, 1 seed, 1 epoch."""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from handwritten_digits import notebook
from handwritten_digits.checkpoints import save_checkpoint

# isort: split
import common  # bench/common.py (a script's own folder is on its path)

STEPS = {  # each rung is the one before it plus one ingredient, from Part I's recipe to the full one
    "plain (Part I)": {},
    "+ augmentation": {"augment": True},
    "+ label smoothing": {"label_smoothing": notebook.LABEL_SMOOTHING},
    "+ weight decay": {"weight_decay": notebook.WEIGHT_DECAY},
    "+ Nesterov": {"nesterov": True},
    "+ momentum range (full)": {"momentum_range": notebook.MOMENTUM_RANGE},
}
TOP = list(STEPS)[-1]  # the full recipe: the rung the script tests, decided before any result was known
KEPT_RUNG = "+ weight decay"  # the rung Part II (B) keeps (notebook.TUNED): the best on validation in the committed run
SAVED = {"plain (Part I)": "plain", TOP: "full", KEPT_RUNG: "tuned"}  # the seed-0 networks --save-networks keeps
COMMAND = " ".join(["python", "bench/recipe_ladder.py", *sys.argv[1:]])  # how the JSON was made


def rungs() -> dict[str, dict]:
    """The ladder's rungs, name -> ingredients: Part I's plain recipe, then each the one before plus its step."""
    ladder, ingredients = {}, notebook.PLAIN
    for name, added in STEPS.items():
        ingredients = ladder[name] = {**ingredients, **added}
    return ladder


def summary_of(runs: list[dict]) -> dict:
    """Mean, standard deviation, lowest and highest of the runs' last validation accuracy (and test accuracy)."""
    summary = {"seeds": [run["seed"] for run in runs]}
    for key in ("val_accuracy", "test_accuracy"):
        if values := [run[key] for run in runs if key in run]:
            stdev = statistics.stdev(values) if len(values) > 1 else 0.0
            summary |= {f"{key}_mean": statistics.mean(values), f"{key}_stdev": stdev, f"{key}_min": min(values),
                        f"{key}_max": max(values)}
    summary["training_seconds_median"] = statistics.median(run["training_seconds"] for run in runs)
    return summary


def climb(name: str, seed: int, data: tuple, epochs: int, args: argparse.Namespace, tested: bool) -> dict:
    """One rung for one seed: validation accuracy, test accuracy where `tested`; seed 0's network where asked."""
    train_data, val_data, test_data, mean, std = data
    model, history = common.train(rungs()[name], seed, train_data, val_data, epochs, args.device)
    accuracies = [row["val_accuracy"] for row in history]
    run = {"seed": seed, "val_accuracy": accuracies[-1], "val_accuracy_by_epoch": accuracies,
           "training_seconds": sum(row["seconds"] for row in history)}
    if tested:
        run["test_accuracy"] = notebook.evaluate(model, *test_data)[1]
    if args.save_networks and seed == 0 and name in SAVED:
        save_checkpoint(model, args.save_networks / f"ladder_{SAVED[name]}_seed0.pt", mean, std)
    tested_text = f", test {run['test_accuracy']:.2%}" if tested else ""
    print(f"seed {seed}  {name:<26} validation {run['val_accuracy']:.2%}{tested_text}  "
          f"({run['training_seconds']:.0f} s)", flush=True)
    return run


def main(args: argparse.Namespace) -> dict:
    ladder, machine, defaults = rungs(), common.machine(args.device), common.DEFAULTS
    print(f"{len(ladder)} rungs x seeds {list(range(args.seeds))} x {args.epochs} epochs on {machine}", flush=True)
    result = {"machine": machine, "command": COMMAND, "epochs": args.epochs, "batch_size": defaults["BATCH_SIZE"],
              "learning_rate": defaults["LEARNING_RATE"], "memory_format": "channels_last",
              "rungs": {name: {"ingredients": ingredients, "runs": []} for name, ingredients in ladder.items()}}
    started = time.perf_counter()
    for seed in range(args.seeds):
        data = common.notebook_data(seed, args.data_root, args.device, args.limit)
        for name, rung in result["rungs"].items():
            rung["runs"].append(climb(name, seed, data, args.epochs, args, tested=name == TOP))
            rung["summary"] = summary_of(rung["runs"])
            result["wall_seconds"] = time.perf_counter() - started
            common.write_json(args.output, result)  # after every run: an interrupted ladder keeps what it measured
    top = result["rungs"][TOP]["summary"]
    print(f"full recipe, test accuracy {100 * top['test_accuracy_mean']:.2f} % ± {100 * top['test_accuracy_stdev']:.2f}"
          f" over seeds {top['seeds']}; wrote {args.output}")
    return result


def test_kept(args: argparse.Namespace) -> dict:
    """After the ladder: the rung validation chose (KEPT_RUNG, TUNED) trained again and tested, in the JSON's "kept"."""
    # the ladder's seeds and epochs, read from its JSON
    if rungs()[KEPT_RUNG] != notebook.TUNED:
        raise SystemExit(f"the rung {KEPT_RUNG!r} is not the notebook's TUNED recipe: update KEPT_RUNG")
    if not args.output.is_file():
        raise SystemExit(f"{args.output} is missing: run the ladder first (without --test-kept), with this --output")
    result = json.loads(args.output.read_text(encoding="utf-8"))
    runs = [climb(KEPT_RUNG, seed, common.notebook_data(seed, args.data_root, args.device, args.limit),
                  result["epochs"], args, tested=True)
            for seed in result["rungs"][KEPT_RUNG]["summary"]["seeds"]]
    result["kept"] = {"rung": KEPT_RUNG, "ingredients": notebook.TUNED, "runs": runs, "command": COMMAND,
                      **summary_of(runs)}
    common.write_json(args.output, result)
    print(f"kept recipe ({KEPT_RUNG}), test accuracy {100 * result['kept']['test_accuracy_mean']:.2f} % "
          f"± {100 * result['kept']['test_accuracy_stdev']:.2f}; added to {args.output}")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every value checked before anything is trained."""
    parser = common.training_parser(__doc__)
    parser.add_argument("--output", type=common.output_file,
                        default=str(Path(common.DEFAULTS["OUTPUT_DIR"]) / "recipe_ladder.json"))
    parser.add_argument("--save-networks", type=common.writable_folder, default=None, metavar="FOLDER",
                        help="keep seed 0's plain, full and kept networks here (for bench/handwriting_devset.py)")
    parser.add_argument("--test-kept", action="store_true", help=f"after a ladder run (--output): train the rung "
                        f"validation chose ({KEPT_RUNG}) again and test it once per seed")
    return common.parsed(parser, argv)


if __name__ == "__main__":
    arguments = parse_args()
    test_kept(arguments) if arguments.test_kept else main(arguments)
