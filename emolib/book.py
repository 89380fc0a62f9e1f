"""Helpers for the book's chapters, and the command that runs them.

Command line (from the repository root)::

    python -m emolib.book execute [--smoke] [CHAPTER ...]   # run chapters in place (full by default)
    python -m emolib.book smoke OUTDIR [CHAPTER ...]        # run with smoke=True into OUTDIR
    python -m emolib.book list                              # the chapter notebooks, in book order

``execute`` refreshes the outputs that the published pages show (the book is built
with ``execute_notebooks: "off"``); ``smoke`` is what the tests run: every chapter on a
few images, without touching the committed notebooks. A CHAPTER is a notebook path or
a prefix of its name (``02`` or ``02_data``).

The rest of this module is small helpers the notebooks call so that they stay thin:
loading a data set by name (or a small sample of it in smoke mode), the message a
chapter shows when its data is absent, a few plots, and generated placeholder data
sets in the real layouts (for RAF-DB, which cannot be redistributed, and for tests).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from . import data as D
from .utils import repo_root

__all__ = [
    "GESTURE_EMOTIONS",
    "DATA_CHAPTER",
    "chapters",
    "execute_chapter",
    "execute",
    "smoke",
    "output_path",
    "repo_path",
    "write_result",
    "keep_results",
    "dataset_root",
    "load_dataset",
    "show_missing",
    "markdown",
    "gesture_table",
    "counts_table",
    "plot_class_counts",
    "plot_samples",
    "make_fake_rafdb",
    "make_fake_fer2013",
    "make_fake_asl",
    "make_fake_data",
    "placeholder_data",
    "layer_summary",
    "layer_table",
    "recipe_table",
    "recipe_command",
    "load_run",
    "show_not_shipped",
    "smoke_note",
    "sample_data_root",
    "smoke_run",
    "per_class_auc",
    "plot_roc",
    "plot_predictions",
    "main",
]

#: How the thesis pairs each hand gesture with an emotion (names as in :data:`emolib.data.EMOTIONS`).
GESTURE_EMOTIONS: dict[str, str] = {"punch": "angry", "super": "happy", "loser": "sad", "victory": "happy"}

#: The chapter that explains how to get the data (shown when a data set is missing).
DATA_CHAPTER = "02_data.ipynb"

#: Kernel the notebooks run in (the Makefile installs it: ``ipykernel install --sys-prefix --name python3``).
KERNEL = "python3"


# --------------------------------------------------------------------------- running chapters


def _book_dir(root: str | os.PathLike | None = None) -> Path:
    return Path(root) if root is not None else Path(repo_root())


def chapters(root: str | os.PathLike | None = None) -> list[Path]:
    """The chapter notebooks listed in ``_toc.yml`` (in book order), as absolute paths.

    Markdown pages of the table of contents are left out; so are entries whose
    notebook does not exist.
    """
    import yaml

    base = _book_dir(root).resolve()
    toc_file = base / "_toc.yml"
    if not toc_file.is_file():
        raise FileNotFoundError(f"no _toc.yml in {base}: run this from the book's repository")
    toc = yaml.safe_load(toc_file.read_text())
    entries: list[str] = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))
            walk(item.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    found = []
    for entry in entries:
        path = base / entry
        nb = path if path.suffix == ".ipynb" else path.with_suffix(".ipynb")
        if nb.is_file():
            found.append(nb)
    return found


def _select(names: Sequence[str] | None, root=None) -> list[Path]:
    available = chapters(root)
    if not names:
        return available
    picked = []
    for name in names:
        p = Path(name)
        if p.suffix == ".ipynb" and p.is_file():
            picked.append(p.resolve())
            continue
        matches = [nb for nb in available if nb.stem.startswith(p.stem)]
        if len(matches) != 1:
            choices = ", ".join(nb.stem for nb in available)
            raise SystemExit(f"chapter {name!r} matches {len(matches)} notebooks; choose from: {choices}")
        picked.append(matches[0])
    return picked


@contextmanager
def _inline_backend():
    """Let the kernel pick the inline matplotlib backend even when ``MPLBACKEND=Agg`` is exported
    (the Makefile does, for the tests); with Agg a notebook would show no figures."""
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old


_WIDGET = "application/vnd.jupyter.widget-view+json"


def _clean(path: Path, drop_injected: bool) -> None:
    """Remove papermill's run metadata (timings, status) and progress-bar widgets, so that
    committed notebooks diff cleanly and render without widget state."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    cells = []
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            # Progress bars (tqdm widgets) keep no state in a saved notebook: drop them.
            cell.outputs = [o for o in cell.outputs if _WIDGET not in o.get("data", {})]
        tags = cell.metadata.get("tags", [])
        if drop_injected and "injected-parameters" in tags:
            continue
        cells.append(cell)
    nb.cells = cells
    nbformat.write(nb, path)


def execute_chapter(
    notebook: str | os.PathLike,
    output: str | os.PathLike | None = None,
    parameters: Mapping | None = None,
    kernel_name: str = KERNEL,
    timeout: int | None = None,
) -> Path:
    """Run one notebook with papermill (in its own folder) and write it to ``output`` (default: in place).

    ``parameters`` replace the values of the notebook's ``parameters`` cell. Returns the
    path of the executed notebook. A failing cell raises papermill's
    ``PapermillExecutionError`` (the partly run notebook is still written).
    """
    import papermill as pm

    notebook = Path(notebook).resolve()
    output = Path(output).resolve() if output is not None else notebook
    output.parent.mkdir(parents=True, exist_ok=True)
    with _inline_backend():
        pm.execute_notebook(
            str(notebook), str(output), parameters=dict(parameters or {}), kernel_name=kernel_name,
            cwd=str(notebook.parent), progress_bar=False, log_output=False, execution_timeout=timeout,
        )
    _clean(output, drop_injected=not parameters)
    return output


def execute(names: Sequence[str] | None = None, smoke_mode: bool = False, root=None) -> list[Path]:
    """Run chapters in place (all of ``_toc.yml`` by default): full runs unless ``smoke_mode``."""
    done = []
    for nb in _select(names, root):
        t0 = time.time()
        print(f"executing {nb.name} ({'smoke' if smoke_mode else 'full'}) ...", flush=True)
        execute_chapter(nb, parameters={"smoke": True} if smoke_mode else None)
        print(f"  done in {time.time() - t0:.0f} s", flush=True)
        done.append(nb)
    return done


def smoke(outdir: str | os.PathLike, names: Sequence[str] | None = None, data_root=None, root=None) -> list[Path]:
    """Run chapters with ``smoke=True`` into ``outdir`` (the committed notebooks are not touched).

    Each chapter writes its files under ``outdir/results/<chapter>``. ``data_root``
    overrides ``$EMOLIB_DATA`` for the run.
    """
    out = Path(outdir).resolve()
    done = []
    for nb in _select(names, root):
        params = {"smoke": True, "output_dir": str(out / "results" / nb.stem)}
        if data_root is not None:
            params["data_root"] = str(data_root)
        t0 = time.time()
        print(f"smoke {nb.name} ...", flush=True)
        done.append(execute_chapter(nb, out / nb.name, params))
        print(f"  done in {time.time() - t0:.0f} s", flush=True)
    return done


def keep_results() -> bool:
    """Whether chapters must leave their result files alone: ``$EMOLIB_KEEP_RESULTS=1`` (the
    test suite's nbval pass runs the committed chapters in the repository, perhaps without
    the data, and must not rewrite what they record)."""
    return os.environ.get("EMOLIB_KEEP_RESULTS") == "1"


def write_result(path: str | os.PathLike, text: str) -> bool:
    """Write a chapter's result file unless :func:`keep_results`; returns whether it wrote."""
    from .fileio import write_text

    if keep_results():
        return False
    write_text(path, text)
    return True


def repo_path(path: str | os.PathLike) -> Path:
    """``path``, taken from the repository root when relative (where ``_toc.yml`` lies; the
    current folder on Colab)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(repo_root()) / path


def output_path(output_dir: str | os.PathLike) -> Path:
    """A chapter's output folder (:func:`repo_path`). The folder is created."""
    path = repo_path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------- data in the chapters

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


def markdown(text: str):
    """Show ``text`` as rendered Markdown in a notebook (plain text elsewhere)."""
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython comes with every notebook
        print(text)
        return
    display(Markdown(text))


def show_missing(err: Exception, dataset: str = "The data set", chapter: str = DATA_CHAPTER) -> None:
    """Tell the reader, in a rendered box, that a data set is absent and where to get it.

    Chapters catch :class:`emolib.data.DatasetNotFoundError` and call this instead of
    failing; the cells that need the data are then skipped.
    """
    markdown(
        f"> **{dataset} is not available here, so the cells that need it are skipped.**\n>\n"
        f"> {err}\n>\n"
        f"> The data chapter ([{chapter}]({chapter})) explains how to get it. Set the environment "
        f"variable `EMOLIB_DATA` (or this chapter's `data_root` parameter) to the folder that holds it."
    )


def gesture_table() -> str:
    """The thesis's gestures as a Markdown table: ASL letter, gesture, paired emotion."""
    letters = {g: l for l, g in D.DEFAULT_LETTER_TO_GESTURE.items()}
    rows = ["| ASL letter | gesture | emotion the thesis pairs it with |", "|---|---|---|"]
    rows += [f"| {letters[g]} | {g} | {GESTURE_EMOTIONS[g]} |" for g in D.GESTURES]
    return "\n".join(rows)


def counts_table(counts: Mapping[str, Mapping[str, int]]) -> str:
    """Per-class image counts of several splits (``{"train": {...}, "test": {...}}``) as a Markdown table
    with shares in per cent and a total row."""
    splits = list(counts)
    classes = list(dict.fromkeys(c for s in splits for c in counts[s]))
    totals = {s: sum(counts[s].values()) for s in splits}
    head = "| class | " + " | ".join(f"{s} | {s} %" for s in splits) + " |"
    rows = [head, "|---|" + "---:|---:|" * len(splits)]
    for c in classes:
        cells = [f"{counts[s].get(c, 0):,} | {100 * counts[s].get(c, 0) / max(totals[s], 1):.1f}" for s in splits]
        rows.append(f"| {c} | " + " | ".join(cells) + " |")
    rows.append("| **total** | " + " | ".join(f"**{totals[s]:,}** | 100.0" for s in splits) + " |")
    return "\n".join(rows)


def plot_class_counts(counts: Mapping[str, Mapping[str, int]], title: str = "", ax=None, share: bool = False):
    """Grouped bar chart of images per class, one bar colour per split; returns the axes.

    ``share=True`` plots each split's share of images (per cent) instead of counts, which
    makes splits of different sizes comparable.
    """
    import matplotlib.pyplot as plt

    splits = list(counts)
    classes = list(dict.fromkeys(c for s in splits for c in counts[s]))
    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(classes) + 1), 3.6))
    width = 0.8 / len(splits)
    x = np.arange(len(classes))
    for i, s in enumerate(splits):
        total = max(sum(counts[s].values()), 1)
        values = [counts[s].get(c, 0) * (100 / total if share else 1) for c in classes]
        bars = ax.bar(x + (i - (len(splits) - 1) / 2) * width, values, width, label=f"{s} ({total:,})")
        ax.bar_label(bars, labels=[f"{v:.0f}" if share else f"{int(v):,}" for v in values], fontsize=7,
                     padding=1)
    ax.set_xticks(x, classes)
    ax.set_ylabel("share of images (%)" if share else "images")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.margins(y=0.12)
    return ax


def plot_samples(dataset: D.ImageDataset, per_class: int = 8, seed: int = 0, title: str = "",
                 cell: float = 1.0):
    """A grid of random images, one row per class (one row of one image per class when
    ``per_class == 1``); returns the figure."""
    import matplotlib.pyplot as plt

    g = torch.Generator().manual_seed(seed)
    classes = dataset.classes
    picks = []
    for k in range(len(classes)):
        idx = torch.nonzero(dataset.targets == k).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=g)[:per_class]].tolist())
    one_row = per_class == 1
    rows, cols = (1, len(classes)) if one_row else (len(classes), per_class)
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols + (0 if one_row else 0.9), cell * rows + 0.3),
                             squeeze=False)
    for k, name in enumerate(classes):
        for j in range(per_class):
            ax = axes[0][k] if one_row else axes[k][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(picks[k]):
                img = dataset.images[picks[k][j]].numpy()
                if img.shape[0] == 1:
                    ax.imshow(img[0], cmap="gray", vmin=0, vmax=255)
                else:
                    ax.imshow(img.transpose(1, 2, 0))
            if one_row:
                ax.set_title(name, fontsize=9)
            elif j == 0:
                ax.set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- generated data sets


def _noise_image(rng: np.random.Generator, size: int, channels: int, label: int):
    """Smooth random noise (a random 6x6 image scaled up) whose brightness depends a little on
    ``label``, as a PIL image. Smooth so that plots of it stay small files."""
    from PIL import Image

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
            _noise_image(rng, 100, 3, label).save(image_dir / f"{name}_aligned.jpg", quality=90)
            lines.append(f"{name}.jpg {label}")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    return root


def make_fake_fer2013(root: str | os.PathLike, n_per_class: int = 10, seed: int = 0) -> Path:
    """Write a FER2013 look-alike (Kaggle image-folder layout, 48x48 gray noise JPEGs) to ``root``:
    ``train/<emotion>/`` with ``n_per_class`` images and ``test/<emotion>/`` with half as many.
    For tests only: the images are random noise."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_per_class), ("test", max(1, n_per_class // 2))):
        for k, emotion in enumerate(D.EMOTIONS):
            folder = root / split / emotion
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _noise_image(rng, 48, 1, k).save(folder / f"{split}_{emotion}_{i:04d}.jpg", quality=90)
    return root


def make_fake_asl(root: str | os.PathLike, n_per_class: int = 10, seed: int = 0, size: int = 64) -> Path:
    """Write ASL look-alike photos (``train/A``, ``F``, ``L``, ``V``; RGB noise JPEGs) to ``root``.
    For tests only: the images are random noise."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for k, letter in enumerate(D.DEFAULT_LETTER_TO_GESTURE):
        folder = root / "train" / letter
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            _noise_image(rng, size, 3, k).save(folder / f"{letter}{i}.jpg", quality=90)
    return root


def make_fake_data(root: str | os.PathLike, n_per_class: int = 10, seed: int = 0) -> Path:
    """A complete generated data root (``fer2013/``, ``rafdb/``, ``asl/``) for tests; returns ``root``."""
    root = Path(root)
    make_fake_fer2013(root / "fer2013", n_per_class, seed)
    make_fake_rafdb(root / "rafdb", n_per_class, seed)
    make_fake_asl(root / "asl", n_per_class, seed)
    return root


# --------------------------------------------------------------------------- models and runs in the chapters


def _describe(module: torch.nn.Module) -> str:
    """A short description of one layer for :func:`layer_table`."""
    from torch import nn

    from .models import ResidualUnit

    if isinstance(module, ResidualUnit):
        conv = module.body[0]
        shortcut = "identity" if isinstance(module.shortcut, nn.Identity) else "1x1 projection"
        return (f"residual unit {conv.in_channels}→{conv.out_channels}, stride {conv.stride[0]}, "
                f"{shortcut} shortcut")
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size, module.stride
        return f"conv {k[0]}x{k[1]}, {module.out_channels} filters, stride {s[0]}"
    if isinstance(module, nn.BatchNorm2d):
        return "batch norm"
    if isinstance(module, nn.MaxPool2d):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return f"max-pool {k}x{k}"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "global average pool"
    if isinstance(module, nn.Linear):
        return f"dense {module.in_features}→{module.out_features}"
    if isinstance(module, nn.Dropout):
        return f"dropout {module.p}"
    return type(module).__name__


def _rows_of(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The modules :func:`layer_summary` reports: children, with ``nn.Sequential`` containers opened."""
    from torch import nn

    rows = []

    def walk(module, prefix):
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, nn.Sequential):
                walk(child, full + ".")
            else:
                rows.append((full, child))

    walk(model, "")
    return rows


def layer_summary(model: torch.nn.Module, input_size: Sequence[int] = (1, 1, 48, 48),
                  device: str | torch.device = "cpu") -> list[dict]:
    """Run one input of ``input_size`` (batch first) through ``model`` and describe each layer.

    The layers are the model's children, with ``nn.Sequential`` containers opened (so a
    residual unit is one row, a stem of conv, batch norm, ReLU and pool is four). Each row
    is a dict: ``name``, ``what`` (a short description), ``output`` (the output shape
    without the batch dimension, recorded by a forward hook), ``parameters`` (of that
    layer and everything in it) and ``macs`` (multiply-adds of its convolutions and dense
    layers for one image). Works on ``torch.device("meta")`` models too (shapes only).
    """
    from torch import nn

    rows = _rows_of(model)
    shapes: dict[str, tuple] = {}
    macs: dict[str, int] = {name: 0 for name, _ in rows}
    owner = {id(m): name for name, row in rows for m in row.modules()}
    hooks = []

    def record(name):
        def hook(_module, _inputs, output):
            shapes[name] = tuple(output.shape[1:])
        return hook

    def count(module, _inputs, output):
        name = owner.get(id(module))
        if name is None:
            return
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs[name] += int(output[0].numel()) * k
        elif isinstance(module, nn.Linear):
            macs[name] += module.in_features * module.out_features

    for name, module in rows:
        hooks.append(module.register_forward_hook(record(name)))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(count))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(*input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [
        {"name": name, "what": _describe(module), "output": shapes.get(name),
         "parameters": sum(p.numel() for p in module.parameters()), "macs": macs[name]}
        for name, module in rows
    ]


def layer_table(model: torch.nn.Module, input_size: Sequence[int] = (1, 1, 48, 48), macs: bool = False) -> str:
    """:func:`layer_summary` as a Markdown table (layer, what, output C×H×W, parameters), with totals.

    The total is checked against the model's own parameter count. ``macs=True`` adds a
    column of multiply-adds per image (in millions).
    """
    rows = layer_summary(model, input_size)
    total = sum(p.numel() for p in model.parameters())
    if sum(r["parameters"] for r in rows) != total:  # pragma: no cover - parameters outside the children
        raise ValueError("the layers do not hold all of the model's parameters")
    head = "| layer | what | output (C×H×W) | parameters |" + (" multiply-adds (M) |" if macs else "")
    lines = [head, "|---|---|---|---:|" + ("---:|" if macs else "")]
    for r in rows:
        shape = "×".join(str(d) for d in r["output"]) if r["output"] else "–"
        line = f"| `{r['name']}` | {r['what']} | {shape} | {r['parameters']:,} |"
        lines.append(line + (f" {r['macs'] / 1e6:.1f} |" if macs else ""))
    total_macs = sum(r["macs"] for r in rows)
    lines.append(f"| **total** | | | **{total:,}** |" + (f" **{total_macs / 1e6:.1f}** |" if macs else ""))
    return "\n".join(lines)


def _recipe(r):
    from .recipes import get_recipe

    return get_recipe(r) if isinstance(r, str) else r


def recipe_table(*recipes) -> str:
    """Recipes of :mod:`emolib.recipes` (names or ``Recipe`` objects) side by side, as a Markdown table.

    Rows: model, data set, input size, ImageNet weights, epochs, batch size, optimizer and
    learning rate, schedule, label smoothing, weight decay, early stopping, validation
    share, and the face or hand augmentation with its settings (the transform's
    defaults, updated by the recipe's ``augment``).
    """
    import inspect
    from dataclasses import asdict

    from . import transforms as T
    from .models import input_config

    names = [r if isinstance(r, str) else f"{r.model}-{r.dataset}" for r in recipes]
    objs = [_recipe(r) for r in recipes]

    def augmentation(r) -> str:
        fn = T.hand_train_transform if r.dataset == "asl" else T.face_train_transform
        skip = {"size", "channels", "mean", "std"}
        params = {k: p.default for k, p in inspect.signature(fn).parameters.items() if k not in skip}
        params.update(r.augment)
        return f"`{fn.__name__}`: " + ", ".join(f"{k} {v}" for k, v in params.items())

    def schedule(c) -> str:
        if c.schedule == "plateau":
            return f"ReduceLROnPlateau (factor {c.plateau_factor}, patience {c.plateau_patience})"
        if c.schedule == "onecycle":
            return "one-cycle"
        return c.schedule

    fields = [
        ("model", lambda r: f"`{r.model}`"),
        ("data set", lambda r: r.dataset),
        ("input", lambda r: "{0}×{0}, {1} channel(s)".format(input_config(r.model, size=r.size).size,
                                                             input_config(r.model, size=r.size).channels)),
        ("ImageNet weights", lambda r: "yes" if r.pretrained else "no (from scratch)"),
        ("epochs", lambda r: r.config.epochs),
        ("batch size", lambda r: r.config.batch_size),
        ("optimizer", lambda r: f"Adam, learning rate {r.config.lr:g}"),
        ("schedule", lambda r: schedule(r.config)),
        ("label smoothing", lambda r: r.config.label_smoothing),
        ("weight decay", lambda r: r.config.weight_decay),
        ("early stopping", lambda r: f"after {r.config.early_stopping} epochs without progress"
         if r.config.early_stopping else "no"),
        ("validation share", lambda r: f"{100 * r.val_fraction:g} % of the training images"),
        ("augmentation", augmentation),
        ("seed", lambda r: asdict(r.config)["seed"]),
    ]
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(str(fn(r)) for r in objs) + " |" for label, fn in fields]
    return "\n".join(lines)


def recipe_command(name: str, data: str = "$EMOLIB_DATA/fer2013", out: str | None = None) -> str:
    """The shell command that trains recipe ``name`` (resumable), as the README gives it."""
    return f"emolib train --recipe {name} --data {data} --out {out or f'runs/{name}'}"


def load_run(name: str, results_dir: str | os.PathLike = "results/runs",
             runs_dir: str | os.PathLike | None = "runs") -> dict | None:
    """What is known of a training run named ``name`` (``baseline-fer2013``...), or None.

    Looks, in order, in ``results_dir/<name>/`` (a *shipped* run: ``history.json``,
    ``result.json`` and ``card.json``, copied there by ``emolib export``), then in the
    model card that ships inside the package (``emolib/checkpoints/<name>.json``; no
    history), then in ``runs_dir/<name>/history.json`` (a run still *in progress*, or
    finished but not shipped). Relative folders are taken from the repository root.
    Returns ``{"status": "shipped" | "card" | "in progress", "history": [...] or None,
    "result": dict or None, "card": dict or None, "path": Path}``.
    """
    import json

    from .models import CHECKPOINT_DIR

    base = Path(repo_root())

    def under(folder):
        folder = Path(folder)
        return folder if folder.is_absolute() else base / folder

    def read(path: Path):
        return json.loads(path.read_text()) if path.is_file() else None

    shipped = under(results_dir) / name
    if (shipped / "card.json").is_file():
        history = read(shipped / "history.json")
        return {"status": "shipped", "history": history["history"] if history else None,
                "result": read(shipped / "result.json"), "card": read(shipped / "card.json"), "path": shipped}
    card = read(CHECKPOINT_DIR / f"{name}.json")
    if card is not None:
        return {"status": "card", "history": None, "result": None, "card": card, "path": CHECKPOINT_DIR}
    if runs_dir is not None:
        run = under(runs_dir) / name
        history = read(run / "history.json")
        if history is not None:
            result = read(run / "result.json")
            return {"status": "finished, not shipped" if result else "in progress", "history": history["history"],
                    "result": result, "card": None, "path": run, "config": history.get("config")}
    return None


def show_not_shipped(name: str, run: dict | None = None, data: str = "$EMOLIB_DATA/fer2013",
                     train_parameter: str | None = "train") -> None:
    """Say, in a rendered box, that run ``name`` has not been shipped yet, and how to train and ship it.

    ``run`` is what :func:`load_run` found: an unfinished run is reported with its number
    of epochs so far, and the reader is told that the curves that follow are from it
    (pass ``None`` where a chapter shows no curves). ``train_parameter`` names the
    chapter's parameter that trains the run from the chapter (``None``: it has none).
    """
    so_far = ""
    if run is not None and run.get("history"):
        planned = (run.get("config") or {}).get("epochs", "?")
        try:
            where = Path(run["path"]).resolve().relative_to(Path(repo_root()).resolve())
        except ValueError:
            where = run["path"]
        so_far = (f" A run is {run['status']} in `{where}/` ({len(run['history'])} of {planned} epochs "
                  f"so far); the curves below are from that **unfinished** run and will change.")
    markdown(
        f"> **The run `{name}` has not been shipped yet**, so its final results are not shown here.{so_far}\n>\n"
        f"> Train it (the command resumes an interrupted run), then ship it; this chapter then reads "
        f"`results/runs/{name}/`:\n>\n"
        f"> ```bash\n> {recipe_command(name, data)}\n"
        f"> emolib export runs/{name} --name {name} --command \"{recipe_command(name, data)}\"\n> ```"
        + (f"\n>\n> or set this chapter's parameter `{train_parameter} = True` to train it from here."
           if train_parameter else "\n>\n> and run this chapter again.")
    )


def smoke_note(text: str = "") -> None:
    """Label what follows as output of a *smoke run* (a few images, a few batches): it shows that the
    code works, and none of its numbers mean anything."""
    markdown("> **Smoke run.** The numbers and curves of this part come from a small sample of images and "
             "at most a few batches of training: they show that the code runs, not how well a model works." +
             (f" {text}" if text else ""))


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
    import hashlib
    import shutil
    import tempfile

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


def smoke_run(recipe, out_dir: str | os.PathLike, data_root: str | os.PathLike | None = None, per_class: int = 45,
              limit: int | None = 300, max_batches: int = 3, batch_size: int | None = None, size: int | None = None,
              device: str | None = None, seed: int = 0) -> dict:
    """Train a tiny version of a recipe (a name of :mod:`emolib.recipes` or a ``Recipe``) in seconds.

    One epoch of at most ``max_batches`` batches on at most ``limit`` training images drawn
    from ``per_class`` images per class (:func:`sample_data_root`; RAF-DB and other
    layouts are read in full, then limited), no ImageNet weights, no data-loader
    processes, ``size`` overriding the input side. The run is written to
    ``out_dir/<model>-<dataset>/`` (replacing an earlier smoke run there) by
    :func:`emolib.experiment.run_recipe`. Returns a dict shaped like :func:`load_run`'s,
    with ``status`` ``"smoke"``. Only shows that the code runs: the numbers mean nothing.
    """
    import shutil
    from dataclasses import replace

    from .experiment import run_recipe
    from .train import load_history

    r = _recipe(recipe)
    r = replace(r, config=replace(r.config, epochs=1, max_batches=max_batches, num_workers=0, seed=seed,
                                  device=device, batch_size=batch_size or r.config.batch_size))
    if size is not None:
        r = replace(r, size=size)
    root = sample_data_root(r.dataset, data_root, per_class=per_class, seed=seed)
    folder = Path(out_dir) / f"{r.model}-{r.dataset}"
    if folder.exists():
        shutil.rmtree(folder)
    result = run_recipe(r, folder, root=root, limit=limit, pretrained=False, resume=False, progress=False)
    return {"status": "smoke", "history": load_history(folder), "result": result, "card": None, "path": folder,
            "config": result["recipe"]["config"]}


# --------------------------------------------------------------------------- evaluation plots


def per_class_auc(y_true, probs, classes: Sequence[str]) -> dict[str, float]:
    """One-vs-rest ROC AUC of every class (NaN for a class absent from ``y_true``), and ``"macro"``,
    their mean over the present classes (as :func:`emolib.metrics.roc_auc`)."""
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    out = {}
    for k, c in enumerate(classes):
        positive = y_true == k
        out[c] = float(roc_auc_score(positive, probs[:, k])) if 0 < positive.sum() < len(y_true) else float("nan")
    present = [v for v in out.values() if not np.isnan(v)]
    out["macro"] = float(np.mean(present)) if present else float("nan")
    return out


def plot_roc(y_true, probs, classes: Sequence[str], ax=None, title: str = ""):
    """One-vs-rest ROC curve of every class, with its AUC in the legend; returns the axes."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    aucs = per_class_auc(y_true, probs, classes)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    for k, c in enumerate(classes):
        if np.isnan(aucs[c]):
            continue
        fpr, tpr, _ = roc_curve(y_true == k, probs[:, k])
        ax.plot(fpr, tpr, lw=1.2, label=f"{c} ({aucs[c]:.3f})")
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, title="class (AUC)", title_fontsize=7, loc="lower right")
    ax.set_title(title or f"one-vs-rest ROC (macro AUC {aucs['macro']:.3f})", fontsize=10)
    return ax


def plot_predictions(dataset: D.ImageDataset, probs, n: int = 8, correct: bool | None = None, seed: int = 0,
                     title: str = "", cell: float = 1.25):
    """A row of ``n`` random test images with true and predicted labels (and the predicted
    probability); ``correct=True`` or ``False`` picks only right or only wrong predictions.
    Titles of right predictions are green, of wrong ones red. Returns the figure."""
    import matplotlib.pyplot as plt

    probs = torch.as_tensor(np.asarray(probs))
    pred = probs.argmax(1)
    ok = pred == dataset.targets
    pool = torch.arange(len(dataset))
    if correct is not None:
        pool = pool[ok == correct]
    g = torch.Generator().manual_seed(seed)
    picks = pool[torch.randperm(len(pool), generator=g)[:n]].tolist()
    fig, axes = plt.subplots(1, n, figsize=(cell * n, cell + 0.75), squeeze=False)
    for ax, i in zip(axes[0], picks + [None] * (n - len(picks))):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if i is None:
            continue
        img = dataset.images[i].numpy()
        ax.imshow(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=255)
        t, p = dataset.classes[int(dataset.targets[i])], dataset.classes[int(pred[i])]
        ax.set_title(f"true {t}\npred {p} {100 * float(probs[i, pred[i]]):.0f}%", fontsize=7,
                     color="tab:green" if t == p else "tab:red")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def placeholder_data(name: str = "rafdb", n_per_class: int = 8, seed: int = 0,
                     dest: str | os.PathLike | None = None) -> Path:
    """A data root holding a generated look-alike of data set ``name`` (``name/`` in its real layout),
    made once under ``dest`` (default: a fixed folder in the system's temporary directory) and
    reused afterwards.

    The images are **random noise** (:func:`make_fake_rafdb`, :func:`make_fake_fer2013`,
    :func:`make_fake_asl`): placeholders that let a chapter run its code where the real data
    set is absent, RAF-DB above all, which may not be redistributed. Say so wherever they
    are shown.
    """
    import tempfile

    makers = {"rafdb": make_fake_rafdb, "fer2013": make_fake_fer2013, "asl": make_fake_asl}
    if name not in makers:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(makers)}")
    root = Path(dest) if dest is not None else (
        Path(tempfile.gettempdir()) / "emolib-book-samples" / f"placeholder-{name}-{n_per_class}-{seed}")
    done = root / name / ".complete"
    if not done.is_file():
        makers[name](root / name, n_per_class=n_per_class, seed=seed)
        done.write_text("")
    return root


# --------------------------------------------------------------------------- the pipeline and webcam chapters

#: Where the example photos and the video of ``$EMOLIB_DATA/photos`` and ``video/`` come from.
PHOTO_SOURCES = (
    "the example and test images of the public repositories "
    "[ageitgey/face_recognition](https://github.com/ageitgey/face_recognition) (MIT licence), "
    "[timesler/facenet-pytorch](https://github.com/timesler/facenet-pytorch) (MIT), "
    "[ipazc/mtcnn](https://github.com/ipazc/mtcnn) (MIT) and "
    "[davisking/dlib](https://github.com/davisking/dlib) (Boost Software Licence)"
)
#: The photos of :func:`make_placeholder_photos` (the names of the real ones, with their face counts).
EXAMPLE_PHOTOS = {"obama.jpg": 1, "two_people.jpg": 2, "multiface.jpg": 6, "bald_guys.jpg": 24, "ivan.jpg": 1,
                  "Tom_Cruise_avp_2014_4.jpg": 1, "dogs.jpg": 0, "no-faces.jpg": 0}
EXAMPLE_VIDEO = "short_hamilton_clip.mp4"


def make_placeholder_photos(root: str | os.PathLike, seed: int = 0) -> Path:
    """Write **random-noise** stand-ins for ``photos/`` (the real file names, ``faces.json``) and
    ``video/short_hamilton_clip.mp4`` (12 frames, MPEG-4 with PyAV) under ``root``; returns ``root``.

    For smoke runs of the pipeline chapters where the real photos are absent: the code
    runs on them and finds no faces. ``faces.json`` gives the real photos' counts.
    """
    import json

    from PIL import Image

    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "photos").mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(EXAMPLE_PHOTOS):
        _noise_image(rng, 160, 3, k).resize((320, 240)).save(root / "photos" / name, quality=90)
    (root / "photos" / "faces.json").write_text(json.dumps(EXAMPLE_PHOTOS, indent=1))
    (root / "video").mkdir(exist_ok=True)
    try:
        import av
    except ImportError:
        return root
    with av.open(str(root / "video" / EXAMPLE_VIDEO), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(12):
            frame = av.VideoFrame.from_image(_noise_image(rng, 160, 3, 3).resize((320, 240)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return root


def pipeline_examples(data_root: str | os.PathLike | None = None, smoke: bool = False,
                      placeholder_dir: str | os.PathLike | None = None) -> tuple[Path, Path | None, str | None]:
    """The pipeline chapters' inputs: ``(photos folder, video file or None, placeholder label or None)``.

    The real ones are ``photos/`` (with ``faces.json``) and ``video/short_hamilton_clip.mp4``
    under ``data_root`` (default ``$EMOLIB_DATA``). Without them, a smoke run gets
    :func:`make_placeholder_photos` (under ``placeholder_dir``, default a temporary
    folder) and a label saying so; a full run raises
    :class:`emolib.data.DatasetNotFoundError`.
    """
    import tempfile

    base = D.data_root(data_root)
    photos = base / "photos"
    if (photos / "faces.json").is_file():
        video = base / "video" / EXAMPLE_VIDEO
        return photos, (video if video.is_file() else None), None
    if not smoke:
        raise D.DatasetNotFoundError(f"the example photos (photos/faces.json) are not under {base}")
    root = Path(placeholder_dir or Path(tempfile.gettempdir()) / "emolib-book-samples" / "placeholder-photos")
    if not (root / "photos" / "faces.json").is_file():
        make_placeholder_photos(root)
    video = root / "video" / EXAMPLE_VIDEO
    return root / "photos", (video if video.is_file() else None), (
        "GENERATED PLACEHOLDER PHOTOS (random noise, no faces): the example photos are not in the data folder")


def pipeline_model(smoke: bool, name: str = "baseline-fer2013"):
    """The emotion model of the pipeline chapters, and a label that says what it is.

    Smoke runs get an **untrained** ``baseline`` (random weights; the same architecture,
    input and cost as the trained one, so every step runs, but its emotions mean
    nothing). Full runs get the shipped checkpoint ``name``, or
    :class:`emolib.models.CheckpointError` when it is not shipped (see :func:`show_missing_model`).
    """
    from .models import CheckpointError, create_model, list_pretrained, load_model

    if smoke:
        model = create_model("baseline").eval()
        model.classes = tuple(D.EMOTIONS)
        return model, "UNTRAINED baseline (smoke run: random weights, so the emotions shown mean nothing)"
    if name not in list_pretrained():
        raise CheckpointError(f"the trained model {name!r} is not shipped in this installation "
                              f"(shipped: {', '.join(list_pretrained()) or 'none'})")
    return load_model(name), f"{name} (the trained checkpoint shipped with emolib)"


def show_missing_model(err: Exception, name: str = "baseline-fer2013", chapter: str = "03_baseline.ipynb",
                       still: str = "face detection, contrast and the recorded results still show") -> None:
    """Tell the reader, in a rendered box, that the trained model is not shipped, so the emotion
    cells are skipped; ``still`` says what the chapter shows all the same."""
    markdown(
        f"> **The trained model `{name}` is missing, so the cells that read emotions are skipped**"
        + (f" ({still})" if still else "") + f".\n>\n> {err}\n>\n"
        f"> The [baseline chapter]({chapter}) trains it and ships it into `emolib/checkpoints/`; "
        f"or run this chapter with `smoke = True` to see every step work with untrained weights."
    )


def show_image(image, max_side: int = 800, colors: int | None = 256) -> None:
    """Display a PIL image (or an image file) in the notebook as PNG, downscaled so that its long
    side is at most ``max_side``, and reduced to a palette of ``colors`` colours (``None``: full
    RGB), which keeps a photo's PNG three times smaller in the committed notebook."""
    from IPython.display import display
    from PIL import Image

    if not isinstance(image, Image.Image):
        image = Image.open(image)

    scale = max_side / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), resample=3)
    if colors:
        image = image.convert("RGB").quantize(colors)
    display(image)


def image_grid(images: Sequence, titles: Sequence[str] | None = None, cols: int = 4, width: float = 12.0):
    """Images (PIL or arrays) in a grid of ``cols`` columns with optional titles; returns the figure."""
    import matplotlib.pyplot as plt

    rows = -(-len(images) // cols)
    first = np.asarray(images[0])
    aspect = first.shape[0] / first.shape[1]
    fig, axes = plt.subplots(rows, cols, figsize=(width, width / cols * aspect * rows + 0.35 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(images):
            ax.imshow(np.asarray(images[k]), cmap="gray" if np.asarray(images[k]).ndim == 2 else None)
            if titles:
                ax.set_title(titles[k], fontsize=9)
    fig.tight_layout()
    return fig


def plot_contrast(image, box: Sequence[float] | None = None, margin: float = 0.2, size: int = 128,
                  clip_limit: float = 2.0, grid: int = 8, input_size: int = 48):
    """A face crop without contrast enhancement, with histogram equalisation and with CLAHE.

    One row each: the gray ``size``-pixel crop the pipeline makes (a square of ``1 +
    margin`` times the box, see :class:`emolib.pipeline.EmotionPipeline`), its histogram,
    and the ``input_size`` image the model sees. ``box=None`` takes the centre square.
    Returns the figure.
    """
    import matplotlib.pyplot as plt
    from PIL import Image, ImageOps

    from .pipeline import _square_crop, clahe, load_image

    img = load_image(image)
    if box is None:
        side = min(img.size) / (1 + margin)
        cx, cy = img.width / 2, img.height / 2
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    gray = Image.fromarray(_square_crop(np.asarray(img), box, margin)).convert("L").resize((size, size), Image.BILINEAR)
    variants = {
        "none": gray,
        "histogram equalisation": ImageOps.equalize(gray),
        f"CLAHE (clip {clip_limit:g}, {grid}x{grid} tiles)": Image.fromarray(clahe(np.asarray(gray), clip_limit, grid)),
    }
    fig, axes = plt.subplots(len(variants), 3, figsize=(8.5, 2.5 * len(variants)),
                             gridspec_kw={"width_ratios": [1, 1.6, 1]})
    for row, (name, crop) in zip(axes, variants.items()):
        a = np.asarray(crop)
        row[0].imshow(a, cmap="gray", vmin=0, vmax=255)
        row[0].set_title(name, fontsize=9)
        row[1].hist(a.ravel(), bins=64, range=(0, 255), color="0.3")
        row[1].set_xlim(0, 255)
        row[1].set_yticks([])
        row[1].set_title(f"gray levels: mean {a.mean():.0f}, std {a.std():.0f}", fontsize=9)
        row[2].imshow(np.asarray(crop.resize((input_size, input_size), Image.BILINEAR)), cmap="gray", vmin=0,
                      vmax=255)
        row[2].set_title(f"model input {input_size}x{input_size}", fontsize=9)
        for ax in (row[0], row[2]):
            ax.axis("off")
    fig.tight_layout()
    return fig


def photo_table(results: Sequence[tuple[str, object]], counted: Mapping[str, int]) -> str:
    """The pipeline's results on photos as a Markdown table: photo, size, faces counted by eye,
    faces found, and the emotions (left to right, with their probabilities)."""
    lines = ["| photo | size | faces (by eye) | faces found | emotions, left to right |", "|---|---|---:|---:|---|"]
    for name, result in results:
        w, h = result.image_size
        emotions = ", ".join(f"{f.emotion} {f.probabilities[f.emotion]:.0%}" if f.emotion else f"face {f.score:.2f}"
                             for f in result.faces[:8])
        if len(result.faces) > 8:
            emotions += f", ... ({len(result.faces) - 8} more)"
        lines.append(f"| `{name}` | {w}×{h} | {counted.get(name, '?')} | {len(result.faces)} | {emotions or '–'} |")
    return "\n".join(lines)


def hands_table(result: Mapping | object) -> str:
    """One photo's result read per person, as a Markdown table: face, emotion, left hand, right hand.

    ``result``: a :class:`~emolib.pipeline.PipelineResult` or its ``to_dict()``. A hand
    shows its gesture, the gesture model's probability and the emotion the thesis pairs
    with it; hands attached to no face are listed under the table.
    """
    d = result if isinstance(result, Mapping) else result.to_dict()

    def hand(h) -> str:
        if not h:
            return "–"
        p = (h.get("probabilities") or {}).get(h.get("gesture"))
        emotion = (h.get("extra") or {}).get("emotion")
        return f"{h.get('gesture')}" + (f" {p:.0%}" if p is not None else "") + (f" ({emotion})" if emotion else "")

    lines = ["| person (face, left to right) | face emotion | left hand | right hand |", "|---:|---|---|---|"]
    for k, f in enumerate(d["faces"]):
        emo = f.get("emotion")
        p = (f.get("probabilities") or {}).get(emo)
        lines.append(f"| {k} | {emo or '–'}{f' {p:.0%}' if p is not None else ''} | "
                     f"{hand(f['hands'].get('left'))} | {hand(f['hands'].get('right'))} |")
    loose = d.get("hands") or []
    if loose:
        lines.append("")
        lines.append(f"Attached to no face: " + ", ".join(f"{h['handedness']} hand {hand(h)}" for h in loose))
    return "\n".join(lines)


def pipeline_benchmark_table(path: str | os.PathLike = "results/benchmarks/pipeline.json") -> str:
    """``benchmarks/bench_pipeline.py``'s results (emolib next to the ``fer`` package) as a Markdown
    table, with the machine and settings in a line under it. ``path`` is relative to the repository root."""
    import json

    path = repo_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark results at {path}: run benchmarks/bench_pipeline.py")
    bench = json.loads(path.read_text())
    ours, fer = bench["emolib"], (bench.get("fer") or {}).get("images", {})
    ablation = (bench.get("emolib_facenet_settings") or {}).get("images", {})
    lines = ["| photo | size | faces | emolib (ms) | faces/s | `fer` (ms) | `fer` faces | speed-up | "
             "emolib, facenet's detector settings (ms) |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in ours.items():
        f = fer.get(name, {})
        speed = f"{f['ms_median'] / r['ms_median']:.1f}×" if f else "–"
        lines.append(f"| `{name}` | {r['size'][0]}×{r['size'][1]} | {r['faces']} | {r['ms_median']:.0f} | "
                     f"{r['faces_per_s']:.1f} | {f.get('ms_median', float('nan')):.0f} | {f.get('faces', '–')} | "
                     f"{speed} | {ablation.get(name, {}).get('ms_median', float('nan')):.0f} |")
    m = bench.get("machine", {})
    lines.append("")
    lines.append(f"Median of {bench['settings']['repeats']} runs, {m.get('cpus', '?')} CPU cores, "
                 f"{m.get('torch_threads', '?')} torch thread(s), measured {bench.get('when', '?')[:10]}; "
                 f"`fer` {(bench.get('fer') or {}).get('version', '?')}; emolib's model: {bench['settings']['model']}.")
    return "\n".join(lines)


def webcam_record(folder: str | os.PathLike = "results/08_webcam") -> tuple[Path | None, dict | None]:
    """What ``tests/test_webcam_browser.py`` recorded: ``(screenshot path or None, fps.json as a dict or None)``.
    ``folder`` is relative to the repository root."""
    import json

    folder = repo_path(folder)
    shot = folder / "webcam.png"
    record = folder / "fps.json"
    return (shot if shot.is_file() else None), (json.loads(record.read_text()) if record.is_file() else None)


def webcam_record_table(record: Mapping) -> str:
    """The numbers of ``results/08_webcam/fps.json`` (see :func:`webcam_record`) as a Markdown table."""
    machine = record["machine"]
    runs = record.get("runs_fps")
    sent_regions = record.get("frames_sent_as_face_regions")
    server = {True: "`emolib.serverext` on (TCP_NODELAY)", False: "plain Jupyter server (Nagle's algorithm on)"}
    return "\n".join([
        "| measured | value |", "|---|---|",
        f"| annotated frames per second | **{record['fps']:.1f}** ({record['frames']} frames in "
        f"{record['seconds']:.0f} s)" + (f"; the median of {len(runs)} runs: "
                                          f"{', '.join(f'{f:.1f}' for f in runs)}" if runs else "") + " |",
        f"| camera | {record['frame_size'][0]}×{record['frame_size'][1]}, JPEG quality {record['jpeg_quality']} |",
        *([f"| frames sent as the face's region only | {sent_regions} of {record['frames']} (the others whole, "
           f"for a full detection) |"] if sent_regions is not None else []),
        f"| frames with a face found | {record['frames_with_a_face']} of {record['frames']} |",
        *([f"| grabbing and encoding a frame in the browser (median) | {record['encode_ms_median']:.0f} ms |"]
          if "encode_ms_median" in record else []),
        f"| kernel time per frame (median) | {record['kernel_ms_median']:.0f} ms (MTCNN in full on "
        f"{record['full_detections']} of the {record['frames']} frames) |",
        f"| round trip in the browser (median) | {record['round_trip_ms_median']:.0f} ms |",
        f"| frames in flight | {record.get('max_inflight', 1)} |",
        *([f"| Jupyter server | {server[record['server_nodelay']]} |"]
          if record.get("server_nodelay") in server else []),
        f"| camera frames never sent (dropped) | {record['frames_dropped']} of {record['camera_frames']} |",
        *([f"| CPU used during the count (200 % = both cores) | Chromium {cpu['chromium']:.0f} %, Jupyter server "
           f"{cpu['jupyter_server']:.0f} %, kernel {cpu['kernel']:.0f} % |"] if (cpu := record.get("cpu_percent")) else []),
        *([f"| the same with a kernel that answers at once | {echo['fps']:.1f} frames per second, round trip "
           f"{echo['round_trip_ms_median']:.0f} ms |"] if (echo := record.get("echo_kernel")) else []),
        f"| model | {record['model']} |",
        f"| machine | {machine['cpus']} CPU cores, {machine.get('torch_threads', 1)} torch thread, load average "
        f"{machine['loadavg_1min']} during the run; {machine['chromium']} |",
        f"| recorded | {record['when'][:16].replace('T', ' ')} |",
    ])


def webcam_variants_table(folder: str | os.PathLike = "results/08_webcam") -> str | None:
    """``benchmarks/webcam_fps.py``'s variants side by side (``fps.json``, ``fps_nagle.json``,
    ``fps_wholeframes.json``) as a Markdown table, or ``None`` when fewer than two are there."""
    import json
    import statistics

    folder = repo_path(folder)
    names = {"fps.json": "as set up in this chapter", "fps_nagle.json": "plain Jupyter server (no `emolib.serverext`)",
             "fps_wholeframes.json": "whole frames only (`webcam(regions=False)`)"}
    records = {n: json.loads((folder / n).read_text()) for n in names if (folder / n).is_file()}
    if len(records) < 2:
        return None
    lines = ["| set-up | annotated frames per second (runs) | kernel that answers at once | round trip |",
             "|---|---|---|---|"]
    for n, r in records.items():
        runs = r.get("runs_fps") or [r["fps"]]
        echo = r.get("runs_echo_fps") or [r["echo_kernel"]["fps"]]
        lines.append(f"| {names[n]} | **{statistics.median(runs):.1f}** ({', '.join(f'{f:.1f}' for f in runs)}) | "
                     f"{statistics.median(echo):.1f} ({', '.join(f'{f:.1f}' for f in echo)}) | "
                     f"{r['round_trip_ms_median']:.0f} ms |")
    return "\n".join(lines)


def camera_frames(video: str | os.PathLike, n: int = 60, every: int = 2, size: tuple[int, int] = (640, 480),
                  start_s: float = 0.0) -> list:
    """``n`` frames of a video as a camera of ``size`` would see them (PIL images): every
    ``every``-th frame from ``start_s`` seconds, the centre cut to the aspect ratio of
    ``size`` and resized to it."""
    from PIL import Image

    from .pipeline import iter_video_frames

    frames = []
    for _, t_s, rgb in iter_video_frames(video, every=every):
        if t_s < start_s:
            continue
        h, w = rgb.shape[:2]
        cw, ch = (h * size[0] // size[1], h) if w * size[1] > h * size[0] else (w, w * size[1] // size[0])
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        frames.append(Image.fromarray(rgb[y0:y0 + ch, x0:x0 + cw]).resize(size, Image.BILINEAR))
        if len(frames) >= n:
            break
    return frames


def camera_jpegs(video: str | os.PathLike, n: int = 60, every: int = 2, size: tuple[int, int] = (640, 480),
                 quality: int = 70) -> list[bytes]:
    """:func:`camera_frames` as a webcam widget sends them: encoded as JPEG of ``quality``."""
    import io

    jpegs = []
    for frame in camera_frames(video, n, every, size):
        buffer = io.BytesIO()
        frame.save(buffer, "JPEG", quality=quality)
        jpegs.append(buffer.getvalue())
    return jpegs


def time_frames(pipeline, jpegs: Sequence[bytes], tracker=None, regions: bool = False,
                quality: int = 70) -> list[dict]:
    """Kernel time of each JPEG frame, as the webcam widget spends it: decoding, MTCNN detection, and
    crops + CLAHE + the model (``pipeline``'s steps), in milliseconds, with the number of faces.

    With a :class:`emolib.widgets.FaceTracker`, the frames go through it instead (one total only).
    With ``regions=True`` as well, each frame is cut to the region that the tracker asked for
    after the frame before (:meth:`~emolib.widgets.FaceTracker.next_region`) and encoded again
    as JPEG of ``quality``, as the browser does; the row then says ``region`` (whether it was
    one) and the JPEG size is that of the region."""
    import io
    import time

    from PIL import Image

    rows = []
    region = None
    for jpeg in jpegs:
        offset, frame_size = (0, 0), None
        if tracker is not None and regions and region is not None:
            frame = Image.open(io.BytesIO(jpeg)).convert("RGB")
            x, y, w, h = region
            buffer = io.BytesIO()
            frame.crop((x, y, x + w, y + h)).save(buffer, "JPEG", quality=quality)
            jpeg, offset, frame_size = buffer.getvalue(), (x, y), frame.size
        t0 = time.perf_counter()
        image = Image.open(io.BytesIO(jpeg)).convert("RGB")
        t1 = time.perf_counter()
        if tracker is not None:
            size = frame_size or image.size
            faces = len(tracker(image, offset=offset, frame_size=size).faces)
            region = tracker.next_region(size) if regions else None
            t3 = time.perf_counter()
            rows.append({"faces": faces, "jpeg_kb": len(jpeg) / 1024, "total_ms": 1000 * (t3 - t0),
                         "region": frame_size is not None})
            continue
        boxes, _, _ = pipeline.detect(image)
        t2 = time.perf_counter()
        if len(boxes) and pipeline.model is not None:
            pipeline.classify(pipeline.preprocess(image, boxes))
        t3 = time.perf_counter()
        rows.append({"faces": len(boxes), "jpeg_kb": len(jpeg) / 1024, "decode_ms": 1000 * (t1 - t0),
                     "detect_ms": 1000 * (t2 - t1), "classify_ms": 1000 * (t3 - t2), "total_ms": 1000 * (t3 - t0)})
    return rows


def timing_table(rows: Sequence[Mapping]) -> str:
    """:func:`time_frames`'s rows (without a tracker) as a Markdown table of medians."""
    import statistics

    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return "\n".join([
        f"| per frame (median of {len(rows)}) | |", "|---|---:|",
        f"| JPEG size | {med['jpeg_kb']:.0f} kB |",
        f"| decoding the JPEG | {med['decode_ms']:.1f} ms |",
        f"| MTCNN detection | {med['detect_ms']:.1f} ms |",
        f"| crops, CLAHE and the model | {med['classify_ms']:.1f} ms |",
        f"| **kernel total** | **{med['total_ms']:.0f} ms**, at most {1000 / med['total_ms']:.0f} frames per second |",
    ])


def live_page_table(folder: str | os.PathLike = "results/08_webcam") -> str | None:
    """The kernel widget (``fps.json``) beside the book's in-browser page (``live_fps.json``, written by
    ``benchmarks/live_fps.py``) as a Markdown table, with the face detectors' cost in the browser
    (``browser_detectors.json``); ``None`` when the page's benchmark has not been run."""
    import json
    import statistics

    folder = repo_path(folder)
    if not (folder / "live_fps.json").is_file():
        return None
    live = json.loads((folder / "live_fps.json").read_text())
    widget = json.loads((folder / "fps.json").read_text()) if (folder / "fps.json").is_file() else None
    peer = json.loads((folder / "live_fps_peer.json").read_text()) if (folder / "live_fps_peer.json").is_file() else None

    def runs(rec):
        each = ", ".join(f"{r['fps']:.1f}" for r in rec["runs"])
        return f"**{rec['fps_median']:.1f}** ({each})"

    def loads(rec):
        return ", ".join(f"{r['loadavg_before'][0]:.1f}" for r in rec["runs"])

    wfps = f"{statistics.median(widget['runs_fps']):.1f} ({', '.join(f'{f:.1f}' for f in widget['runs_fps'])})" \
        if widget and widget.get("runs_fps") else (f"{widget['fps']:.1f}" if widget else "not recorded")
    cols = [("kernel widget (chapter 8)", None), ("in-browser page (*Try it*)", live)]
    if peer:
        cols.append(("peer: `@vladmandic/human`, WASM, face + emotion", peer))
    rows = ["| | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]

    def row(name, widget_cell, fn):
        rows.append(f"| {name} | {widget_cell} | " + " | ".join(fn(r) for _, r in cols[1:]) + " |")

    row("annotated frames per second, 640×480 (median, runs)", wfps, runs)
    row("Start to first annotated frame (median)", "", lambda r: f"{r['first_ms_median'] / 1000:.1f} s")
    row("page load to models ready (median)", "", lambda r: f"{r['load_s_median']:.1f} s")
    row("model files the page loads", "", lambda r: f"{sum(r['model_bytes'].values()) / 1e6:.1f} MB"
        if r.get("model_bytes") else "")
    row("Python process", "the kernel (and the Jupyter server)", lambda r: "none: a static file server")
    row("load average at the start of each run", "", loads)
    det = folder / "browser_detectors.json"
    if det.is_file():
        d = json.loads(det.read_text())
        rows += ["", "| face detector in the browser (1 thread, WASM SIMD) | networks per 640×480 frame (median) |",
                 "|---|---|",
                 f"| MediaPipe BlazeFace (short range, 128×128) | {d['blazeface_ms']:.1f} ms |",
                 f"| MTCNN: P-Net on the {len(d['mtcnn_pyramid'])}-level pyramid, R-Net on 32, O-Net on 1 "
                 f"candidates | {d['mtcnn_networks_per_frame_ms']:.1f} ms (P-Net alone {d['mtcnn_pnet_ms']:.1f} ms; "
                 f"pyramid and NMS in JavaScript on top) |",
                 f"| MTCNN's R-Net per candidate (from a batch of 8) and O-Net on one face | "
                 f"{d['mtcnn_rnet_ms']['8'] / 8:.1f} ms and {d['mtcnn_onet_ms']['1']:.1f} ms |",
                 f"| the emotion model (baseline-fer2013), one face | {d['emotion_baseline_ms']:.1f} ms |",
                 f"| load average before the detector measurement | {d['loadavg_before'][0]:.1f} |"]
    return "\n".join(rows)


__all__ += ["PHOTO_SOURCES", "EXAMPLE_PHOTOS", "make_placeholder_photos", "pipeline_examples", "pipeline_model",
            "show_missing_model", "show_image", "image_grid", "plot_contrast", "photo_table",
            "pipeline_benchmark_table", "webcam_record", "webcam_record_table", "webcam_variants_table", "live_page_table",
            "camera_frames", "camera_jpegs", "time_frames",
            "timing_table"]


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emolib.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("execute", help="run chapters in place with papermill (full runs by default)")
    p.add_argument("--smoke", action="store_true", help="run with smoke=True (a few images, seconds)")
    p.add_argument("chapters", nargs="*", help="notebook paths or name prefixes (default: all of _toc.yml)")
    p = sub.add_parser("smoke", help="run chapters with smoke=True into OUTDIR")
    p.add_argument("outdir")
    p.add_argument("chapters", nargs="*")
    p.add_argument("--data-root", default=None, help="data folder (default: $EMOLIB_DATA)")
    sub.add_parser("list", help="print the chapter notebooks in book order")
    args = parser.parse_args(argv)
    if args.command == "execute":
        execute(args.chapters, smoke_mode=args.smoke)
    elif args.command == "smoke":
        smoke(args.outdir, args.chapters, data_root=args.data_root)
    else:
        for nb in chapters():
            print(nb.relative_to(Path(repo_root()).resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
