"""The chapters' data: a data set by name, small samples of it for smoke runs, and placeholders.

A *smoke run* of a chapter is the same code on a few images: :func:`load_dataset` with
``smoke=True`` decodes a random sample of each class, :func:`sample_data_root` links a
sample into a small data root for :func:`emolib.experiment.run_recipe`. RAF-DB cannot be
redistributed: :func:`placeholder_data` and :func:`make_fake_rafdb` write a look-alike of
random noise in its real layout, so that the chapters' code runs where it is absent.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import data as D

__all__ = ["dataset_root", "load_dataset", "sample_data_root", "noise_image", "make_fake_rafdb", "make_fake_fer2013",
           "make_fake_asl", "placeholder_data"]

_DATASETS = {"fer2013": "FER2013", "rafdb": "RAF-DB", "asl": "ASL hand photos"}


def dataset_root(data_root: str | os.PathLike | None, name: str) -> Path | None:
    """Where data set ``name`` lies under a chapter's ``data_root``.

    ``None`` keeps emolib's default (``$EMOLIB_DATA/<name>``). Otherwise
    ``data_root/<name>`` when it exists, else ``data_root`` itself (a path straight to
    the data set's folder).
    """
    if data_root is None:
        return None
    base = Path(data_root).expanduser()
    return base / name if (base / name).exists() else base


def _sample_paths(folder: Path, name_to_class: Mapping[str, str], classes: Sequence[str], per_class: int,
                  seed: int) -> tuple[list[str], list[int]]:
    """``per_class`` random files from each class folder of ``folder`` (a quick sample: nothing else is decoded)."""
    if not folder.is_dir():
        raise D.DatasetNotFoundError(f"expected a folder at {folder}")
    rng = random.Random(seed)
    paths: list[str] = []
    labels: list[int] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.name in name_to_class):
        files = sorted(str(f) for f in sub.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
        files = rng.sample(files, min(per_class, len(files)))
        paths += files
        labels += [classes.index(name_to_class[sub.name])] * len(files)
    if not paths:
        raise D.DatasetNotFoundError(f"no class folders with images in {folder}")
    return paths, labels


def load_dataset(
    name: str,
    split: str = "train",
    data_root: str | os.PathLike | None = None,
    smoke: bool = False,
    size: int | None = None,
    per_class: int = 12,
    seed: int = 0,
) -> D.ImageDataset:
    """A data set of :mod:`emolib.data` by name: ``"fer2013"``, ``"rafdb"`` or ``"asl"``.

    In full mode this is ``FER2013(root, split)``, ``RAFDB(root, split)`` or
    ``ASLGestures(root, split, size=size)``. With ``smoke=True`` it is a random sample of
    ``per_class`` images per class, decoded without touching the rest (seconds, not
    minutes), when the data set is in its image-folder layout; other layouts are loaded
    in full and then sampled. A missing data set raises
    :class:`emolib.data.DatasetNotFoundError` in both modes.
    """
    root = dataset_root(data_root, name)
    if name == "asl":
        size = size or 224
    if smoke:
        base = root if root is not None else D.data_root() / name
        folder = None
        if name == "fer2013" and (base / split).is_dir():
            folder, names, classes, mode, side = base / split, D.FER2013_FOLDERS, D.EMOTIONS, "L", 48
        elif name == "asl" and base.is_dir():
            mapping = D.DEFAULT_LETTER_TO_GESTURE
            folder = base / split if (base / split).is_dir() else base
            names = {**mapping, **{g: g for g in mapping.values()}}
            classes, mode, side = tuple(mapping.values()), "RGB", size
        if folder is not None:
            paths, labels = _sample_paths(folder, names, classes, per_class, seed)
            images, targets, kept, skipped = D.load_images(paths, labels, mode, side)
            return D.ImageDataset(images, targets, classes, paths=kept, skipped=skipped)
    if name == "fer2013":
        ds = D.FER2013(root, split)
    elif name == "rafdb":
        ds = D.RAFDB(root, split)
    elif name == "asl":
        ds = D.ASLGestures(root, split, size=size)
    else:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(_DATASETS)}")
    if smoke:
        g = torch.Generator().manual_seed(seed)
        keep = torch.cat([
            idx[torch.randperm(len(idx), generator=g)[:per_class]]
            for idx in (torch.nonzero(ds.targets == k).flatten() for k in range(len(ds.classes)))
        ])
        ds = ds.subset(keep.sort().values)
    return ds


def sample_data_root(name: str, data_root: str | os.PathLike | None, dest: str | os.PathLike | None = None,
                     per_class: int = 40, seed: int = 0, splits: Sequence[str] = ("train", "test")) -> Path:
    """A small data root that links ``per_class`` random images of every class of each split.

    For smoke runs of :func:`emolib.experiment.run_recipe`, which otherwise decodes the
    whole data set first. Works on the image-folder layouts (FER2013's Kaggle folders,
    ASL letters); for other layouts (RAF-DB, FER2013's CSV) it returns the data set's own
    folder unchanged, after checking that RAF-DB's layout is there. The images are *linked* (symbolic links; copied where links are not possible), never
    moved, under ``dest`` (default: a folder in the system's temporary directory, named
    after the source, so repeated runs reuse it). Returns the sampled data set's folder,
    ``dest/<name>`` with ``<split>/<class>/`` in it: pass it as ``root`` to
    :func:`~emolib.experiment.run_recipe` or ``--data`` to ``emolib train``. Raises
    :class:`emolib.data.DatasetNotFoundError` if the data set is absent.
    """
    src = dataset_root(data_root, name) or D.data_root() / name
    if not src.exists():
        raise D.DatasetNotFoundError(f"{_DATASETS.get(name, name)} not found at {src}")
    if name == "fer2013":
        names = set(D.FER2013_FOLDERS)
    elif name == "asl":
        names = set(D.DEFAULT_LETTER_TO_GESTURE) | set(D.GESTURES)
    else:
        names = None
    if name == "rafdb":  # read in full by emolib.data.RAFDB; only check that one of its layouts is there
        layouts = (src / "EmoLabel" / "list_patition_label.txt", src / "DATASET", src / "train")
        if not any(p.exists() for p in layouts):
            raise D.DatasetNotFoundError(f"RAF-DB not found at {src}: no EmoLabel/list_patition_label.txt, "
                                         f"DATASET/ or train/ there")
    present = [s for s in splits if (src / s).is_dir()]
    if names is None or not present:
        return src
    key = hashlib.sha1(f"{src.resolve()}|{per_class}|{seed}|{sorted(present)}".encode()).hexdigest()[:10]
    root = Path(dest) if dest is not None else Path(tempfile.gettempdir()) / "emolib-book-samples" / key
    target = root / name
    done = target / ".complete"
    if done.is_file():
        return target
    if target.exists():
        shutil.rmtree(target)
    rng = random.Random(seed)
    for split in present:
        for sub in sorted(p for p in (src / split).iterdir() if p.is_dir() and p.name in names):
            files = sorted(f for f in sub.iterdir() if f.suffix.lower() in {".jpg", ".jpeg", ".png"})
            folder = target / split / sub.name
            folder.mkdir(parents=True, exist_ok=True)
            for f in rng.sample(files, min(per_class, len(files))):
                try:
                    (folder / f.name).symlink_to(f.resolve())
                except OSError:  # pragma: no cover - file systems without links
                    shutil.copy(f, folder / f.name)
    done.write_text("")
    return target


def noise_image(rng: np.random.Generator, size: int, channels: int, label: int) -> Image.Image:
    """Smooth random noise (a random 6x6 image scaled up) whose brightness depends a little on
    ``label``, as a PIL image. Smooth so that plots of it stay small files."""
    base = 60 + 20 * label
    small = np.clip(rng.normal(base, 45, size=(6, 6, channels)), 0, 255).astype(np.uint8)
    im = Image.fromarray(small[:, :, 0] if channels == 1 else small)
    return im.resize((size, size), Image.BICUBIC)


def make_fake_rafdb(root: str | os.PathLike, n_per_class: int = 10, seed: int = 0,
                    test_fraction: float = 0.25) -> Path:
    """Write a small RAF-DB look-alike in the official layout and return ``root``.

    The layout is RAF-DB's own: ``Image/aligned/{train,test}_NNNNN_aligned.jpg`` (100x100
    RGB) and ``EmoLabel/list_patition_label.txt`` with lines ``train_00001.jpg 5`` (labels
    1..7 = surprise, fear, disgust, happiness, sadness, anger, neutral). The images are
    **smoothed random noise**: placeholders that let the code run where the real data set (which
    may not be redistributed) is absent. ``n_per_class`` images per label, of which
    ``test_fraction`` go to the test split.
    """
    root = Path(root)
    image_dir = root / "Image" / "aligned"
    image_dir.mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_test = max(1, round(n_per_class * test_fraction)) if n_per_class > 1 else 0
    lines = []
    counters = {"train": 0, "test": 0}
    for label in sorted(D.RAFDB_LABELS):
        for i in range(n_per_class):
            split = "test" if i < n_test else "train"
            counters[split] += 1
            name = f"{split}_{counters[split]:05d}"
            noise_image(rng, 100, 3, label).save(image_dir / f"{name}_aligned.jpg", quality=90)
            lines.append(f"{name}.jpg {label}")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def make_fake_fer2013(root, n_per_class: int = 10, seed: int = 0) -> Path:
    """A FER2013 look-alike (Kaggle image-folder layout, 48x48 gray noise JPEGs) in ``root``:
    ``train/<emotion>/`` with ``n_per_class`` images and ``test/<emotion>/`` with half as many."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_per_class), ("test", max(1, n_per_class // 2))):
        for k, emotion in enumerate(D.EMOTIONS):
            folder = root / split / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                noise_image(rng, 48, 1, k).save(folder / f"{split}_{emotion}_{i:04d}.jpg", quality=90)
    return root


def make_fake_asl(root, n_per_class: int = 10, seed: int = 0, size: int = 64) -> Path:
    """ASL look-alike photos (``train/A``, ``F``, ``L``, ``V``; RGB noise JPEGs) in ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for k, letter in enumerate(D.DEFAULT_LETTER_TO_GESTURE):
        folder = root / "train" / letter
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            noise_image(rng, size, 3, k).save(folder / f"{letter}{i}.jpg", quality=90)
    return root


def placeholder_data(name: str = "rafdb", n_per_class: int = 8, seed: int = 0,
                     dest: str | os.PathLike | None = None) -> Path:
    """A data root holding a generated look-alike of data set ``name`` (``name/`` in its real
    layout), made once under ``dest`` (default: a fixed folder in the system's temporary
    directory) and reused afterwards.

    The images are **random noise** (:func:`make_fake_rafdb`, :func:`make_fake_fer2013`,
    :func:`make_fake_asl`): placeholders that let a chapter run its code where the real data set
    is absent (RAF-DB above all, which may not be redistributed; FER2013 or the ASL photos
    offline). Say so wherever they are shown.
    """
    makers = {"rafdb": make_fake_rafdb, "fer2013": make_fake_fer2013, "asl": make_fake_asl}
    if name not in makers:
        raise ValueError(f"no placeholder for {name!r}; choose one of {sorted(makers)}")
    root = Path(dest) if dest is not None else (
        Path(tempfile.gettempdir()) / "emolib-book-samples" / f"placeholder-{name}-{n_per_class}-{seed}")
    done = root / name / ".complete"
    if not done.is_file():
        makers[name](root / name, n_per_class=n_per_class, seed=seed)
        done.write_text("")
    return root
