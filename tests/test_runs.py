"""End-to-end runs: the notebook with parameters (as `make run` passes them) and the benchmark's smoke run."""

import json
import subprocess
import sys
from pathlib import Path

import papermill
import pytest
import torch

from notebook_recipe import NOTEBOOK, load_recipe

ROOT = NOTEBOOK.parent


def run_notebook(tmp_path: Path, **parameters) -> str:
    """Execute the notebook headless with papermill; return the text of all its outputs."""
    output = tmp_path / "executed.ipynb"
    parameters = {"QUICK": True, "OUTPUT_DIR": str(tmp_path), **parameters}
    papermill.execute_notebook(str(NOTEBOOK), str(output), parameters=parameters,
                               cwd=str(ROOT), progress_bar=False, kernel_name="python3")
    return output.read_text()


def test_checkpoint_parameter_evaluates_without_training(tmp_path):
    """Also asks for CUDA: where there is none, the run says so in one line and goes on on the CPU."""
    recipe = load_recipe()
    torch.manual_seed(0)
    checkpoint = tmp_path / "earlier.pt"
    recipe.save_checkpoint(recipe.DigitCNN(), checkpoint, 0.1307, 0.3081)
    text = run_notebook(tmp_path, CHECKPOINT=str(checkpoint), DEVICE="cuda")
    if not torch.cuda.is_available():
        assert "notice: device 'cuda' is not available here, using the CPU instead" in text
    assert "no training in this run" in text
    assert "No training happened in this run" in text
    assert "identical predictions: True" in text
    assert not (tmp_path / "digit_cnn_quick.pt").exists()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("EPOCHS", 0, "EPOCHS must be a whole number of at least 1"),
    ("BATCH_SIZE", 0, "BATCH_SIZE must be a whole number from 1 to 60000"),
    ("LEARNING_RATE", "fast", "LEARNING_RATE must be a number above 0"),
    ("DEVICE", "tpu", "DEVICE must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
])
def test_nonsense_parameter_stops_at_the_parameters_cell(tmp_path, name, value, message):
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        run_notebook(tmp_path, **{name: value})
    assert message in str(caught.value)
    # packages, imports, parameters, injected parameters, then this check: no data touched
    assert caught.value.exec_count == 5


def smoke_run(script: str, result: str, output_dir: Path) -> tuple[str, dict]:
    """Run a bench script with --quick; check it wrote RESULT.json and a figure RESULT.png; return stdout, JSON."""
    done = subprocess.run([sys.executable, script, "--quick", "--output-dir", str(output_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (output_dir / f"{result}.png").stat().st_size > 1000
    return done.stdout, json.loads((output_dir / f"{result}.json").read_text())


def test_benchmark_smoke_run_writes_results(tmp_path):
    stdout, summary = smoke_run("bench/benchmark.py", "benchmark", tmp_path)
    for recipe in ("classic", "notebook"):
        assert summary[recipe]["seconds_per_epoch"] > 0
        assert summary[recipe]["peak_memory_mb"] > 0
    assert 0 < summary["classic"]["final_test_accuracy"] <= 1
    assert 0 < summary["notebook"]["final_test_accuracy_mean"] <= 1
    assert summary["speedup_per_epoch"] > 0
    assert "time to 99 %" in stdout


def test_accuracy_ablation_smoke_run_writes_every_variant(tmp_path):
    stdout, summary = smoke_run("bench/accuracy_ablation.py", "ablation_accuracy", tmp_path)
    assert not list(tmp_path.glob("*.partial"))
    names = [variant["name"] for variant in summary["variants"]]
    assert names[0] == "recipe"
    assert len(names) == len(set(names)) >= 9
    for variant in summary["variants"]:
        for key in ("after_1_epoch", "after_2_epochs"):
            assert 0 < variant[key]["accuracy_mean"] <= 1
            assert variant[key]["training_seconds_median"] > 0
    assert len(summary["runs"]) == 2 * len(names)
    assert "time, 2 epochs" in stdout
