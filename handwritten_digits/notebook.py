# GENERATED FILE, do not edit: `make export` writes it from the cells of HandWrittenDigitsRecognition.ipynb whose first
# line is "#| export". Edit those cells, then run `make export`; a test fails while the two differ.
"""The notebook's teaching code, importable: the network, the data preparation, the training loop, evaluation and
Part II's tools, exactly as the notebook shows them (each block names the section that teaches it)."""

# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 1. Set up

# Part I uses shutil, time, plt, torch, nn, F, DataLoader and TensorDataset; the others serve Part II
import itertools
import math
import shutil
import time
from contextlib import contextmanager

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset, default_collate

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
        features = self.conv3(self.conv2(self.conv1(images))).flatten(1)  # 64 x 3 x 3 -> 576 numbers per image
        return self.fc2(self.dropout(F.relu(self.fc1(features))))

# --------------------------------------------------------------------------------------------------------------------
# Taught in Part I, 6. Train

def train_one_epoch(model: nn.Module, loader: DataLoader, loss_fn, optimizer, scheduler, device) -> tuple[float, float]:
    """One pass over the loader's batches, one step each: mean loss and accuracy (FloatingPointError if it diverged)."""
    model.train()
    total_loss = correct = 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        logits = model(images)
        loss = loss_fn(logits, labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.detach() * len(labels)  # detach: the number, without autograd's record
        correct += (logits.argmax(dim=1) == labels).sum()
    if not all(value.isfinite().all() for value in model.state_dict().values()):
        raise FloatingPointError(f"training diverged: the learning rate {optimizer.defaults['lr']:g} may be too high")
    return total_loss.item() / len(loader.dataset), correct.item() / len(loader.dataset)


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size=1000) -> tuple[float, float]:
    """Mean cross-entropy loss and accuracy of the model on the images, 1,000 at a time."""
    model.eval()
    logits = torch.cat([model(images[start:start + batch_size]) for start in range(0, len(images), batch_size)])
    return F.cross_entropy(logits, labels).item(), (logits.argmax(dim=1) == labels).float().mean().item()

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

def architecture_graph(model: nn.Module, image: torch.Tensor):
    """torchviz's graph of one forward pass in evaluation mode; None, saying what to install, where it cannot draw."""
    from importlib.util import find_spec

    needs = {"the torchviz package (pip install torchviz)": find_spec("torchviz"),
             "Graphviz's `dot` program (apt-get, brew or conda install graphviz)": shutil.which("dot")}
    if missing := [name for name, found in needs.items() if not found]:
        print(f"note: the graph is not drawn here: it needs {' and '.join(missing)}")
        return None
    from torchviz import make_dot

    graph = make_dot(model.eval()(image), params=dict(model.named_parameters()))
    graph.graph_attr.update(size="7,12", ranksep="0.25", nodesep="0.2")
    return graph

# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II

def sgd_one_cycle(model: nn.Module, learning_rate: float, total_steps: int, *, weight_decay: float = 0.0,
                  nesterov: bool = False, momentum_range: tuple[float, float] | None = None):
    """Part I's SGD with momentum 0.9 and one-cycle schedule; the options after `*` are Part II (B)'s ingredients."""
    high, low = momentum_range or (0.9, 0.9)  # with a range, the schedule moves the momentum too
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=high, nesterov=nesterov,
                                weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=total_steps,
                                                    cycle_momentum=momentum_range is not None,
                                                    max_momentum=high, base_momentum=low)
    return optimizer, scheduler


def whole_batches_of(dataset: TensorDataset, batch_size: int) -> DataLoader:
    """The standard DataLoader's shuffled batches, in the same order, each indexed from the tensors at once: a
    BatchSampler hands the dataset a whole batch of indices, and batch_size=None stacks nothing (Part II (D))."""
    return DataLoader(dataset, sampler=BatchSampler(RandomSampler(dataset), batch_size, False), batch_size=None)


def train_recipe(model: nn.Module, train_data: tuple, val_data: tuple, epochs: int, learning_rate: float,
                 batch_size: int, augment: bool = False, label_smoothing: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False, momentum_range: tuple[float, float] | None = None,
                 whole_batches: bool = False) -> list[dict]:
    """Part I's training cell with Part II (B)'s ingredients as options (by default, none: Part I's recipe); one row
    of figures per epoch. Seed before creating the model and again before calling it, as Part I does."""
    dataset = TensorDataset(*train_data)
    if whole_batches:  # Part II (D)
        if augment:  # whole batches skip collate_fn, where augmentation happens
            raise ValueError("whole_batches=True cannot augment: set augment=False, or whole_batches=False")
        loader = whole_batches_of(dataset, batch_size)
    else:
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=True,
                            collate_fn=augmented_batch if augment else None)  # augmented_batch: Part II (B)
    optimizer, scheduler = sgd_one_cycle(model, learning_rate, epochs * len(loader), weight_decay=weight_decay,
                                         nesterov=nesterov, momentum_range=momentum_range)
    loss_fn, device = nn.CrossEntropyLoss(label_smoothing=label_smoothing), next(model.parameters()).device
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_loss, train_accuracy = train_one_epoch(model, loader, loss_fn, optimizer, scheduler, device)
        seconds = time.perf_counter() - start
        val_loss, val_accuracy = evaluate(model, *val_data)
        history.append({"train_loss": train_loss, "train_accuracy": train_accuracy, "val_loss": val_loss,
                        "val_accuracy": val_accuracy, "seconds": seconds})
        print(f"epoch {epoch:>2}/{epochs}  training loss {train_loss:.4f}, accuracy {train_accuracy:6.2%}  |  "
              f"validation loss {val_loss:.4f}, accuracy {val_accuracy:6.2%}  |  {seconds:4.1f} s")
    return history


@contextmanager
def recorded_blocks(model: nn.Module, names: tuple[str, ...] = ("conv1", "conv2", "conv3")):
    """Inside the `with`, each named block's output of the last forward pass, by name, recorded by forward hooks."""
    maps = {}

    def record(name: str):  # one hook per block, each keeping its block's name
        def hook(module, inputs, output):  # PyTorch calls it each time the block has run
            maps[name] = output
        return hook

    hooks = [getattr(model, name).register_forward_hook(record(name)) for name in names]
    try:
        yield maps  # the body of the `with` runs here
    finally:  # then the hooks go, even after an error
        for hook in hooks:
            hook.remove()

# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, A. A baseline without convolution (optional; needs only Part I)

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
TUNED = {**PLAIN, "augment": True, "label_smoothing": LABEL_SMOOTHING, "weight_decay": WEIGHT_DECAY}  # kept below

# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, D. Faster (optional; needs only Part I)

class Bfloat16(nn.Module):
    """The model with its forward pass under bfloat16 autocast, handing back float32 logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.autocast(images.device.type, dtype=torch.bfloat16):
            return self.model(images).float()


def has_bfloat16(device: torch.device) -> bool:
    """Whether PyTorch reports bfloat16 support: a CUDA GPU's own, or a CPU it runs with AVX-512 (which computes
    bfloat16 natively where the processor has AVX512_BF16, and emulates it on older AVX-512 processors)."""
    return torch.cuda.is_bf16_supported() if device.type == "cuda" else (
        torch.backends.cpu.get_cpu_capability() == "AVX512")

# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, D. Faster (optional; needs only Part I)

FAST = {"batch_size": 256, "learning_rate": 0.3, "label_smoothing": 0.1, "weight_decay": 5e-4, "whole_batches": True}
FAST_EPOCHS = 2  # with (B)'s label smoothing and weight decay; the learning rate 0.15 x 256 / 128

# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

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

PAPER_CONTRAST = 4.9  # how many times the paper's own unevenness the ink must stand out by (docs/handwriting.md)


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
    """The nearest whole pixel, halves rounded up as the static page's JavaScript rounds them (with a thousandth of
    slack, so that the last bits of a sum, which differ between PyTorch and a browser, never decide)."""
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


def to_grayscale(image) -> np.ndarray:
    """A PIL image, a NumPy array or a tensor -> 2-D float32 array from 0 (black) to 1 (white)."""
    if not isinstance(image, (Image.Image, np.ndarray, torch.Tensor)):
        raise TypeError(f"expected a PIL image, a NumPy array or a tensor, not {type(image).__name__} (open an "
                        "image file with Image.open(path) first)")
    if isinstance(image, Image.Image):
        image = image.convert("RGBA")  # any mode, as red, green, blue and opacity
    pixels = np.asarray(image.detach().cpu() if isinstance(image, torch.Tensor) else image)
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (3, 4)) or pixels.size == 0:
        raise ValueError(f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), not {pixels.shape}")
    if pixels.dtype == np.bool_ or pixels.dtype in (np.uint8, np.uint16):
        pixels = pixels / (1 if pixels.dtype == np.bool_ else np.iinfo(pixels.dtype).max)
    elif pixels.dtype.kind != "f" or not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
        raise ValueError(f"expected pixels of type uint8, uint16 or bool, or floats from 0 to 1, not {pixels.dtype} "
                         f"from {pixels.min()} to {pixels.max()} (for 0 to 255: image.astype(np.uint8))")
    if pixels.ndim == 3:  # colour: its brightness, and transparent pixels as white paper
        grey = pixels[..., :3] @ np.array(LUMA)
        pixels = grey * pixels[..., 3] + 1 - pixels[..., 3] if pixels.shape[2] == 4 else grey
    return pixels.astype(np.float32)

# --------------------------------------------------------------------------------------------------------------------
# Taught in Part II, E. Your own handwriting (optional; needs only Part I)

MIN_DIGIT = 8  # pixels: the network reads smaller digits mostly wrong (measured below)
DOT = 3.4  # a dot, not a digit: ink whose longer side is under DOT times its stroke width (docs/handwriting.md)
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


def picture_html(pixels: np.ndarray, style: str, title: str = "") -> str:
    """An <img> of grey or RGB uint8 pixels, as an inline PNG, its pixels drawn sharp however large it is shown."""
    import base64  # imported here: only the canvas needs them
    import io

    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    return (f"<img title='{title}' style='{style};image-rendering:pixelated' "
            f"src='data:image/png;base64,{base64.b64encode(png.getvalue()).decode()}'>")


def feature_maps_html(field: np.ndarray, maps: dict[str, torch.Tensor]) -> str:
    """The 28 x 28 field and each block's feature maps for one image (the first), as HTML for a widget: one colour
    scale per block, from 0 to the block's largest value; each map's title names its channel and largest value."""
    figure = "<figure style='margin:0;flex:0 1 240px'><figcaption style='font-size:12px'>{}</figcaption>{}</figure>"
    field_picture = picture_html(np.round(255 * field).astype(np.uint8), "width:84px;border:1px solid gray")
    figures = [figure.format("what the network reads, 28 &times; 28", field_picture)]
    for name, output in maps.items():
        output = output[0].float().cpu()
        channels, side, largest = output.shape[0], output.shape[1], output.max().item()
        # section C's colours, as red, green, blue and opacity bytes; `or 1`: a block of zeros stays at the bottom
        colours = plt.cm.viridis((output / (largest or 1)).numpy(), bytes=True)[..., :3]
        pictures = "".join(picture_html(colours[channel], "width:100%", f"{name}, channel {channel}: largest "
                                        f"{output[channel].max():.2f}") for channel in range(channels))
        columns = 8 if side > 7 else 16  # 8 maps a row of 14 x 14, 16 of smaller ones: 240 pixels wide
        grid = (f"<div style='display:grid;grid-template-columns:repeat({columns},1fr);gap:1px;width:240px;"
                f"max-width:100%'>{pictures}</div>")
        caption = f"{name}: {channels} &times; {side} &times; {side}, largest {largest:.2f}"
        figures.append(figure.format(caption, grid))
    return f"<div style='display:flex;flex-wrap:wrap;gap:10px 16px;max-width:720px'>{''.join(figures)}</div>"
