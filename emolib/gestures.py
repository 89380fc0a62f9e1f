"""Hand-gesture classifiers: on MediaPipe landmarks (shipped as ``gestures-asl``) or on hand images.

::

    from emolib.hands import HandDetector
    from emolib.gestures import GestureClassifier

    detect, classify = HandDetector(), GestureClassifier("gestures-asl")
    hands = detect("photo.jpg")
    for hand, (gesture, probs) in zip(hands, classify("photo.jpg", hands)):
        print(hand.handedness, gesture, probs[gesture])

Two kinds of gesture model share one interface:

* **landmark models** (``arch`` ``"landmark_mlp"``, :class:`LandmarkMLP`): a small MLP on
  the 21 hand landmarks of MediaPipe Hands, normalised by
  :func:`emolib.hands.normalize_landmarks` (position, size, left/right and in-plane
  rotation removed). They need the hand detector (MediaPipe's networks run by onnxruntime:
  ``pip install "emolib[hands]"``) to get the landmarks, but they never see the pixels, so backgrounds, lighting and skin tone do
  not matter, and classifying a hand costs microseconds once it is found.
* **image models** (any image network of :mod:`emolib.models` with gesture classes,
  e.g. ``emonet`` trained by the recipe ``emonet-asl``, or the thesis's ``resnetv2_50``):
  they classify a crop around the hand, or the whole photo when it shows one hand, and
  need no hand detector for that.

:func:`evaluate_gestures` measures either kind on a folder of letter (``A/ F/ L/ V/``)
or gesture sub-folders; for a landmark model, photos in which the hand detector finds no hand
count as errors and are reported as ``no_hand``. :func:`run_landmark_recipe` trains the
landmark model of a recipe (``landmark_mlp-asl``) and :func:`ship_gesture_model` ships
a run as a named checkpoint with its model card.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import data as D
from . import models as M
from .hands import (DEFAULT_DETECTOR, HANDS_INSTALL, Hand, HandsUnavailableError, landmark_features,
                    normalize_landmarks)

__all__ = [
    "LANDMARK_ARCH",
    "GESTURE_EMOTIONS",
    "LandmarkMLP",
    "landmark_mlp",
    "load_gesture_model",
    "LandmarkDataset",
    "GestureClassifier",
    "asl_files",
    "asl_split",
    "asl_block_split",
    "run_landmark_recipe",
    "gesture_metrics",
    "gesture_report",
    "evaluate_gestures",
    "is_gesture_model",
    "cli_evaluate",
    "ship_gesture_model",
    "gesture_card_markdown",
    "comparison_markdown",
    "plot_comparison",
    "plot_photos",
    "plot_normalisation",
]

#: Registry name of the landmark MLP.
LANDMARK_ARCH = "landmark_mlp"

#: The thesis's pairing of gestures with emotions (the same as :data:`emolib.book.GESTURE_EMOTIONS`).
GESTURE_EMOTIONS: dict[str, str] = {"punch": "angry", "super": "happy", "loser": "sad", "victory": "happy"}


# --------------------------------------------------------------------------- the landmark model


class LandmarkMLP(nn.Module):
    """An MLP on normalised hand landmarks: ``21 * in_chans`` inputs -> ``hidden`` -> classes.

    ``in_chans`` is the number of coordinates per landmark (3 with MediaPipe's relative
    depth ``z``, 2 without), so that the registry's ``create_model(name, num_classes,
    in_chans)`` builds it like any image model. Input: ``(N, 21 * in_chans)`` or
    ``(N, 21, in_chans)`` features from :func:`emolib.hands.landmark_features`.
    """

    def __init__(self, num_classes: int = 4, in_chans: int = 3, hidden: Sequence[int] = (128, 64),
                 dropout: float = 0.2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 21 * in_chans
        for h in hidden:
            layers += [nn.Linear(cin, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            cin = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)
        self.in_chans = in_chans

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.flatten(1)))


#: What a landmark model records as its "input": 21 landmarks x 3 coordinates, no normalisation.
LANDMARK_INPUT = M.InputConfig(21, 3, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def landmark_mlp(num_classes: int = 4, in_chans: int = 3) -> LandmarkMLP:
    """A new :class:`LandmarkMLP` with ``emolib_name`` and ``input_config`` set (as ``create_model`` sets them)."""
    model = LandmarkMLP(num_classes=num_classes, in_chans=in_chans)
    model.emolib_name = LANDMARK_ARCH
    model.input_config = M.InputConfig(21, in_chans, (0.0,) * in_chans, (1.0,) * in_chans)
    return model


def load_gesture_model(name_or_path, device: str | torch.device = "cpu") -> nn.Module:
    """Load a gesture checkpoint by shipped name or path: :func:`emolib.models.load_model`, which
    also reads landmark models (``arch`` ``"landmark_mlp"``) when the registry does not list them.

    The model comes in eval mode with ``.classes``, ``.input_config`` and ``.meta``.
    """
    if LANDMARK_ARCH in M._REGISTRY:
        return M.load_model(name_or_path, device)
    path, meta = _read_meta(name_or_path)
    if meta["arch"] != LANDMARK_ARCH:
        return M.load_model(path, device)
    state = M._read_checkpoint(path)
    inp = state.get("input") or asdict(LANDMARK_INPUT)
    model = landmark_mlp(len(state["classes"]), inp["channels"])
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state["state_dict"].items()})
    except RuntimeError as err:
        raise M.CheckpointError(f"{path} does not fit a LandmarkMLP: {err}") from None
    model.classes = tuple(state["classes"])
    model.meta = state.get("meta", {})
    return model.to(device).eval()


class LandmarkDataset(torch.utils.data.Dataset):
    """Normalised landmarks ``(N, 21, 3)`` and targets, with optional augmentation, for :func:`emolib.train.fit`.

    ``augment`` (training only): ``noise`` (std of Gaussian noise on every normalised
    coordinate), ``scale`` (independent x and y stretch of up to this fraction:
    viewpoint), ``rotation`` (degrees, in-plane), ``mirror`` (probability of mirroring
    the hand, so that a wrong left/right label from MediaPipe costs little). Randomness
    comes from torch's generator, which :func:`emolib.train.fit` seeds per epoch.
    """

    def __init__(self, features: np.ndarray, targets: Sequence[int], classes: Sequence[str],
                 augment: Mapping[str, float] | None = None, use_z: bool = True) -> None:
        self.features = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if self.features.ndim != 3 or self.features.shape[1] != 21:
            raise ValueError(f"features must be normalised landmarks (N, 21, 3), got {tuple(self.features.shape)}")
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.classes = tuple(classes)
        self.augment = dict(augment or {})
        unknown = set(self.augment) - {"noise", "scale", "rotation", "mirror"}
        if unknown:
            raise ValueError(f"unknown landmark augmentation {sorted(unknown)}; use noise, scale, rotation, mirror")
        self.use_z = use_z

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        x = self.features[i].clone()
        a = self.augment
        if a:
            if a.get("mirror", 0) and torch.rand(()) < a["mirror"]:
                x[:, 0] = -x[:, 0]
            if a.get("rotation", 0):
                ang = (torch.rand(()) * 2 - 1) * a["rotation"] * torch.pi / 180
                c, s = torch.cos(ang), torch.sin(ang)
                x0, y0 = x[:, 0].clone(), x[:, 1].clone()
                x[:, 0], x[:, 1] = c * x0 - s * y0, s * x0 + c * y0
            if a.get("scale", 0):
                x[:, :2] *= 1 + (torch.rand(2) * 2 - 1) * a["scale"]
            if a.get("noise", 0):
                x += torch.randn_like(x) * a["noise"]
        if not self.use_z:
            x = x[:, :2]
        return x.reshape(-1), int(self.targets[i])


# --------------------------------------------------------------------------- data


def _folder_names(letter_to_gesture: Mapping[str, str]) -> dict[str, str]:
    mapping = D._check_gesture_map(letter_to_gesture)
    return {**mapping, **{g: g for g in mapping.values()}}


def asl_files(root=None, split: str = "train",
              letter_to_gesture: Mapping[str, str] = D.DEFAULT_LETTER_TO_GESTURE) -> tuple[list[str], list[int], tuple]:
    """The photo files of an ASL folder as :class:`emolib.data.ASLGestures` lists them (same order):
    ``(paths, labels, classes)``, without decoding a pixel."""
    mapping = D._check_gesture_map(letter_to_gesture)
    path = D._resolve(root, "asl")
    if not path.exists():
        raise D.DatasetNotFoundError(f"ASL photos not found at {path}: expected one folder per letter "
                                     f"({', '.join(mapping)}). {D._ASL_HELP}")
    folder = path / split if (path / split).is_dir() else path
    classes = tuple(mapping.values())
    paths, labels = D._scan_class_folders(folder, _folder_names(mapping), classes,
                                          ignore=D._ASL_ALPHABET - set(mapping))
    return paths, labels, classes


def asl_split(root=None, val_fraction: float = 0.2, seed: int = 0,
              letter_to_gesture: Mapping[str, str] = D.DEFAULT_LETTER_TO_GESTURE) -> dict:
    """The stratified, seeded train/validation split of the ASL photos, as file lists.

    Exactly the split :func:`emolib.data.train_val_split` makes of
    ``ASLGestures(root)`` with the same ``val_fraction`` and ``seed`` (and so of
    :func:`emolib.experiment.run_recipe` for a recipe with that ``val_fraction``), so
    that image and landmark models are compared on the same photos. Returns
    ``train_idx``, ``val_idx`` (into ``paths``), ``paths``, ``labels``, ``classes``.
    """
    paths, labels, classes = asl_files(root, "train", letter_to_gesture)
    stub = D.ImageDataset(torch.zeros((len(paths), 1, 1, 1), dtype=torch.uint8), labels, classes, paths=paths)
    train, val = D.train_val_split(stub, val_fraction, seed)
    index = {p: i for i, p in enumerate(paths)}
    return {"train_idx": np.array([index[p] for p in train.paths]), "val_idx": np.array([index[p] for p in val.paths]),
            "paths": paths, "labels": np.asarray(labels), "classes": classes}


def asl_block_split(root=None, val_fraction: float = 0.2,
                    letter_to_gesture: Mapping[str, str] = D.DEFAULT_LETTER_TO_GESTURE) -> dict:
    """A harder split: the last ``val_fraction`` of each class's photos in file-number order.

    The ASL photos are frames of short videos, numbered in order (``A0.jpg``,
    ``A1.jpg``...): neighbouring numbers are near-twins, and a random split puts twins on
    both sides. Holding out the highest numbers keeps whole sequences (other
    backgrounds, light and hands) out of training. Same keys as :func:`asl_split`.
    """
    import re

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
            "paths": paths, "labels": labels, "classes": classes}


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
    from .metrics import classification_report, confusion, roc_auc

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
    from .metrics import classification_report

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    report = classification_report(y_true, y_pred, classes)
    report.pop("micro avg", None)  # scikit-learn's name for the accuracy when some predictions lie outside labels
    rest = {k: report.pop(k) for k in ("macro avg", "weighted avg")}
    report["accuracy"] = float((y_true == y_pred).mean()) if len(y_true) else float("nan")
    report.update(rest)
    return report


# --------------------------------------------------------------------------- training the landmark model


def _landmark_options(recipe) -> dict:
    """Normalisation options of a landmark recipe (``config.extra``): rotate (True), use_z (True)."""
    extra = recipe.config.extra or {}
    return {"rotate": bool(extra.get("rotate", True)), "use_z": bool(extra.get("use_z", True))}


def run_landmark_recipe(recipe, out_dir, root=None, limit: int | None = None, resume: bool = True,
                        progress: bool = True, landmarks: Mapping[str, np.ndarray] | None = None,
                        letter_to_gesture: Mapping[str, str] = D.DEFAULT_LETTER_TO_GESTURE,
                        split: Mapping | None = None) -> dict:
    """Train a landmark recipe (``landmark_mlp-asl``) into ``out_dir``, as :func:`emolib.experiment.run_recipe` does.

    1. Landmarks of every photo of the ASL training folder (MediaPipe, cached under
       ``$EMOLIB_CACHE``; ``landmarks`` passes them in instead).
    2. The split of :func:`asl_split` (the recipe's ``val_fraction`` and seed), or ``split``
       (e.g. :func:`asl_block_split`).
    3. :func:`emolib.train.fit` on the photos of the training part where a hand was
       found (the epoch with the best validation accuracy on photos with a hand is kept).
    4. Validation metrics over **all** validation photos, no-hand photos counted as errors.

    Writes ``history.json`` (by ``fit``), ``model.pt``, ``result.json`` and
    ``val_predictions.json``. ``limit`` keeps a stratified sample of that many photos
    (smoke runs). Returns the content of ``result.json``.
    """
    from .hands import extract_landmarks
    from .train import fit, predict

    out = Path(out_dir)
    opts = _landmark_options(recipe)
    if split is None:
        split = asl_split(root, recipe.val_fraction, recipe.config.seed, letter_to_gesture)
    paths, labels, classes = split["paths"], split["labels"], split["classes"]
    train_idx, val_idx = split["train_idx"], split["val_idx"]
    if limit is not None and limit < len(paths):
        rng = np.random.default_rng(recipe.config.seed)
        keep = set()
        for c in range(len(classes)):
            idx = np.flatnonzero(labels == c)
            keep |= set(rng.choice(idx, min(len(idx), max(2, limit // len(classes))), replace=False).tolist())
        train_idx = np.array([i for i in train_idx if i in keep])
        val_idx = np.array([i for i in val_idx if i in keep])
    if landmarks is None:
        needed = sorted(set(train_idx.tolist()) | set(val_idx.tolist()))
        sub = extract_landmarks([paths[i] for i in needed], progress=progress)
        landmarks = {k: np.zeros((len(paths),) + v.shape[1:], v.dtype) for k, v in sub.items() if k != "paths"}
        for k in landmarks:
            landmarks[k][needed] = sub[k]
        landmarks["paths"] = np.array(paths)
    lm, found, hand = landmarks["landmarks"], landmarks["found"].astype(bool), landmarks["handedness"]
    feats = np.zeros((len(paths), 21, 3), np.float32)
    feats[found] = normalize_landmarks(lm[found], hand[found], rotate=opts["rotate"])
    tr = train_idx[found[train_idx]]
    va = val_idx[found[val_idx]]
    train_set = LandmarkDataset(feats[tr], labels[tr], classes, recipe.augment, opts["use_z"])
    val_set = LandmarkDataset(feats[va], labels[va], classes, None, opts["use_z"])
    in_chans = 3 if opts["use_z"] else 2
    torch.manual_seed(recipe.config.seed)  # the initial weights too: the same run gives the same model
    model = landmark_mlp(len(classes), in_chans)
    history = fit(model, train_set, val_set, recipe.config, out, resume=resume, progress=progress)
    model.eval()
    # validation over all photos of the split, no-hand photos counted as errors
    all_val = LandmarkDataset(feats[val_idx], labels[val_idx], classes, None, opts["use_z"])
    t0 = time.perf_counter()
    probs, _ = predict(model, all_val, batch_size=1024, device="cpu", progress=False)
    mlp_seconds = time.perf_counter() - t0
    val_found = found[val_idx]
    metrics = gesture_metrics(labels[val_idx], probs.numpy(), val_found, classes)
    root_path = D._resolve(root, "asl")
    meta = {
        "kind": "landmarks",
        "normalization": {**opts, "mirror_left": True, "scale": "wrist to middle MCP (2D)", "origin": "wrist"},
        "detector": {k: v for k, v in DEFAULT_DETECTOR.items()},
        "letter_to_gesture": dict(letter_to_gesture),
        "folder_to_class": _folder_names(letter_to_gesture),
        "gesture_emotions": {c: GESTURE_EMOTIONS.get(c) for c in classes},
        "requires": HANDS_INSTALL,
    }
    save_path = M.save_checkpoint(model, out / "model.pt", classes, recipe={**asdict(recipe), "config":
                                  asdict(recipe.config)}, **meta)
    det_ms = landmarks["seconds"][val_idx][val_found] * 1000 if "seconds" in landmarks else np.array([])
    result = {
        "recipe": {**asdict(recipe), "config": asdict(recipe.config)},
        "model": LANDMARK_ARCH,
        "dataset": "asl",
        "kind": "landmarks",
        "parameters": M.count_parameters(model),
        "train_images": int(len(train_idx)),
        "train_hands": int(len(tr)),
        "val_images": int(len(val_idx)),
        "val_hands": int(len(va)),
        "epochs_run": len(history),
        "best_epoch": max(history, key=lambda h: h["val_acc"])["epoch"] if history else None,
        "best_val_acc_with_hand": max((h["val_acc"] for h in history), default=None),
        "best_val_acc": metrics["accuracy"],
        "train_seconds": sum(h["seconds"] for h in history),
        "val": metrics,
        "classifier_ms_per_hand": 1000 * mlp_seconds / max(len(val_idx), 1),
        "detector_ms_per_image_median": float(np.median(det_ms)) if len(det_ms) else None,
        "device": platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "limit": limit,
        "data_root": str(root_path),
        "checkpoint": str(save_path),
        **meta,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1))
    base = root_path / "train" if (root_path / "train").is_dir() else root_path
    pred = np.where(val_found, probs.numpy().argmax(1), -1)
    (out / "val_predictions.json").write_text(json.dumps({
        "classes": list(classes), "root": str(base),
        "paths": [os.path.relpath(paths[i], base) for i in val_idx],
        "y_true": labels[val_idx].tolist(), "y_pred": pred.tolist(),
        "probs": np.round(probs.numpy(), 4).tolist(),
        "handedness": [str(hand[i]) for i in val_idx],
    }))
    return result


# --------------------------------------------------------------------------- the classifier


def _read_meta(name_or_path) -> tuple[Path, dict]:
    path = Path(name_or_path)
    if not path.suffix and str(name_or_path) in M.list_pretrained():
        path = M.CHECKPOINT_DIR / f"{name_or_path}.pt"
    if not path.is_file():
        raise M.CheckpointError(
            f"{name_or_path!r} is neither a shipped model ({', '.join(M.list_pretrained()) or 'none'}) nor a file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        state = M._read_checkpoint(path)
    if not isinstance(state, dict) or "arch" not in state:
        raise M.CheckpointError(f"{path} is not an emolib checkpoint (no 'arch')")
    return path, {"arch": state["arch"], "classes": list(state.get("classes", [])), **(state.get("meta") or {})}


def is_gesture_model(name_or_path) -> bool:
    """True for a checkpoint whose classes are hand gestures (a landmark model, or an image model
    trained on the ASL photos); False for emotion models and for names that are not checkpoints."""
    try:
        _, meta = _read_meta(name_or_path)
    except (M.CheckpointError, OSError):
        return False
    if meta["arch"] == LANDMARK_ARCH or meta.get("kind") == "landmarks" or meta.get("letter_to_gesture"):
        return True
    return bool(meta["classes"]) and set(meta["classes"]) <= set(D.GESTURES)


class GestureClassifier:
    """A gesture model loaded by name (``"gestures-asl"``) or checkpoint path.

    ``classify(image, hands)`` returns one ``(gesture, probabilities)`` per hand of
    ``hands`` (from :class:`emolib.hands.HandDetector`), in the same order, and also
    writes them into each hand's ``gesture`` and ``probabilities``; an empty list of
    hands gives an empty list. A landmark model reads only the hands' landmarks and
    handedness (``image`` may be None); an image model classifies a square crop of
    ``crop_scale`` times the hand box's long side around its centre.

    ``classifier(image)`` detects (with a :class:`~emolib.hands.HandDetector` of the
    model's recorded settings, created on first use) and classifies in one call,
    returning the hands. ``emotion(gesture)`` gives the thesis's paired emotion.
    """

    def __init__(self, model: Any = "gestures-asl", device: str = "cpu", crop_scale: float = 1.5) -> None:
        if isinstance(model, nn.Module):
            self.model = model.to(device).eval()
        else:
            self.model = load_gesture_model(model, device)
        self.name = str(getattr(self.model, "emolib_name", "")) if isinstance(model, nn.Module) else str(model)
        self.device = torch.device(device)
        self.classes = tuple(getattr(self.model, "classes", D.GESTURES))
        self.meta = dict(getattr(self.model, "meta", {}) or {})
        arch = getattr(self.model, "emolib_name", None)
        self.kind = "landmarks" if arch == LANDMARK_ARCH or self.meta.get("kind") == "landmarks" else "image"
        norm = self.meta.get("normalization", {})
        self.rotate = bool(norm.get("rotate", True))
        self.use_z = bool(norm.get("use_z", True))
        self.crop_scale = crop_scale
        self._detector = None

    def __repr__(self) -> str:
        return f"GestureClassifier({self.name!r}, kind={self.kind!r}, classes={self.classes})"

    @property
    def detector(self):
        """The :class:`~emolib.hands.HandDetector` this model was trained with (created on first use)."""
        if self._detector is None:
            from .hands import HandDetector

            settings = {**DEFAULT_DETECTOR, **self.meta.get("detector", {})}
            self._detector = HandDetector(**{k: settings[k] for k in DEFAULT_DETECTOR})
        return self._detector

    def emotion(self, gesture: str) -> str | None:
        """The emotion the thesis pairs with ``gesture`` (punch angry, super happy, loser sad, victory happy)."""
        return self.meta.get("gesture_emotions", GESTURE_EMOTIONS).get(gesture, GESTURE_EMOTIONS.get(gesture))

    @torch.no_grad()
    def predict_landmarks(self, landmarks: np.ndarray, handedness) -> np.ndarray:
        """Class probabilities ``(N, K)`` for landmarks ``(N, 21, 3)`` in pixels (landmark models only)."""
        if self.kind != "landmarks":
            raise TypeError(f"{self.name} is an image model: use predict_images or classify")
        lm = np.asarray(landmarks, dtype=np.float32).reshape(-1, 21, 3)
        if len(lm) == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        x = torch.from_numpy(landmark_features(lm, handedness, rotate=self.rotate, use_z=self.use_z))
        return torch.softmax(self.model(x.to(self.device)).float(), 1).cpu().numpy()

    @torch.no_grad()
    def predict_images(self, images: torch.Tensor) -> np.ndarray:
        """Class probabilities ``(N, K)`` for ``uint8`` images ``(N, C, H, W)`` of single hands (image models)."""
        if self.kind == "landmarks":
            raise TypeError(f"{self.name} is a landmark model: use predict_landmarks or classify")
        from .transforms import eval_transform

        cfg = self.model.input_config
        tf = eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std)
        x = torch.stack([tf(im) for im in images]).to(self.device)
        return torch.softmax(self.model(x).float(), 1).cpu().numpy()

    def _crops(self, image: Any, hands: Sequence[Hand]) -> torch.Tensor:
        from PIL import Image

        from .hands import to_rgb

        rgb = to_rgb(image)
        h, w = rgb.shape[:2]
        side = self.model.input_config.size
        crops = []
        for hand in hands:
            x1, y1, x2, y2 = hand.box
            half = self.crop_scale * max(x2 - x1, y2 - y1, 2) / 2
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            xs = np.clip(np.arange(int(cx - half), int(cx + half)), 0, w - 1)  # border pixels repeat
            ys = np.clip(np.arange(int(cy - half), int(cy + half)), 0, h - 1)
            crop = Image.fromarray(rgb[np.ix_(ys, xs)]).resize((side, side), Image.BILINEAR)
            crops.append(torch.from_numpy(np.array(crop)).permute(2, 0, 1))
        return torch.stack(crops)

    def classify(self, image: Any, hands: Sequence[Hand]) -> list[tuple[str, dict[str, float]]]:
        """One ``(gesture, {gesture: probability})`` per hand, in order (an empty list for no hands)."""
        hands = list(hands)
        if not hands:
            return []
        if self.kind == "landmarks":
            probs = self.predict_landmarks(np.stack([h.landmarks for h in hands]), [h.handedness for h in hands])
        else:
            if image is None:
                raise ValueError(f"{self.name} is an image model: classify(image, hands) needs the image")
            probs = self.predict_images(self._crops(image, hands))
        out = []
        for hand, p in zip(hands, probs):
            gesture = self.classes[int(p.argmax())]
            pd = {c: float(v) for c, v in zip(self.classes, p)}
            hand.gesture, hand.probabilities = gesture, pd
            out.append((gesture, pd))
        return out

    def __call__(self, image: Any, regions=None) -> list[Hand]:
        """Detect the hands of ``image`` and classify each; returns the hands with ``gesture`` filled."""
        hands = self.detector(image, regions)
        self.classify(image, hands)
        return hands

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None


# --------------------------------------------------------------------------- evaluation


def _scan_gesture_folder(folder: Path, classes: Sequence[str], letter_to_gesture: Mapping[str, str]):
    mapping = D._check_gesture_map(letter_to_gesture)
    unknown = sorted(set(mapping.values()) - set(classes))
    if unknown:
        raise ValueError(f"letter_to_gesture maps to {unknown}, which the model does not know (its classes: "
                         f"{list(classes)})")
    names = {**{k: v for k, v in mapping.items()}, **{c: c for c in classes}}
    return D._scan_class_folders(Path(folder), names, classes, ignore=D._ASL_ALPHABET - set(names))


def evaluate_gestures(model_name, folder, letter_to_gesture: Mapping[str, str] | None = None,
                      tta: Sequence[str] = (), progress: bool = True, cache: bool = True) -> dict:
    """Metrics of a gesture model on a folder of letter (``A/ F/ L/ V/``) or gesture sub-folders.

    The same keys as ``emolib evaluate --json`` gives for emotions (``accuracy``, ``n``,
    ``auc``, ``macro_f1``, ``per_class``, ``confusion``, ``classes``, ``model``, ``data``,
    ``skipped``, ``skipped_files``) plus those of :func:`gesture_metrics` (``no_hand``...),
    ``no_hand_files`` and ``kind``. A landmark model runs MediaPipe on every photo (results
    cached under ``$EMOLIB_CACHE`` unless ``cache=False``); a photo without a hand counts as
    an error. An image model classifies each whole photo (``no_hand`` is 0: it never looks
    for a hand). Folders of other ASL letters are ignored. ``letter_to_gesture`` (validated)
    replaces the letter map recorded in the model.
    """
    clf = GestureClassifier(model_name)
    mapping = letter_to_gesture or clf.meta.get("letter_to_gesture") or D.DEFAULT_LETTER_TO_GESTURE
    paths, labels = _scan_gesture_folder(Path(folder), clf.classes, mapping)
    labels = np.asarray(labels)
    k = len(clf.classes)
    if clf.kind == "landmarks":
        from .hands import extract_landmarks

        settings = {**DEFAULT_DETECTOR, **clf.meta.get("detector", {})}
        lm = extract_landmarks(paths, cache=cache, progress=progress, **{k_: settings[k_] for k_ in DEFAULT_DETECTOR})
        readable = lm["n_hands"] >= 0
        found = lm["found"].astype(bool)
        probs = np.full((len(paths), k), 1.0 / k)
        if found.any():
            probs[found] = clf.predict_landmarks(lm["landmarks"][found], lm["handedness"][found])
        skipped = [p for p, r in zip(paths, readable) if not r]
        keep = readable
    else:
        from .train import predict
        from .transforms import eval_transform

        cfg = clf.model.input_config
        images, targets, kept, skipped = D.load_images(paths, labels.tolist(), "L" if cfg.channels == 1 else "RGB",
                                                       clf.meta.get("stored_size", cfg.size))
        ds = D.ImageDataset(images, targets, clf.classes, eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std))
        p, _ = predict(clf.model, ds, tta=tuple(tta), progress=progress)
        index = {q: i for i, q in enumerate(kept)}
        keep = np.array([q in index for q in paths])
        probs = np.full((len(paths), k), 1.0 / k)
        probs[keep] = p.numpy()[[index[q] for q in np.asarray(paths)[keep]]]
        found = keep.copy()
    result = gesture_metrics(labels[keep], probs[keep], found[keep], clf.classes)
    result.update(
        model=str(model_name), data=str(folder), kind=clf.kind, skipped=len(skipped), skipped_files=list(skipped),
        no_hand_files=[p for p, f, r in zip(paths, found, keep) if r and not f],
        letter_to_gesture=dict(mapping),
    )
    clf.close()
    return result


def cli_evaluate(args) -> int:
    """``emolib evaluate`` for gesture models (the CLI dispatches here when :func:`is_gesture_model`)."""
    from .metrics import format_report

    try:
        result = evaluate_gestures(args.model, args.data, tta=tuple(t for t in (getattr(args, "tta", "") or "")
                                                                    .split(",") if t),
                                   progress=not getattr(args, "json", False))
    except HandsUnavailableError as err:
        print(f"emolib evaluate: {args.model} is a landmark model: {err}", file=sys.stderr)
        return 2
    except (D.DatasetNotFoundError, D.DatasetFormatError, M.CheckpointError, ValueError) as err:
        print(f"emolib evaluate: {err}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(result))
        return 0
    report = {c: r for c, r in result["per_class"].items()}
    sup = sum(r["support"] for r in report.values())
    macro = {m: float(np.mean([r[m] for r in report.values()])) for m in ("precision", "recall", "f1-score")}
    weighted = {m: float(sum(r[m] * r["support"] for r in report.values()) / max(sup, 1))
                for m in ("precision", "recall", "f1-score")}
    report.update({"accuracy": result["accuracy"], "macro avg": {**macro, "support": sup},
                   "weighted avg": {**weighted, "support": sup}})
    print(format_report(report))
    print(f"\naccuracy {result['accuracy']:.4f} on {result['n']} images; macro AUC {result['auc']:.4f}")
    if result["kind"] == "landmarks":
        print(f"no hand found in {result['no_hand']} image(s) (counted as errors); accuracy on the "
              f"{result['hands_found']} with a hand {result['accuracy_with_hand']:.4f}")
    if result["skipped"]:
        print(f"{result['skipped']} unreadable file(s) skipped")
    return 0


# --------------------------------------------------------------------------- shipping


def gesture_card_markdown(card: dict) -> str:
    """A gesture model card as Markdown (the ``.md`` next to the checkpoint)."""
    cfg = card["recipe"]["config"]
    v = card["val"]
    norm = card.get("normalization", {})
    lines = [
        f"# Model card: {card['name']}",
        "",
        f"- what: {card['description']}",
        f"- architecture: `{card['arch']}`, {card['parameters']:,} parameters; input: {card['input_text']}",
        f"- needs: {card['requires']}" if card.get("requires") else "- needs: nothing beyond emolib",
        f"- data: {card['dataset_text']}; {card['data']['train_images']:,} training photos "
        f"({card['data'].get('train_hands', card['data']['train_images']):,} with a hand found) and "
        f"{card['data']['val_images']:,} validation photos: {card['data']['split']}",
        f"- classes: " + ", ".join(f"{c} ({card['gesture_emotions'].get(c)})" for c in card["classes"])
        + " (gesture, with the emotion the thesis pairs it with)",
        f"- letters: " + ", ".join(f"{k} {v_}" for k, v_ in card["letter_to_gesture"].items()),
    ]
    if norm:
        lines.append(f"- landmark normalisation: origin {norm.get('origin')}, scale {norm.get('scale')}, left hands "
                     f"mirrored: {norm.get('mirror_left')}, rotated upright: {norm.get('rotate')}, z used: "
                     f"{norm.get('use_z')}")
    lines += [
        f"- recipe `{card['recipe_name']}`: Adam lr {cfg['lr']}, batch {cfg['batch_size']}, schedule "
        f"{cfg['schedule']}, label smoothing {cfg['label_smoothing']}, weight decay {cfg['weight_decay']}, "
        f"augmentation {card['recipe'].get('augment') or 'none'}; {card['epochs_run']} epochs "
        f"(best validation epoch {card['best_epoch']})",
        f"- command: `{card['command']}`",
        f"- training time: {card['train_seconds']:.0f} s on {card['device']} ({card['torch_threads']} thread(s))"
        + (f"; landmark extraction (MediaPipe, once, cached): {card['landmark_seconds']:.0f} s"
           if card.get("landmark_seconds") else ""),
        f"- stored as {card['stored_as']} ({card['size_bytes'] / 1e3:.0f} kB)",
        "",
        "## Validation metrics (weights as stored)",
        "",
        f"accuracy {100 * v['accuracy']:.2f} % over all {v['n']:,} validation photos (photos where MediaPipe "
        f"found no hand, {v.get('no_hand', 0)}, count as errors; "
        f"{100 * v.get('accuracy_with_hand', v['accuracy']):.2f} "
        f"% on the {v.get('hands_found', v['n']):,} with a hand), macro F1 {v['macro_f1']:.3f}, macro AUC "
        f"{v['auc']:.3f}. The held-out test photos are kept outside this project.",
        "",
        "| gesture | precision | recall | F1 | support | no hand |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {c} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f} | {int(r['support'])} | "
              f"{v.get('no_hand_per_class', {}).get(c, 0)} |" for c, r in v["per_class"].items()]
    if card.get("speed"):
        s = card["speed"]
        lines += ["", "## Speed", "", s["text"]]
    return "\n".join(lines) + "\n"


def ship_gesture_model(run_dir, name: str, command: str, checkpoint_dir=None,
                       results_dir="results/06_hand_gestures", speed: Mapping | None = None,
                       extra: Mapping | None = None) -> dict:
    """Ship a finished landmark run as ``<checkpoint_dir>/<name>.pt`` with its card (``.json``, ``.md``).

    The card is measured again with the weights as stored (float32: the model is a few
    hundred kB) on the run's validation landmarks. Also copies ``history.json`` and
    ``result.json`` to ``results_dir/<name>/``. Returns the card.
    """
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else M.CHECKPOINT_DIR
    run = Path(run_dir)
    result = json.loads((run / "result.json").read_text())
    src = load_gesture_model(run / "model.pt")
    keys = ("kind", "normalization", "detector", "letter_to_gesture", "folder_to_class", "gesture_emotions",
            "requires")
    meta = {k: result[k] for k in keys if k in result}
    path = M.save_checkpoint(src, ckpt_dir / f"{name}.pt", src.classes, half=False, recipe=result["recipe"],
                             dataset=result["dataset"], **meta)
    # re-measure with the stored file: same landmarks, same split
    preds = json.loads((run / "val_predictions.json").read_text())
    clf = GestureClassifier(path)
    base = Path(preds["root"])
    from .hands import extract_landmarks

    lm = extract_landmarks([str(base / p) for p in preds["paths"]], progress=False,
                           **{k: meta["detector"][k] for k in DEFAULT_DETECTOR})
    found = lm["found"].astype(bool)
    probs = np.full((len(found), len(clf.classes)), 1.0 / len(clf.classes))
    if found.any():
        probs[found] = clf.predict_landmarks(lm["landmarks"][found], lm["handedness"][found])
    val = gesture_metrics(preds["y_true"], probs, found, clf.classes)
    recipe = result["recipe"]
    card = {
        "name": name,
        "arch": result["model"],
        "kind": result.get("kind", "landmarks"),
        "description": "hand-gesture classifier on MediaPipe hand landmarks (an MLP on 21 normalised points)",
        "dataset": result["dataset"],
        "dataset_text": "ASL letter photos (keptsecret/ASLAlphabets, Apache-2.0; 1,000 real 224x224 photos per "
                        "letter A, F, L, V)",
        "classes": list(src.classes),
        "parameters": result["parameters"],
        "input": asdict(src.input_config),
        "input_text": "21 MediaPipe hand landmarks x (x, y, z), normalised (see below)",
        "data": {"train_images": result["train_images"], "train_hands": result.get("train_hands"),
                 "val_images": result["val_images"], "val_hands": result.get("val_hands"),
                 "split": f"stratified {int(100 * recipe['val_fraction'])} % of train/, seed {recipe['config']['seed']}"
                          " (emolib.gestures.asl_split; the same photos as the image models' validation)",
                 "test_split": "held-out test photos, kept outside this project (never used here)"},
        "recipe_name": "landmark_mlp-asl",
        "recipe": recipe,
        "command": command,
        "epochs_run": result["epochs_run"],
        "best_epoch": result["best_epoch"],
        "best_val_acc": val["accuracy"],
        "train_seconds": result["train_seconds"],
        "device": result["device"],
        "torch_threads": result["torch_threads"],
        "stored_as": "float32",
        "size_bytes": path.stat().st_size,
        "val": val,
        **meta,
    }
    if speed:
        card["speed"] = dict(speed)
    if extra:
        card.update(extra)
    from .experiment import write_card

    write_card(card, gesture_card_markdown(card), ckpt_dir, run, results_dir)
    clf.close()
    return card


# --------------------------------------------------------------------------- for the chapter


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def comparison_markdown(comparison: Mapping) -> str:
    """The models of ``results/06_hand_gestures/comparison.json`` as a Markdown table, with the thesis's reference."""
    lines = ["| model | input | validation accuracy | macro F1 | no hand | training | ms per hand | hands/s | "
             "hands per CPU-second | parameters |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in comparison["rows"]:
        v = r["val"]
        params = f"{r['parameters']:,}" if r.get("parameters") else "–"
        train = _duration(r["train_seconds"])
        if r.get("landmark_seconds"):
            train += f" (+ landmarks {_duration(r['landmark_seconds'])})"
        lines.append(f"| {r['name']}{' (ships)' if r.get('ships') else ''} | {r['input']} | "
                     f"{100 * v['accuracy']:.2f} % | {v['macro_f1']:.3f} | {v['no_hand']} | {train} | "
                     f"{r['end_to_end_ms_per_hand']:.1f} | {r['hands_per_second']:.0f} | "
                     f"{r.get('hands_per_cpu_second', float('nan')):.0f} | {params} |")
    t = comparison.get("thesis_smoke") or {}
    ref = comparison.get("thesis_reference") or {}
    if ref:
        lines.append(f"| ResNet50v2 (ImageNet weights), as the thesis reports it | 224x224 photo | "
                     f"{100 * ref['val_acc']:.2f} % | – | – | GPU | "
                     f"{t.get('ms_per_image_batch1', float('nan')):.0f} (this CPU) | – | – | "
                     f"{t.get('parameters', 0):,} |")
    return "\n".join(lines)


def plot_comparison(comparison: Mapping, axes=None):
    """Two bar charts: validation accuracy, and hands per second on this CPU; returns the figure."""
    import matplotlib.pyplot as plt

    rows = comparison["rows"]
    names = [r["name"].replace(" (", "\n(").replace(" on ", "\non ") for r in rows]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    colors = ["tab:green" if r.get("ships") else "tab:blue" for r in rows]
    acc = [100 * r["val"]["accuracy"] for r in rows]
    bars = axes[0].barh(names, acc, color=colors)
    axes[0].bar_label(bars, labels=[f"{a:.2f} %" for a in acc], fontsize=8, padding=2)
    ref = comparison.get("thesis_reference", {}).get("val_acc")
    if ref:
        axes[0].axvline(100 * ref, color="gray", ls="--", lw=1)
        axes[0].text(100 * ref, -0.55, "thesis (ResNet50 v2)", color="gray", fontsize=8, ha="right", va="bottom")
    lo = min(acc + [100 * (ref or 1)])
    axes[0].set_xlim(max(0, lo - 4), 100.6)
    axes[0].set_xlabel("validation accuracy (%)")
    axes[0].invert_yaxis()
    hps = [r["hands_per_second"] for r in rows]
    bars = axes[1].barh(names, hps, color=colors)
    axes[1].bar_label(bars, labels=[f"{h:.0f}" for h in hps], fontsize=8, padding=2)
    axes[1].set_xlim(0, 1.15 * max(hps + [30]))
    axes[1].axvline(30, color="gray", ls="--", lw=1)
    axes[1].set_xlabel("hands per second on this CPU (dashed: 30)")
    axes[1].invert_yaxis()
    axes[1].set_yticklabels([])
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def plot_photos(paths: Sequence[str], titles: Sequence[str], cols: int = 6, cell: float = 1.6, suptitle: str = ""):
    """A grid of photos with a title each (for failure cases); returns the figure."""
    import matplotlib.pyplot as plt
    from PIL import Image

    n = max(len(paths), 1)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cell * cols, (cell + 0.6) * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p, t in zip(axes.flat, paths, titles):
        with Image.open(p) as im:
            ax.imshow(np.asarray(im.convert("RGB")))
        ax.set_title(t, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def plot_normalisation(samples: Sequence[Mapping], classes: Sequence[str], axes=None):
    """Landmarks of a few hands before (pixels) and after :func:`emolib.hands.normalize_landmarks`, by class."""
    import matplotlib.pyplot as plt

    from .hands import HAND_CONNECTIONS

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    colors = dict(zip(classes, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    seen = set()
    for s in samples:
        raw = np.asarray(s["landmarks"], dtype=np.float32)
        norm = normalize_landmarks(raw, s["handedness"])
        for ax, pts in ((axes[0], raw), (axes[1], norm)):
            for a, b in HAND_CONNECTIONS:
                ax.plot(pts[[a, b], 0], pts[[a, b], 1], color=colors[s["label"]], lw=1, alpha=0.7)
        axes[1].scatter(norm[:, 0], norm[:, 1], s=4, color=colors[s["label"]],
                        label=s["label"] if s["label"] not in seen else None)
        seen.add(s["label"])
    axes[0].set_title("landmarks in pixels (224x224 photos)", fontsize=9)
    axes[1].set_title("normalised: wrist at 0, unit palm, upright, right hand", fontsize=9)
    for ax in axes:
        ax.set_aspect("equal")
        ax.invert_yaxis()
    axes[1].legend(fontsize=8, frameon=False, loc="lower right")
    fig = axes[0].figure
    fig.tight_layout()
    return fig
