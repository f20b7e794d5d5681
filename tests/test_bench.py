"""The bench scripts: a value a run could not use is refused before anything is trained or fetched; the ladder's rungs
add one ingredient each; quick runs write their JSON; the committed handwriting sample is read by a trained network."""

import contextlib
import importlib
import itertools
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))  # as when a script runs: its own folder first on the path
common = importlib.import_module("common")
recipe_ladder = importlib.import_module("recipe_ladder")
speed_vs_classic = importlib.import_module("speed_vs_classic")
handwriting_devset = importlib.import_module("handwriting_devset")
SAMPLE = ROOT / "tests" / "data" / "handwriting"


@pytest.mark.parametrize(("parse", "argv", "message"), [
    (speed_vs_classic.parse_args, ["--epochs", "0"],
     "argument --epochs: must be a whole number of at least 1, not '0'"),
    (speed_vs_classic.parse_args, ["--classic-epochs", "2.5"],
     "argument --classic-epochs: must be a whole number of at least 1, not '2.5'"),
    (recipe_ladder.parse_args, ["--seeds", "-3"], "argument --seeds: must be a whole number of at least 1, not '-3'"),
    (handwriting_devset.parse_args, ["--seed", "-1"],
     "argument --seed: must be a whole number of at least 0, not '-1'"),
    (handwriting_devset.parse_args, ["--time-limit", "0"],
     "argument --time-limit: must be a positive number of seconds, not 0.0"),
    (recipe_ladder.parse_args, ["--device", "tpu"],
     "argument --device: must be 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number), not 'tpu'"),
])
def test_a_value_the_run_cannot_use_is_refused_with_what_to_give(parse, argv, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse(argv)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f"error: {message}")


def test_a_device_that_is_not_here_is_refused_with_the_set_up_cells_reason(monkeypatch, capsys):
    monkeypatch.setattr(common, "device_problem", lambda name: "there is no GPU number 3 here")
    with pytest.raises(SystemExit):
        speed_vs_classic.parse_args(["--device", "cuda:3"])
    assert capsys.readouterr().err.strip().endswith("'cuda:3' cannot be used here: there is no GPU number 3 here; "
                                                    "choose another device (--device cpu always works)")


@pytest.mark.parametrize("flag", ["--output-dir", "--save-networks", "--output"])
def test_an_output_below_a_file_is_refused_and_the_file_left_alone(flag, tmp_path, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("keep me")
    parse = speed_vs_classic.parse_args if flag == "--output-dir" else recipe_ladder.parse_args
    with pytest.raises(SystemExit):
        parse([flag, str(blocker / "run 1" / ("x.json" if flag == "--output" else ""))])
    assert "is a file, not a folder; give a folder you can write to" in capsys.readouterr().err
    assert blocker.read_text() == "keep me"


@pytest.mark.parametrize("script", ["speed_vs_classic.py", "recipe_ladder.py", "handwriting_devset.py"])
def test_a_refused_command_line_fetches_and_writes_nothing(script, tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--data-root", "data", "--quick", "--seed"
                           if script == "handwriting_devset.py" else "--seeds", "-1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)  # a training run would take far longer
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())


def test_each_rung_adds_one_ingredient_from_part_ones_recipe_and_validation_kept_the_notebooks_tuned():
    from handwritten_digits import notebook

    rungs = recipe_ladder.rungs()
    assert list(rungs) == [name for name, _ in recipe_ladder.STEPS]
    assert rungs["plain (Part I)"] == notebook.PLAIN
    for before, after in itertools.pairwise(rungs.values()):
        assert len([key for key in after if after[key] != before[key]]) == 1, after
    assert rungs[recipe_ladder.KEPT_RUNG] == notebook.TUNED
    committed = json.loads((ROOT / "assets" / "recipe_ladder.json").read_text(encoding="utf-8"))
    assert {name: rung["ingredients"] for name, rung in committed["rungs"].items()} == json.loads(json.dumps(rungs))
    means = {name: rung["summary"]["val_accuracy_mean"] for name, rung in committed["rungs"].items()}
    assert max(means, key=means.get) == recipe_ladder.KEPT_RUNG == committed["kept"]["rung"]


def test_the_development_set_report_keeps_the_committed_reports_shape():
    committed = json.loads((ROOT / "assets" / "handwriting_devset.json").read_text(encoding="utf-8"))
    records = [{"condition": "ink-tight", "font": "Caveat", "digit": 7, "outcome": "refused",
                "answer": "no digit found", "seconds": 0.01, "contrast": 2.0, "dot_ratio": None, "megapixels": 0.01},
               {"condition": "dot", "font": "", "digit": -1, "outcome": "timed out", "answer": None, "seconds": 30.0,
                "contrast": None, "dot_ratio": None, "megapixels": 0.08}]
    summary = handwriting_devset.summarise(records)
    assert set(summary) <= set(committed)
    assert summary["conditions"]["ink-tight"].keys() == committed["conditions"]["ink-tight"].keys()
    assert summary["refusals"] == {"ink-tight": {"no digit found": 1}}
    assert summary["timed_out"] == [{"condition": "dot", "font": "", "digit": -1}]
    assert "| ink-tight | 1 | 0.0% | 1 | 0 |" in handwriting_devset.markdown_tables(summary)


def test_the_committed_handwriting_sample_is_read_by_a_trained_network(trained_digit_reader):
    from handwritten_digits.images import open_image

    images = [(path, *re.fullmatch(r"(\d)_([a-z]+-[a-z]+)_[a-z-]+\.png", path.name).groups())
              for path in sorted(SAMPLE.glob("*.png"))]  # <digit>_<condition>_<font>.png
    assert sorted(Counter(condition for _, _, condition in images).values()) == [10] * 6
    correct = 0
    for path, digit, _ in images:
        with contextlib.suppress(ValueError):  # refused: counts as wrong
            correct += trained_digit_reader(open_image(path))[0] == int(digit)
    assert correct >= 54  # measured: 60 of 60 with the committed network


def test_mnist_is_fetched_first_and_a_failed_fetch_stops_with_its_reason_in_one_line(monkeypatch, tmp_path):
    def offline(root):
        raise OSError("no network")

    monkeypatch.setattr(common, "ensure_mnist", offline)
    with pytest.raises(SystemExit, match=r"MNIST is not in .* and could not be fetched: no network$"):
        common.notebook_data(0, tmp_path, "cpu")


@pytest.mark.slow
@pytest.mark.parametrize("script", ["recipe_ladder.py", "speed_vs_classic.py"])
def test_a_quick_run_trains_and_writes_its_json(script, tmp_path):
    output = ["--output", str(tmp_path / "r.json")] if script == "recipe_ladder.py" else ["--output-dir", str(tmp_path)]
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--quick", "--device", "cpu", "--data-root",
                           str(ROOT / "data"), *output], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(next(tmp_path.glob("*.json")).read_text(encoding="utf-8"))
    if script == "recipe_ladder.py":
        assert [len(rung["runs"]) for rung in result["rungs"].values()] == [1] * len(recipe_ladder.STEPS)
        assert "test_accuracy" in result["rungs"][recipe_ladder.TOP]["runs"][0]
    else:
        assert {"machine", "classic", "plain", "tuned", "runs"} <= set(result)
        assert (tmp_path / "speed_vs_classic.png").stat().st_size > 1000
