"""Shared fixtures: small generated datasets in every supported layout, and the real data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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


# ----------------------------------------------------------------------------- generated images
#
# Every generated image is different (its own seed) and asymmetric: a horizontal ramp, a bright
# block in the top-left quarter (wider than tall) and, in colour, a different level per channel.
# So a transpose, a flip, a channel swap or a row taken from the wrong split changes the pixels,
# and tests compare decoded images with :func:`pattern` (JPEG: within a small tolerance).


def pattern(size: int, mode: str, level: int, seed: int) -> np.ndarray:
    """The asymmetric test image: (size, size) for mode "L", (size, size, 3) for "RGB"; uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    img = level + 60.0 * x / size - 30.0
    img[: size // 4, : size // 2] += 70.0  # the block: top-left, twice as wide as tall
    img = img + rng.normal(0, 6, (size, size))
    if mode == "RGB":
        img = np.stack([img + 25.0, img, img - 25.0], axis=-1)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def close_to_pattern(image, expected: np.ndarray, tol: float = 4.0) -> bool:
    """Whether a decoded image ((C, H, W) tensor or (H, W[, C]) array) matches ``expected`` within JPEG's error."""
    arr = np.asarray(image, dtype=np.float64)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    arr = arr.reshape(expected.shape)
    return float(np.abs(arr - expected.astype(np.float64)).mean()) < tol


#: The FER2013 folders as Kaggle names them (independent of emolib's own tables).
FER_FOLDER_NAMES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FER_SPLIT_SIZES = {"train": 3, "test": 2}


def fer_folder_image(split: str, k: int, i: int) -> np.ndarray:
    """The image ``fer_folders`` writes as ``<split>/<folder k>/<split>_<k>_<i>.jpg``."""
    return pattern(48, "L", 30 * k + 20 * i, seed=(5000 if split == "test" else 0) + 100 * k + i)


@pytest.fixture
def fer_folders(tmp_path) -> Path:
    """FER2013 Kaggle layout: train/ 3 images per emotion, test/ 2 per emotion, every image distinct."""
    root = tmp_path / "fer2013"
    for split, n in FER_SPLIT_SIZES.items():
        for k, emo in enumerate(FER_FOLDER_NAMES):
            for i in range(n):
                path = root / split / emo / f"{split}_{k}_{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(fer_folder_image(split, k, i), "L").save(path, quality=95)
    return root


FER_CSV_USAGES = ("Training", "Training", "PublicTest", "PrivateTest")


def fer_csv_rows() -> list[tuple[int, str, np.ndarray]]:
    """The rows ``fer_csv`` writes, in file order: ``(emotion index, Usage, 48x48 uint8 image)``."""
    rows = []
    for n, (label, usage) in enumerate((lab, use) for lab in range(7) for use in FER_CSV_USAGES):
        rows.append((label, usage, pattern(48, "L", 40 + 20 * label + 7 * (n % 4), seed=1000 + n)))
    return rows


@pytest.fixture
def fer_csv(tmp_path) -> Path:
    """The original fer2013.csv layout: 2 Training, 1 PublicTest, 1 PrivateTest row per emotion, all distinct."""
    path = tmp_path / "fer2013.csv"
    lines = ["emotion,pixels,Usage"]
    for label, usage, img in fer_csv_rows():
        lines.append(f"{label},{' '.join(str(v) for v in img.ravel())},{usage}")  # row-major, as the CSV
    path.write_text("\n".join(lines) + "\n")
    return path


RAFDB_SPLIT_SIZES = {"train": 2, "test": 1}


def rafdb_image(split: str, label: int, i: int) -> np.ndarray:
    """The 100x100 RGB image the RAF-DB fixtures write for RAF-DB label ``label`` (1..7)."""
    return pattern(100, "RGB", 20 * label + 10 * i, seed=(9000 if split == "test" else 8000) + 10 * label + i)


@pytest.fixture
def rafdb_official(tmp_path) -> Path:
    """RAF-DB's own layout: ``Image/aligned/<split>_<label><i>_aligned.jpg`` and the label list, labels 1..7."""
    root = tmp_path / "rafdb"
    lines = []
    for label in range(1, 8):
        for split, n in RAFDB_SPLIT_SIZES.items():
            for i in range(n):
                name = f"{split}_{label}{i:04d}.jpg"
                path = root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg")
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rafdb_image(split, label, i), "RGB").save(path, quality=95)
                lines.append(f"{name} {label}")
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def rafdb_kaggle(tmp_path) -> Path:
    """The Kaggle RAF-DB layout: ``DATASET/<split>/<label 1..7>/``."""
    root = tmp_path / "raf-kaggle"
    for label in range(1, 8):
        for split, n in RAFDB_SPLIT_SIZES.items():
            for i in range(n):
                path = root / "DATASET" / split / str(label) / f"{split}_{label}_{i}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rafdb_image(split, label, i), "RGB").save(path, quality=95)
    return root


def asl_image(k: int, i: int) -> np.ndarray:
    """The 64x64 RGB photo ``asl_folders`` writes as ``train/<"AFLV"[k]>/<letter><i>.jpg``."""
    return pattern(64, "RGB", 50 * k + 10 * i, seed=7000 + 10 * k + i)


@pytest.fixture
def asl_folders(tmp_path) -> Path:
    root = tmp_path / "asl"
    for k, letter in enumerate("AFLV"):
        for i in range(4):
            path = root / "train" / letter / f"{letter}{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(asl_image(k, i), "RGB").save(path, quality=95)
    return root
