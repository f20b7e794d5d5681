"""What keeps the repository honest: CI runs the one test command, and the test command lints first."""

import shlex
import subprocess

import pytest
import yaml

from handwritten_digits.export import NOTEBOOK

ROOT = NOTEBOOK.parent


def test_github_workflow_runs_ci_script_on_push_pull_request_and_weekly():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    assert len(triggers["schedule"][0]["cron"].split()) == 5
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "bash .ci/run" in steps


def test_ci_script_runs_the_readme_test_command_then_the_slow_tier_and_make_test_lints_first():
    lines = (ROOT / ".ci" / "run").read_text().rstrip().splitlines()
    assert lines[-2:] == ["make test", "make test-slow"]
    assert "make test    # " in (ROOT / "README.md").read_text()
    planned = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    commands = [line for line in planned.splitlines() if "ruff check" in line or "pytest" in line]
    assert "ruff check ." in commands[0]
    assert 'pytest -m "not slow"' in commands[-1]
    planned = subprocess.run(["make", "-n", "test-slow"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert [line for line in planned.splitlines() if "pytest" in line][-1].endswith("pytest -m slow tests")


def test_every_requirement_has_a_floor_that_the_floor_check_pins():
    from scripts.floor_requirements import floor_pins

    pins = floor_pins((ROOT / "requirements.txt").read_text())
    names = [pin.split("=")[0].split(">")[0] for pin in pins]
    assert "ipycanvas==0.13.1" in pins  # 0.13.0's front end does not match its Python side
    assert "jupyterlab==4.0.2" in pins  # 4.0.0 and 4.0.1 cannot be installed beside notebook 7.0.0
    assert [pin for pin in pins if "==" not in pin] == ["torch>=2.2,<3", "torchvision>=0.17,<1"]
    assert len(names) == len(set(names)) >= 15
    with pytest.raises(ValueError, match="has no lower bound"):
        floor_pins("somepackage<2\n")


def test_ci_checks_the_floors_before_the_test_command():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert lines.index("make floors") < lines.index("make test")
    planned = subprocess.run(["make", "-n", "floors"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "floor_requirements.py" in planned
    assert "papermill" in planned
    assert "tests/test_browser.py -k drawing_on_the_canvas" in planned


def test_compatible_release_and_exact_pins_are_lower_bounds():
    from scripts.floor_requirements import floor_pins

    assert floor_pins("numpy ~= 1.24\nfoo == 2.0.*\nbar===1.0-custom\nbaz[x]>=1,>=1.5  # two floors\n") == [
        "numpy==1.24", "foo==2.0", "bar===1.0-custom", "baz[x]==1.5"]
    with pytest.raises(ValueError, match=r"excludes its own lower bound 1\.0"):
        floor_pins("qux>=1.0,!=1.0\n")


def planned_commands(*make_arguments: str) -> list[list[str]]:
    """What `make -n` would run, each command split into words as the shell splits it."""
    planned = subprocess.run(["make", "-n", *make_arguments], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    return [shlex.split(line) for line in planned.replace("\\\n", " ").splitlines() if line.strip()]


def test_make_run_hands_a_data_root_and_an_output_dir_with_spaces_to_papermill_whole():
    outputs = "it's my outputs"
    commands = planned_commands("run", "DATA_ROOT=my data", f"OUTPUT_DIR={outputs}", "EPOCHS=3")
    papermill = next(words for words in commands if "papermill" in words)
    arguments = papermill[papermill.index("papermill") + 1:]
    assert arguments[:2] == ["HandWrittenDigitsRecognition.ipynb", f"{outputs}/HandWrittenDigitsRecognition.ipynb"]
    pairs = [tuple(arguments[i:i + 3]) for i, word in enumerate(arguments) if word == "-p"]
    assert pairs == [("-p", "EPOCHS", "3"), ("-p", "DATA_ROOT", "my data"), ("-p", "OUTPUT_DIR", outputs)]
    assert ["mkdir", "-p", outputs] in commands
    assert next(words for words in commands if "json" in " ".join(words))[-1] == (
        f"{outputs}/HandWrittenDigitsRecognition.ipynb")


@pytest.mark.parametrize(("target", "expected"), [
    ("clean", ["rm", "-rf", "my outputs"]),
    ("html", ["--output", "my outputs/HandWrittenDigitsRecognition.html"]),
    ("bench", ["bench/speed_vs_classic.py", "--output-dir", "my outputs"]),
    ("ablation-accuracy", ["bench/accuracy_ablation.py", "--output-dir", "my outputs"]),
])
def test_make_targets_keep_an_output_dir_with_spaces_whole(target, expected):
    commands = planned_commands(target, "OUTPUT_DIR=my outputs")
    assert any(words[-len(expected):] == expected for words in commands), commands
