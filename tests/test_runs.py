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
    assert "notebook_eager" not in summary  # on a CPU the notebook's path is the plain loop: one row
    assert "time to 99 %" in stdout


def test_benchmark_on_cuda_reports_the_graph_the_plain_loop_and_the_classic_example(tmp_path, monkeypatch, capsys):
    """The GPU report's bookkeeping, with made-up runs in place of the child processes."""
    import bench.benchmark as benchmark

    per_epoch = {"classic": 2.0, "notebook": 0.3, "notebook-eager": 1.5}
    setup = {"classic": 0.0, "notebook": 0.8, "notebook-eager": 0.0}
    spawned = []

    def fake_spawn(recipe, epochs, seed, args):
        spawned.append((recipe, epochs, seed))
        accuracies = [min(0.985 + 0.005 * epoch, 0.996) for epoch in range(epochs)]
        seconds = [per_epoch[recipe] + (setup[recipe] if epoch == 0 else 0) for epoch in range(epochs)]
        return {"epoch_seconds": seconds, "test_accuracy": accuracies, "setup_seconds": setup[recipe],
                "peak_memory_mb": 100.0, "recipe": recipe, "epochs": epochs, "seed": seed}

    monkeypatch.setattr(benchmark, "spawn", fake_spawn)
    monkeypatch.setattr(benchmark, "machine", lambda device: "a made-up GPU")
    monkeypatch.setattr("mnist_data.ensure_mnist", lambda root: None)
    args = benchmark.parse_args(["--device", "cuda", "--epochs", "4", "--seeds", "2", "--output-dir", str(tmp_path)])
    summary = benchmark.main(args)
    assert {recipe for recipe, _, _ in spawned} == {"classic", "notebook", "notebook-eager"}
    graph, plain = summary["notebook"], summary["notebook_eager"]
    assert graph["time_to_target_s"] == pytest.approx(0.3 * 2 + 0.8)  # 2 epochs to 99 %, capture included
    assert graph["setup_seconds"] == pytest.approx(0.8)
    assert plain["time_to_target_s"] == pytest.approx(1.5 * 2)
    assert summary["speedup_time_to_target"] == pytest.approx(summary["classic"]["time_to_target_s"] / 1.4)
    assert summary["speedup_time_to_target_eager"] == pytest.approx(summary["classic"]["time_to_target_s"] / 3.0)
    printed = capsys.readouterr().out
    assert "notebook recipe, CUDA graph" in printed
    assert "notebook recipe, plain loop" in printed
    assert "set-up (in the first epoch's time) 0.80 s" in printed


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


def test_exercise_answers_smoke_run_trains_the_wider_network_and_both_augmentation_settings():
    done = subprocess.run([sys.executable, "bench/exercise_answers.py", "--quick", "--parts", "wider", "augmentation"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "widths (32, 64, 128), 241,770 parameters" in done.stdout
    assert "augment=True" in done.stdout
    assert "augment=False" in done.stdout
