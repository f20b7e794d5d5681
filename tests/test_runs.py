"""End-to-end runs, the slow tier: the notebook with parameters (as `make run` passes them), on a read-only data
folder, and the bench scripts' smoke runs; and, in-process, the benchmark's bookkeeping. The set-up cell's checks
themselves are tested in-process in tests/test_checks.py: here, that the notebook calls them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import papermill
import pytest
import torch

from handwritten_digits.export import NOTEBOOK

ROOT = NOTEBOOK.parent


def run_notebook(tmp_path: Path, **parameters) -> str:
    """Execute the notebook headless with papermill; return the text of all its outputs."""
    output = tmp_path / "executed.ipynb"
    parameters = {"QUICK": True, "OUTPUT_DIR": str(tmp_path), **parameters}
    papermill.execute_notebook(str(NOTEBOOK), str(output), parameters=parameters,
                               cwd=str(ROOT), progress_bar=False, kernel_name="python3")
    return output.read_text()


def first_cells(tmp_path: Path, count: int = 4) -> Path:
    """A copy of the notebook with only its first code cells: parameters, set-up, imports, seed and device (and,
    with count=6, the quick-run settings and the loading of MNIST)."""
    notebook = json.loads(NOTEBOOK.read_text())
    notebook["cells"] = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"][:count]
    first = tmp_path / "first-cells.ipynb"
    first.write_text(json.dumps(notebook))
    return first


def run_command_line(tmp_path: Path, *parameters: str, count: int = 4, env: dict | None = None):
    """The notebook's first cells through papermill's command line, which types each `-p NAME VALUE` as `make run`
    hands them over (True and False, whole numbers and decimals become Python values; the rest stays text)."""
    pairs = [word for parameter in parameters for word in ("-p", *parameter.split("=", 1))]
    return subprocess.run([sys.executable, "-m", "papermill", str(first_cells(tmp_path, count)),
                           str(tmp_path / "executed.ipynb"), "--cwd", str(ROOT), "-k", "python3", "--no-progress-bar",
                           "--log-output", *pairs],
                          capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_a_device_that_is_not_there_is_refused_before_any_data_is_touched(tmp_path):
    """No silent fallback: DEVICE="cuda" on a machine without one stops at the set-up cell, saying what to set."""
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = run_command_line(tmp_path, "DEVICE=cuda")
    assert done.returncode != 0
    assert ("DEVICE = 'cuda' cannot be used here: there is no NVIDIA GPU here; set DEVICE = \"auto\" (the fastest "
            "device here) or \"cpu\"") in done.stdout + done.stderr
    assert "device:" not in done.stdout + done.stderr


@pytest.mark.parametrize(("values", "messages"), [
    (["DEVICE=auto:0", "SEED=4294967296", "QUICK=false", "EPOCHS=2.5"],
     ["DEVICE must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N' (N a number), not 'auto:0'",
      "SEED must be a whole number from 0 to 4294967295 (the seeds NumPy accepts), not 4294967296",
      "QUICK must be True or False (on the command line QUICK=True or QUICK=False, with a capital letter, which "
      "papermill reads as a truth value), not 'false'",
      "EPOCHS must be a whole number of at least 1, not 2.5"]),
])
@pytest.mark.slow
def test_command_line_values_the_notebook_cannot_use_are_all_named_at_once(tmp_path, values, messages):
    done = run_command_line(tmp_path, *values)
    assert done.returncode != 0
    for message in messages:
        assert message in done.stdout + done.stderr, message
    assert "device:" not in done.stdout + done.stderr  # stopped at the set-up cell, before the device is chosen


@pytest.mark.slow
def test_command_line_values_the_notebook_can_use_pass_and_a_data_root_under_home_is_expanded(tmp_path, mnist_root):
    home = tmp_path / "home"
    (home / "mnist").mkdir(parents=True)
    (home / "mnist" / "MNIST").symlink_to(mnist_root / "MNIST")
    done = run_command_line(tmp_path, "QUICK=True", "SEED=4294967295", "DEVICE=cpu", "DATA_ROOT=~/mnist", count=6,
                            env={"HOME": str(home)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "training images (60000, 28, 28)" in done.stdout + done.stderr
    assert not (ROOT / "~").exists()


@pytest.mark.slow
def test_a_gpu_that_this_torch_build_cannot_drive_is_refused_in_one_line_and_the_cpu_then_trains(tmp_path):
    """A P100 (compute capability 6.0), as some hosted notebooks still hand out, under a torch without its kernels:
    torch.cuda looks like that from sitecustomize, inside the kernel. DEVICE = "auto" would pick it (the device line
    reads torch.cuda.is_available()), so the set-up cell stops, naming the GPU and what to set; DEVICE = "cpu" runs."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import torch\n"
        "torch.cuda.is_available = lambda: True\n"
        "torch.cuda.device_count = lambda: 1\n"
        "torch.cuda.get_device_capability = lambda device=None: (6, 0)\n"
        "torch.cuda.get_device_name = lambda device=None: 'Tesla P100-PCIE-16GB'\n"
        "torch.cuda.get_arch_list = lambda: ['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120']\n")
    done = run_command_line(tmp_path, env={"PYTHONPATH": str(site)})
    assert done.returncode != 0
    text = done.stdout + done.stderr
    assert ("DEVICE = 'auto' would train on the NVIDIA GPU, but Tesla P100-PCIE-16GB (compute capability 6.0) has no "
            "kernels in this PyTorch build") in text
    assert "device:" not in text
    done = run_command_line(tmp_path, "DEVICE=cpu", env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "device: cpu" in done.stdout + done.stderr


@pytest.mark.slow
def test_nonsense_parameter_stops_at_the_set_up_cell(tmp_path):
    """One value the notebook cannot use, through papermill's Python API (every rule: tests/test_checks.py)."""
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        run_notebook(tmp_path, BATCH_SIZE=0)
    assert "BATCH_SIZE must be a whole number from 1 to 60000" in str(caught.value)
    assert caught.value.exec_count == 3  # parameters, injected parameters, then the set-up checks: no data touched


@pytest.mark.slow
def test_an_output_dir_that_cannot_be_written_stops_at_the_set_up_cell_before_any_data_is_fetched(tmp_path):
    """Found before training, not at the save cell after it (folder_problem's other cases: tests/test_recipe.py)."""
    blocker = tmp_path / "outputs"
    blocker.write_text("not a folder")
    data_root = tmp_path / "empty data root"
    done = run_command_line(tmp_path, f"OUTPUT_DIR={blocker}", f"DATA_ROOT={data_root}")
    assert done.returncode != 0
    assert f"OUTPUT_DIR = {str(blocker)!r} cannot be written to: it is a file, not a folder" in done.stderr
    assert blocker.read_text() == "not a folder"
    assert not (data_root / "MNIST").exists()  # stopped before the fetch


def smoke_run(script: str, result: str, output_dir: Path) -> tuple[str, dict]:
    """Run a bench script with --quick; check it wrote RESULT.json and a figure RESULT.png; return stdout, JSON."""
    done = subprocess.run([sys.executable, script, "--quick", "--output-dir", str(output_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (output_dir / f"{result}.png").stat().st_size > 1000
    return done.stdout, json.loads((output_dir / f"{result}.json").read_text())


@pytest.mark.slow
def test_speed_benchmark_smoke_run_reports_both_recipes_against_the_classic_example(tmp_path):
    stdout, summary = smoke_run("bench/speed_vs_classic.py", "speed_vs_classic", tmp_path)
    for recipe in ("classic", "plain", "tuned"):
        assert summary[recipe]["seconds_per_epoch"] > 0
        assert summary[recipe]["peak_memory_mb"] > 0
    assert 0 < summary["classic"]["final_test_accuracy"] <= 1
    for recipe in ("plain", "tuned"):
        assert 0 < summary[recipe]["final_test_accuracy_mean"] <= 1
        assert summary[recipe]["speedup_per_epoch"] > 0
    assert "plain_graph" not in summary  # on a CPU there is no CUDA graph
    assert "Part I's plain recipe" in stdout
    assert "Part II (B)'s kept recipe" in stdout
    assert "time to 99 %" in stdout


def test_speed_benchmark_on_cuda_reports_both_recipes_the_graph_and_the_classic_example(tmp_path, monkeypatch,
                                                                                        capsys):
    """The GPU report's bookkeeping, with made-up runs in place of the child processes."""
    import bench.speed_vs_classic as benchmark

    per_epoch = {"classic": 2.0, "plain": 1.5, "tuned": 1.2, "plain-graph": 0.3}
    setup = {"classic": 0.0, "plain": 0.0, "tuned": 0.0, "plain-graph": 0.8}
    spawned = []

    def fake_spawn(recipe, epochs, seed, args):
        spawned.append((recipe, epochs, seed))
        accuracies = [min(0.985 + 0.005 * epoch, 0.996) for epoch in range(epochs)]
        seconds = [per_epoch[recipe] + (setup[recipe] if epoch == 0 else 0) for epoch in range(epochs)]
        return {"epoch_seconds": seconds, "test_accuracy": accuracies, "setup_seconds": setup[recipe],
                "peak_memory_mb": 100.0, "recipe": recipe, "epochs": epochs, "seed": seed}

    monkeypatch.setattr(benchmark, "spawn", fake_spawn)
    monkeypatch.setattr("handwritten_digits.cli.machine", lambda device: "a made-up GPU")
    monkeypatch.setattr("handwritten_digits.mnist_data.ensure_mnist", lambda root: None)
    monkeypatch.setattr("handwritten_digits.cli.device_problem", lambda name: None)  # the made-up GPU passes
    args = benchmark.parse_args(["--device", "cuda", "--epochs", "4", "--seeds", "2", "--output-dir", str(tmp_path)])
    summary = benchmark.main(args)
    assert {recipe for recipe, _, _ in spawned} == {"classic", "plain", "tuned", "plain-graph"}
    plain, tuned, graph = summary["plain"], summary["tuned"], summary["plain_graph"]
    assert graph["time_to_target_s"] == pytest.approx(0.3 * 2 + 0.8)  # 2 epochs to 99 %, capture included
    assert graph["setup_seconds"] == pytest.approx(0.8)
    assert plain["time_to_target_s"] == pytest.approx(1.5 * 2)
    assert tuned["time_to_target_s"] == pytest.approx(1.2 * 2)
    assert plain["speedup_time_to_target"] == pytest.approx(summary["classic"]["time_to_target_s"] / 3.0)
    assert graph["speedup_time_to_target"] == pytest.approx(summary["classic"]["time_to_target_s"] / 1.4)
    printed = capsys.readouterr().out
    assert "Part I's plain recipe" in printed
    assert "plain, CUDA graph" in printed
    assert "set-up (in the first epoch's time) 0.80 s" in printed


def test_graphed_benchmark_run_counts_the_capture_in_the_first_epoch(monkeypatch):
    """run_notebook's child result: the warm-up and capture time is added to the first epoch's training time."""
    import bench.speed_vs_classic as benchmark
    from handwritten_digits import data

    def fake_training(make_model, epochs, seed, data_root, device, limit, watch, ingredients, graphed):
        assert watch == "test"  # beside the classic example's test curve
        assert graphed
        return None, {"seconds": [1.0, 1.0], "val_accuracy": [0.99, 0.995], "capture_seconds": 0.5}

    monkeypatch.setattr(data, "train_on_notebook_split", fake_training)
    result = benchmark.run_notebook(2, 0, "data", "cpu", None, "plain-graph")
    assert result["epoch_seconds"] == [1.5, 1.0]
    assert result["setup_seconds"] == 0.5


@pytest.mark.slow
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


@pytest.mark.slow
def test_exercise_answers_smoke_run_trains_the_wider_network_and_both_augmentation_settings():
    done = subprocess.run([sys.executable, "bench/exercise_answers.py", "--quick", "--parts", "one-epoch", "wider",
                           "augmentation"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "widths (32, 64, 128), 241,770 parameters" in done.stdout
    assert "augment=True" in done.stdout
    assert "augment=False" in done.stdout
    assert "Part I's plain recipe, 1 epoch" in done.stdout


@pytest.mark.slow
def test_the_notebook_runs_on_a_read_only_data_root_that_holds_the_verified_files(tmp_path, mnist_root):
    """A real read-only mount (tests/test_checks.py's), as Kaggle's /kaggle/input is: the quick notebook to its end."""
    from test_checks import in_read_only_mount

    read_only = tmp_path / "read-only"
    code = ("import papermill\n"
            f"papermill.execute_notebook({str(NOTEBOOK)!r}, {str(tmp_path / 'executed.ipynb')!r}, "
            f"parameters=dict(QUICK=True, DATA_ROOT={str(read_only)!r}, OUTPUT_DIR={str(tmp_path / 'out')!r}), "
            f"cwd={str(ROOT)!r}, progress_bar=False, kernel_name='python3')\n")
    done = in_read_only_mount(mnist_root, read_only, code)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = (tmp_path / "executed.ipynb").read_text()
    assert f"MNIST files verified in {read_only}/MNIST/raw" in executed
    assert "test accuracy: " in executed  # the last cell ran
