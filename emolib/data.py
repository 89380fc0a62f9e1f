"""Datasets: FER2013, RAF-DB and the ASL hand gestures, decoded once into memory.

Every dataset here is a :class:`ImageDataset`: a ``torch.utils.data.Dataset`` whose
images live in one compact ``uint8`` tensor of shape ``(N, C, H, W)``. Each file is
decoded exactly once (and, optionally, the tensor is cached on disk), so an epoch is
bound by the model, not by JPEG decoding.

Labels (defined in :mod:`emolib.labels`, re-exported here) use one canonical order
everywhere, :data:`EMOTIONS` (the order of the original ``fer2013.csv``)::

    0 angry  1 disgust  2 fear  3 happy  4 sad  5 surprise  6 neutral

Per-dataset maps translate to it: the Kaggle FER2013 folders by name
(:data:`FER2013_FOLDERS`), RAF-DB's labels 1..7 through :data:`RAFDB_LABELS`.
"""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .fileio import (IMAGE_EXTENSIONS, CheckpointError, ImageTooLargeError, cache_dir, files_key, load_torch, open_image,
                     save_torch, to_8bit)
from .labels import (ASL_ALPHABET, DEFAULT_LETTER_TO_GESTURE, EMOTIONS, FER2013_FOLDERS, FER2013_LABELS,
                     GESTURE_EMOTIONS, GESTURES, RAFDB_LABELS, check_gesture_map, gesture_folder_names)

__all__ = [
    # the label lists and maps live in emolib.labels; re-exported here
    "EMOTIONS",
    "FER2013_LABELS",
    "FER2013_FOLDERS",
    "RAFDB_LABELS",
    "GESTURES",
    "DEFAULT_LETTER_TO_GESTURE",
    "GESTURE_EMOTIONS",
    "ASL_ALPHABET",
    "check_gesture_map",
    "DatasetNotFoundError",
    "DatasetFormatError",
    "ImageDataset",
    "FER2013",
    "RAFDB",
    "ASLGestures",
    "ImageFolderDataset",
    "data_root",
    "dataset_path",
    "cache_dir",
    "load_images",
    "list_images",
    "scan_class_folders",
    "asl_files",
    "ASL_HELP",
    "train_val_split",
    "download",
]

_FER_SPLITS_CSV = {"train": "Training", "test": "PublicTest", "private_test": "PrivateTest"}
_FER_USAGES = frozenset(_FER_SPLITS_CSV.values())
_FER_HELP = (
    "Get FER2013 with emolib.data.download('fer2013') (Kaggle 'msambare/fer2013', no account "
    "needed) or by hand from https://www.kaggle.com/datasets/msambare/fer2013 (folders) or "
    "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge "
    "(fer2013.csv)."
)
_RAFDB_HELP = (
    "RAF-DB cannot be downloaded automatically: its licence forbids redistribution. Request it "
    "from the authors at http://www.whdeng.cn/raf/model1.html (academic use, a signed agreement "
    "by e-mail), then unpack it so that either 'Image/aligned/' and 'EmoLabel/list_patition_label.txt' "
    "or 'DATASET/train/1..7/' and 'DATASET/test/1..7/' lie under the root you pass."
)
ASL_HELP = (
    "Get the ASL alphabet photos with emolib.data.download('asl') (Kaggle 'grassknotted/asl-alphabet') "
    "or use any folder with one sub-folder per letter (A, F, L, V)."
)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's folder or file is not where it was expected."""


class DatasetFormatError(ValueError):
    """A dataset file exists but does not have the expected layout or content."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Resolve the data root: ``root`` if given, else ``$EMOLIB_DATA``, else ``~/emolib-data``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("EMOLIB_DATA")
    return Path(env).expanduser() if env else Path.home() / "emolib-data"


class ImageDataset(torch.utils.data.Dataset):
    """Images in one ``uint8`` tensor ``(N, C, H, W)`` with integer ``targets``.

    ``dataset[i]`` returns ``(transform(image), target)``; without a transform the
    image is the raw ``uint8`` tensor. ``skipped`` lists files that could not be
    decoded (they are left out, and reported once in a warning).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor | Sequence[int],
        classes: Sequence[str],
        transform: Callable | None = None,
        paths: Sequence[str] | None = None,
        skipped: Sequence[str] = (),
    ) -> None:
        targets = torch.as_tensor(targets, dtype=torch.long)
        if images.ndim != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = targets
        self.classes = tuple(classes)
        self.transform = transform
        self.paths = list(paths) if paths is not None else None
        self.skipped = list(skipped)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])

    @property
    def class_counts(self) -> dict[str, int]:
        """Number of images per class, in label order."""
        counts = torch.bincount(self.targets, minlength=len(self.classes)).tolist()
        return dict(zip(self.classes, counts))

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def subset(self, indices: Sequence[int] | torch.Tensor, transform: Callable | None = None) -> "ImageDataset":
        """A new dataset with the given rows (sharing nothing mutable with this one)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        paths = [self.paths[i] for i in idx.tolist()] if self.paths is not None else None
        return ImageDataset(
            self.images[idx], self.targets[idx], self.classes,
            transform if transform is not None else self.transform, paths,
        )

    def with_transform(self, transform: Callable | None) -> "ImageDataset":
        """The same images and labels with another transform (no copy of the pixels)."""
        return ImageDataset(self.images, self.targets, self.classes, transform, self.paths, self.skipped)

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        counts = ", ".join(f"{k}={v}" for k, v in self.class_counts.items())
        return f"{type(self).__name__}(n={n}, image={c}x{h}x{w}, {counts})"


# --------------------------------------------------------------------------- decoding


def _decode(path: str, mode: str, size: int | None, exact_size: bool = False) -> np.ndarray | str:
    """Decode one file to an (H, W, C) uint8 array, or say why not (a string).

    High-bit-depth images (16-bit PNG/TIFF...) are scaled to 8 bits, not clipped. With
    ``exact_size`` an image that is not ``size`` x ``size`` is refused instead of resized.
    """
    try:
        with open_image(path) as im:
            if exact_size and size is not None and im.size != (size, size):
                return f"{im.width}x{im.height}, not {size}x{size}"
            im = to_8bit(ImageOps.exif_transpose(im))
            im = im.convert(mode)
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except ImageTooLargeError as err:
        return f"too large: {err}"
    except (OSError, ValueError, SyntaxError) as err:
        return f"unreadable: {type(err).__name__}"
    return arr[:, :, None] if arr.ndim == 2 else arr


def _listing(paths: Sequence[str], limit: int = 3) -> str:
    more = f" (and {len(paths) - limit} more)" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def load_images(
    paths: Sequence[str],
    labels: Sequence[int],
    mode: str = "L",
    size: int | None = None,
    cache: bool | str | os.PathLike = False,
    desc: str = "decoding",
    exact_size: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Decode image files once into ``(images uint8 (N,C,H,W), targets, kept_paths, skipped_paths)``.

    ``mode`` is a PIL mode ("L" gray, "RGB"). Without ``size``, all images must share one
    size (else pass ``size`` to resize them). ``cache=True`` keeps the decoded tensor
    under ``$EMOLIB_CACHE`` (default ``~/.cache/emolib``) keyed by the files' names,
    sizes and times, so a second load is a single read. ``exact_size=True`` leaves out
    (and reports) images that are not ``size`` x ``size`` instead of resizing them.

    Files that cannot be decoded (including images over the decompression-bomb limit,
    see :func:`emolib.fileio.open_image`) are left out, and all left-out files are
    reported together in one warning. Two processes building the same cache each write
    their own temporary file and rename it into place: both get a whole cache.
    """
    from tqdm.auto import tqdm

    paths = [str(p) for p in paths]
    cache_file = None
    if cache and paths:
        cache_root = cache_dir() if cache is True else Path(cache)
        key = files_key(paths, f"{mode}|{size}")
        cache_file = cache_root / f"images-{key}{'-exact' if exact_size else ''}.pt"
        if cache_file.exists():
            try:
                blob = load_torch(cache_file, what="image cache")
                return blob["images"], blob["targets"], blob["paths"], blob["skipped"]
            except (CheckpointError, KeyError, TypeError):  # a corrupt cache is rebuilt, never trusted
                pass

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        arrays = list(
            tqdm(pool.map(lambda p: _decode(p, mode, size, exact_size), paths, chunksize=64), total=len(paths),
                 desc=desc, unit="img", leave=False, disable=len(paths) < 2000)
        )
    kept = [i for i, a in enumerate(arrays) if not isinstance(a, str)]
    skipped = [paths[i] for i, a in enumerate(arrays) if isinstance(a, str)]
    if skipped:
        bad = [f"{paths[i]} ({a.split(': ', 1)[1]})" for i, a in enumerate(arrays)
               if isinstance(a, str) and a.startswith(("unreadable: ", "too large: "))]
        wrong = [f"{paths[i]} ({a})" for i, a in enumerate(arrays)
                 if isinstance(a, str) and not a.startswith(("unreadable: ", "too large: "))]
        parts = [f"skipped {len(bad)} unreadable image(s) of {len(paths)}: {_listing(bad)}"] if bad else []
        if wrong:
            parts.append(f"left out {len(wrong)} image(s) of {len(paths)} of the wrong size: {_listing(wrong)}")
        warnings.warn("; ".join(parts), stacklevel=3)
    if not kept:
        raise DatasetFormatError(f"none of the {len(paths)} image files could be decoded")
    shapes = {arrays[i].shape for i in kept}
    if len(shapes) > 1:
        raise DatasetFormatError(
            f"images have different sizes {sorted(shapes)[:4]}; pass size=N to resize them on load"
        )
    stacked = np.stack([arrays[i] for i in kept])
    images = torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous()
    targets = torch.as_tensor([labels[i] for i in kept], dtype=torch.long)
    kept_paths = [paths[i] for i in kept]
    too_large = any(isinstance(a, str) and a.startswith("too large: ") for a in arrays)
    if cache_file is not None and not too_large:  # not cached: a raised pixel limit must be seen next time
        save_torch({"images": images, "targets": targets, "paths": kept_paths, "skipped": skipped}, cache_file)
    return images, targets, kept_paths, skipped


def list_images(folder: Path) -> list[str]:
    """The image files directly in ``folder``, sorted (by their suffix, case-insensitive)."""
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def scan_class_folders(
    root: Path, name_to_class: Mapping[str, str], classes: Sequence[str], ignore: set[str] = frozenset()
) -> tuple[list[str], list[int]]:
    """Files of ``root/<class folder>/``; a folder whose name is not in ``name_to_class`` is an error."""
    if not root.is_dir():
        raise DatasetNotFoundError(f"expected a folder at {root}")
    idx = {c: i for i, c in enumerate(classes)}
    paths: list[str] = []
    labels: list[int] = []
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in folders if p.name not in name_to_class and p.name not in ignore]
    if unknown:
        raise DatasetFormatError(
            f"unknown class folder(s) {unknown} in {root}; expected folders named {sorted(name_to_class)}"
        )
    for folder in folders:
        if folder.name in ignore:
            continue
        files = list_images(folder)
        paths += files
        labels += [idx[name_to_class[folder.name]]] * len(files)
    if not paths:
        raise DatasetNotFoundError(f"no images in the class folders of {root}")
    return paths, labels


def dataset_path(root: str | os.PathLike | None, default_sub: str) -> Path:
    """``root`` if given, else ``<data root>/<default_sub>`` when that exists, else the data root itself."""
    if root is not None:
        return Path(root).expanduser()
    base = data_root()
    return base / default_sub if (base / default_sub).exists() else base


# --------------------------------------------------------------------------- FER2013


class FER2013(ImageDataset):
    """FER2013 (Goodfellow et al. 2013): 48x48 gray faces, 7 emotions in :data:`EMOTIONS` order.

    ``root`` is either the Kaggle image-folder layout (a folder holding ``train/`` and
    ``test/`` with one sub-folder per emotion) or the original ``fer2013.csv``
    (``emotion,pixels,Usage``), or a folder that contains ``fer2013.csv``. Without
    ``root``, ``$EMOLIB_DATA/fer2013`` is used.

    ``split``: ``"train"`` (Training, 28,709 images), ``"test"`` (PublicTest, 3,589),
    and with the CSV also ``"private_test"`` (PrivateTest, 3,589).

    Nothing is dropped or changed without a word: folder images that are not 48x48 are
    left out (not stretched), CSV rows with an unknown ``Usage`` value are left out, and
    each kind is counted and named in one warning; a pixel value outside 0..255 is an
    error naming the file and line.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        transform: Callable | None = None,
        cache: bool = True,
    ) -> None:
        path = dataset_path(root, "fer2013")
        if not path.exists():
            raise DatasetNotFoundError(
                f"FER2013 not found at {path}: expected a folder with train/ and test/ (one sub-folder "
                f"per emotion: {', '.join(sorted(EMOTIONS))}) or the file fer2013.csv. {_FER_HELP}"
            )
        if path.is_dir() and (path / "fer2013.csv").is_file() and not (path / split).is_dir():
            path = path / "fer2013.csv"
        if path.is_file():
            images, targets = _read_fer_csv(path, split)
            super().__init__(images, targets, EMOTIONS, transform)
            self.root = path
            return
        folder = path / split
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test' for the folder layout, got {split!r}")
        if not folder.is_dir():
            raise DatasetNotFoundError(
                f"FER2013 split folder {folder} is missing: the image-folder layout needs {path}/train/ "
                f"and {path}/test/, each with one sub-folder per emotion. {_FER_HELP}"
            )
        paths, labels = scan_class_folders(folder, FER2013_FOLDERS, EMOTIONS)
        images, targets, kept, skipped = load_images(paths, labels, "L", 48, cache, desc=f"FER2013 {split}",
                                                     exact_size=True)
        super().__init__(images, targets, EMOTIONS, transform, kept, skipped)
        self.root = path


def _read_fer_csv(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in _FER_SPLITS_CSV:
        raise ValueError(f"split must be one of {sorted(_FER_SPLITS_CSV)}, got {split!r}")
    usage = _FER_SPLITS_CSV[split]
    pixels: list[np.ndarray] = []
    labels: list[int] = []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
            raise DatasetFormatError(
                f"{path}: expected the columns 'emotion,pixels,Usage' in the first line, got {header}"
            )
        unknown: dict[str, list[int]] = {}
        for row_no, row in enumerate(reader, start=2):
            if len(row) < 3:
                raise DatasetFormatError(f"{path}, line {row_no}: expected 3 columns, got {len(row)}")
            row_usage = row[2].strip()
            if row_usage != usage:
                if row_usage not in _FER_USAGES:
                    unknown.setdefault(row_usage, []).append(row_no)
                continue
            try:
                label = int(row[0])
                values = np.array(row[1].split(), dtype=np.int64)
            except (ValueError, OverflowError) as err:
                raise DatasetFormatError(f"{path}, line {row_no}: {err}") from None
            if not 0 <= label < len(EMOTIONS):
                raise DatasetFormatError(f"{path}, line {row_no}: emotion {label} is not in 0..6")
            if values.size != 48 * 48:
                raise DatasetFormatError(
                    f"{path}, line {row_no}: {values.size} pixel values, expected 2304 (48x48)"
                )
            if values.size and (values.min() < 0 or values.max() > 255):
                bad = int(values[(values < 0) | (values > 255)][0])
                raise DatasetFormatError(f"{path}, line {row_no}: pixel value {bad} is outside 0..255")
            pixels.append(values.astype(np.uint8))
            labels.append(label)
    if unknown:
        n = sum(len(v) for v in unknown.values())
        named = ", ".join(f"{u!r} (line{'s' if len(v) > 1 else ''} {', '.join(map(str, v[:3]))}"
                          f"{', ...' if len(v) > 3 else ''})" for u, v in list(unknown.items())[:5])
        warnings.warn(f"{path}: left out {n} row(s) with an unknown Usage value: {named}; expected one of "
                      f"{', '.join(sorted(_FER_USAGES))}", stacklevel=4)
    if not pixels:
        raise DatasetFormatError(f"{path}: no rows with Usage == {usage!r}")
    images = torch.from_numpy(np.stack(pixels)).view(-1, 1, 48, 48)
    return images, torch.as_tensor(labels)


# --------------------------------------------------------------------------- RAF-DB


class RAFDB(ImageDataset):
    """RAF-DB basic expressions (Li et al. 2017): 100x100 RGB aligned faces, 7 emotions.

    Two layouts under ``root`` are recognised:

    * official: ``Image/aligned/<name>_aligned.jpg`` and ``EmoLabel/list_patition_label.txt``
      (lines ``train_00001.jpg 5``; labels 1..7 = surprise, fear, disgust, happiness,
      sadness, anger, neutral);
    * Kaggle: ``DATASET/train/<1..7>/`` and ``DATASET/test/<1..7>/`` (or ``train/`` and
      ``test/`` directly under ``root``).

    Labels are mapped to :data:`EMOTIONS` order through :data:`RAFDB_LABELS`.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        transform: Callable | None = None,
        cache: bool = True,
        size: int = 100,
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        path = dataset_path(root, "rafdb")
        if not path.exists():
            raise DatasetNotFoundError(f"RAF-DB not found at {path}. {_RAFDB_HELP}")
        label_file = path / "EmoLabel" / "list_patition_label.txt"
        kaggle = next((p for p in (path / "DATASET" / split, path / split) if p.is_dir()), None)
        if label_file.is_file():
            paths, labels = _rafdb_official(path, label_file, split)
        elif kaggle is not None:
            folders = {str(k): v for k, v in RAFDB_LABELS.items()}
            paths, labels = scan_class_folders(kaggle, folders, EMOTIONS)
        else:
            raise DatasetNotFoundError(
                f"RAF-DB layout not recognised under {path}: expected {label_file} with Image/aligned/, "
                f"or {path / 'DATASET' / split}/1..7/. {_RAFDB_HELP}"
            )
        images, targets, kept, skipped = load_images(paths, labels, "RGB", size, cache, desc=f"RAF-DB {split}")
        super().__init__(images, targets, EMOTIONS, transform, kept, skipped)
        self.root = path


def _rafdb_official(root: Path, label_file: Path, split: str) -> tuple[list[str], list[int]]:
    image_dir = root / "Image" / "aligned"
    if not image_dir.is_dir():
        raise DatasetNotFoundError(f"RAF-DB images folder {image_dir} is missing. {_RAFDB_HELP}")
    idx = {c: i for i, c in enumerate(EMOTIONS)}
    paths: list[str] = []
    labels: list[int] = []
    missing: list[str] = []
    for line_no, line in enumerate(label_file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or int(parts[1]) not in RAFDB_LABELS:
            raise DatasetFormatError(
                f"{label_file}, line {line_no}: expected '<name>.jpg <label 1..7>', got {line!r}"
            )
        name, label = parts[0], int(parts[1])
        if not name.startswith(split + "_"):
            continue
        image = image_dir / (Path(name).stem + "_aligned" + Path(name).suffix)
        if not image.is_file():
            missing.append(image.name)
            continue
        paths.append(str(image))
        labels.append(idx[RAFDB_LABELS[label]])
    if missing:
        warnings.warn(f"{len(missing)} RAF-DB images listed in {label_file} are missing, e.g. {missing[:3]}",
                      stacklevel=3)
    if not paths:
        raise DatasetNotFoundError(f"no {split} images of {label_file} were found in {image_dir}")
    return paths, labels


# --------------------------------------------------------------------------- hands


def asl_files(root: str | os.PathLike | None = None, split: str = "train",
              letter_to_gesture: Mapping[str, str] = DEFAULT_LETTER_TO_GESTURE) -> tuple[list[str], list[int], tuple]:
    """The photo files of an ASL folder, without decoding a pixel: ``(paths, labels, classes)``.

    ``root`` (default ``$EMOLIB_DATA/asl``) holds one folder per letter (``A/``, ``F/``...),
    directly or under ``split/``; folders already named by gesture (``punch/``...) work too.
    Classes are the gestures in the (checked) map's order; folders of other ASL letters are
    ignored, any other folder is an error. :class:`ASLGestures` decodes exactly these files.
    """
    mapping = check_gesture_map(letter_to_gesture)
    path = dataset_path(root, "asl")
    if not path.exists():
        raise DatasetNotFoundError(f"ASL photos not found at {path}: expected one folder per letter "
                                   f"({', '.join(mapping)}). {ASL_HELP}")
    folder = path / split if (path / split).is_dir() else path
    classes = tuple(mapping.values())
    paths, labels = scan_class_folders(folder, gesture_folder_names(mapping), classes,
                                       ignore=set(ASL_ALPHABET) - set(mapping))
    return paths, labels, classes


class ASLGestures(ImageDataset):
    """Hand photos of ASL letters as the thesis's gestures (A punch, F super, L loser, V victory).

    The files are those of :func:`asl_files` (``root``, ``split``, ``letter_to_gesture``: see
    there); images are resized to ``size``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        transform: Callable | None = None,
        letter_to_gesture: Mapping[str, str] = DEFAULT_LETTER_TO_GESTURE,
        size: int = 224,
        cache: bool = True,
    ) -> None:
        paths, labels, classes = asl_files(root, split, letter_to_gesture)
        images, targets, kept, skipped = load_images(paths, labels, "RGB", size, cache, desc=f"ASL {split}")
        super().__init__(images, targets, classes, transform, kept, skipped)
        self.root = dataset_path(root, "asl")
        self.letter_to_gesture = check_gesture_map(letter_to_gesture)


class ImageFolderDataset(ImageDataset):
    """Any folder of class sub-folders, with an explicit folder-name -> class map.

    Used by ``emolib evaluate`` for a FER2013-layout test folder, or for a folder of
    letters or gestures.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        classes: Sequence[str],
        folder_to_class: Mapping[str, str] | None = None,
        mode: str = "L",
        size: int = 48,
        transform: Callable | None = None,
        cache: bool = False,
    ) -> None:
        path = Path(root).expanduser()
        mapping = dict(folder_to_class) if folder_to_class is not None else {c: c for c in classes}
        paths, labels = scan_class_folders(path, mapping, classes)
        images, targets, kept, skipped = load_images(paths, labels, mode, size, cache, desc=path.name)
        super().__init__(images, targets, classes, transform, kept, skipped)
        self.root = path


# --------------------------------------------------------------------------- splits


def train_val_split(
    dataset: ImageDataset,
    val_fraction: float = 0.1,
    seed: int = 0,
    train_transform: Callable | None = None,
    val_transform: Callable | None = None,
) -> tuple[ImageDataset, ImageDataset]:
    """Stratified, seeded split of a training set into training and validation parts."""
    from sklearn.model_selection import train_test_split

    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    indices = np.arange(len(dataset))
    n_classes = len(torch.unique(dataset.targets))
    # Stratification needs one image of every class on each side; small sets get that minimum.
    n_val = min(max(int(np.ceil(val_fraction * len(dataset))), n_classes), len(dataset) - n_classes)
    if n_val < n_classes:
        raise ValueError(f"{len(dataset)} images are too few for a stratified split of {n_classes} classes")
    train_idx, val_idx = train_test_split(
        indices, test_size=n_val, random_state=seed, stratify=dataset.targets.numpy()
    )
    return (
        dataset.subset(np.sort(train_idx), train_transform),
        dataset.subset(np.sort(val_idx), val_transform),
    )


# --------------------------------------------------------------------------- download

# name -> (Kaggle handle, a sub-folder that marks the layout's root, train images expected).
# The Kaggle FER2013 folders put PublicTest and PrivateTest together in test/ (7,178 images).
_KAGGLE = {
    "fer2013": ("msambare/fer2013", "train", 28709),
    "asl": ("grassknotted/asl-alphabet", "A", None),
}


def _find_layout(folder: Path, marker: str, depth: int = 3) -> Path | None:
    """The first folder at most ``depth`` levels below ``folder`` that has a ``marker`` sub-folder."""
    if (folder / marker).is_dir():
        return folder
    if depth == 0:
        return None
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        found = _find_layout(sub, marker, depth - 1)
        if found is not None:
            return found
    return None


class DownloadError(RuntimeError):
    """A dataset could not be downloaded; the message says what to do instead."""


def download(name: str, root: str | os.PathLike | None = None) -> Path:
    """Download a dataset by name into ``root/<name>`` (default: the data root) and return its path.

    ``"fer2013"`` and ``"asl"`` come from Kaggle through ``kagglehub``, which needs no
    account for public datasets (``pip install kagglehub``; on Colab it is preinstalled).
    The download is checked by counting images per split. ``"rafdb"`` cannot be
    downloaded (licence): the error says how to request it.
    """
    name = name.lower().replace("-", "")
    if name == "rafdb":
        raise DownloadError(_RAFDB_HELP)
    if name not in _KAGGLE:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(_KAGGLE) + ['rafdb']}")
    handle, marker, expected = _KAGGLE[name]
    target = data_root(root) / name
    if target.exists() and any(target.iterdir()):
        return target
    try:
        import kagglehub
    except ImportError:
        raise DownloadError(
            f"downloading {name} needs kagglehub: pip install kagglehub (or download "
            f"https://www.kaggle.com/datasets/{handle} by hand and unpack it into {target})"
        ) from None
    try:
        cached = Path(kagglehub.dataset_download(handle))
    except Exception as err:  # kagglehub raises many kinds on a closed network
        raise DownloadError(
            f"could not download {handle} from Kaggle ({type(err).__name__}: {err}). This machine may be "
            f"offline: download https://www.kaggle.com/datasets/{handle} elsewhere and unpack it into {target}, "
            f"or set EMOLIB_DATA to a folder that holds '{name}/'."
        ) from err
    source = _find_layout(cached, marker)
    if source is None:
        raise DownloadError(f"{cached} does not contain the expected layout (a folder with {marker}/)")
    if expected:
        found = sum(len(list_images(d)) for d in (source / "train").iterdir() if d.is_dir())
        if found != expected:
            raise DownloadError(f"{source}/train has {found} images, expected {expected}: incomplete download")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.rmdir()
    target.symlink_to(source, target_is_directory=True)
    return target
