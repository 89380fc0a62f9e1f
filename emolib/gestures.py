"""Hand-gesture inference: a gesture model's predictions from hand landmarks (``gestures-asl``) or hand images.

::

    from emolib.hands import HandDetector
    from emolib.gestures import GestureClassifier

    detect, classify = HandDetector(), GestureClassifier("gestures-asl")
    hands = detect("photo.jpg")
    for hand, (gesture, probs) in zip(hands, classify("photo.jpg", hands)):
        print(hand.handedness, gesture, probs[gesture])

Two kinds of gesture model share one interface:

* **landmark models** (``arch`` ``"landmark_mlp"``, :class:`emolib.models.LandmarkMLP`): a
  small MLP on the 21 hand landmarks of MediaPipe Hands, normalised by
  :func:`emolib.hands.normalize_landmarks` (position, size, left/right and in-plane
  rotation removed). They need the hand detector (MediaPipe's networks run by onnxruntime:
  ``pip install "emolib[hands]"``) to get the landmarks, but they never see the pixels, so
  backgrounds, lighting and skin tone do not matter, and classifying a hand costs little
  once it is found (chapter 6 and ``benchmarks/bench_hands_speed.py`` measure how little).
* **image models** (any image network of :mod:`emolib.models` with gesture classes,
  e.g. ``emonet`` trained by the recipe ``emonet-asl``, or the thesis's ``resnetv2_50``):
  they classify a crop around the hand, or the whole photo when it shows one hand, and
  need no hand detector for that.

:func:`evaluate_gestures` measures either kind on a folder of letter (``A/ F/ L/ V/``)
or gesture sub-folders; for a landmark model, photos in which the hand detector finds no hand
count as errors and are reported as ``no_hand``. :func:`landmark_source` gives training
(:func:`emolib.experiment.run_recipe` with the recipe ``landmark_mlp-asl``, ``emolib train``)
the landmarks of the ASL photos; training and shipping (``emolib export``) go through
:mod:`emolib.experiment` like every model's.

The data, metrics and model of gestures live in foundations and are re-exported here:
:mod:`emolib.gesture_data` (``asl_split``, ``asl_block_split``, ``LandmarkDataset``,
``gesture_metrics``, ``gesture_report``), :mod:`emolib.data` (``asl_files``),
:mod:`emolib.labels` (``GESTURE_EMOTIONS``), :mod:`emolib.models` (``LandmarkMLP``) and
:mod:`emolib.cards` (``gesture_card_markdown``, the one card writer's Markdown).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from . import data as D
from . import models as M
from .cards import card_markdown as gesture_card_markdown
from .data import asl_files
from .faces import square_crop
from .fileio import load_torch
from .gesture_data import LandmarkDataset, asl_block_split, asl_split, gesture_metrics, gesture_report
from .hands import (DEFAULT_DETECTOR, HANDS_INSTALL, Hand, HandDetector, extract_landmarks, landmark_features, normalize_landmarks, to_rgb)
from .labels import DEFAULT_LETTER_TO_GESTURE, GESTURE_EMOTIONS, GESTURES, check_gesture_map
from .models import LandmarkMLP
from .transforms import eval_transform, tta_views

__all__ = [
    "LANDMARK_ARCH",
    "LANDMARK_INPUT",
    "GESTURE_EMOTIONS",
    "LandmarkMLP",
    "landmark_mlp",
    "load_gesture_model",
    "LandmarkDataset",
    "GestureClassifier",
    "landmark_source",
    "asl_files",
    "asl_split",
    "asl_block_split",
    "gesture_metrics",
    "gesture_report",
    "evaluate_gestures",
    "is_gesture_model",
    "gesture_card_markdown",
]

#: Registry name of the landmark MLP (:func:`emolib.models.create_model`).
LANDMARK_ARCH = "landmark_mlp"

#: What a landmark model records as its "input": 21 landmarks x 3 coordinates, no normalisation.
LANDMARK_INPUT = M.input_config(LANDMARK_ARCH)

#: How :func:`landmark_source` normalises landmarks (recorded in the checkpoint and card).
LANDMARK_NORMALIZATION = {"origin": "wrist", "scale": "wrist to middle MCP (2D)", "mirror_left": True}


def landmark_mlp(num_classes: int = 4, in_chans: int = 3) -> LandmarkMLP:
    """A new landmark MLP: ``emolib.models.create_model("landmark_mlp", num_classes=..., in_chans=...)``."""
    return M.create_model(LANDMARK_ARCH, num_classes=num_classes, in_chans=in_chans)


def load_gesture_model(name_or_path, device: str | torch.device = "cpu") -> nn.Module:
    """Load a gesture checkpoint by shipped name or path (:func:`emolib.models.load_model`: the one registry
    holds the landmark MLP too). The model comes in eval mode with ``.classes``, ``.input_config`` and ``.meta``."""
    return M.load_model(name_or_path, device)


def landmark_source(detector_settings: Mapping[str, Any] | None = None, cache: bool = True, progress: bool = True,
                    precomputed: Mapping[str, np.ndarray] | None = None):
    """A landmark source (see :mod:`emolib.gesture_data`) from emolib's hand detector, for training.

    ``source(paths, rotate=True)`` runs :func:`emolib.hands.extract_landmarks` on the photos
    (with ``detector_settings``, default :data:`emolib.hands.DEFAULT_DETECTOR`; cached under
    ``$EMOLIB_CACHE`` unless ``cache=False``) and normalises the most confident hand of each
    with :func:`emolib.hands.normalize_landmarks`. ``precomputed``: the result of an earlier
    ``extract_landmarks`` call (with those settings) to read the rows of ``paths`` from instead;
    a path it does not hold is an error naming it.
    """
    settings = {**DEFAULT_DETECTOR, **(detector_settings or {})}
    unknown = set(settings) - set(DEFAULT_DETECTOR)
    if unknown:
        raise TypeError(f"unknown detector settings {sorted(unknown)}; known: {sorted(DEFAULT_DETECTOR)}")

    def source(paths: Sequence[str], rotate: bool = True) -> dict:
        paths = [str(p) for p in paths]
        if precomputed is not None:
            index = {str(p): i for i, p in enumerate(precomputed["paths"])}
            missing = [p for p in paths if p not in index]
            if missing:
                raise ValueError(f"the precomputed landmarks hold no row for {len(missing)} photo(s), "
                                 f"e.g. {missing[0]}")
            rows = [index[p] for p in paths]
            lm = {k: np.asarray(v)[rows] for k, v in precomputed.items() if k != "paths"}
        else:
            lm = extract_landmarks(paths, cache=cache, progress=progress, **settings)
        found = np.asarray(lm["found"], bool)
        feats = np.zeros((len(paths), 21, 3), np.float32)
        if found.any():
            feats[found] = normalize_landmarks(lm["landmarks"][found], lm["handedness"][found], rotate=rotate)
        out = {"features": feats, "found": found, "handedness": np.asarray(lm["handedness"]).astype(str),
               "meta": {"detector": dict(settings), "normalization": dict(LANDMARK_NORMALIZATION),
                        "requires": HANDS_INSTALL}}
        if "seconds" in lm:
            out["seconds"] = np.asarray(lm["seconds"], np.float32)
        return out

    return source


# --------------------------------------------------------------------------- the classifier


def _read_meta(name_or_path) -> tuple[Path, dict]:
    path = Path(name_or_path)
    if not path.suffix and str(name_or_path) in M.list_pretrained():
        path = M.CHECKPOINT_DIR / f"{name_or_path}.pt"
    if not path.is_file():
        raise M.CheckpointError(
            f"{name_or_path!r} is neither a shipped model ({', '.join(M.list_pretrained()) or 'none'}) nor a file")
    state = load_torch(path)
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
    return bool(meta["classes"]) and set(meta["classes"]) <= set(GESTURES)


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
        self.classes = tuple(getattr(self.model, "classes", GESTURES))
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
    def predict_images(self, images: torch.Tensor, tta: Sequence[str] = ()) -> np.ndarray:
        """Class probabilities ``(N, K)`` for ``uint8`` images ``(N, C, H, W)`` of single hands (image models).

        ``tta`` as :func:`emolib.train.predict`'s: ``"flip"`` averages in the mirrored image,
        ``"shift"`` the image shifted by two pixels in the four directions.
        """
        if self.kind == "landmarks":
            raise TypeError(f"{self.name} is a landmark model: use predict_landmarks or classify")
        unknown = set(tta) - {"flip", "shift"}
        if unknown:
            raise ValueError(f"unknown test-time augmentation {sorted(unknown)}; use flip, shift")
        cfg = self.model.input_config
        tf = eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std)
        x = torch.stack([tf(im) for im in images]).to(self.device)
        views = tta_views(x, tta)
        return torch.stack([torch.softmax(self.model(v).float(), 1) for v in views]).mean(0).cpu().numpy()

    def _crops(self, image: Any, hands: Sequence[Hand]) -> torch.Tensor:
        rgb = to_rgb(image)
        side = self.model.input_config.size
        crops = [Image.fromarray(square_crop(rgb, hand.box, self.crop_scale - 1.0)).resize((side, side), Image.BILINEAR)
                 for hand in hands]  # the face pipeline's square crop: border pixels repeat
        return torch.stack([torch.from_numpy(np.array(crop)).permute(2, 0, 1) for crop in crops])

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
    mapping = check_gesture_map(letter_to_gesture)
    unknown = sorted(set(mapping.values()) - set(classes))
    if unknown:
        raise ValueError(f"letter_to_gesture maps to {unknown}, which the model does not know (its classes: "
                         f"{list(classes)})")
    names = {**{k: v for k, v in mapping.items()}, **{c: c for c in classes}}
    return D.scan_class_folders(Path(folder), names, classes, ignore=set(D.ASL_ALPHABET) - set(names))


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
    mapping = letter_to_gesture or clf.meta.get("letter_to_gesture") or DEFAULT_LETTER_TO_GESTURE
    paths, labels = _scan_gesture_folder(Path(folder), clf.classes, mapping)
    labels = np.asarray(labels)
    k = len(clf.classes)
    if clf.kind == "landmarks":
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
        cfg = clf.model.input_config
        images, _, kept, skipped = D.load_images(paths, labels.tolist(), "L" if cfg.channels == 1 else "RGB",
                                                 clf.meta.get("stored_size", cfg.size))
        p = np.concatenate([clf.predict_images(images[i:i + 256], tta) for i in range(0, len(images), 256)])
        index = {q: i for i, q in enumerate(kept)}
        keep = np.array([q in index for q in paths])
        probs = np.full((len(paths), k), 1.0 / k)
        probs[keep] = p[[index[q] for q in np.asarray(paths)[keep]]]
        found = keep.copy()
    result = gesture_metrics(labels[keep], probs[keep], found[keep], clf.classes)
    result.update(
        model=str(model_name), data=str(folder), kind=clf.kind, skipped=len(skipped), skipped_files=list(skipped),
        no_hand_files=[p for p, f, r in zip(paths, found, keep) if r and not f],
        letter_to_gesture=dict(mapping),
    )
    clf.close()
    return result
