"""Hands: find them in a photo with MediaPipe Hands, and turn their 21 landmarks into features.

::

    from emolib.hands import HandDetector

    with HandDetector(max_num_hands=2) as detect:
        for hand in detect("photo.jpg"):
            print(hand.box, hand.handedness, hand.score, hand.truncated, hand.landmarks.shape)  # (21, 3)

MediaPipe Hands (Zhang et al. 2020) runs in two stages: a palm detector finds palms in
the whole image, then a landmark network places 21 points on each hand (the wrist, and
four points along each finger) and says whether it is a left or a right hand.

**Installation.** MediaPipe is an optional extra: ``pip install "emolib[hands]"``, which
pins ``mediapipe==0.10.21``, the last release whose wheel ships the hand models for
``mediapipe.solutions.hands`` (later releases dropped ``mp.solutions``). It needs
``numpy<2`` and pulls ``opencv-contrib-python``. Without it, everything that detects
hands raises :class:`HandsUnavailableError` naming that command; the landmark
functions of this module (:func:`normalize_landmarks`, :func:`landmark_features`) need
only numpy.

**Definitions** (what the pipeline can rely on):

* ``box`` is ``[x1, y1, x2, y2]`` in pixels of the (EXIF-rotated) input image: the
  landmarks' bounding box grown by ``margin`` of its long side on every side (the
  landmarks sit on the joints, so the bare box would cut the finger tips and the palm's
  edge), then **clipped to the image**.
* ``truncated`` is True when the hand is cut by the image border: a landmark lies
  outside the image (MediaPipe extrapolates the points it cannot see), or the grown box
  had to be clipped on a side where a landmark lies within 2 % of the image's size of
  that border.
* ``handedness`` is ``"left"`` or ``"right"`` **as seen by the person** (their own left
  or right hand). MediaPipe's legacy solution labels hands assuming a *mirrored* (selfie)
  image; for ordinary photos its "Left" is the person's right hand. :class:`HandDetector`
  swaps the labels unless ``mirrored=True`` (for webcam frames shown as a mirror).
* ``score`` is the palm detector's confidence for this hand (matched by position; NaN,
  and None in ``to_dict()``, if no palm detection lies in the hand's box);
  ``handedness_score`` is MediaPipe's confidence in the left/right label.
* No hand: an empty list. Two hands: two :class:`Hand` objects, each with its own
  handedness, ordered from left to right in the image.

**Landmark features.** :func:`normalize_landmarks` makes the 21 points independent of
where the hand is (the wrist is moved to the origin), how big it is (divided by the
wrist to middle-finger-knuckle distance), which hand it is (left hands are mirrored to
right hands, so one classifier serves both) and, optionally, of its in-plane rotation
(the wrist to middle-knuckle direction is turned to point up).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "HANDS_INSTALL",
    "LANDMARK_NAMES",
    "HAND_CONNECTIONS",
    "DEFAULT_DETECTOR",
    "HandsUnavailableError",
    "Hand",
    "HandDetector",
    "mediapipe_available",
    "require_mediapipe",
    "normalize_landmarks",
    "mirror_landmarks",
    "landmark_features",
    "extract_landmarks",
    "draw_hands",
]

#: The install command every "MediaPipe missing" message names.
HANDS_INSTALL = 'pip install "emolib[hands]"'

#: MediaPipe's 21 hand landmarks, in index order.
LANDMARK_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
WRIST, MIDDLE_MCP = 0, 9
_PALM = (0, 1, 5, 9, 13, 17)

#: The settings of :class:`HandDetector` used when none are given (and for the shipped model).
DEFAULT_DETECTOR: dict = {"max_num_hands": 2, "model_complexity": 1, "min_detection_confidence": 0.5,
                          "min_presence": 0.5, "mirrored": False, "margin": 0.1, "pad_retry": 0.25}

#: Bones between landmarks (for drawing), as MediaPipe's ``HAND_CONNECTIONS``.
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)


class HandsUnavailableError(ImportError):
    """MediaPipe (the optional extra ``emolib[hands]``) is not installed or not usable."""


def mediapipe_available() -> bool:
    """True when ``mediapipe.solutions.hands`` can be imported."""
    try:
        require_mediapipe()
    except HandsUnavailableError:
        return False
    return True


def require_mediapipe():
    """The ``mediapipe.solutions.hands`` module, or :class:`HandsUnavailableError` saying how to install it."""
    try:
        import mediapipe as mp
    except ImportError as err:
        raise HandsUnavailableError(
            f"hand detection needs MediaPipe, which is not installed ({err}). Install the optional extra: "
            f"{HANDS_INSTALL} (it pins mediapipe==0.10.21, which needs numpy<2)."
        ) from None
    except Exception as err:  # e.g. a mediapipe built for numpy 1 imported under numpy 2
        raise HandsUnavailableError(
            f"MediaPipe is installed but cannot be imported ({type(err).__name__}: {err}). Reinstall it with "
            f"{HANDS_INSTALL}; mediapipe 0.10.21 needs numpy<2."
        ) from None
    try:
        return mp.solutions.hands
    except AttributeError:
        raise HandsUnavailableError(
            f"mediapipe {getattr(mp, '__version__', '?')} has no mp.solutions.hands (later releases dropped it). "
            f"Install the pinned version: {HANDS_INSTALL} (mediapipe==0.10.21)."
        ) from None


# --------------------------------------------------------------------------- results


@dataclass
class Hand:
    """One detected hand (see the module docstring for the exact definitions).

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


def _to_rgb(image: Any) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array from a path, PIL image, array or tensor (as the face pipeline reads them)."""
    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    from .pipeline import load_image  # lazy: the pipeline imports this module

    return np.asarray(load_image(image), dtype=np.uint8)


def _hand_box(points: np.ndarray, width: int, height: int, margin: float) -> tuple[list[float], bool]:
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


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- the detector


class HandDetector:
    """MediaPipe Hands on still images (``static_image_mode``): ``detector(image) -> list[Hand]``.

    ``image``: a path, PIL image, RGB ``uint8`` array ``(H, W, 3)`` or anything
    :func:`emolib.pipeline.load_image` reads. Parameters:

    * ``max_num_hands``: at most this many hands per image (per region);
    * ``model_complexity``: 0 (lite landmark network, faster) or 1 (full, default);
    * ``min_detection_confidence``: palm-detector score threshold;
    * ``min_presence``: the landmark network's hand-presence threshold (MediaPipe's
      ``min_tracking_confidence``, which in static mode is this threshold);
    * ``mirrored``: the input is a mirrored (selfie) image; see the module docstring;
    * ``margin``: box growth, a fraction of the landmarks' long side;
    * ``pad_retry``: when no hand is found, look again in a copy of the image padded by
      this fraction of its long side on every side (border pixels repeated). MediaPipe's
      palm detector misses hands that fill the frame or are cut by its border (on the
      ASL photos, 38 of the 44 it missed are found this way); 0 turns it off. It costs
      a second run only on images where the first found nothing.

    ``detector(image, regions=[[x1, y1, x2, y2], ...])`` runs the detector on each
    region (e.g. around each person found by the face pipeline) instead of the whole
    image, which finds the small hands of a group photo that MediaPipe misses at full
    size (its palm detector sees a 192x192 version of what it is given). Results are
    in full-image pixels; a hand found in two overlapping regions is kept once.

    MediaPipe's graph is not thread-safe: use one detector per thread. ``close()`` (or a
    ``with`` block) frees it.
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
    ) -> None:
        if max_num_hands < 1:
            raise ValueError(f"max_num_hands must be at least 1, got {max_num_hands}")
        if model_complexity not in (0, 1):
            raise ValueError(f"model_complexity must be 0 or 1, got {model_complexity}")
        hands_mod = require_mediapipe()
        from mediapipe.python.solution_base import SolutionBase

        self.max_num_hands = max_num_hands
        self.model_complexity = model_complexity
        self.min_detection_confidence = min_detection_confidence
        self.min_presence = min_presence
        self.mirrored = mirrored
        self.margin = margin
        self.pad_retry = pad_retry
        # mp.solutions.hands.Hands, plus the palm detections (for a real detection score).
        self._graph = SolutionBase(
            binary_graph_path=hands_mod._BINARYPB_FILE_PATH,
            side_inputs={"model_complexity": model_complexity, "num_hands": max_num_hands,
                         "use_prev_landmarks": False},
            calculator_params={
                "palmdetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": min_detection_confidence,
                "handlandmarkcpu__ThresholdingCalculator.threshold": min_presence,
            },
            outputs=["multi_hand_landmarks", "multi_handedness", "palm_detections"],
        )

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
        if self._graph is not None:
            self._graph.close()
            self._graph = None

    def __enter__(self) -> "HandDetector":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    def __call__(self, image: Any, regions: Sequence[Sequence[float]] | None = None) -> list[Hand]:
        return self.detect(image, regions)

    def detect(self, image: Any, regions: Sequence[Sequence[float]] | None = None) -> list[Hand]:
        """The hands in ``image`` (an empty list when there is none), left to right."""
        if self._graph is None:
            raise RuntimeError("this HandDetector was closed")
        rgb = _to_rgb(image)
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
                    if all(_iou(hand.box, h.box) < 0.5 for h in hands):
                        hands.append(hand)
        return sorted(hands, key=lambda h: (h.box[0] + h.box[2]) / 2)

    def _detect_array(self, rgb: np.ndarray, ox: int, oy: int, width: int, height: int) -> list[Hand]:
        """Run MediaPipe on ``rgb`` (a crop at ``(ox, oy)`` of a ``width`` x ``height`` image), and
        once more on a padded copy when it finds nothing."""
        hands = self._run(rgb, ox, oy, width, height)
        if not hands and self.pad_retry > 0:
            p = int(round(self.pad_retry * max(rgb.shape[:2])))
            padded = np.pad(rgb, ((p, p), (p, p), (0, 0)), mode="edge")
            hands = self._run(padded, ox - p, oy - p, width, height)
        return hands

    def _run(self, rgb: np.ndarray, ox: int, oy: int, width: int, height: int) -> list[Hand]:
        h, w = rgb.shape[:2]
        res = self._graph.process(input_data={"image": np.ascontiguousarray(rgb)})
        palms = []
        for det in res.palm_detections or []:
            bb = det.location_data.relative_bounding_box
            palms.append(((bb.xmin + bb.width / 2) * w + ox, (bb.ymin + bb.height / 2) * h + oy,
                          float(det.score[0]) if det.score else 1.0))
        hands = []
        for lms, cls in zip(res.multi_hand_landmarks or [], res.multi_handedness or []):
            pts = np.array([(p.x * w + ox, p.y * h + oy, p.z * w) for p in lms.landmark], dtype=np.float32)
            label = cls.classification[0].label.lower()  # "left" / "right" as MediaPipe says (mirrored image)
            if not self.mirrored:
                label = "right" if label == "left" else "left"
            box, truncated = _hand_box(pts, width, height, self.margin)
            # The palm detection of this hand: the one nearest the palm's centre, inside the hand's box.
            cx, cy = pts[list(_PALM), 0].mean(), pts[list(_PALM), 1].mean()
            inside = [p for p in palms if box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]]
            score = min(inside, key=lambda p: (p[0] - cx) ** 2 + (p[1] - cy) ** 2)[2] if inside else float("nan")
            hands.append(Hand(box=box, handedness=label, score=score, landmarks=pts, truncated=truncated,
                              handedness_score=float(cls.classification[0].score)))
        return hands


# --------------------------------------------------------------------------- landmark features


def _handedness_array(handedness, n: int) -> np.ndarray:
    """A boolean array: True where the hand is a left hand (to be mirrored)."""
    if handedness is None:
        return np.zeros(n, dtype=bool)
    if isinstance(handedness, str):
        handedness = [handedness] * n
    values = [str(h).lower() for h in handedness]
    bad = sorted({v for v in values if v not in ("left", "right")})
    if bad:
        raise ValueError(f"handedness must be 'left' or 'right', got {bad}")
    if len(values) != n:
        raise ValueError(f"{len(values)} handedness labels for {n} hands")
    return np.array([v == "left" for v in values])


def mirror_landmarks(landmarks: np.ndarray, width: float = 0.0) -> np.ndarray:
    """The landmarks of the mirror image (``x -> width - x``): a left hand becomes a right hand."""
    out = np.array(landmarks, dtype=np.float32, copy=True)
    out[..., 0] = width - out[..., 0]
    return out


def normalize_landmarks(landmarks: np.ndarray, handedness=None, rotate: bool = True) -> np.ndarray:
    """Landmarks ``(..., 21, 3)`` made independent of position, size, hand side and (``rotate``) rotation.

    1. Left hands (``handedness`` "left", one label or one per hand) are mirrored
       (``x -> -x``), so every hand looks like a right hand.
    2. The wrist is moved to the origin.
    3. Coordinates are divided by the hand's size: the 2D distance from the wrist to
       the middle finger's knuckle (MCP), which a gesture barely changes; when that is
       degenerate (< 1e-6), the largest distance of any point from the wrist.
    4. With ``rotate``, the hand is turned in the image plane so that the wrist to
       middle-knuckle direction points up (``-y``, image coordinates); ``z`` is kept.

    Returns float32 of the input's shape. ``z`` (MediaPipe's relative depth, scaled like
    ``x``) is shifted and scaled with the others.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[-2:] not in ((21, 3), (21, 2)):
        raise ValueError(f"landmarks must have shape (..., 21, 3) or (..., 21, 2), got {lm.shape}")
    single = lm.ndim == 2
    lm = lm.reshape(-1, 21, lm.shape[-1]).copy()
    left = _handedness_array(handedness, len(lm))
    lm[left, :, 0] *= -1
    lm -= lm[:, WRIST : WRIST + 1, :]
    ref = lm[:, MIDDLE_MCP, :2]
    scale = np.linalg.norm(ref, axis=1)
    extent = np.linalg.norm(lm[:, :, :2], axis=2).max(axis=1)
    scale = np.where(scale > 1e-6, scale, extent)
    scale = np.where(scale > 1e-6, scale, 1.0)
    lm /= scale[:, None, None]
    if rotate:
        # the reference direction is (sin a, -cos a); turning by -a takes it to (0, -1)
        ang = np.arctan2(ref[:, 0], -ref[:, 1])
        c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
        x, y = lm[:, :, 0].copy(), lm[:, :, 1].copy()
        lm[:, :, 0] = c * x + s * y
        lm[:, :, 1] = -s * x + c * y
    out = lm.astype(np.float32)
    return out[0] if single else out


def landmark_features(landmarks: np.ndarray, handedness=None, rotate: bool = True, use_z: bool = True) -> np.ndarray:
    """Classifier input: normalised landmarks flattened to ``(N, 63)`` (``(N, 42)`` without ``z``)."""
    lm = normalize_landmarks(landmarks, handedness, rotate)
    if lm.ndim == 2:
        lm = lm[None]
    if not use_z:
        lm = lm[..., :2]
    return lm.reshape(len(lm), -1)


# --------------------------------------------------------------------------- datasets of landmarks


def _cache_dir() -> Path:
    return Path(os.environ.get("EMOLIB_CACHE", Path.home() / ".cache" / "emolib")).expanduser()


def _key(paths: Sequence[str], settings: dict) -> str:
    h = hashlib.sha1(repr(sorted(settings.items())).encode())
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


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
    chapter) does not run MediaPipe again; reading a cache does not need MediaPipe. A
    path gives another cache folder.
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
        folder = _cache_dir() if cache is True else Path(cache)
        cache_file = folder / f"landmarks-{_key(paths, settings)}.npz"
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
    import time

    from PIL import Image, ImageOps

    bad = []
    for i, p in enumerate(tqdm(paths, desc="hand landmarks", unit="img", leave=False,
                               disable=not progress or n < 50)):
        try:
            with Image.open(p) as im:
                rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, SyntaxError):
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
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(cache_file.name + ".tmp.npz")
        np.savez_compressed(tmp, **out)
        os.replace(tmp, cache_file)
    return out


# --------------------------------------------------------------------------- drawing


def draw_hands(image: Any, hands: Sequence[Hand], ax=None, labels: bool = True, lw: float = 1.5):
    """Draw hands (box, skeleton, handedness and gesture) on a matplotlib axes; returns the axes."""
    import matplotlib.pyplot as plt

    rgb = _to_rgb(image)
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
