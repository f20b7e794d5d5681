"""The bench scripts: bad values refused before any work, the ladder's rungs, the reports, the handwriting sample."""

import contextlib
import itertools
import json
import subprocess
import sys
from collections import Counter
from unittest import mock

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))  # as when a script runs: its own folder first on the path
import common
import handwriting_devset
import recipe_ladder
import speed_vs_classic


@pytest.mark.parametrize(("parse", "argv", "message"), [
    (speed_vs_classic.parse_args, ["--classic-epochs", "2.5"], "argument --classic-epochs: must be a whole number"),
    (recipe_ladder.parse_args, ["--seeds", "-3"], "argument --seeds: must be a whole number of at least 1, not '-3'"),
    (handwriting_devset.parse_args, ["--seed", "-1"], "argument --seed: must be a whole number of at least 0"),
    (recipe_ladder.parse_args, ["--device", "tpu"], "argument --device: must be 'cpu', 'mps', 'cuda' or 'cuda:N'"),
    (speed_vs_classic.parse_args, ["--output-dir", "/dev/null/x"], "argument --output-dir: cannot write in the folder"),
    (recipe_ladder.parse_args, ["--output", "/dev/null/x/r.json"], "'/dev/null/x' (Not a directory): give a folder"),
    (speed_vs_classic.parse_args, ["--device", "cuda:3"], "argument --device: 'cuda:3' cannot be used here: no GPU 3"),
])
def test_a_value_the_run_cannot_use_is_refused_with_what_to_give(parse, argv, message, monkeypatch, capsys):
    monkeypatch.setattr(common.checks, "device_problem", lambda name: "no GPU 3")
    with pytest.raises(SystemExit, match=r"^2$"):  # argparse's exit status for a usage error
        parse(argv)
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("script", ["speed_vs_classic.py", "recipe_ladder.py", "handwriting_devset.py"])
def test_a_refused_command_line_fetches_and_writes_nothing(script, tmp_path):
    flag = "--seed" if script == "handwriting_devset.py" else "--seeds"
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--data-root", "data", "--quick", flag, "-1"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # training would take far longer
    assert (done.returncode, "Traceback" in done.stderr, list(tmp_path.iterdir())) == (2, False, [])


def test_each_rung_adds_one_ingredient_from_part_ones_recipe_and_validation_kept_the_notebooks_tuned():
    from handwritten_digits import notebook

    rungs = recipe_ladder.rungs()
    assert (rungs["plain (Part I)"], rungs[recipe_ladder.KEPT_RUNG]) == (notebook.PLAIN, notebook.TUNED)
    assert [len([k for k in after if after[k] != before[k]]) for before, after in itertools.pairwise(rungs.values())] \
        == [1] * (len(rungs) - 1)
    committed = json.loads((ROOT / "assets" / "recipe_ladder.json").read_text(encoding="utf-8"))
    assert {name: rung["ingredients"] for name, rung in committed["rungs"].items()} == json.loads(json.dumps(rungs))
    means = {name: rung["summary"]["val_accuracy_mean"] for name, rung in committed["rungs"].items()}
    assert max(means, key=means.get) == recipe_ladder.KEPT_RUNG == committed["kept"]["rung"]


def test_the_development_set_report_keeps_the_committed_reports_shape():
    committed = json.loads((ROOT / "assets" / "handwriting_devset.json").read_text(encoding="utf-8"))
    records = [{"condition": "ink-tight", "font": "Caveat", "digit": 7, "outcome": "refused",
                "answer": "no digit found (a blank sheet?)", "seconds": 0.01, "contrast": 2.0, "dot_ratio": None},
               {"condition": "dot", "font": "", "digit": -1, "outcome": "refused", "answer": "a dot: draw larger",
                "seconds": 0.02, "contrast": None, "dot_ratio": 3.0}]
    summary = handwriting_devset.summarise(records)
    assert set(summary) <= set(committed)
    assert summary["conditions"]["ink-tight"].keys() <= committed["conditions"]["ink-tight"].keys()
    assert summary["refusals"] == {"ink-tight": {"no digit found": 1}, "dot": {"a dot": 1}}
    rows = handwriting_devset.markdown_tables(summary).splitlines()[2:4]
    assert rows == ["| ink-tight | 1 | 0.0% | 1 | 0.0100 | 2.0 |  |",
                    "| dot (refused = right) | 1 | 100.0% | 1 | 0.0200 |  | 3.0 |"]


def test_the_committed_handwriting_sample_is_read_by_a_trained_network(trained_digit_reader):
    from handwritten_digits.images import open_image

    paths = sorted((ROOT / "tests" / "data" / "handwriting").glob("*.png"))  # <digit>_<condition>_<font>.png
    assert sorted(Counter(path.name.split("_")[1] for path in paths).values()) == [10] * 6
    correct = 0
    for path in paths:
        with contextlib.suppress(ValueError):  # refused: counts as wrong
            correct += trained_digit_reader(open_image(path))[0] == int(path.name[0])
    assert correct >= 54  # measured: 60 of 60 with the committed network


def test_mnist_is_fetched_first_and_a_failed_fetch_stops_with_its_reason_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(common, "ensure_mnist", mock.Mock(side_effect=OSError("no network")))
    with pytest.raises(SystemExit, match=r"MNIST is not in .* and could not be fetched: no network$"):
        common.notebook_data(0, tmp_path, "cpu")


@pytest.mark.slow
@pytest.mark.parametrize(("script", "mode"), [("recipe_ladder.py", []), ("speed_vs_classic.py", []),
                                             ("speed_vs_classic.py", ["--choose-fast"])])
def test_a_quick_run_trains_and_writes_its_json(script, mode, tmp_path):
    output = ["--output", "r.json"] if script == "recipe_ladder.py" else ["--output-dir", "."]
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--device", "cpu", "--data-root",
                           str(ROOT / "data"), *output, *mode],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(next(tmp_path.glob("*.json")).read_text(encoding="utf-8"))
    if script == "recipe_ladder.py":
        assert [len(rung["runs"]) for rung in result["rungs"].values()] == [1] * len(recipe_ladder.STEPS)
        assert "test_accuracy" in result["rungs"][recipe_ladder.TOP]["runs"][0]
    elif mode:
        assert (len(result["candidates"]), "chosen" in result) == (8, True)
    else:
        assert [len(result[row]["runs"]) for row in ("classic", "plain", "tuned", "fast")] == [1, 1, 1, 1]
