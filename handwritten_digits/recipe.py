# GENERATED FILE, do not edit: `make export` writes it from the cells of HandWrittenDigitsRecognition.ipynb whose first
# line is "#| export". Edit those cells, then run `make export`; a test fails while the two differ.
"""The notebook's teaching code, importable: the network, the data preparation, the training loop, evaluation and
Part II's tools, exactly as the notebook shows them (each block names the section that teaches it)."""


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 1. Set up

EPOCHS = 15            # passes over the training images
BATCH_SIZE = 128       # images per training step
LEARNING_RATE = 0.15   # peak learning rate of the one-cycle schedule
SEED = 0               # fixes the validation split, the initial weights, the order of the batches
DATA_ROOT = "data"     # MNIST is kept in DATA_ROOT/MNIST/raw
OUTPUT_DIR = "outputs" # where the trained network is saved
DEVICE = "auto"        # "auto": CUDA, then Apple's MPS, then the CPU; or name one: "cpu", "cuda", "cuda:1", "mps"
QUICK = False          # smoke run: 1 epoch on 4,000 training images


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 1. Set up

import math
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets
from tqdm.auto import tqdm


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 3. Look at the data

def show_images(images, titles, title: str, colours=None, columns: int = 12, width: float = 0.75) -> None:
    """Grey-level images in rows of `columns`, each with its title (in its colour), under an overall title."""
    rows = -(-len(images) // columns)  # rounded up
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, 1.5 * width * rows + 0.35), squeeze=False,
                             layout="constrained", subplot_kw={"frame_on": False, "xticks": [], "yticks": []})
    for ax, image, name, colour in zip(axes.flat, images, titles, colours or ["black"] * len(images), strict=False):
        ax.imshow(image, cmap="gray")
        ax.set_title(name, fontsize=8, color=colour)
    fig.suptitle(title)
    plt.show()


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 4. Prepare the data

def split_training_set(count: int, seed: int, validation: int = 5_000) -> tuple[torch.Tensor, torch.Tensor]:
    """The indices of the images to train on and of those held out for validation, in an order fixed by the seed."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[:count - validation], order[count - validation:]


def pixel_statistics(images: torch.Tensor) -> tuple[float, float]:
    """The mean and the standard deviation of the pixels of uint8 images, scaled to 0-1."""
    pixels = images.float() / 255
    return pixels.mean().item(), pixels.std().item()


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 4. Prepare the data

def to_model_input(images: torch.Tensor, mean: float, std: float, device: torch.device) -> torch.Tensor:
    """uint8 images [N, 28, 28] -> normalised float32 [N, 1, 28, 28] on the device."""
    return ((images.float() / 255 - mean) / std).unsqueeze(1).to(device)


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 5. Build the network

def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3 x 3 convolution, batch normalisation, ReLU, 2 x 2 max-pooling."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(), nn.MaxPool2d(2))


class DigitCNN(nn.Module):
    """Three convolutional blocks, then two fully connected layers that output 10 scores, one per digit."""

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64), hidden: int = 128, dropout: float = 0.2):
        super().__init__()
        self.conv1 = conv_block(1, widths[0])          # 1 x 28 x 28  -> 16 x 14 x 14
        self.conv2 = conv_block(widths[0], widths[1])  # 16 x 14 x 14 -> 32 x 7 x 7
        self.conv3 = conv_block(widths[1], widths[2])  # 32 x 7 x 7   -> 64 x 3 x 3
        self.fc1 = nn.Linear(widths[2] * 3 * 3, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.conv3(self.conv2(self.conv1(images))).flatten(1)
        return self.fc2(self.dropout(F.relu(self.fc1(features))))


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 6. Train

def train_one_epoch(model: nn.Module, loader: DataLoader, loss_fn, optimizer, scheduler) -> tuple[float, float]:
    """One pass over the loader's mini-batches, one training step each; returns the mean loss and the accuracy."""
    model.train()
    total_loss = correct = 0
    for images, labels in loader:
        optimizer.zero_grad()
        logits = model(images)
        loss = loss_fn(logits, labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.detach() * len(labels)  # detach: the number, without autograd's record
        correct += (logits.argmax(dim=1) == labels).sum()
    return float(total_loss) / len(loader.dataset), int(correct) / len(loader.dataset)


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 6. Train

@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size=1000) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of the model on the images, 1,000 at a time."""
    model.eval()
    logits = torch.cat([model(images[start:start + batch_size]) for start in range(0, len(images), batch_size)])
    return F.cross_entropy(logits, labels).item(), (logits.argmax(dim=1) == labels).float().mean().item()


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 6. Train

def sgd_one_cycle(model: nn.Module, learning_rate: float, total_steps: int):
    """SGD with momentum 0.9; the one-cycle schedule sets its learning rate at every step."""
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=total_steps,
                                                    cycle_momentum=False)  # the momentum stays 0.9
    return optimizer, scheduler


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 6. Train

def check_learning(epoch: int, loss: float, val_accuracy: float, learning_rate: float) -> None:
    """Stop a training whose loss is no longer a number; warn when the first epoch left the network at chance."""
    rate = f"the learning rate {learning_rate:g} (LEARNING_RATE; the notebook's is 0.15)"
    if not math.isfinite(loss):
        raise FloatingPointError(f"the loss became {loss} in epoch {epoch}: training diverged; {rate} is too high")
    if epoch == 1 and val_accuracy < 0.2:
        print(f"warning: after the first epoch the validation accuracy is {val_accuracy:.1%}, no better than guessing "
              f"among 10 digits: {rate} is probably too high for this network")


def fit(model: nn.Module, train_loader: DataLoader, val_data: tuple, loss_fn, optimizer, scheduler, epochs: int,
        progress: bool = False) -> dict[str, list[float]]:
    """Train for some epochs; after each, evaluate on the validation data and print a line. Returns the figures."""
    rows = []  # one dict of figures per epoch
    for epoch in tqdm(range(1, epochs + 1), desc="epochs", leave=False, disable=not progress):
        start = time.perf_counter()
        train_loss, train_accuracy = train_one_epoch(model, train_loader, loss_fn, optimizer, scheduler)
        seconds = time.perf_counter() - start
        val_loss, val_accuracy = evaluate(model, *val_data)
        rows.append({"train_loss": train_loss, "train_accuracy": train_accuracy, "val_loss": val_loss,
                     "val_accuracy": val_accuracy, "seconds": seconds})
        print(f"epoch {epoch:>2}/{epochs}  training loss {train_loss:.4f}, accuracy {train_accuracy:6.2%}  |  "
              f"validation loss {val_loss:.4f}, accuracy {val_accuracy:6.2%}  |  {seconds:4.1f} s")
        check_learning(epoch, train_loss, val_accuracy, optimizer.defaults["lr"])  # the lr given to the optimiser
    return {key: [row[key] for row in rows] for key in rows[0]}  # one list per figure: history["val_accuracy"]


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 7. Test

@torch.inference_mode()
def predict_probabilities(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax probabilities [N, 10] for every image, on the CPU."""
    model.eval()
    return torch.cat([F.softmax(model(images[start:start + batch_size]), dim=1).cpu()
                      for start in range(0, len(images), batch_size)])


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 7. Test

import importlib.util
import shutil


def architecture_graph(model: nn.Module, image: torch.Tensor):
    """torchviz's graph of one forward pass of the model, in evaluation mode; None, saying what to install, where
    the torchviz package or Graphviz's dot program is missing."""
    needs = {"the torchviz package (pip install torchviz)": importlib.util.find_spec("torchviz"),
             "Graphviz's `dot` program (apt-get, brew or conda install graphviz)": shutil.which("dot")}
    if missing := [name for name, found in needs.items() if not found]:
        print(f"note: the graph is not drawn here: it needs {' and '.join(missing)}")
        return None
    from torchviz import make_dot

    model.eval()
    graph = make_dot(model(image), params=dict(model.named_parameters()))
    graph.graph_attr.update(size="7,12", ranksep="0.25", nodesep="0.2")
    return graph


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, A. A baseline without convolution (optional; needs only Part I)

import itertools


class FullyConnectedNet(nn.Module):
    """Baseline: every pixel is wired to every unit of the first layer; no notion of neighbouring pixels."""

    def __init__(self, sizes: tuple[int, ...] = (784, 512, 256, 128, 64), dropout: float = 0.2):
        super().__init__()
        layers = [nn.Flatten()]
        for n_in, n_out in itertools.pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(dropout)]
        self.layers = nn.Sequential(*layers, nn.Linear(sizes[-1], 10))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images)


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, B. From the plain recipe to a tuned one, measured (optional; needs only Part I)

from torch.utils.data import default_collate


def random_affine(images: torch.Tensor, max_degrees: float = 10.0, max_shift: float = 2.0) -> torch.Tensor:
    """Rotate each image by up to ±max_degrees and shift it by up to ±max_shift pixels, at random."""
    count, size = images.shape[0], images.shape[-1]
    angle = (torch.rand(count, device=images.device) * 2 - 1) * math.radians(max_degrees)
    shift = (torch.rand(count, 2, device=images.device) * 2 - 1) * (2 * max_shift / size)  # the grid spans -1..1
    cos, sin = angle.cos(), angle.sin()
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="border")


def augmented_batch(samples: list) -> tuple[torch.Tensor, torch.Tensor]:
    """A DataLoader's collate_fn: stack the samples into a batch as usual, then rotate and shift each image."""
    images, labels = default_collate(samples)
    return random_affine(images), labels


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, B. From the plain recipe to a tuned one, measured (optional; needs only Part I)

LABEL_SMOOTHING = 0.1          # target 0.91 for the true digit, 0.01 for each of the others
WEIGHT_DECAY = 5e-4            # 0.0005 x each weight is added to its gradient: a pull towards zero
MOMENTUM_RANGE = (0.95, 0.85)  # the one-cycle schedule moves momentum between these, against the learning rate
PLAIN = {"augment": False, "label_smoothing": 0.0, "weight_decay": 0.0, "nesterov": False, "momentum_range": None}
FULL = {"augment": True, "label_smoothing": LABEL_SMOOTHING, "weight_decay": WEIGHT_DECAY, "nesterov": True,
        "momentum_range": MOMENTUM_RANGE}
TUNED = {**FULL, "nesterov": False, "momentum_range": None}  # what the ladder below keeps


def tuned_sgd_one_cycle(model: nn.Module, learning_rate: float, total_steps: int, weight_decay: float,
                        nesterov: bool, momentum_range: tuple[float, float] | None):
    """Part I's sgd_one_cycle with the optional ingredients: weight decay, Nesterov momentum, a momentum range."""
    high, low = momentum_range or (0.9, 0.9)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=high, nesterov=nesterov,
                                weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=total_steps,
                                                    cycle_momentum=momentum_range is not None,
                                                    max_momentum=high, base_momentum=low)
    return optimizer, scheduler


def train_recipe(model: nn.Module, train_data: tuple, val_data: tuple, epochs: int, learning_rate: float,
                 batch_size: int, augment: bool, label_smoothing: float, weight_decay: float, nesterov: bool,
                 momentum_range: tuple[float, float] | None, progress: bool = False) -> dict[str, list[float]]:
    """Part I's training with any choice of ingredients: train_recipe(..., **PLAIN) is Part I's run, **TUNED this
    section's."""
    loader = DataLoader(TensorDataset(*train_data), batch_size=batch_size, shuffle=True,
                        collate_fn=augmented_batch if augment else None)
    optimizer, scheduler = tuned_sgd_one_cycle(model, learning_rate, epochs * len(loader), weight_decay, nesterov,
                                               momentum_range)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    return fit(model, loader, val_data, loss_fn, optimizer, scheduler, epochs, progress)


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, D. Faster on an NVIDIA GPU: the whole step as one CUDA graph (optional; needs only Part I)

import warnings


def schedule_tensors(optimizer: torch.optim.Optimizer, scheduler, steps: int,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The learning rate and momentum of every step as the scheduler will set them, read off by stepping it
    (then putting the optimiser and the scheduler back as they were)."""
    group = optimizer.param_groups[0]
    saved_group = {key: value for key, value in group.items() if key != "params"}
    saved_scheduler = scheduler.state_dict()
    rates, momenta = [], []
    with warnings.catch_warnings():  # stepping a scheduler without optimizer.step() is what we mean here
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
        for _ in range(steps):
            rates.append(group["lr"])
            momenta.append(group["momentum"])
            scheduler.step()
    group.update(saved_group)
    scheduler.load_state_dict(saved_scheduler)
    return torch.tensor(rates, device=device), torch.tensor(momenta, device=device)


@torch.no_grad()
def sgd_step(params: list[torch.Tensor], grads: list[torch.Tensor], buffers: list[torch.Tensor],
             lr: torch.Tensor, momentum: torch.Tensor, weight_decay: float, nesterov: bool) -> None:
    """torch.optim.SGD's update, with the learning rate and momentum read from tensors on the device."""
    steps = torch._foreach_add(grads, params, alpha=weight_decay)  # gradient + weight decay
    torch._foreach_mul_(buffers, momentum)                          # buffer = momentum * buffer + step
    torch._foreach_add_(buffers, steps)
    if nesterov:                                                    # look ahead along the buffer
        torch._foreach_add_(steps, torch._foreach_mul(buffers, momentum))
    else:
        steps = buffers
    torch._foreach_sub_(params, torch._foreach_mul(steps, lr))


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, D. Faster on an NVIDIA GPU: the whole step as one CUDA graph (optional; needs only Part I)

class CudaGraphError(RuntimeError):
    """Capturing the training step as a CUDA graph failed."""


class CudaGraphTraining:
    """train_one_epoch's work, each step captured once as a CUDA graph and replayed for every batch.

    Same batches (a fresh shuffle per epoch, the last batch smaller), augmentation, loss, SGD and schedule
    as the plain loop; what differs is that nothing in a step waits for Python: the batch is picked on the
    GPU from a step counter, and the learning rate and momentum of the step are read from tensors.
    With capture=False the same steps run uncaptured, on any device (the tests compare it with the loop).
    """

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler, images: torch.Tensor,
                 labels: torch.Tensor, batch_size: int, epochs: int, augment: bool = False,
                 label_smoothing: float = 0.0, capture: bool = True):
        group = optimizer.param_groups[0]
        if not isinstance(optimizer, torch.optim.SGD) or len(optimizer.param_groups) > 1 \
                or group["dampening"] or group["maximize"]:
            raise ValueError(f"the CUDA-graph training step implements plain SGD only, not {type(optimizer).__name__}"
                             " with these settings: train with fit() of Part I instead")
        self.model, self.images, self.labels, self.augment = model, images, labels, augment
        self.batch_size, self.label_smoothing, self.count = batch_size, label_smoothing, len(images)
        self.steps_per_epoch = math.ceil(self.count / batch_size)
        device = images.device
        self.rates, self.momenta = schedule_tensors(optimizer, scheduler, epochs * self.steps_per_epoch, device)
        self.weight_decay, self.nesterov = group["weight_decay"], group["nesterov"]
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers = [torch.zeros_like(p) for p in self.params]
        self.step_index = torch.zeros((), dtype=torch.long, device=device)
        self.order = torch.arange(self.count, device=device)
        self.offsets = torch.arange(batch_size, device=device)
        self.total_loss = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)
        last = self.count - (self.steps_per_epoch - 1) * batch_size  # the size of the epoch's last batch
        sizes = [batch_size] * (self.steps_per_epoch - 1) + [last]
        model.train()  # a graph replays dropout and batch norm as they were when it was captured
        if capture:
            graphs = {size: self._capture(size) for size in sorted(set(sizes))}
            self.plan = [graphs[size].replay for size in sizes]
        else:
            self.plan = [lambda size=size: self._step(size) for size in sizes]

    def _step(self, size: int) -> None:
        """One training step, in tensor operations only: no Python numbers depend on the data."""
        within = self.step_index % self.steps_per_epoch
        chosen = self.order.index_select(0, within * self.batch_size + self.offsets[:size])
        images, labels = self.images.index_select(0, chosen), self.labels.index_select(0, chosen)
        if self.augment:
            images = random_affine(images)
        logits = self.model(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        grads = torch.autograd.grad(loss, self.params)
        step = self.step_index.clamp(max=len(self.rates) - 1).view(1)  # warm-up steps may run past the last one
        sgd_step(self.params, list(grads), self.buffers, self.rates.index_select(0, step).squeeze(0),
                 self.momenta.index_select(0, step).squeeze(0), self.weight_decay, self.nesterov)
        self.step_index += 1
        self.total_loss += loss.detach() * size
        self.correct += (logits.argmax(dim=1) == labels).sum()

    def _capture(self, size: int, warmup: int = 3) -> "torch.cuda.CUDAGraph":
        """Warm up on a side stream (PyTorch sets itself up), capture one step on that same stream, then undo
        the warm-up, whether the capture worked or not."""
        saved = [tensor.clone() for tensor in self._state()]
        failure = None  # the first error inside the capture, which the error on leaving it would hide
        try:
            with torch.cuda.device(self.images.device):  # capture on the GPU that holds the data
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    for _ in range(warmup):
                        self._step(size)
                side.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=side):
                    try:
                        self._step(size)
                    except Exception as error:
                        failure = error
                        raise
                torch.cuda.current_stream().wait_stream(side)
            return graph
        except Exception as error:
            cause = failure or error
            reason = (str(cause).strip() or "no message").splitlines()[0]
            raise CudaGraphError(f"capturing the training step as a CUDA graph failed: {type(cause).__name__}: "
                                 f"{reason}. Restart the kernel (Kernel > Restart) before training on this GPU "
                                 "again: Part I's plain loop needs no graph.") from cause
        finally:
            with torch.no_grad():
                for tensor, value in zip(self._state(), saved, strict=True):
                    tensor.copy_(value)

    def _state(self) -> list[torch.Tensor]:
        """Everything a step changes: weights, batch-norm statistics, momentum, counters."""
        return [*self.model.state_dict().values(), *self.buffers, self.step_index, self.total_loss, self.correct]

    def train_epoch(self) -> tuple[float, float]:
        """One pass over the training images in a fresh random order; returns the mean loss and the accuracy."""
        self.model.train()
        torch.empty((), dtype=torch.int64).random_()  # the DataLoader's draws: its base seed, then its shuffle's seed
        seed = int(torch.empty((), dtype=torch.int64).random_().item())
        self.order.copy_(torch.randperm(self.count, generator=torch.Generator().manual_seed(seed)))
        self.total_loss.zero_()
        self.correct.zero_()
        for run in self.plan:
            run()
        return self.total_loss.item() / self.count, self.correct.item() / self.count


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, D. Faster on an NVIDIA GPU: the whole step as one CUDA graph (optional; needs only Part I)

def fit_graphed(model: nn.Module, train_data: tuple, val_data: tuple, epochs: int, learning_rate: float,
                batch_size: int, capture: bool = True) -> dict[str, list[float]]:
    """Part I's fit and recipe, with each training step replayed as a CUDA graph; history["capture_seconds"] is
    the set-up time."""
    model.to(memory_format=torch.channels_last)
    start = time.perf_counter()
    optimizer, scheduler = sgd_one_cycle(model, learning_rate, epochs * math.ceil(len(train_data[0]) / batch_size))
    training = CudaGraphTraining(model, optimizer, scheduler, *train_data, batch_size, epochs, capture=capture)
    history = {"train_loss": [], "train_accuracy": [], "val_loss": [], "val_accuracy": [], "seconds": [],
               "capture_seconds": time.perf_counter() - start}
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_loss, train_accuracy = training.train_epoch()
        seconds = time.perf_counter() - start
        val_loss, val_accuracy = evaluate(model, *val_data)
        for key, value in zip(history, (train_loss, train_accuracy, val_loss, val_accuracy, seconds), strict=False):
            history[key].append(value)
        print(f"epoch {epoch:>2}/{epochs}  training loss {train_loss:.4f}, accuracy {train_accuracy:6.2%}  |  "
              f"validation loss {val_loss:.4f}, accuracy {val_accuracy:6.2%}  |  {seconds:4.1f} s")
        check_learning(epoch, train_loss, val_accuracy, learning_rate)
    return history


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps, UnidentifiedImageError


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    """(row, column) of the centre of mass of images [..., H, W], in pixels counted from 0."""
    rows = torch.arange(images.shape[-2], dtype=images.dtype)
    columns = torch.arange(images.shape[-1], dtype=images.dtype)
    mass = images.sum(dim=(-2, -1))
    return torch.stack([(images.sum(dim=-1) * rows).sum(dim=-1) / mass,
                        (images.sum(dim=-2) * columns).sum(dim=-1) / mass], dim=-1)


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

def disguise_as_photo(digit: np.ndarray, rng: np.random.Generator, size: tuple[int, int] = (120, 160)) -> np.ndarray:
    """A 28 x 28 uint8 MNIST digit as a photo: dark ink on light paper, rescaled, off-centre, uneven light, noise."""
    scale = rng.uniform(1.5, 3.5)
    ink = F.interpolate(torch.from_numpy(digit / 255).float()[None, None], scale_factor=scale, mode="bilinear",
                        align_corners=False)[0, 0].clamp(0, 1).numpy()
    top = rng.integers(0, size[0] - ink.shape[0] + 1)
    left = rng.integers(0, size[1] - ink.shape[1] + 1)
    paper = rng.uniform(0.7, 0.95) + rng.choice([-1, 1]) * np.linspace(-0.08, 0.08, size[1])[None, :]
    photo = np.broadcast_to(paper, size).copy()
    photo[top:top + ink.shape[0], left:left + ink.shape[1]] -= rng.uniform(0.5, 0.8) * ink
    photo += rng.normal(0, 0.03, size)
    return (np.clip(photo, 0, 1) * 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

PAPER_CONTRAST = 4.9  # how many times the paper's own unevenness the ink must stand out by (measured below)


def ink_above_paper(pixels: np.ndarray) -> tuple[np.ndarray, float]:
    """Grey levels (0 black, 1 white) -> the ink as its distance from the paper's grey, and the paper's own
    unevenness. The paper's grey is the median of the image's border; the ink is on the side where the image strays
    furthest from it (dark ink is inverted to white on black); the unevenness is how far the border's 10th
    percentile strays to the other side, where no ink is, so that a digit touching the frame is not taken for paper."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    paper = np.median(border)
    if paper - pixels.min() > pixels.max() - paper:  # dark ink on lighter paper: make it white on black
        pixels, border, paper = 1 - pixels, 1 - border, 1 - paper
    return pixels - paper, paper - np.percentile(border, 10)


def white_on_black(pixels: np.ndarray) -> np.ndarray:
    """Grey levels (0 black, 1 white) -> ink from 0 (paper) to 1 (strongest ink), inverting light paper."""
    ink, unevenness = ink_above_paper(pixels)
    if ink.max() < 0.15:
        raise ValueError("no ink found: the image is (almost) all one colour; expected a digit darker or "
                         "lighter than its background")
    if ink.max() < PAPER_CONTRAST * unevenness:
        raise ValueError(f"no digit found: nothing stands out from the paper more than {ink.max() / unevenness:.1f} "
                         "times the paper's own unevenness (light, noise); expected a digit clearly darker or "
                         "lighter than its background")
    return np.clip(ink / ink.max(), 0, 1)


def crop_to(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The smallest rectangle of `ink` that holds every pixel where `mask` is true."""
    rows, columns = np.nonzero(mask)
    return ink[rows.min():rows.max() + 1, columns.min():columns.max() + 1]


def nearest_pixel(position: float) -> int:
    """The nearest whole pixel, halves rounded up, as in JavaScript (Python's round() takes halves to the even
    number); within a thousandth of a half counts as the half, so that the last bits of a sum, which differ between
    PyTorch and a browser, never decide where a symmetric digit goes."""
    return math.floor(position + 0.5 + 1e-3)


def centred_in_field(ink: np.ndarray, box: int = 20, field_size: int = 28, centre: float = 14.0) -> np.ndarray:
    """Scale the longer side to `box` pixels; paste with the centre of mass at pixel (centre, centre)."""
    scale = box / max(ink.shape)
    height, width = max(1, nearest_pixel(ink.shape[0] * scale)), max(1, nearest_pixel(ink.shape[1] * scale))
    digit = F.interpolate(torch.from_numpy(ink)[None, None].float(), size=(height, width), mode="bilinear",
                          antialias=True, align_corners=False)[0, 0].clamp(0, 1)
    centre_row, centre_column = centre_of_mass(digit.double()).tolist()
    top = min(max(nearest_pixel(centre - centre_row), 0), field_size - height)
    left = min(max(nearest_pixel(centre - centre_column), 0), field_size - width)
    field = np.zeros((field_size, field_size), dtype=np.float32)
    field[top:top + height, left:left + width] = digit.numpy()
    return field


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

def strokes_only(ink: np.ndarray, threshold: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Black out faint noise: keep pixels in strokes (bright on average with their 8 neighbours) or very bright
    ones. Returns the cleaned ink and the mask of the strokes."""
    smoothed = F.avg_pool2d(torch.from_numpy(ink)[None], 3, stride=1, padding=1, count_include_pad=False)[0].numpy()
    strokes = smoothed > threshold
    if not strokes.any():
        raise ValueError("no ink found: only isolated specks, no strokes; expected a digit drawn with lines")
    return np.where(strokes | (ink > 2 * threshold), ink, 0), strokes


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

MNIST_STROKE = 2.3  # average stroke width of the MNIST digits in pixels (measured below)


def stroke_width(mask: torch.Tensor) -> torch.Tensor:
    """Average stroke width of binary images [..., H, W]: twice the ink area over the number of edge pixels."""
    images = mask.float().reshape(-1, 1, *mask.shape[-2:])
    inner = -F.max_pool2d(-F.pad(images, (1, 1, 1, 1)), 3, stride=1)  # ink whose 8 neighbours are all ink
    area = images.sum(dim=(1, 2, 3))
    return (2 * area / (area - inner.sum(dim=(1, 2, 3))).clamp(min=1)).reshape(mask.shape[:-2])


def thickened(ink: np.ndarray, box: int = 20, least: float = 0.45) -> np.ndarray:
    """Thicken strokes narrower than `least` times MNIST's, once the image is scaled to the box."""
    target = MNIST_STROKE * max(ink.shape) / box  # MNIST's stroke width in this image's pixels
    width = stroke_width(torch.from_numpy(ink > 0.5)).item()
    if width >= least * target:
        return ink
    size = 2 * nearest_pixel((target - width) / 2) + 1  # a maximum filter this wide adds size - 1 to every stroke
    grown = F.pad(torch.from_numpy(ink)[None], (size - 1,) * 4)  # room to grow
    for window in ((1, size), (size, 1)):  # the maximum over a square: over each row's stretch, then each column's
        grown = F.max_pool2d(grown, window, stride=1)
    return grown[0].numpy()


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

LUMA = (0.299, 0.587, 0.114)  # how much red, green and blue each contribute to brightness


def pil_to_array(image: Image.Image) -> np.ndarray:
    """A PIL image -> NumPy array, keeping 16-bit depth and transparency."""
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        return np.asarray(image.convert("RGBA"))
    if image.mode == "I":  # 16-bit greyscale, as some formats deliver it: 32-bit integers
        pixels = np.asarray(image)
        if pixels.min() < 0 or pixels.max() > 65535:
            raise ValueError(f"expected 8- or 16-bit pixels, found values from {pixels.min()} to {pixels.max()}")
        return pixels.astype(np.uint16)
    if image.mode in ("1", "L", "RGB", "F") or image.mode.startswith("I;16"):
        return np.asarray(image)
    return np.asarray(image.convert("RGB"))  # palette, CMYK, YCbCr, ...


def regular_file(path) -> Path:
    """The path, unless it names no file or something other than a regular file (a folder, a pipe, a device),
    which reading would misread or wait on forever."""
    path = Path(path)
    try:
        found = path.exists()
    except OSError as error:  # a name longer than the system allows, or a path it cannot look up
        raise ValueError(f"{str(path)[:80]}... cannot be looked up: {error.strerror} ({len(str(path))} characters); "
                         "expected the path of an image or checkpoint file") from error
    if not found:
        raise FileNotFoundError(f"{path}: no such file")
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file (a folder, a pipe or a device?): expected a file")
    return path


def open_image(path) -> np.ndarray:
    """Read an image file into an array, upright, refusing files that are not images."""
    path = regular_file(path)
    try:
        opened = Image.open(path)
    except UnidentifiedImageError as error:
        raise ValueError(f"{path} is not an image file that Pillow can read (expected PNG, JPEG, ...)") from error
    except Image.DecompressionBombError as error:  # far more pixels than a photo of a digit: perhaps an attack
        raise ValueError(f"{path} has too many pixels to be read safely ({error})") from error
    except ValueError as error:  # e.g. a text chunk that inflates to hundreds of megabytes
        raise ValueError(f"{path} cannot be read safely as an image: {error}") from error
    with opened:
        # A JPEG is decoded at 1/2, 1/4 or 1/8 of its size where that still leaves PHOTO_SIZE pixels (see
        # `downsized` below): a 40-megapixel photo in a fraction of the time.
        opened.draft(opened.mode, (PHOTO_SIZE, PHOTO_SIZE))
        try:
            opened.load()  # decode the pixels now, so that a damaged file is reported as such
        except (OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"{path} is an image file that cannot be decoded ({error}): "
                             "cut short or damaged?") from error
        return pil_to_array(ImageOps.exif_transpose(opened))


def to_grayscale(image) -> np.ndarray:
    """A file path, PIL image, NumPy array or tensor -> 2-D float32 array from 0 (black) to 1 (white)."""
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    elif isinstance(image, Image.Image):
        try:
            image = pil_to_array(image)
        except AssertionError as error:  # Pillow's only sign of a closed image
            raise ValueError("the PIL image is closed: use it inside its `with Image.open(...)` block, or pass the "
                             "file's path instead") from error
    elif isinstance(image, torch.Tensor):
        if image.is_meta:
            raise ValueError("the tensor is on the 'meta' device, which holds shapes but no pixel values; expected a "
                             "tensor of pixels (on the CPU or a GPU)")
        image = image.detach().cpu()
        image = (image.float() if image.dtype in (torch.float16, torch.bfloat16) else image).numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a file path, a PIL image, a NumPy array or a tensor, not {type(image).__name__}")
    if image.size == 0:
        raise ValueError(f"the image is empty (shape {image.shape}); expected a picture of a digit")
    if image.ndim == 3 and image.shape[2] in (1, 3, 4):
        channels = [to_grayscale(image[..., c]) for c in range(image.shape[2])]
        grey = channels[0] if len(channels) == 1 else sum(w * c for w, c in zip(LUMA, channels[:3], strict=True))
        return grey * channels[3] + (1 - channels[3]) if len(channels) == 4 else grey  # alpha over white paper
    if image.ndim != 2:
        hint = " (for a (1, H, W) tensor, pass image[0])" if image.ndim == 3 and image.shape[0] == 1 else ""
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), not {image.shape}{hint}")
    if image.dtype == np.bool_:
        return image.astype(np.float32)
    if image.dtype.kind == "u" and image.dtype.itemsize <= 2:  # uint8 or uint16, either byte order
        return image.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    if image.dtype.kind == "f":
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise ValueError("a float image must hold finite values from 0 to 1 (divide 8-bit values by 255)")
        return image.astype(np.float32)
    raise ValueError(f"expected pixels of type uint8, uint16, float or bool, not {image.dtype} "
                     "(for values from 0 to 255: image.astype(np.uint8))")


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

MIN_DIGIT = 8  # pixels: the network reads smaller digits mostly wrong (measured below)
DOT = 3.4  # a dot, not a digit: ink whose longer side is under DOT times its stroke width (measured below)
PHOTO_SIZE = 1024  # pixels: a larger image is first shrunk to this, as a camera of about 1 megapixel would take it


def downsized(pixels: np.ndarray, size: int = PHOTO_SIZE) -> np.ndarray:
    """Shrink an image whose longer side exceeds `size` by a whole factor, each new pixel the average of its block."""
    factor = -(-max(pixels.shape) // size)  # rounded up
    if factor == 1:
        return pixels
    return F.avg_pool2d(torch.from_numpy(pixels)[None], factor, ceil_mode=True)[0].numpy()


def mnist_style(image, ink_threshold: float = 0.25, thicken: bool = True) -> np.ndarray:
    """Any digit image -> 28 x 28 float32 array, white ink on black, scaled and centred as MNIST was."""
    grey = downsized(to_grayscale(image))  # a 12-megapixel photo would take seconds, for no more detail in 20 pixels
    ink, strokes = strokes_only(white_on_black(grey), ink_threshold)
    ink = crop_to(ink, strokes)
    if max(ink.shape) < MIN_DIGIT:
        raise ValueError(f"the digit is only {ink.shape[0]} x {ink.shape[1]} pixels: too small to read; expected at "
                         f"least {MIN_DIGIT} pixels for its height or width")
    if max(ink.shape) < DOT * float(stroke_width(torch.from_numpy(ink > 0.5))):
        raise ValueError(f"a dot, not a digit: the ink ({ink.shape[0]} x {ink.shape[1]} pixels) is hardly longer than "
                         "its stroke is wide; draw the whole digit, large")
    return centred_in_field(thickened(ink) if thicken else ink)


def predict_digit(model: nn.Module, image, mean: float, std: float, device: torch.device) -> tuple[int, np.ndarray]:
    """The predicted digit and all ten probabilities for any image of a handwritten digit."""
    field = torch.from_numpy(mnist_style(image))
    probabilities = predict_probabilities(model, ((field - mean) / std)[None, None].to(device))[0].numpy()
    return int(probabilities.argmax()), probabilities


# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

class DrawingPad:
    """Turns mouse strokes into a white-on-black image, and calls on_stroke_end(image) after each stroke."""

    def __init__(self, on_stroke_end, size: int = 280, line_width: int = 22, canvas=None):
        self.on_stroke_end, self.size, self.line_width, self.canvas = on_stroke_end, size, line_width, canvas
        self.clear()

    def clear(self) -> None:
        self.image = Image.new("L", (self.size, self.size), 0)
        self.last_point = None
        if self.canvas is not None:
            self.canvas.fill_style = "black"
            self.canvas.fill_rect(0, 0, self.size, self.size)

    def mouse_down(self, x: float, y: float) -> None:
        self.last_point = (x, y)
        self._line((x, y), (x, y))

    def mouse_move(self, x: float, y: float) -> None:
        if self.last_point is not None:
            self._line(self.last_point, (x, y))
            self.last_point = (x, y)

    def mouse_up(self, x: float, y: float) -> None:
        if self.last_point is not None:
            self.mouse_move(x, y)
            self.last_point = None
            self.on_stroke_end(self.image)

    def _line(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        radius = self.line_width / 2
        draw = ImageDraw.Draw(self.image)
        draw.line([start, end], fill=255, width=self.line_width)
        for x, y in (start, end):  # round ends, as a pen leaves
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
        if self.canvas is not None:
            self.canvas.stroke_style, self.canvas.line_width, self.canvas.line_cap = "white", self.line_width, "round"
            self.canvas.stroke_line(*start, *end)


def probabilities_html(digit: int, probabilities: np.ndarray) -> str:
    """The prediction and ten probability bars, as HTML for a widget."""
    bars = "".join(
        f"<div style='display:flex;align-items:center;gap:6px;font-family:monospace'>{d}"
        f"<div style='background:{'#ff7f0e' if d == digit else '#1f77b4'};height:12px;width:{200 * p:.0f}px'></div>"
        f"{p:.0%}</div>" for d, p in enumerate(probabilities))
    return f"<div class='digit-prediction'><b>prediction: {digit}</b> ({probabilities[digit]:.0%}){bars}</div>"
