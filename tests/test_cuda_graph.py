"""The GPU fast path of fit(): which path runs where, and that its pieces compute what the plain loop computes.

Capturing and replaying a CUDA graph needs an NVIDIA GPU; everything else runs here on the CPU, including the
whole graphed training step run without capture, compared with train_one_epoch step for step.
"""

import copy
import math

import pytest
import torch

from notebook_recipe import load_recipe

recipe = load_recipe()
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need an NVIDIA GPU")


@pytest.mark.parametrize(("device", "enabled", "expected"), [
    ("cpu", True, False), ("mps", True, False), ("cuda", True, True), ("cuda:1", True, True), ("cuda", False, False),
])
def test_the_graph_path_is_chosen_on_cuda_only_unless_turned_off(device, enabled, expected):
    assert recipe.uses_cuda_graph(torch.device(device), enabled) is expected


def test_fit_on_a_cpu_trains_with_the_plain_loop(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the CUDA-graph path was taken on a CPU")

    monkeypatch.setitem(recipe.fit.__globals__, "CudaGraphTraining", refuse)
    data = (torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,)))
    history = recipe.fit(recipe.DigitCNN(), data, data, epochs=1, learning_rate=0.1, batch_size=32,
                         show_progress=False)
    assert len(history["seconds"]) == 1
    assert history["setup_seconds"] <= history["seconds"][0]


def recorded_schedule(optimizer, scheduler, steps):
    """Learning rate and momentum of every step, as the plain loop meets them."""
    rates, momenta = [], []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        momenta.append(optimizer.param_groups[0]["momentum"])
        optimizer.step()
        scheduler.step()
    return rates, momenta


def test_schedule_tensors_equal_one_cycle_step_for_step_and_leave_the_scheduler_as_it_was():
    model, steps = torch.nn.Linear(3, 2), 1_000
    optimizer, scheduler = recipe.sgd_one_cycle(model, 0.15, steps)
    before = (optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"], scheduler.state_dict())
    rates, momenta = recipe.schedule_tensors(optimizer, scheduler, steps, torch.device("cpu"))
    after = (optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"], scheduler.state_dict())
    assert after == before

    expected_rates, expected_momenta = recorded_schedule(optimizer, scheduler, steps)
    assert torch.equal(rates, torch.tensor(expected_rates))
    assert torch.equal(momenta, torch.tensor(expected_momenta))
    assert rates.max().item() == pytest.approx(0.15)
    assert momenta.min().item() == pytest.approx(0.85)
    assert momenta.max().item() == pytest.approx(0.95)


@pytest.mark.parametrize(("nesterov", "weight_decay"), [(True, 5e-4), (False, 5e-4), (True, 0.0)])
def test_written_out_sgd_moves_the_weights_as_torch_sgd_does(nesterov, weight_decay):
    torch.manual_seed(0)
    reference = [torch.nn.Parameter(torch.randn(shape)) for shape in ((16, 1, 3, 3), (16,), (10, 128))]
    params = [p.detach().clone() for p in reference]
    buffers = [torch.zeros_like(p) for p in params]
    optimizer = torch.optim.SGD(reference, lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=20)
    for _ in range(20):
        grads = [torch.randn_like(p) for p in params]
        lr, momentum = optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["momentum"]
        recipe.sgd_step(params, grads, buffers, torch.tensor(lr), torch.tensor(momentum), weight_decay, nesterov)
        for p, g in zip(reference, grads, strict=True):
            p.grad = g.clone()
        optimizer.step()
        scheduler.step()
    for mine, theirs in zip(params, reference, strict=True):
        torch.testing.assert_close(mine, theirs.detach(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("architecture", ["DigitCNN", "FullyConnectedNet"])
def test_graphed_steps_run_without_capture_reproduce_the_plain_loop(architecture):
    """Same batches (the last one smaller), augmentation, dropout, loss, SGD and schedule: the same weights."""
    images, labels = torch.randn(300, 1, 28, 28), torch.randint(0, 10, (300,))
    batch_size, epochs = 64, 2  # 5 steps per epoch, the last of 44 images
    torch.manual_seed(0)
    plain = getattr(recipe, architecture)().to(memory_format=torch.channels_last)
    graphed = copy.deepcopy(plain)
    total_steps = epochs * math.ceil(len(images) / batch_size)
    optimizer, scheduler = recipe.sgd_one_cycle(plain, 0.15, total_steps)
    training = recipe.CudaGraphTraining(graphed, *recipe.sgd_one_cycle(graphed, 0.15, total_steps), images, labels,
                                        batch_size, epochs, capture=False)
    assert training.steps_per_epoch == 5
    for epoch in range(epochs):
        torch.manual_seed(10 + epoch)
        expected = recipe.train_one_epoch(plain, images, labels, optimizer, scheduler, batch_size)
        torch.manual_seed(10 + epoch)
        assert training.train_epoch() == pytest.approx(expected, rel=1e-5)
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(graphed.state_dict()[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert training.step_index.item() == total_steps


def test_graphed_training_puts_the_model_in_training_mode_before_it_records_the_step():
    model = recipe.DigitCNN().eval()  # as evaluate() leaves it
    data = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    recipe.CudaGraphTraining(model, *recipe.sgd_one_cycle(model, 0.1, 2), *data, batch_size=4, epochs=1,
                             capture=False)
    assert all(module.training for module in model.modules())


def test_graphed_training_refuses_an_optimiser_it_does_not_implement():
    model = recipe.DigitCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    data = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    with pytest.raises(ValueError, match="CUDA_GRAPH = False"):
        recipe.CudaGraphTraining(model, optimizer, scheduler, *data, batch_size=4, epochs=1, capture=False)


# --- on an NVIDIA GPU only ------------------------------------------------------------------------------------


@needs_cuda
def test_captured_steps_equal_uncaptured_steps_on_cuda():
    device = torch.device("cuda")
    images, labels = torch.randn(1_000, 1, 28, 28, device=device), torch.randint(0, 10, (1_000,), device=device)
    torch.manual_seed(0)
    model = recipe.DigitCNN()
    model.dropout = torch.nn.Identity()  # no random numbers: both runs see exactly the same steps
    runs = {}
    for capture in (False, True):
        copy_ = copy.deepcopy(model).to(device, memory_format=torch.channels_last)
        training = recipe.CudaGraphTraining(copy_, *recipe.sgd_one_cycle(copy_, 0.15, 2 * 8), images, labels,
                                            batch_size=128, epochs=2, augment=False, capture=capture)
        torch.manual_seed(1)
        losses = [training.train_epoch() for _ in range(2)]
        runs[capture] = losses, copy_.state_dict()
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-3)
    for name, value in runs[False][1].items():
        torch.testing.assert_close(runs[True][1][name], value, rtol=1e-3, atol=1e-4, msg=name)


@needs_cuda
def test_one_graphed_epoch_on_cuda_reaches_the_plain_loops_accuracy(mnist_root):
    from bench.benchmark import notebook_data

    device = torch.device("cuda")
    train, test = notebook_data(recipe, 0, str(mnist_root), device, None)
    accuracies = {}
    for cuda_graph in (False, True):
        torch.manual_seed(0)
        model = recipe.DigitCNN().to(device)
        history = recipe.fit(model, train, test, epochs=1, learning_rate=0.15, batch_size=128, show_progress=False,
                             cuda_graph=cuda_graph)
        accuracies[cuda_graph] = history["val_accuracy"][-1]
    assert accuracies[True] >= 0.988, accuracies
    assert abs(accuracies[True] - accuracies[False]) < 0.004, accuracies
