"""Hands followed from frame to frame: MediaPipe Hands' video mode (``static_image_mode=False``).

:class:`HandTracker` is ``mp.solutions.hands.Hands(static_image_mode=False)`` of mediapipe 0.10.21,
graph ``mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.pbtxt`` with
``use_prev_landmarks``, around :class:`~emolib.hands.HandDetector`'s palm detector and landmark
network:

1. the hand regions of the last frame come from its landmarks
   (``hand_landmark_landmarks_to_roi.pbtxt``): ``HandLandmarksToRectCalculator`` on 12 of the 21
   landmarks (:data:`ROI_LANDMARKS`: the wrist, the thumb's first three joints and the first two
   joints of each finger), turned so that the wrist to the mean of the index, middle and ring
   knuckles points up (:func:`landmarks_to_rect`), then ``RectTransformationCalculator`` with scale
   2.0, shift_y -0.1, square on the long side (:func:`hand_region_from_landmarks`);
2. the palm detector runs only while fewer than ``max_num_hands`` hands are followed
   (``NormalizedRectVectorHasMinSizeCalculator`` and the ``GateCalculator`` before
   ``PalmDetectionCpu``);
3. ``AssociationNormRectCalculator`` (threshold 0.5) on the new palms' regions followed by the
   followed ones: a new palm's region overlapping a followed hand's (IoU > 0.5, rotation ignored) is
   dropped (:func:`emolib.hands.palm.associate` on both lists, palms first);
4. the landmark network in each region; a hand whose presence score is not above
   ``min_presence`` (MediaPipe's ``min_tracking_confidence``) is dropped, and its region with it:
   once fewer than ``max_num_hands`` hands are left, the next frame runs the palm detector again.

``palm_every`` (not MediaPipe's; default 1, MediaPipe's): while some but fewer than
``max_num_hands`` hands are followed, the palm detector runs on every ``palm_every``-th frame only
(a new hand is found up to ``palm_every - 1`` frames later; with no hand followed it runs on every
frame). The book's live page uses it to read hands more often (``emolib/web/live.js``).

As in MediaPipe, a frame may show more than ``max_num_hands`` hands when a new palm appears beside
followed hands (the palms are clipped to ``max_num_hands`` before the association, the result is
not); the palm detector then waits until some are lost. What emolib adds is :class:`HandDetector`'s:
boxes, ``truncated``, the person's own handedness (``mirrored``), hands ordered left to right.
``score`` is the score of the palm the hand was first found from. Not MediaPipe's either: a frame
of another size than the last one starts afresh (:meth:`HandTracker.reset`). There is no retry in a
padded copy (``pad_retry``): a video frame with no hand is simply one without.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .detector import Hand, HandDetector, to_rgb
from .palm import NormRect, PalmDetection, associate, normalize_radians, transform_rect

#: The landmarks HandLandmarksToRectCalculator uses (``kPartialLandmarkIndices``): wrist 0, thumb 1-3,
#: and each finger's knuckle and first joint (5, 6; 9, 10; 13, 14; 17, 18).
ROI_LANDMARKS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
#: ``std::numeric_limits<float>::min()``, the calculator's starting maximum (the smallest positive float).
_FLOAT_MIN = 1.1754943508222875e-38


def landmarks_to_rect(points: np.ndarray, width: int, height: int) -> NormRect:
    """``HandLandmarksToRectCalculator``: the rotated box of a hand's 21 landmarks (pixels, ``(21, >=2)``)
    in a ``width`` x ``height`` image, relative to the image.

    Of the 12 landmarks :data:`ROI_LANDMARKS`, the rotation turns the wrist to the mean of the middle
    knuckle and of the index and ring knuckles' mean upright; the box is the landmarks' extent in that
    rotated frame, around the centre of their axis-aligned box.
    """
    pts = np.asarray(points, np.float64)
    if pts.shape[0] != 21 or pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"expected 21 landmarks (21, 2 or 3), got an array of shape {pts.shape}")
    xs, ys = pts[list(ROI_LANDMARKS), 0] / width, pts[list(ROI_LANDMARKS), 1] / height
    # ComputeRotation: partial indices 0 (wrist), 4, 6, 8 (the index, middle and ring knuckles 5, 9, 13)
    x0, y0 = xs[0] * width, ys[0] * height
    x1 = ((xs[4] + xs[8]) / 2.0 + xs[6]) / 2.0 * width
    y1 = ((ys[4] + ys[8]) / 2.0 + ys[6]) / 2.0 * height
    rotation = normalize_radians(math.pi * 0.5 - math.atan2(-(y1 - y0), x1 - x0))
    reverse = normalize_radians(-rotation)
    cx = (max(_FLOAT_MIN, xs.max()) + min(np.finfo(np.float32).max, xs.min())) / 2.0
    cy = (max(_FLOAT_MIN, ys.max()) + min(np.finfo(np.float32).max, ys.min())) / 2.0
    ox, oy = (xs - cx) * width, (ys - cy) * height
    c, s = math.cos(reverse), math.sin(reverse)
    px, py = ox * c - oy * s, ox * s + oy * c
    max_x, min_x = max(_FLOAT_MIN, px.max()), min(np.finfo(np.float32).max, px.min())
    max_y, min_y = max(_FLOAT_MIN, py.max()), min(np.finfo(np.float32).max, py.min())
    pcx, pcy = (max_x + min_x) / 2.0, (max_y + min_y) / 2.0
    c, s = math.cos(rotation), math.sin(rotation)
    center_x = pcx * c - pcy * s + width * cx
    center_y = pcx * s + pcy * c + height * cy
    return NormRect(float(center_x / width), float(center_y / height), float((max_x - min_x) / width),
                    float((max_y - min_y) / height), float(rotation))


def hand_region_from_landmarks(points: np.ndarray, width: int, height: int) -> NormRect:
    """``hand_landmark_landmarks_to_roi.pbtxt``: the next frame's hand region from this frame's landmarks
    (:func:`landmarks_to_rect`, then scale 2.0, shift_y -0.1, square on the long side)."""
    return transform_rect(landmarks_to_rect(points, width, height), width, height, 2.0, 2.0, 0.0, -0.1)


class HandTracker:
    """MediaPipe Hands on video: ``tracker(frame) -> list[Hand]``, each frame's hands found in the regions
    the last frame's landmarks give (see :mod:`emolib.hands.tracker`).

    ``detector``: the :class:`HandDetector` whose networks and settings it uses (``max_num_hands``,
    ``min_detection_confidence``, ``min_presence``, ``mirrored``, ``margin``; ``pad_retry`` is not used);
    else one is made with ``settings`` (its keyword arguments), and closed by :meth:`close`.
    ``palm_every``: with some but fewer than ``max_num_hands`` hands followed, the palm detector runs on
    every ``palm_every``-th frame only (1, the default: on every such frame, as MediaPipe). Frames are
    what :func:`emolib.hands.to_rgb` reads (an RGB ``uint8`` array, a PIL image, a path).

    After each call: ``palm_detected`` says whether the palm detector ran on that frame;
    ``palm_detections`` counts its runs, ``frames`` the frames; ``followed`` holds the next frame's hand
    regions (:class:`~emolib.hands.palm.NormRect`, relative to the frame), each with the palm its hand was
    first found from (``regions``: the regions alone). :meth:`reset` forgets the hands (a cut, another
    video): the next frame runs the palm detector.

    Following is sensitive to the last bits: each region comes from the last frame's landmarks, so the
    small differences between two runtimes' kernels (static mode against MediaPipe's TFLite: a median of
    0.003 px) grow from frame to frame, to a median of 0.17-0.25 px and pixels on some frames in video mode
    (``results/benchmarks/hands_vs_mediapipe_video.json``; ``tests/test_live_page.py``).
    """

    def __init__(self, detector: HandDetector | None = None, palm_every: int = 1, **settings: Any) -> None:
        if detector is not None and settings:
            raise TypeError("give a detector or detector settings, not both")
        if int(palm_every) != palm_every or palm_every < 1:
            raise ValueError(f"palm_every must be a whole number of frames, at least 1, got {palm_every!r}")
        self.palm_every = int(palm_every)
        self._own = detector is None
        self.detector = HandDetector(**settings) if detector is None else detector
        self.frames = 0
        self.palm_detections = 0
        self.reset()

    def reset(self) -> None:
        """Forget the followed hands: the next frame is searched with the palm detector."""
        self.followed: list[tuple[NormRect, PalmDetection]] = []
        self.since_palm = 0  # frames read since the palm detector last ran
        self.palm_detected = False
        self._size: tuple[int, int] | None = None

    @property
    def regions(self) -> list[NormRect]:
        return [rect for rect, _ in self.followed]

    def close(self) -> None:
        if self._own:
            self.detector.close()

    def __enter__(self) -> "HandTracker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HandTracker({self.detector!r}, following {len(self.followed)} hand(s))"

    def __call__(self, frame: Any) -> list[Hand]:
        return self.track(frame)

    def track(self, frame: Any) -> list[Hand]:
        """The hands of the next frame (an empty list when there is none), left to right."""
        rgb = to_rgb(frame)
        height, width = rgb.shape[:2]
        if self._size != (width, height):
            self.reset()
            self._size = (width, height)
        self.frames += 1
        followed = self.followed
        self.palm_detected = len(followed) < self.detector.max_num_hands and (
            not followed or self.since_palm >= self.palm_every - 1)
        palms = self.detector.palm_regions(rgb) if self.palm_detected else []
        self.palm_detections += self.palm_detected
        self.since_palm = 0 if self.palm_detected else self.since_palm + 1
        hands, self.followed = follow(self.detector, rgb, associate(palms + followed))
        return sorted(hands, key=lambda h: (h.box[0] + h.box[2]) / 2)


def follow(detector: HandDetector, rgb: np.ndarray, regions: Sequence[tuple[NormRect, PalmDetection]]
           ) -> tuple[list[Hand], list[tuple[NormRect, PalmDetection]]]:
    """The landmark network in each ``(region, palm)``: the hands found (in the order of ``regions``), and
    for each the next frame's region from its landmarks, with its palm."""
    height, width = rgb.shape[:2]
    hands, following = [], []
    for rect, palm in regions:
        hand = detector.read_region(rgb, rect, palm.score)
        if hand is None:  # lost: its region goes with it
            continue
        hands.append(hand)
        following.append((hand_region_from_landmarks(hand.landmarks, width, height), palm))
    return hands, following
