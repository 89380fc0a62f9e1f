"""A generated, learnable image problem and a tiny model, shared by the training tests; and
generated data roots in the real layouts (noise images) for the book's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from emolib.book import make_fake_rafdb, noise_image
from emolib.data import DEFAULT_LETTER_TO_GESTURE, EMOTIONS, ImageDataset
from emolib.transforms import eval_transform


def toy_dataset(n: int = 240, classes: int = 4, size: int = 16, seed: int = 0) -> ImageDataset:
    """Class k = a bright square in quadrant k on noise: easy, but not trivial for chance."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.arange(n) % classes
    images = torch.randint(0, 120, (n, 1, size, size), generator=g, dtype=torch.uint8)
    h = size // 2
    for i, k in enumerate(targets.tolist()):
        r, c = divmod(k, 2)
        images[i, 0, r * h : r * h + h, c * h : c * h + h] += 100
    return ImageDataset(images, targets, [f"c{k}" for k in range(classes)],
                        transform=eval_transform(size, 1, (0.5,), (0.5,)))


def tiny_mlp(size: int = 16, classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(size * size, 32), nn.ReLU(), nn.Linear(32, classes))


def tiny_cnn(classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, classes))


def make_fake_fer2013(root, n_per_class: int = 10, seed: int = 0) -> Path:
    """A FER2013 look-alike (Kaggle image-folder layout, 48x48 gray noise JPEGs) in ``root``:
    ``train/<emotion>/`` with ``n_per_class`` images and ``test/<emotion>/`` with half as many."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_per_class), ("test", max(1, n_per_class // 2))):
        for k, emotion in enumerate(EMOTIONS):
            folder = root / split / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                noise_image(rng, 48, 1, k).save(folder / f"{split}_{emotion}_{i:04d}.jpg", quality=90)
    return root


def make_fake_asl(root, n_per_class: int = 10, seed: int = 0, size: int = 64) -> Path:
    """ASL look-alike photos (``train/A``, ``F``, ``L``, ``V``; RGB noise JPEGs) in ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for k, letter in enumerate(DEFAULT_LETTER_TO_GESTURE):
        folder = root / "train" / letter
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            noise_image(rng, size, 3, k).save(folder / f"{letter}{i}.jpg", quality=90)
    return root


def make_fake_data(root, n_per_class: int = 10, seed: int = 0) -> Path:
    """A complete generated data root (``fer2013/``, ``rafdb/``, ``asl/``); returns ``root``."""
    root = Path(root)
    make_fake_fer2013(root / "fer2013", n_per_class, seed)
    make_fake_rafdb(root / "rafdb", n_per_class, seed)
    make_fake_asl(root / "asl", n_per_class, seed)
    return root
