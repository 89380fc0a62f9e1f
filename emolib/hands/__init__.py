"""Hands: find them in a photo with MediaPipe Hands' networks, and turn their 21 landmarks into features.

::

    from emolib.hands import HandDetector

    with HandDetector(max_num_hands=2) as detect:
        for hand in detect("photo.jpg"):
            print(hand.box, hand.handedness, hand.score, hand.truncated, hand.landmarks.shape)  # (21, 3)

MediaPipe Hands (Zhang et al. 2020) runs in two stages: a palm detector finds palms in
the whole image, then a landmark network places 21 points on each hand (the wrist, and
four points along each finger) and says whether it is a left or a right hand.

**Installation.** The networks are MediaPipe 0.10.21's, converted once to ONNX
(``tools/convert_mediapipe_hands.py``; Apache-2.0, see ``emolib/assets/hands/NOTICE``) and
shipped inside emolib; the graph around them (letterboxing, SSD anchors, weighted
non-maximum suppression, the rotated hand region, projection back to the image) is numpy,
following MediaPipe's graph configs (:mod:`emolib.hands.palm`, :mod:`emolib.hands.landmark`,
:mod:`emolib.hands.warp`). Running them needs only ``onnxruntime``: the optional extra
``pip install "emolib[hands]"``; mediapipe itself is not used (its last release with these
models, 0.10.21, needs ``numpy<2``). Without onnxruntime, everything that detects hands
raises :class:`HandsUnavailableError` naming that command; the landmark functions
(:func:`normalize_landmarks`, :func:`landmark_features`) need only numpy.

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
  or right hand). MediaPipe's landmark network labels hands assuming a *mirrored* (selfie)
  image; for ordinary photos its "Left" is the person's right hand. :class:`HandDetector`
  swaps the labels unless ``mirrored=True`` (for webcam frames shown as a mirror), as
  emolib's earlier mediapipe-based detector did.
* ``score`` is the palm detector's confidence for the palm this hand was found from;
  ``handedness_score`` is the landmark network's confidence in the left/right label.
* No hand: an empty list. Two hands: two :class:`Hand` objects, each with its own
  handedness, ordered from left to right in the image.

**Video.** :class:`HandTracker` is MediaPipe's video mode (``static_image_mode=False``): each
frame's hands are looked for where the last frame's landmarks were, and the palm detector runs
only while fewer than ``max_num_hands`` hands are followed (:mod:`emolib.hands.tracker`).

**Landmark features.** :func:`normalize_landmarks` makes the 21 points independent of
where the hand is (the wrist is moved to the origin), how big it is (divided by the
wrist to middle-finger-knuckle distance), which hand it is (left hands are mirrored to
right hands, so one classifier serves both) and, optionally, of its in-plane rotation
(the wrist to middle-knuckle direction is turned to point up).
"""

from .detector import (DEFAULT_DETECTOR, Hand, HandDetector, draw_hands, extract_landmarks, hand_box,
                       to_rgb)
from .features import (HAND_CONNECTIONS, LANDMARK_NAMES, MIDDLE_MCP, PALM, WRIST, landmark_features,
                       mirror_landmarks, normalize_landmarks)
from .tracker import HandTracker, hand_region_from_landmarks, landmarks_to_rect
from .runtime import (BACKEND, HANDS_INSTALL, MODEL_DIR, MODEL_FILES, HandModelError, HandsUnavailableError,
                      hands_available, require_onnxruntime)

__all__ = [
    "HANDS_INSTALL",
    "LANDMARK_NAMES",
    "HAND_CONNECTIONS",
    "DEFAULT_DETECTOR",
    "MODEL_DIR",
    "MODEL_FILES",
    "BACKEND",
    "HandsUnavailableError",
    "HandModelError",
    "Hand",
    "HandDetector",
    "HandTracker",
    "landmarks_to_rect",
    "hand_region_from_landmarks",
    "hands_available",
    "require_onnxruntime",
    "normalize_landmarks",
    "mirror_landmarks",
    "landmark_features",
    "extract_landmarks",
    "draw_hands",
    "hand_box",
    "to_rgb",
    "WRIST",
    "MIDDLE_MCP",
    "PALM",
]
