"""The chapters' figures: class counts, images in a grid (samples of a data set, predictions,
pipeline crops: one drawer, :func:`image_grid`), contrast enhancement, ROC curves, and a
reader's training run beside the reference run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image, ImageOps
from sklearn.metrics import RocCurveDisplay, roc_auc_score

from .. import data as D
from ..metrics import roc_auc
from ..faces import clahe, square_crop
from ..fileio import load_image

__all__ = ["plot_class_counts", "image_grid", "plot_samples", "plot_predictions", "plot_contrast", "show_image",
           "per_class_auc", "plot_roc", "plot_runs"]


def plot_class_counts(counts: Mapping[str, Mapping[str, int]], title: str = "", ax=None, share: bool = False):
    """Grouped bar chart of images per class, one bar colour per split; returns the axes.

    ``share=True`` plots each split's share of images (per cent) instead of counts, which
    makes splits of different sizes comparable.
    """
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


def _as_array(image) -> np.ndarray:
    """A PIL image, an array or a tensor as an array for ``imshow``: ``H×W`` (gray) or ``H×W×3``."""
    a = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):  # channels first
        a = a.transpose(1, 2, 0)
    return a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a


def image_grid(images: Sequence, titles: Sequence[str] | None = None, cols: int = 4, width: float = 12.0, *,
               cell: float | None = None, colors: Sequence[str | None] | None = None,
               row_labels: Sequence[str] | None = None, title: str = "", fontsize: int = 9):
    """Images in a grid of ``cols`` columns; returns the figure.

    ``images``: PIL images, arrays (``H×W``, ``H×W×C``) or tensors (``C×H×W``); ``None`` leaves a
    cell empty. ``titles`` (and their ``colors``) go above the images, ``row_labels`` left of each
    row, ``title`` above the figure. The figure is ``width`` inches wide, or ``cell`` inches per
    image when given. 8-bit gray images are drawn on the full 0-255 scale (not stretched).
    """
    arrays = [None if im is None else _as_array(im) for im in images]
    rows = max(1, -(-len(arrays) // cols))
    first = next((a for a in arrays if a is not None), None)
    aspect = first.shape[0] / first.shape[1] if first is not None else 1.0
    lines = max((str(t).count("\n") + 1 for t in titles or [] if t), default=0)
    if cell is not None:
        size = (cell * cols + (0.9 if row_labels else 0.0),
                rows * (cell * aspect + 0.2 * lines) + (0.3 if title else 0.1))
    else:
        size = (width, width / cols * aspect * rows + 0.35 * rows)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        a = arrays[k] if k < len(arrays) else None
        if a is not None:
            gray8 = a.ndim == 2 and a.dtype == np.uint8
            ax.imshow(a, cmap="gray" if a.ndim == 2 else None, vmin=0 if gray8 else None,
                      vmax=255 if gray8 else None)
        if titles and k < len(titles) and titles[k]:
            ax.set_title(titles[k], fontsize=fontsize, **({"color": colors[k]} if colors and colors[k] else {}))
        if row_labels and k % cols == 0 and k // cols < len(row_labels):
            ax.set_ylabel(row_labels[k // cols], fontsize=fontsize, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_samples(dataset: D.ImageDataset, per_class: int = 8, seed: int = 0, title: str = "",
                 cell: float = 1.0):
    """A grid of random images, one row per class (one row of one image per class when
    ``per_class == 1``); returns the figure (:func:`image_grid`)."""
    g = torch.Generator().manual_seed(seed)
    classes = list(dataset.classes)
    picks = []
    for k in range(len(classes)):
        idx = torch.nonzero(dataset.targets == k).flatten()
        chosen = idx[torch.randperm(len(idx), generator=g)[:per_class]].tolist()
        picks.append([dataset.images[i] for i in chosen] + [None] * (per_class - len(chosen)))
    if per_class == 1:
        return image_grid([p[0] for p in picks], classes, cols=len(classes), cell=cell, title=title)
    return image_grid([im for p in picks for im in p], cols=per_class, cell=cell, row_labels=classes, title=title)


def plot_predictions(dataset: D.ImageDataset, probs, n: int = 8, correct: bool | None = None, seed: int = 0,
                     title: str = "", cell: float = 1.25):
    """A row of ``n`` random test images with true and predicted labels (and the predicted
    probability); ``correct=True`` or ``False`` picks only right or only wrong predictions.
    Titles of right predictions are green, of wrong ones red. Returns the figure (:func:`image_grid`)."""
    probs = torch.as_tensor(np.asarray(probs))
    pred = probs.argmax(1)
    ok = pred == dataset.targets
    pool = torch.arange(len(dataset))
    if correct is not None:
        pool = pool[ok == correct]
    g = torch.Generator().manual_seed(seed)
    picks = pool[torch.randperm(len(pool), generator=g)[:n]].tolist()
    titles, colors = [], []
    for i in picks:
        t, p = dataset.classes[int(dataset.targets[i])], dataset.classes[int(pred[i])]
        titles.append(f"true {t}\npred {p} {100 * float(probs[i, pred[i]]):.0f}%")
        colors.append("tab:green" if t == p else "tab:red")
    images = [dataset.images[i] for i in picks] + [None] * (n - len(picks))
    return image_grid(images, titles, cols=n, cell=cell, colors=colors, title=title, fontsize=7)


def plot_contrast(image, box: Sequence[float] | None = None, margin: float = 0.2, size: int = 128,
                  clip_limit: float = 2.0, grid: int = 8, input_size: int = 48):
    """A face crop without contrast enhancement, with histogram equalisation and with CLAHE.

    One row each: the gray ``size``-pixel crop the pipeline makes (a square of ``1 +
    margin`` times the box, see :class:`emolib.pipeline.EmotionPipeline`), its histogram,
    and the ``input_size`` image the model sees. ``box=None`` takes the centre square.
    Returns the figure.
    """
    img = load_image(image)
    if box is None:
        side = min(img.size) / (1 + margin)
        cx, cy = img.width / 2, img.height / 2
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    gray = Image.fromarray(square_crop(np.asarray(img), box, margin)).convert("L").resize((size, size), Image.BILINEAR)
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


def show_image(image, max_side: int = 800, colors: int | None = 256) -> None:
    """Display a PIL image (or an image file) in the notebook as PNG, downscaled so that its long
    side is at most ``max_side``, and reduced to a palette of ``colors`` colours (``None``: full
    RGB), which keeps a photo's PNG three times smaller in the committed notebook."""
    from IPython.display import display  # IPython: only in a notebook

    if not isinstance(image, Image.Image):
        image = Image.open(image)

    scale = max_side / max(image.size)
    if scale < 1:
        image = image.resize((round(image.width * scale), round(image.height * scale)), resample=3)
    if colors:
        image = image.convert("RGB").quantize(colors)
    display(image)


def per_class_auc(y_true, probs, classes: Sequence[str]) -> dict[str, float]:
    """One-vs-rest ROC AUC of every class (scikit-learn's ``roc_auc_score(average=None)``; NaN for a
    class absent from ``y_true``), and ``"macro"``, their mean over the present classes
    (:func:`emolib.metrics.roc_auc`)."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    onehot = (y_true[:, None] == np.arange(len(classes))).astype(int)
    present = [k for k in range(len(classes)) if 0 < onehot[:, k].sum() < len(y_true)]
    scores = np.full(len(classes), np.nan)
    if present:
        scores[present] = np.atleast_1d(roc_auc_score(onehot[:, present], probs[:, present], average=None))
    out = {c: float(scores[k]) for k, c in enumerate(classes)}
    out["macro"] = roc_auc(y_true, probs)
    return out


def plot_roc(y_true, probs, classes: Sequence[str], ax=None, title: str = ""):
    """One-vs-rest ROC curve of every class (scikit-learn's ``RocCurveDisplay``), with its AUC in the
    legend; returns the axes."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    aucs = per_class_auc(y_true, probs, classes)
    if ax is None:
        _, ax = plt.subplots(figsize=(4.8, 4.2))
    for k, c in enumerate(classes):
        if not np.isnan(aucs[c]):
            RocCurveDisplay.from_predictions(y_true == k, probs[:, k], ax=ax, name=c)
            ax.lines[-1].set_linewidth(1.2)  # (style keywords differ between scikit-learn versions)
    ax.plot([0, 1], [0, 1], color="gray", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, title="class", title_fontsize=7, loc="lower right")
    ax.set_title(title or f"one-vs-rest ROC (macro AUC {aucs['macro']:.3f})", fontsize=10)
    return ax


def plot_runs(runs: Mapping[str, Mapping | None], title: str = ""):
    """Validation loss and accuracy per epoch of several training runs in one figure (two panels),
    e.g. ``{"your run": reader, "reference": reference}`` from :func:`emolib.book.runs.compare_runs`.
    Runs that are None or have no history are left out (the legend names only those drawn). Returns
    the figure."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    drawn = 0
    for label, run in runs.items():
        history = (run or {}).get("history")
        if not history:
            continue
        drawn += 1
        epochs = [h["epoch"] for h in history]
        for key, ax in (("loss", axes[0]), ("acc", axes[1])):
            line, = ax.plot(epochs, [h[f"val_{key}"] for h in history], marker="." if len(epochs) < 3 else None,
                            label=f"{label}, validation")
            ax.plot(epochs, [h[f"train_{key}"] for h in history], ls=":", color=line.get_color(),
                    label=f"{label}, training")
    if not drawn:
        plt.close(fig)
        raise ValueError(f"none of the runs {sorted(runs)} has a training history to plot")
    for key, ax in (("loss", axes[0]), ("accuracy", axes[1])):
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
