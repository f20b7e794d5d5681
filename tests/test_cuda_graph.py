"""Part II (D), the CUDA-graph training step: its pieces compute what Part I's plain loop computes, and a capture
that fails is reported by its first error and undone.

Capturing and replaying a CUDA graph needs an NVIDIA GPU; everything else runs here on the CPU, including the
whole graphed training step run without capture, compared with train_one_epoch step for step, and a failing
capture, driven through stand-ins for torch.cuda's stream and graph objects.
"""

import contextlib
import copy
import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from handwritten_digits import recipe

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need an NVIDIA GPU")


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
    optimizer, scheduler = recipe.tuned_sgd_one_cycle(model, 0.15, steps, **{
        key: value for key, value in recipe.FULL.items() if key not in ("augment", "label_smoothing")})
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
    """Same batches as Part I's DataLoader (the last one smaller), dropout, loss, SGD and schedule: the same weights
    (up to float rounding: the DataLoader stacks its batches, the graphed step gathers them)."""
    torch.manual_seed(1)
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
    loader = DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=True)
    for epoch in range(epochs):
        torch.manual_seed(10 + epoch)
        expected = recipe.train_one_epoch(plain, loader, torch.nn.CrossEntropyLoss(), optimizer, scheduler)
        torch.manual_seed(10 + epoch)
        assert training.train_epoch() == pytest.approx(expected, rel=1e-4)
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(graphed.state_dict()[name], value, rtol=1e-4, atol=1e-5, msg=name)
    assert training.step_index.item() == total_steps


def test_fit_graphed_without_capture_keeps_the_books_of_fit():
    """Part II's fit_graphed and Part I's recipe (train_recipe with PLAIN), on the same seed: the same figures."""
    images, labels = torch.randn(200, 1, 28, 28), torch.randint(0, 10, (200,))
    runs = {}
    for name in ("fit", "fit_graphed"):
        torch.manual_seed(0)
        model = recipe.DigitCNN()
        torch.manual_seed(0)
        trainer, options = ((recipe.fit_graphed, {"capture": False}) if name == "fit_graphed"
                            else (recipe.train_recipe, recipe.PLAIN))
        runs[name] = trainer(model, (images[:150], labels[:150]), (images[150:], labels[150:]),
                             epochs=2, learning_rate=0.1, batch_size=64, **options)
    assert runs["fit_graphed"]["capture_seconds"] >= 0
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        assert runs["fit_graphed"][key] == pytest.approx(runs["fit"][key], rel=1e-4), key
    assert len(runs["fit_graphed"]["seconds"]) == 2


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
    with pytest.raises(ValueError, match=r"plain SGD only, not Adam.*fit\(\) of Part I"):
        recipe.CudaGraphTraining(model, optimizer, scheduler, *data, batch_size=4, epochs=1, capture=False)


class FakeCuda:
    """Stand-ins for torch.cuda's device, streams and graphs, enough for CudaGraphTraining._capture on a CPU.

    The graph context behaves as torch.cuda.graph does when the captured code fails: on leaving, it raises an
    error of its own, the one that hides the first."""

    def __init__(self):
        self.streams, self.captured_on = [], None

    class Stream:
        def wait_stream(self, other):
            pass

        def synchronize(self):
            pass

    class Graph:
        def replay(self):
            pass

    def make_stream(self, *args, **kwargs):
        self.streams.append(self.Stream())
        return self.streams[-1]

    @contextlib.contextmanager
    def graph(self, graph, stream=None, **kwargs):
        self.captured_on = stream
        try:
            yield
        except Exception:
            raise RuntimeError("operation failed due to a previous error during capture") from None

    def install(self, monkeypatch):
        monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
        monkeypatch.setattr(torch.cuda, "Stream", self.make_stream)
        monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
        monkeypatch.setattr(torch.cuda, "current_stream", self.Stream)
        monkeypatch.setattr(torch.cuda, "CUDAGraph", self.Graph)
        monkeypatch.setattr(torch.cuda, "graph", self.graph)


def test_failed_capture_reports_its_first_error_and_undoes_the_warm_up(monkeypatch):
    fake = FakeCuda()
    fake.install(monkeypatch)
    torch.manual_seed(0)
    model = recipe.DigitCNN()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    calls = []
    real_forward = model.forward

    def forward_that_fails_when_captured(images):
        calls.append(len(images))
        if len(calls) > 3:  # the three warm-up steps pass; the step being captured fails
            raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
        return real_forward(images)

    monkeypatch.setattr(model, "forward", forward_that_fails_when_captured)
    data = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    with pytest.raises(recipe.CudaGraphError) as caught:
        recipe.CudaGraphTraining(model, *recipe.sgd_one_cycle(model, 0.1, 2), *data, batch_size=32, epochs=1,
                                 augment=False)
    message = str(caught.value)
    assert "RuntimeError: CUDA error: operation not permitted when stream is capturing" in message
    assert "previous error during capture" not in message
    assert "Restart the kernel" in message
    assert fake.captured_on is fake.streams[0]  # captured on the side stream the warm-up ran on
    for key, value in model.state_dict().items():  # the warm-up steps were undone
        assert torch.equal(value, before[key]), key


def test_successful_capture_undoes_the_warm_up_too(monkeypatch):
    FakeCuda().install(monkeypatch)
    torch.manual_seed(0)
    model = recipe.DigitCNN()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    data = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    training = recipe.CudaGraphTraining(model, *recipe.sgd_one_cycle(model, 0.1, 2), *data, batch_size=32, epochs=1)
    assert training.step_index.item() == 0
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


# --- on an NVIDIA GPU only ------------------------------------------------------------------------------------


@pytest.mark.slow  # the GPU tests belong to the slow tier (make test-slow)
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
        figures = [value for _ in range(2) for value in training.train_epoch()]  # loss, accuracy, loss, accuracy
        runs[capture] = figures, copy_.state_dict()
    assert runs[True][0] == pytest.approx(runs[False][0], rel=1e-3)
    for name, value in runs[False][1].items():
        torch.testing.assert_close(runs[True][1][name], value, rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.slow  # the GPU tests belong to the slow tier (make test-slow)
@needs_cuda
def test_one_graphed_epoch_on_cuda_reaches_the_plain_loops_accuracy(mnist_root):
    from handwritten_digits.data import notebook_data

    device = torch.device("cuda")
    train, validation, _ = notebook_data(0, str(mnist_root), device)
    accuracies = {}
    for trainer, options in ((recipe.train_recipe, recipe.PLAIN), (recipe.fit_graphed, {})):
        torch.manual_seed(0)
        model = recipe.DigitCNN().to(device)
        torch.manual_seed(0)
        accuracies[trainer.__name__] = trainer(model, train, validation, epochs=1, learning_rate=0.15,
                                               batch_size=128, **options)["val_accuracy"][-1]
    assert accuracies["fit_graphed"] >= 0.985, accuracies
    assert abs(accuracies["fit_graphed"] - accuracies["train_recipe"]) < 0.004, accuracies
