"""A generated, learnable image problem and a tiny model, shared by the training tests; and
generated data roots in the real layouts (noise images) for the book's tests."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from emolib.book import make_fake_asl, make_fake_fer2013, make_fake_rafdb
from emolib.data import ImageDataset
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


class Interrupt(Exception):
    """Raised from ``on_epoch_end`` to stop a run as a kill would (:func:`fit_cut_and_resumed`)."""


def fit_cut_and_resumed(make_model, train, val, cfg, tmp_path: Path, stop_after: int = 2):
    """``fit`` straight through into ``tmp_path/full``, and the same run stopped after ``stop_after``
    epochs into ``tmp_path/cut`` then resumed from another global RNG state (as a fresh process
    would); returns the two histories ``(full, resumed)``."""
    import pytest

    from emolib.train import fit

    full = fit(make_model(), train, val, cfg, out_dir=tmp_path / "full", progress=False)

    def stop(entry):
        if entry["epoch"] == stop_after:
            raise Interrupt

    with pytest.raises(Interrupt):
        fit(make_model(), train, val, cfg, out_dir=tmp_path / "cut", progress=False, on_epoch_end=stop)
    torch.manual_seed(12345)  # a fresh process starts from another global RNG state
    return full, fit(make_model(), train, val, cfg, out_dir=tmp_path / "cut", progress=False)


def tiny_mlp(size: int = 16, classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(size * size, 32), nn.ReLU(), nn.Linear(32, classes))


def tiny_cnn(classes: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, classes))


def make_fake_data(root, n_per_class: int = 10, seed: int = 0) -> Path:
    """A complete generated data root (``fer2013/``, ``rafdb/``, ``asl/``); returns ``root``."""
    root = Path(root)
    make_fake_fer2013(root / "fer2013", n_per_class, seed)
    make_fake_rafdb(root / "rafdb", n_per_class, seed)
    make_fake_asl(root / "asl", n_per_class, seed)
    return root
