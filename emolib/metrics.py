"""Metrics and plots (scikit-learn and matplotlib).

Inputs are plain arrays: ``y_true`` integer labels ``(N,)`` and ``probs`` class
probabilities ``(N, K)`` as returned by :func:`emolib.train.predict`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn import metrics as skm

__all__ = [
    "accuracy",
    "roc_auc",
    "roc_auc_per_class",
    "classification_report",
    "format_report",
    "confusion",
    "evaluate_probs",
    "plot_confusion",
    "plot_history",
    "plot_lr",
    "comparison_table",
]


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions."""
    return float(skm.accuracy_score(y_true, y_pred))


def roc_auc_per_class(y_true, probs) -> np.ndarray:
    """One-vs-rest ROC AUC of each class (column of ``probs``): :func:`sklearn.metrics.roc_auc_score` with
    ``average=None`` on the one-hot labels.

    A class that has no image in ``y_true``, or every image, has no AUC (it needs positives and
    negatives): its entry is NaN, and it is left out of the scores rather than failing the call.
    """
    y_true = np.asarray(y_true)
    probs = np.asarray(probs, dtype=np.float64)
    onehot = y_true[:, None] == np.arange(probs.shape[1])[None, :]
    counts = onehot.sum(0)
    scored = (counts > 0) & (counts < len(y_true))
    out = np.full(probs.shape[1], np.nan)
    if scored.any():
        out[scored] = skm.roc_auc_score(onehot[:, scored], probs[:, scored], average=None)
    return out


def roc_auc(y_true, probs) -> float:
    """Macro one-vs-rest ROC AUC: the mean of :func:`roc_auc_per_class` over the classes present in ``y_true``
    (NaN if fewer than two are present)."""
    if len(np.unique(np.asarray(y_true))) < 2:
        return float("nan")
    return float(np.nanmean(roc_auc_per_class(y_true, probs)))


def classification_report(y_true, y_pred, classes: Sequence[str]) -> dict:
    """Per-class precision, recall, F1 and support, plus accuracy, macro and weighted averages.

    The same numbers as :func:`sklearn.metrics.classification_report` (``output_dict=True``),
    keyed by class name.
    """
    return skm.classification_report(
        y_true, y_pred, labels=list(range(len(classes))), target_names=list(classes),
        output_dict=True, zero_division=0,
    )


def format_report(report: Mapping, digits: int = 2) -> str:
    """The report as the thesis's table: ``label | precision | recall | f1-score | support``.

    The numbers are scikit-learn's (:func:`classification_report` is
    :func:`sklearn.metrics.classification_report`); this lays out the *dict* it returns, one
    row a class, the accuracy before the averages, the rows scikit-learn's own text report has.
    It stays because scikit-learn formats only from labels, and a report is not always made from
    labels: :func:`emolib.gestures.gesture_report` counts a photo without a hand as a miss that
    is no class's false positive, and ``emolib evaluate`` formats the per-class results it
    stored. With labels at hand, ``sklearn.metrics.classification_report(y_true, y_pred,
    target_names=classes)`` prints the same numbers.
    """
    rows = [f"{'label':>14} {'precision':>10} {'recall':>8} {'f1-score':>9} {'support':>8}"]
    for name, r in report.items():
        if name == "accuracy":
            continue
        rows.append(
            f"{name:>14} {r['precision']:>10.{digits}f} {r['recall']:>8.{digits}f} "
            f"{r['f1-score']:>9.{digits}f} {int(r['support']):>8d}"
        )
    total = int(report["macro avg"]["support"])
    rows.insert(-2, f"{'accuracy':>14} {'':>10} {'':>8} {report['accuracy']:>9.{digits}f} {total:>8d}")
    return "\n".join(rows)


def confusion(y_true, y_pred, n_classes: int, normalize: bool = False) -> np.ndarray:
    """Confusion matrix (rows: true class, columns: predicted); ``normalize`` divides each row by its sum
    (scikit-learn's ``normalize="true"``; a class with no image gets a row of zeros)."""
    return skm.confusion_matrix(y_true, y_pred, labels=list(range(n_classes)), normalize="true" if normalize else None)


def evaluate_probs(y_true, probs, classes: Sequence[str]) -> dict:
    """Everything at once, JSON-ready: ``accuracy``, ``n``, ``auc``, ``per_class`` (precision/recall/F1/support),
    ``macro_f1``, ``confusion`` and ``classes``."""
    y_true = np.asarray(y_true)
    probs = np.asarray(probs)
    y_pred = probs.argmax(1)
    report = classification_report(y_true, y_pred, classes)
    return {
        "accuracy": accuracy(y_true, y_pred),
        "n": int(len(y_true)),
        "auc": roc_auc(y_true, probs),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "per_class": {
            c: {k: float(report[c][k]) for k in ("precision", "recall", "f1-score", "support")} for c in classes
        },
        "confusion": confusion(y_true, y_pred, len(classes)).tolist(),
        "classes": list(classes),
    }


def plot_confusion(cm, classes: Sequence[str], normalize: bool = False, ax=None, title: str | None = None):
    """Draw a (row-normalised) confusion matrix with scikit-learn's ``ConfusionMatrixDisplay``
    (rows: true class, columns: predicted); returns the axes."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = np.asarray(cm, dtype=float)
    rows = cm.sum(axis=1)
    if normalize and not np.all(np.isclose(rows, 1.0) | (rows == 0)):  # counts (not rows of shares already)
        with np.errstate(invalid="ignore", divide="ignore"):
            cm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.8))
    display = ConfusionMatrixDisplay(cm, display_labels=list(classes))
    display.plot(ax=ax, cmap="Blues", values_format=".2f" if normalize else ".0f", xticks_rotation=45,
                 im_kw={"vmin": 0, "vmax": 1 if normalize else max(cm.max(), 1)}, colorbar=True,
                 text_kw={"fontsize": 7})  # the colours start at 0, not at the smallest cell
    plt.setp(ax.get_xticklabels(), ha="right")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("normalized confusion matrix" if normalize else "confusion matrix"))
    return ax


def plot_history(history: Sequence[Mapping], title: str = "", axes=None):
    """Training and validation loss and accuracy per epoch (two panels); returns the figure."""
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    fig = axes[0].figure
    for key, ax in (("loss", axes[0]), ("acc", axes[1])):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], label="train")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "acc" else "loss")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_lr(history: Sequence[Mapping], ax=None):
    """Learning rate per epoch on a log scale; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    ax.step([h["epoch"] for h in history], [h["lr"] for h in history], where="post")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    return ax


def comparison_table(rows: Sequence[Mapping], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of runs, e.g. ours beside cited references.

    Each row is a mapping such as ``{"model": "baseline", "source": "ours", "FER2013": 0.61}``;
    floats in [0, 1] are shown as percentages with two decimals, missing cells as "–".
    """
    columns = list(columns or dict.fromkeys(k for r in rows for k in r))

    def fmt(v) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{100 * v:.2f}" if 0 <= v <= 1 else f"{v:,.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
