"""Gesture data: the splits of the ASL photos, hand-landmark features as a dataset, gesture metrics.

A foundation module (it imports only foundations): it never runs a hand detector. Landmark
features come from a *landmark source*, passed in by the caller (dependency injection), so
that training (:func:`emolib.experiment.run_recipe`) needs no inference module. A landmark
source is a callable ``source(paths, rotate=True) -> dict`` with one row per path:

* ``features`` ``(N, 21, 3)`` float32: the normalised landmarks (zeros where no hand was found),
* ``found`` ``(N,)`` bool, ``handedness`` ``(N,)`` str, and optionally ``seconds`` ``(N,)``
  (detection time per photo),
* ``meta``: what the checkpoint records about the source (``detector`` settings,
  ``normalization``, ``requires``).

:func:`emolib.gestures.landmark_source` builds one from emolib's hand detector.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from .data import ImageDataset, asl_files, train_val_split
from .labels import DEFAULT_LETTER_TO_GESTURE
from .metrics import classification_report, confusion, roc_auc

__all__ = [
    "LandmarkSource",
    "LandmarkDataset",
    "LANDMARK_AUGMENTATIONS",
    "asl_split",
    "asl_block_split",
    "gesture_metrics",
    "gesture_report",
]

#: ``source(paths, rotate=True) -> {"features", "found", "handedness", ["seconds"], "meta"}`` (see the module).
LandmarkSource = Callable[..., Mapping]

#: The augmentations :class:`LandmarkDataset` knows.
LANDMARK_AUGMENTATIONS = ("noise", "scale", "mirror")


class LandmarkDataset(torch.utils.data.Dataset):
    """Normalised landmarks ``(N, 21, 3)`` and targets, with optional augmentation, for :func:`emolib.train.fit`.

    ``augment`` (training only): ``noise`` (std of Gaussian noise on every normalised
    coordinate), ``scale`` (independent x and y stretch of up to this fraction:
    viewpoint), ``mirror`` (probability of mirroring the hand, so that a wrong left/right
    label from the detector costs little). Randomness comes from torch's generator, which
    :func:`emolib.train.fit` seeds per epoch. ``use_z=False`` drops the depth coordinate.
    """

    def __init__(self, features: np.ndarray, targets: Sequence[int], classes: Sequence[str],
                 augment: Mapping[str, float] | None = None, use_z: bool = True) -> None:
        self.features = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if self.features.ndim != 3 or self.features.shape[1:] != (21, 3):
            raise ValueError(f"features must be normalised landmarks (N, 21, 3), got {tuple(self.features.shape)}")
        self.targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        if len(self.targets) != len(self.features):
            raise ValueError(f"{len(self.features)} landmark rows but {len(self.targets)} targets")
        self.classes = tuple(classes)
        self.augment = dict(augment or {})
        unknown = set(self.augment) - set(LANDMARK_AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown landmark augmentation {sorted(unknown)}; "
                             f"use {', '.join(LANDMARK_AUGMENTATIONS)}")
        self.use_z = use_z

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = self.features[i].clone()
        a = self.augment
        if a.get("mirror", 0) and torch.rand(()) < a["mirror"]:
            x[:, 0] = -x[:, 0]
        if a.get("scale", 0):
            x[:, :2] *= 1 + (torch.rand(2) * 2 - 1) * a["scale"]
        if a.get("noise", 0):
            x += torch.randn_like(x) * a["noise"]
        if not self.use_z:
            x = x[:, :2]
        return x.reshape(-1), int(self.targets[i])


# --------------------------------------------------------------------------- splits


def asl_split(root=None, val_fraction: float = 0.2, seed: int = 0,
              letter_to_gesture: Mapping[str, str] = DEFAULT_LETTER_TO_GESTURE) -> dict:
    """The stratified, seeded train/validation split of the ASL photos, as file lists.

    Exactly the split :func:`emolib.data.train_val_split` makes of
    ``ASLGestures(root)`` with the same ``val_fraction`` and ``seed`` (and so of
    :func:`emolib.experiment.run_recipe` for a recipe with that ``val_fraction``), so
    that image and landmark models are compared on the same photos. Returns
    ``train_idx``, ``val_idx`` (into ``paths``), ``paths``, ``labels``, ``classes`` and
    ``description`` (for a model card).
    """
    paths, labels, classes = asl_files(root, "train", letter_to_gesture)
    stub = ImageDataset(torch.zeros((len(paths), 1, 1, 1), dtype=torch.uint8), labels, classes, paths=paths)
    train, val = train_val_split(stub, val_fraction, seed)
    index = {p: i for i, p in enumerate(paths)}
    return {"train_idx": np.array([index[p] for p in train.paths]), "val_idx": np.array([index[p] for p in val.paths]),
            "paths": paths, "labels": np.asarray(labels), "classes": classes,
            "description": f"stratified {100 * val_fraction:g} % of train/, seed {seed} "
                           "(emolib.gesture_data.asl_split; the same photos as the image models' validation)"}


def asl_block_split(root=None, val_fraction: float = 0.2,
                    letter_to_gesture: Mapping[str, str] = DEFAULT_LETTER_TO_GESTURE) -> dict:
    """A harder split: the last ``val_fraction`` of each class's photos in file-number order.

    The ASL photos are frames of short videos, numbered in order (``A0.jpg``,
    ``A1.jpg``...): neighbouring numbers are near-twins, and a random split puts twins on
    both sides. Holding out the highest numbers keeps whole sequences (other
    backgrounds, light and hands) out of training. Same keys as :func:`asl_split`.
    """
    paths, labels, classes = asl_files(root, "train", letter_to_gesture)
    labels = np.asarray(labels)

    def number(p: str):
        digits = re.findall(r"\d+", Path(p).stem)
        return (int(digits[-1]) if digits else -1, Path(p).name)

    val: list[int] = []
    for k in range(len(classes)):
        idx = sorted(np.flatnonzero(labels == k).tolist(), key=lambda i: number(paths[i]))
        n_val = max(1, int(round(val_fraction * len(idx))))
        val += idx[len(idx) - n_val:]
    val_set = set(val)
    return {"train_idx": np.array([i for i in range(len(paths)) if i not in val_set]), "val_idx": np.array(sorted(val)),
            "paths": paths, "labels": labels, "classes": classes,
            "description": f"the last {100 * val_fraction:g} % of each class's photos in file-number order "
                           "(emolib.gesture_data.asl_block_split: whole video sequences held out)"}


# --------------------------------------------------------------------------- metrics


def gesture_metrics(y_true, probs, found, classes: Sequence[str]) -> dict:
    """:func:`emolib.metrics.evaluate_probs`'s keys for gestures, where some photos have no hand.

    ``probs`` ``(N, K)`` (rows of photos without a hand are ignored), ``found`` ``(N,)``
    bool. A photo without a hand counts as an error: ``accuracy`` is over all ``n``
    photos and the per-class recall counts it as a miss (it is nobody's false positive).
    ``confusion`` is ``K x K`` over the photos with a hand; ``no_hand_per_class`` holds
    the rest of each row (so each row plus its no-hand count is the class's support).
    For the AUC a photo without a hand gets the uniform probability ``1 / K``.
    Adds ``no_hand``, ``no_hand_per_class``, ``hands_found`` and ``accuracy_with_hand``.
    """
    y_true = np.asarray(y_true)
    found = np.asarray(found, dtype=bool)
    k = len(classes)
    probs = np.where(found[:, None], np.asarray(probs, dtype=np.float64), 1.0 / k)
    y_pred = np.where(found, probs.argmax(1), -1)  # -1: no hand, never right
    report = classification_report(y_true, y_pred, classes)
    correct = (y_pred == y_true) & found
    return {
        "accuracy": float(correct.mean()) if len(y_true) else float("nan"),
        "n": int(len(y_true)),
        "auc": roc_auc(y_true, probs),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "per_class": {c: {m: float(report[c][m]) for m in ("precision", "recall", "f1-score", "support")}
                      for c in classes},
        "confusion": confusion(y_true[found], y_pred[found], k).tolist(),
        "classes": list(classes),
        "no_hand": int((~found).sum()),
        "no_hand_per_class": {c: int(((~found) & (y_true == i)).sum()) for i, c in enumerate(classes)},
        "hands_found": int(found.sum()),
        "accuracy_with_hand": float(correct[found].mean()) if found.any() else float("nan"),
    }


def gesture_report(y_true, y_pred, classes: Sequence[str]) -> dict:
    """:func:`emolib.metrics.classification_report` where ``y_pred`` may be -1 (no hand: a miss, no false positive);
    ready for :func:`emolib.metrics.format_report` (its ``accuracy`` is over all photos)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    report = classification_report(y_true, y_pred, classes)
    report.pop("micro avg", None)  # scikit-learn's name for the accuracy when some predictions lie outside labels
    rest = {k: report.pop(k) for k in ("macro avg", "weighted avg")}
    report["accuracy"] = float((y_true == y_pred).mean()) if len(y_true) else float("nan")
    report.update(rest)
    return report
