"""The accuracy ablation's variants: each changes exactly what it says, and the reference is the notebook's fit()."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from bench.accuracy_ablation import (
    VARIANTS,
    build_model,
    ingredient_effect,
    markdown_table,
    one_cycle_mean,
    optimizer_and_schedule,
    train_variant,
)
from handwritten_digits import recipe
from handwritten_digits.export import NOTEBOOK

ROOT = Path(__file__).resolve().parents[1]



def test_reference_variant_trains_exactly_as_the_full_recipe(mnist_root):
    from torchvision import datasets

    mnist = datasets.MNIST(str(mnist_root), train=True)
    images = recipe.to_model_input(mnist.data[:1_500], 0.1307, 0.3081, torch.device("cpu"))
    train, test = (images[:1_000], mnist.targets[:1_000]), (images[1_000:], mnist.targets[1_000:1_500])

    torch.manual_seed(3)
    model = recipe.DigitCNN().to(memory_format=torch.channels_last)  # as the ablation stores every variant
    torch.manual_seed(3)
    history = recipe.train_recipe(model, train, test, epochs=2, learning_rate=VARIANTS[0].learning_rate,
                                  batch_size=128, **recipe.FULL)
    run = train_variant(VARIANTS[0], epochs=2, seed=3, train_data=train, val_data=test, batch_size=128)
    assert run["val_accuracy"] == history["val_accuracy"]
    assert not run["diverged"]
    assert "test_accuracy" not in run


def test_a_variant_whose_loss_stops_being_a_number_is_recorded_as_diverged(mnist_root):
    from torchvision import datasets

    mnist = datasets.MNIST(str(mnist_root), train=True)
    images = recipe.to_model_input(mnist.data[:600], 0.1307, 0.3081, torch.device("cpu"))
    data = (images[:512], mnist.targets[:512]), (images[512:], mnist.targets[512:600])
    exploding = dataclasses.replace(VARIANTS[0], name="lr 1e30", learning_rate=1e30)
    assert train_variant(exploding, epochs=1, seed=0, train_data=data[0], val_data=data[1], batch_size=128)["diverged"]
    run = train_variant(exploding, epochs=3, seed=0, train_data=data[0], val_data=data[1], batch_size=128)
    assert run["diverged"]
    assert len(run["val_accuracy"]) == 1
    assert 0 <= run["val_accuracy"][0] <= 0.3


def test_every_variant_but_the_reference_changes_something():
    reference = VARIANTS[0]
    for variant in VARIANTS[1:]:
        settings = [field.name for field in dataclasses.fields(variant) if field.name not in ("name", "what")]
        changed = [name for name in settings if getattr(variant, name) != getattr(reference, name)]
        assert changed, variant.name
        assert len(changed) <= 4, (variant.name, changed)  # Adam swaps optimiser, schedule, rate and decay together


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda variant: variant.name)
def test_variant_models_give_ten_logits_with_the_layers_they_name(variant):
    model = build_model(variant)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    kinds = {type(module).__name__ for module in model.modules()}
    assert ("BatchNorm2d" in kinds) == variant.batch_norm
    assert ("MaxPool2d" in kinds) == (variant.pooling == "max")
    assert ("AvgPool2d" in kinds) == (variant.pooling == "average")
    strides = {module.stride for module in model.modules() if isinstance(module, torch.nn.Conv2d)}
    assert strides == ({(2, 2)} if variant.pooling == "stride-2 convolution" else {(1, 1)})


def test_constant_rate_is_the_one_cycle_mean_and_stays_constant():
    rates = []
    variant = next(v for v in VARIANTS if v.name == "SGD, constant lr")
    optimizer, schedule = optimizer_and_schedule(variant, torch.nn.Linear(2, 2), variant.learning_rate, total_steps=50)
    for _ in range(50):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert set(rates) == {variant.learning_rate}
    assert variant.learning_rate == pytest.approx(one_cycle_mean(VARIANTS[0].learning_rate), abs=1e-4)
    assert 0.3 * VARIANTS[0].learning_rate < variant.learning_rate < 0.7 * VARIANTS[0].learning_rate


SUMMARY = json.loads((ROOT / "assets" / "ablation_accuracy.json").read_text())
MARKDOWN = [("".join(cell["source"])) for cell in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
            if cell["cell_type"] == "markdown"]


def test_benchmarks_page_and_notebook_quote_the_committed_ablation_result():
    """The table in both is the committed JSON's, as the script prints it; every variant has 3 seeds, compared on
    validation accuracy, on one machine, which the notebook names."""
    for variant in SUMMARY["variants"]:
        assert variant["after_1_epoch"]["seeds"] == [0, 1, 2], variant["name"]
        assert variant["after_5_epochs"]["seeds"] == [0, 1, 2], variant["name"]
    assert all("val_accuracy" in run and "test_accuracy" not in run for run in SUMMARY["runs"])
    table = markdown_table(SUMMARY)
    assert "validation accuracy" in table
    assert table in (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert any(table in text and SUMMARY["machine"] in text for text in MARKDOWN)
    assert (ROOT / "assets" / "ablation_accuracy.png").stat().st_size > 10_000


def test_part_one_quotes_no_ablation_figure():
    """Part I teaches the plain recipe; what each ingredient buys is Part II (B)'s, measured over seeds there."""
    part_one = MARKDOWN[:next(i for i, text in enumerate(MARKDOWN) if text.startswith("# Part II"))]
    for variant in SUMMARY["variants"][1:]:
        assert not any(ingredient_effect(SUMMARY, variant["name"]) in text for text in part_one), variant["name"]
    assert not any("points of validation accuracy" in text for text in part_one)


def test_the_table_and_figure_are_redrawn_from_the_committed_json_without_training(tmp_path, capsys, monkeypatch):
    import bench.accuracy_ablation as ablation

    monkeypatch.setattr(ablation, "train_variant", None)  # nothing may train
    summary = ablation.redraw(ROOT / "assets" / "ablation_accuracy.json", tmp_path)
    assert markdown_table(summary) in capsys.readouterr().out
    assert json.loads((tmp_path / "ablation_accuracy.json").read_text()) == SUMMARY
    assert (tmp_path / "ablation_accuracy.png").stat().st_size > 10_000


def test_an_unreadable_json_is_refused_by_name(tmp_path):
    import bench.accuracy_ablation as ablation

    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    with pytest.raises(SystemExit, match=r"broken\.json cannot be read as this script.s JSON"):
        ablation.redraw(broken, tmp_path)
