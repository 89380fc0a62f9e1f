"""The hand detector: MediaPipe Hands' two networks and graph, run with onnxruntime.

:class:`HandDetector` is ``mp.solutions.hands.Hands(static_image_mode=True)`` of mediapipe
0.10.21 (``hand_landmark_tracking_cpu.pbtxt`` without the previous frame's landmarks): palm
detection on the whole image (:mod:`emolib.hands.palm`), then the landmark network on each
palm's rotated hand region (:mod:`emolib.hands.landmark`). It adds what emolib's detector
always added: boxes, ``truncated``, the person's own handedness, the retry on a padded copy and
the search in regions. ``benchmarks/hands_vs_mediapipe.py`` measures how close it is to
mediapipe itself.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from ..fileio import PipelineInputError, cache_dir, files_key, load_image, save_arrays
from .features import HAND_CONNECTIONS
from .landmark import LandmarkModel
from .palm import NormRect, PalmDetection, PalmDetector
from .runtime import BACKEND, load_model

#: The settings of :class:`HandDetector` used when none are given (and for the shipped model).
DEFAULT_DETECTOR: dict = {"max_num_hands": 2, "model_complexity": 1, "min_detection_confidence": 0.5,
                          "min_presence": 0.5, "mirrored": False, "margin": 0.1, "pad_retry": 0.25}


# --------------------------------------------------------------------------- results


@dataclass
class Hand:
    """One detected hand (see :mod:`emolib.hands` for the exact definitions).

    ``landmarks`` is a ``(21, 3)`` float32 array: ``x``, ``y`` in pixels of the input
    image, ``z`` MediaPipe's relative depth (wrist at 0, smaller is nearer the camera)
    scaled by the image width like ``x``. ``gesture`` and ``probabilities`` are filled by
    :class:`emolib.gestures.GestureClassifier`.
    """

    box: list[float]
    handedness: str
    score: float
    landmarks: np.ndarray
    truncated: bool = False
    handedness_score: float = 1.0
    gesture: str | None = None
    probabilities: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready: floats rounded to 2 decimals (pixels) or 4 (scores)."""
        d = {
            "box": [round(float(v), 2) for v in self.box],
            "handedness": self.handedness,
            "score": round(float(self.score), 4) if np.isfinite(self.score) else None,
            "handedness_score": round(float(self.handedness_score), 4),
            "truncated": bool(self.truncated),
            "landmarks": np.round(self.landmarks.astype(float), 2).tolist(),
            "gesture": self.gesture,
            "probabilities": ({k: round(float(v), 4) for k, v in self.probabilities.items()}
                              if self.probabilities is not None else None),
        }
        if self.extra:
            d["extra"] = self.extra
        return d


def to_rgb(image: Any) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array from a path, PIL image, array or tensor (as the face pipeline reads them)."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.asarray(load_image(image), dtype=np.uint8)


def hand_box(points: np.ndarray, width: int, height: int, margin: float) -> tuple[list[float], bool]:
    """Grown, clipped box of ``points`` (21, >=2 pixels) and whether the hand is cut by the border."""
    x1, y1 = points[:, 0].min(), points[:, 1].min()
    x2, y2 = points[:, 0].max(), points[:, 1].max()
    pad = margin * max(x2 - x1, y2 - y1)
    gx1, gy1, gx2, gy2 = x1 - pad, y1 - pad, x2 + pad, y2 + pad
    outside = bool(x1 < 0 or y1 < 0 or x2 > width or y2 > height)
    # A side clipped where the landmarks nearly touch the border: the hand goes on beyond it.
    near = 0.02 * max(width, height)
    clipped_close = ((gx1 < 0 and x1 < near) or (gy1 < 0 and y1 < near)
                     or (gx2 > width and x2 > width - near) or (gy2 > height and y2 > height - near))
    box = [float(np.clip(gx1, 0, width)), float(np.clip(gy1, 0, height)),
           float(np.clip(gx2, 0, width)), float(np.clip(gy2, 0, height))]
    return box, outside or bool(clipped_close)


def _is_new(hand: Hand, hands: Sequence[Hand], threshold: float = 0.5) -> bool:
    """Whether ``hand``'s box overlaps every box of ``hands`` by less than ``threshold`` IoU."""
    if not hands:
        return True
    iou = box_iou(torch.tensor([hand.box], dtype=torch.float64), torch.tensor([h.box for h in hands], dtype=torch.float64))
    return bool((iou.nan_to_num(0.0) < threshold).all())


# --------------------------------------------------------------------------- the detector


class HandDetector:
    """MediaPipe Hands on still images (``static_image_mode``): ``detector(image) -> list[Hand]``.

    ``image``: a path, PIL image, RGB ``uint8`` array ``(H, W, 3)`` or anything
    :func:`emolib.fileio.load_image` reads. Parameters:

    * ``max_num_hands``: at most this many hands per image (per region);
    * ``model_complexity``: 0 (lite palm detector and landmark network, faster) or 1 (full,
      default), as MediaPipe's;
    * ``min_detection_confidence``: palm-detector score threshold;
    * ``min_presence``: the landmark network's hand-presence threshold (MediaPipe's
      ``min_tracking_confidence``, which in static mode is this threshold);
    * ``mirrored``: the input is a mirrored (selfie) image; see :mod:`emolib.hands`;
    * ``margin``: box growth, a fraction of the landmarks' long side;
    * ``pad_retry``: when no hand is found, look again in a copy of the image padded by
      this fraction of its long side on every side (border pixels repeated). MediaPipe's
      palm detector misses hands that fill the frame or are cut by its border; 0 turns it
      off. It costs a second run only on images where the first found nothing;
    * ``threads``: onnxruntime's ``intra_op_num_threads`` (0: its default, one per core);
    * ``model_dir``: a folder with the four ``.onnx`` files (default: those shipped in
      emolib, or ``$EMOLIB_HANDS_MODELS``). A missing or corrupt file raises
      :class:`~emolib.hands.HandModelError` naming it.

    ``detector(image, regions=[[x1, y1, x2, y2], ...])`` runs the detector on each
    region (e.g. around each person found by the face pipeline) instead of the whole
    image, which finds the small hands of a group photo that MediaPipe misses at full
    size (its palm detector sees a 192x192 version of what it is given). Results are
    in full-image pixels; a hand found in two overlapping regions is kept once.

    Every image is searched anew, as in MediaPipe's static mode; :class:`emolib.hands.HandTracker`
    is the video mode (hands followed from frame to frame, MediaPipe's ``use_prev_landmarks``).
    ``close()`` (or a ``with`` block) frees the onnxruntime sessions.
    """

    def __init__(
        self,
        max_num_hands: int = 2,
        model_complexity: int = 1,
        min_detection_confidence: float = 0.5,
        min_presence: float = 0.5,
        mirrored: bool = False,
        margin: float = 0.1,
        pad_retry: float = 0.25,
        threads: int = 0,
        model_dir: str | os.PathLike | None = None,
    ) -> None:
        if max_num_hands < 1:
            raise ValueError(f"max_num_hands must be at least 1, got {max_num_hands}")
        if model_complexity not in (0, 1):
            raise ValueError(f"model_complexity must be 0 or 1, got {model_complexity}")
        self.max_num_hands = max_num_hands
        self.model_complexity = model_complexity
        self.min_detection_confidence = min_detection_confidence
        self.min_presence = min_presence
        self.mirrored = mirrored
        self.margin = margin
        self.pad_retry = pad_retry
        self._palms: PalmDetector | None = PalmDetector(
            load_model("palm", model_complexity, model_dir, threads), min_detection_confidence)
        self._landmarks: LandmarkModel | None = LandmarkModel(
            load_model("landmark", model_complexity, model_dir, threads), min_presence)

    @property
    def settings(self) -> dict:
        """The parameters that change what is detected (landmark caches and model cards record them)."""
        return {"max_num_hands": self.max_num_hands, "model_complexity": self.model_complexity,
                "min_detection_confidence": self.min_detection_confidence, "min_presence": self.min_presence,
                "mirrored": self.mirrored, "margin": self.margin, "pad_retry": self.pad_retry}

    def __repr__(self) -> str:
        return (f"HandDetector(max_num_hands={self.max_num_hands}, model_complexity={self.model_complexity}, "
                f"min_detection_confidence={self.min_detection_confidence}, mirrored={self.mirrored})")

    def close(self) -> None:
        self._palms = self._landmarks = None

    def __enter__(self) -> "HandDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, image: Any, regions: Sequence[Sequence[float]] | None = None) -> list[Hand]:
        return self.detect(image, regions)

    def detect(self, image: Any, regions: Sequence[Sequence[float]] | None = None) -> list[Hand]:
        """The hands in ``image`` (an empty list when there is none), left to right."""
        if self._palms is None:
            raise RuntimeError("this HandDetector was closed")
        rgb = to_rgb(image)
        height, width = rgb.shape[:2]
        if not regions:
            hands = self._detect_array(rgb, 0, 0, width, height)
        else:
            hands = []
            for r in regions:
                x1, y1 = int(max(0, np.floor(r[0]))), int(max(0, np.floor(r[1])))
                x2, y2 = int(min(width, np.ceil(r[2]))), int(min(height, np.ceil(r[3])))
                if x2 - x1 < 8 or y2 - y1 < 8:
                    continue
                for hand in self._detect_array(rgb[y1:y2, x1:x2], x1, y1, width, height):
                    if _is_new(hand, hands):  # two persons' regions overlap: one hand, found twice
                        hands.append(hand)
        return sorted(hands, key=lambda h: (h.box[0] + h.box[2]) / 2)

    def _detect_array(self, rgb: np.ndarray, ox: int, oy: int, width: int, height: int) -> list[Hand]:
        """Run the graph on ``rgb`` (a crop at ``(ox, oy)`` of a ``width`` x ``height`` image), and
        once more on a padded copy when it finds nothing."""
        hands = self._run(rgb, ox, oy, width, height)
        if not hands and self.pad_retry > 0:
            p = int(round(self.pad_retry * max(rgb.shape[:2])))
            padded = np.pad(rgb, ((p, p), (p, p), (0, 0)), mode="edge")
            hands = self._run(padded, ox - p, oy - p, width, height)
        return hands

    def _run(self, rgb: np.ndarray, ox: int, oy: int, width: int, height: int) -> list[Hand]:
        hands = []
        for rect, palm in self.palm_regions(rgb):
            hand = self.read_region(rgb, rect, palm.score, ox, oy, width, height)
            if hand is not None:
                hands.append(hand)
        return hands

    def palm_regions(self, rgb: np.ndarray) -> list[tuple[NormRect, PalmDetection]]:
        """The palm detector on an RGB ``uint8`` array: the hand regions (relative to ``rgb``) of its
        ``max_num_hands`` best palms, after MediaPipe's association step, each with its palm."""
        if self._palms is None:
            raise RuntimeError("this HandDetector was closed")
        return self._palms(rgb, self.max_num_hands)

    def read_region(self, rgb: np.ndarray, rect: NormRect, score: float, ox: int = 0, oy: int = 0,
                    width: int | None = None, height: int | None = None) -> Hand | None:
        """The landmark network in one hand region of ``rgb`` (a crop at ``(ox, oy)`` of a ``width`` x
        ``height`` image; default: the whole image): the :class:`Hand` (``score`` is its palm's), or None
        when its presence score is not above ``min_presence``."""
        if self._landmarks is None:
            raise RuntimeError("this HandDetector was closed")
        res = self._landmarks(rgb, rect)
        if res is None:  # the landmark network says there is no hand in this region
            return None
        width = rgb.shape[1] if width is None else width
        height = rgb.shape[0] if height is None else height
        pts = res.landmarks
        pts[:, 0] += ox
        pts[:, 1] += oy
        label = res.label.lower()  # "left" / "right" as MediaPipe says (mirrored image)
        if not self.mirrored:
            label = "right" if label == "left" else "left"
        box, truncated = hand_box(pts, width, height, self.margin)
        return Hand(box=box, handedness=label, score=score, landmarks=pts, truncated=truncated,
                    handedness_score=res.label_score)


# --------------------------------------------------------------------------- datasets of landmarks


def extract_landmarks(
    paths: Sequence[str | os.PathLike],
    detector: HandDetector | None = None,
    cache: bool | str | os.PathLike = True,
    progress: bool = True,
    **settings,
) -> dict[str, np.ndarray]:
    """Run the detector once on every image file and keep the most confident hand of each.

    Returns arrays (one row per path, in order): ``landmarks`` ``(N, 21, 3)`` float32
    pixels (NaN where no hand was found), ``handedness`` ``(N,)`` ("left", "right" or
    ""), ``found`` ``(N,)`` bool, ``score`` ``(N,)``, ``truncated`` ``(N,)``, ``n_hands``
    ``(N,)``, ``size`` ``(N, 2)`` (width, height), ``seconds`` ``(N,)`` (detection time per
    image) and ``paths``. Unreadable files count as "no hand" (``n_hands`` -1).

    The detector is ``detector``, else a :class:`HandDetector` built with ``settings``
    (its keyword arguments; default :data:`DEFAULT_DETECTOR`). ``cache=True`` stores the
    result as ``.npz`` under ``$EMOLIB_CACHE`` (default ``~/.cache/emolib``) keyed by the
    files' names, sizes and times and the detector's settings, so a second call (or a
    chapter) does not run the detector again; reading a cache does not need onnxruntime. A
    path gives another cache folder. (The key also names the backend, so landmarks cached by
    emolib's earlier MediaPipe-based detector are not reused.)
    """
    from tqdm.auto import tqdm

    paths = [str(p) for p in paths]
    if detector is not None:
        if settings:
            raise TypeError("give a detector or detector settings, not both")
        settings = detector.settings
    else:
        unknown = set(settings) - set(DEFAULT_DETECTOR)
        if unknown:
            raise TypeError(f"unknown detector settings {sorted(unknown)}; known: {sorted(DEFAULT_DETECTOR)}")
        settings = {**DEFAULT_DETECTOR, **settings}
    cache_file = None
    if cache:
        folder = cache_dir() if cache is True else Path(cache)
        cache_file = folder / f"landmarks-{files_key(paths, BACKEND + repr(sorted(settings.items())))}.npz"
        if cache_file.exists():
            try:
                with np.load(cache_file, allow_pickle=False) as z:
                    return {k: z[k] for k in z.files}
            except Exception:  # a corrupt cache is rebuilt, never trusted
                cache_file.unlink(missing_ok=True)
    own = detector is None
    if own:
        detector = HandDetector(**settings)
    n = len(paths)
    out = {
        "landmarks": np.full((n, 21, 3), np.nan, dtype=np.float32),
        "handedness": np.array([""] * n, dtype="<U5"),
        "found": np.zeros(n, dtype=bool),
        "score": np.full(n, np.nan, dtype=np.float32),
        "truncated": np.zeros(n, dtype=bool),
        "n_hands": np.zeros(n, dtype=np.int16),
        "size": np.zeros((n, 2), dtype=np.int32),
        "seconds": np.zeros(n, dtype=np.float32),
        "paths": np.array(paths),
    }
    bad = []
    for i, p in enumerate(tqdm(paths, desc="hand landmarks", unit="img", leave=False,
                               disable=not progress or n < 50)):
        try:
            rgb = np.asarray(load_image(p), dtype=np.uint8)  # emolib's one decoder: EXIF, 16-bit, alpha
        except PipelineInputError:
            out["n_hands"][i] = -1
            bad.append(p)
            continue
        out["size"][i] = (rgb.shape[1], rgb.shape[0])
        t0 = time.perf_counter()
        hands = detector.detect(rgb)
        out["seconds"][i] = time.perf_counter() - t0
        out["n_hands"][i] = len(hands)
        if hands:
            best = max(hands, key=lambda h: np.nan_to_num(h.score, nan=0.0))
            out["landmarks"][i] = best.landmarks
            out["handedness"][i] = best.handedness
            out["found"][i] = True
            out["score"][i] = best.score
            out["truncated"][i] = best.truncated
    if bad:
        warnings.warn(f"{len(bad)} unreadable image(s), counted as 'no hand': {bad[:3]}", stacklevel=2)
    if own:
        detector.close()
    if cache_file is not None:
        save_arrays(out, cache_file)
    return out


# --------------------------------------------------------------------------- drawing


def draw_hands(image: Any, hands: Sequence[Hand], ax=None, labels: bool = True, lw: float = 1.5):
    """Draw hands (box, skeleton, handedness and gesture) on a matplotlib axes; returns the axes."""
    import matplotlib.pyplot as plt

    rgb = to_rgb(image)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5 * rgb.shape[0] / rgb.shape[1]))
    ax.imshow(rgb)
    ax.set_xticks([])
    ax.set_yticks([])
    for hand in hands:
        color = "tab:orange" if hand.handedness == "left" else "tab:cyan"
        x1, y1, x2, y2 = hand.box
        ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=color, lw=lw,
                                   ls="--" if hand.truncated else "-"))
        pts = hand.landmarks
        for a, b in HAND_CONNECTIONS:
            ax.plot([pts[a, 0], pts[b, 0]], [pts[a, 1], pts[b, 1]], color="white", lw=lw * 0.8, alpha=0.9)
        ax.scatter(pts[:, 0], pts[:, 1], s=8, c=color, zorder=3)
        if labels:
            text = hand.handedness + (f": {hand.gesture}" if hand.gesture else "")
            ax.text(x1, max(y1 - 3, 0), text, color="black", fontsize=7, va="bottom",
                    bbox=dict(facecolor=color, alpha=0.8, pad=1, lw=0))
    ax.set_xlim(0, rgb.shape[1])
    ax.set_ylim(rgb.shape[0], 0)
    return ax
