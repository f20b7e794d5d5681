"""Part II (B)'s ladder: each rung adds exactly one ingredient to the one before, from Part I's plain recipe to the
full one; the committed run compares them on validation images over three seeds and tests only the full recipe; the
notebook's table is that run's."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

from bench.recipe_ladder import KEPT_RUNG, RUNGS, table
from handwritten_digits import recipe
from handwritten_digits.export import NOTEBOOK

ROOT = Path(__file__).resolve().parents[1]
LADDER = json.loads((ROOT / "assets" / "recipe_ladder.json").read_text(encoding="utf-8"))
FULL = "+ momentum range (full)"


def as_json(ingredients: dict) -> dict:
    """Ingredients as the JSON file holds them (a tuple becomes a list)."""
    return json.loads(json.dumps(ingredients))


def test_the_ladder_starts_at_part_ones_recipe_ends_at_the_full_one_and_adds_one_ingredient_per_rung():
    rungs = list(RUNGS.values())
    assert rungs[0] == recipe.PLAIN
    assert rungs[-1] == recipe.FULL
    for before, after in itertools.pairwise(rungs):
        assert len([key for key in after if after[key] != before[key]]) == 1, after


def test_the_committed_ladder_compares_three_seeds_on_validation_and_tests_only_the_full_recipe():
    assert list(LADDER["rungs"]) == list(RUNGS)
    assert LADDER["epochs"] == recipe.EPOCHS
    for name, rung in LADDER["rungs"].items():
        assert rung["ingredients"] == as_json(RUNGS[name])
        assert [run["seed"] for run in rung["runs"]] == [0, 1, 2], name
        assert all(0.98 < run["val_accuracy"] <= 1 for run in rung["runs"]), name
        assert all(("test_accuracy" in run) == (name == FULL) for run in rung["runs"]), name


def test_the_kept_rung_is_the_best_on_validation_and_was_tested_once_per_seed():
    means = {name: rung["summary"]["val_accuracy_mean"] for name, rung in LADDER["rungs"].items()}
    assert max(means, key=means.get) == KEPT_RUNG == LADDER["kept"]["rung"]
    assert RUNGS[KEPT_RUNG] == recipe.TUNED
    assert LADDER["kept"]["ingredients"] == as_json(recipe.TUNED)
    assert [run["seed"] for run in LADDER["kept"]["runs"]] == [0, 1, 2]
    for kept, laddered in zip(LADDER["kept"]["runs"], LADDER["rungs"][KEPT_RUNG]["runs"], strict=True):
        assert kept["val_accuracy"] == laddered["val_accuracy"]  # the same training, repeated: then tested
        assert 0.99 < kept["test_accuracy"] <= 1


def test_the_notebook_prints_the_committed_ladder_and_names_its_machine():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    printed = "\n".join("".join(output.get("text", "")) for cell in cells if cell["cell_type"] == "code"
                        and "recipe_ladder.json" in "".join(cell["source"]) for output in cell.get("outputs", []))
    assert LADDER["machine"] in printed
    for name, rung in LADDER["rungs"].items():
        mean, spread = 100 * rung["summary"]["val_accuracy_mean"], 100 * rung["summary"]["val_accuracy_stdev"]
        assert f"{mean:.2f} % ± {spread:.2f}" in printed, name
    assert f"{100 * LADDER['rungs'][FULL]['summary']['test_accuracy_mean']:.2f} %" in printed
    assert f"{100 * LADDER['kept']['test_accuracy_mean']:.2f} %" in printed


def test_the_benchmarks_page_holds_the_committed_ladder_table():
    assert table(LADDER) in (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")


def test_a_quick_ladder_trains_every_rung_and_writes_its_json(tmp_path, mnist_root):
    output = tmp_path / "ladder.json"
    done = subprocess.run([sys.executable, "bench/recipe_ladder.py", "--quick", "--device", "cpu", "--data-root",
                           str(mnist_root), "--output", str(output)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(output.read_text(encoding="utf-8"))
    assert [len(rung["runs"]) for rung in result["rungs"].values()] == [1] * len(RUNGS)
    assert "full recipe, test accuracy" in done.stdout
