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


def output_path(output_dir: str | os.PathLike) -> Path:
    """A chapter's output folder: relative paths are taken from the repository root
    (where ``_toc.yml`` lies; the current folder on Colab). The folder is created."""
    path = Path(output_dir).expanduser()
    if not path.is_absolute():
        path = Path(repo_root()) / path
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
