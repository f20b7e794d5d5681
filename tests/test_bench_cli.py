"""The bench scripts' command lines (handwritten_digits/cli.py): a value a run could not use is refused before anything
is trained, as an argparse error (exit status 2) that names the flag, the value and what to give instead."""

import subprocess
import sys

import pytest

import bench.accuracy_ablation as accuracy_ablation
import bench.exercise_answers as exercise_answers
import bench.speed_ablation as speed_ablation
import bench.speed_vs_classic as speed_vs_classic
from handwritten_digits import checks, cli
from handwritten_digits.export import NOTEBOOK

ROOT = NOTEBOOK.parent


def refusal(parse, argv: list[str], capsys) -> str:
    """The one-line argparse error that parse(argv) stops with (exit status 2)."""
    with pytest.raises(SystemExit) as stopped:
        parse(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize(("script", "flag"), [
    ("bench/speed_vs_classic.py", "--seeds"),
    ("bench/accuracy_ablation.py", "--seeds"),
    ("bench/exercise_answers.py", "--seeds"),
    ("bench/speed_ablation.py", "--rounds"),
])
def test_zero_seeds_is_refused_before_any_training(script, flag, tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / script), flag, "0"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)  # a training run, were one started, would take far longer
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (f"{script.split('/')[1]}: error: argument {flag}: must be a whole "
                                                    "number of at least 1, not '0'")
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())  # nothing fetched, nothing written


@pytest.mark.parametrize(("parse", "argv", "message"), [
    (speed_vs_classic.parse_args, ["--epochs", "0"],
     "argument --epochs: must be a whole number of at least 1, not '0'"),
    (speed_vs_classic.parse_args, ["--classic-epochs", "2.5"],
     "argument --classic-epochs: must be a whole number of at least 1, not '2.5'"),
    (exercise_answers.parse_args, ["--epochs", "-3"],
     "argument --epochs: must be a whole number of at least 1, not '-3'"),
    (accuracy_ablation.parse_args, ["--epochs", "1"],
     "argument --epochs: must be a whole number of at least 2 (1 epoch is always measured), not '1'"),
    (accuracy_ablation.parse_args, ["--default-seeds", "-1"],
     "argument --default-seeds: must be a whole number of at least 0, not '-1'"),
])
def test_epochs_that_are_not_a_positive_whole_number_are_refused(parse, argv, message, capsys):
    assert refusal(parse, argv, capsys).endswith(f"error: {message}")


@pytest.mark.parametrize("parse", [speed_vs_classic.parse_args, accuracy_ablation.parse_args])
@pytest.mark.parametrize("name", ["tpu", "cuda:x", "gpu0"])
def test_device_that_pytorch_cannot_name_is_refused(parse, name, capsys):
    assert refusal(parse, ["--device", name], capsys).endswith(
        f"error: argument --device: must be 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number), not '{name}'")


def test_device_that_is_not_here_is_refused_with_the_notebooks_reason(monkeypatch, capsys):
    monkeypatch.setattr(cli, "device_problem",
                        lambda name: "there is no GPU number 3 here" if name == "cuda:3" else None)
    message = refusal(speed_vs_classic.parse_args, ["--device", "cuda:3"], capsys)
    assert message.endswith("error: argument --device: 'cuda:3' cannot be used here: there is no GPU number 3 here; "
                            "choose another device (--device cpu always works)")


def test_device_check_is_the_set_up_cells_own():
    assert cli.device_problem is checks.device_problem


def test_default_device_is_the_cpu_where_the_gpu_cannot_be_used(monkeypatch):
    monkeypatch.setattr(cli, "device_problem", lambda name: "there is no NVIDIA GPU here" if name == "cuda" else None)
    assert cli.default_device() == "cpu"
    monkeypatch.setattr(cli, "device_problem", lambda name: None)
    assert cli.default_device() == "cuda"


@pytest.mark.parametrize("parse", [speed_vs_classic.parse_args, accuracy_ablation.parse_args])
def test_output_dir_that_is_a_file_is_refused_and_left_alone(parse, tmp_path, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("keep me")
    assert refusal(parse, ["--output-dir", str(blocker)], capsys).endswith(
        f"error: argument --output-dir: cannot write in the folder '{blocker}': it is a file, not a folder; give a "
        "folder you can write to (it is created if missing)")
    assert blocker.read_text() == "keep me"


def test_output_dir_below_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "results.txt"
    blocker.write_text("keep me")
    assert refusal(speed_vs_classic.parse_args, ["--output-dir", str(blocker / "run 1")], capsys).endswith(
        f"error: argument --output-dir: cannot write in the folder '{blocker / 'run 1'}': '{blocker}' is a file, "
        "not a folder; give a folder you can write to (it is created if missing)")


def test_output_dir_that_cannot_be_written_is_refused(tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.NamedTemporaryFile", refuse)  # as if the folder were read-only (even for root)
    assert refusal(accuracy_ablation.parse_args, ["--output-dir", str(tmp_path)], capsys).endswith(
        f"error: argument --output-dir: cannot write in the folder '{tmp_path}': Permission denied; give a folder "
        "you can write to (it is created if missing)")


def test_missing_output_dir_is_created_and_the_probe_removed(tmp_path):
    target = tmp_path / "new" / "my outputs"
    args = speed_vs_classic.parse_args(["--output-dir", str(target), "--seeds", "2", "--device", "cpu"])
    assert args.output_dir == target
    assert args.seeds == 2
    assert target.is_dir()
    assert not list(target.iterdir())


def test_saved_model_missing_for_the_reading_parts_is_refused_before_any_training(tmp_path, monkeypatch, capsys):
    def must_not_train(*args, **kwargs):
        raise AssertionError("trained before checking the command line")

    monkeypatch.setattr(exercise_answers, "SAVED_MODEL", tmp_path / "digit_cnn.pt")
    monkeypatch.setattr(exercise_answers, "wider_layers", must_not_train)
    message = refusal(exercise_answers.main, ["--parts", "wider", "canvas", "fine-pen"], capsys)
    assert message.endswith(f"error: argument --parts: canvas and fine-pen read digits with the model in "
                            f"{tmp_path / 'digit_cnn.pt'}, which is missing: run `make run` first (it saves that "
                            "model), or leave out canvas and fine-pen")


def test_speed_ablation_refuses_arguments_it_does_not_know(capsys):
    assert refusal(speed_ablation.parse_args, ["--quick"], capsys).endswith("error: unrecognized arguments: --quick")
