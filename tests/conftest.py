"""Shared fixtures: small generated datasets in every supported layout, and the real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolib.data import EMOTIONS, RAFDB_LABELS

REPO = Path(__file__).resolve().parents[1]


def real_data_root() -> Path:
    return Path(os.environ.get("EMOLIB_DATA", REPO.parent / "shared" / "data"))


def needs_real(sub: str) -> Path:
    """The real-data folder ``sub``, or skip the test saying where it was looked for."""
    path = real_data_root() / sub
    if not path.exists():
        pytest.skip(f"real data {path} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # Decoded-image caches of one test must not leak into another (or into ~/.cache).
    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path_factory.getbasetemp() / "emolib-cache"))


def _img(path: Path, size: int, mode: str, value: int) -> None:
    rng = np.random.default_rng(value)
    shape = (size, size) if mode == "L" else (size, size, 3)
    arr = np.clip(rng.normal(value, 20, shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)


@pytest.fixture
def fer_folders(tmp_path) -> Path:
    """FER2013 Kaggle layout: train/ 3 images per emotion, test/ 2 per emotion; pixel level encodes the class."""
    root = tmp_path / "fer2013"
    for split, n in (("train", 3), ("test", 2)):
        for k, emo in enumerate(sorted(EMOTIONS)):
            for i in range(n):
                _img(root / split / emo / f"{split}_{k}_{i}.jpg", 48, "L", 30 * k + i)
    return root


@pytest.fixture
def fer_csv(tmp_path) -> Path:
    """The original fer2013.csv layout: 2 Training, 1 PublicTest, 1 PrivateTest row per emotion."""
    path = tmp_path / "fer2013.csv"
    rows = ["emotion,pixels,Usage"]
    for label in range(7):
        for usage in ("Training", "Training", "PublicTest", "PrivateTest"):
            pixels = " ".join(str((label * 30 + j) % 256) for j in range(48 * 48))
            rows.append(f"{label},{pixels},{usage}")
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def rafdb_official(tmp_path) -> Path:
    root = tmp_path / "rafdb"
    lines = []
    for label in RAFDB_LABELS:
        for split, n in (("train", 2), ("test", 1)):
            for i in range(n):
                name = f"{split}_{label}{i:04d}.jpg"
                _img(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"), 100, "RGB", 20 * label)
                lines.append(f"{name} {label}")
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def rafdb_kaggle(tmp_path) -> Path:
    root = tmp_path / "raf-kaggle"
    for label in RAFDB_LABELS:
        for split, n in (("train", 2), ("test", 1)):
            for i in range(n):
                _img(root / "DATASET" / split / str(label) / f"{split}_{label}_{i}.jpg", 100, "RGB", 20 * label)
    return root


@pytest.fixture
def asl_folders(tmp_path) -> Path:
    root = tmp_path / "asl"
    for k, letter in enumerate("AFLV"):
        for i in range(4):
            _img(root / "train" / letter / f"{letter}{i}.jpg", 64, "RGB", 50 * k + i)
    return root
