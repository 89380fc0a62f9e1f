"""MediaPipe's hand-landmark graph around the landmark network, in numpy.

Follows ``mediapipe/modules/hand_landmark/hand_landmark_cpu.pbtxt`` (mediapipe 0.10.21):

1. ``ImageToTensorCalculator``: the rotated hand region (from the palm, see
   :mod:`emolib.hands.palm`) cut out to 224 x 224 (``keep_aspect_ratio``, MediaPipe's default
   ``BORDER_REPLICATE``, values in ``[0, 1]``);
2. the landmark network: 21 x 3 landmarks in input pixels, the hand-presence score, the
   handedness score and 21 x 3 world landmarks (in that output order, as the
   ``SplitTensorVectorCalculator`` takes them);
3. ``ThresholdingCalculator``: a hand is there when presence > ``threshold`` (0.5);
4. ``TensorsToClassificationCalculator`` (``binary_classification``, labels ``handedness.txt``:
   Left, Right): the score is P(Left), the label the likelier one;
5. ``TensorsToLandmarksCalculator``: x, y divided by 224, z by 224 and by ``normalize_z`` 0.4;
6. ``LandmarkLetterboxRemovalCalculator`` and ``LandmarkProjectionCalculator``: rotated back
   by the region's rotation and scaled into the image.

MediaPipe's labels assume a mirrored (selfie) image: "Left" is the person's right hand in an
ordinary photo. This module returns MediaPipe's label; :class:`emolib.hands.HandDetector`
decides what it means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .palm import NormRect
from .warp import image_to_tensor

INPUT_SIZE = 224
NORMALIZE_Z = 0.4
LABELS = ("Left", "Right")


@dataclass
class LandmarkResult:
    """The landmark network on one hand region: ``landmarks`` ``(21, 3)`` in image pixels (z scaled
    like x by the image width, as MediaPipe's normalised z times the width)."""

    landmarks: np.ndarray
    presence: float
    label: str
    label_score: float


class LandmarkModel:
    """``model(rgb, region) -> LandmarkResult`` (or None when the hand-presence score is too low)."""

    def __init__(self, model, min_presence: float = 0.5) -> None:
        self.model = model
        self.min_presence = min_presence
        if tuple(model.input_shape[1:3]) != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"{model.path}: expected a {INPUT_SIZE}x{INPUT_SIZE} landmark network, "
                             f"got {model.input_shape}")
        if len(model.output_names) != 4:
            raise ValueError(f"{model.path}: expected 4 outputs (landmarks, presence, handedness, world), "
                             f"got {model.output_names}")

    def __call__(self, rgb: np.ndarray, rect: NormRect) -> LandmarkResult | None:
        height, width = rgb.shape[:2]
        tensor, padding, _ = image_to_tensor(rgb, rect.to_pixels(width, height), INPUT_SIZE, INPUT_SIZE,
                                             border="replicate")
        out = self.model(tensor)
        raw, presence, handed = (np.asarray(out[n], dtype=np.float64).reshape(-1) for n in self.model.output_names[:3])
        presence, p_left = float(presence[0]), float(handed[0])
        if not presence > self.min_presence:
            return None
        label, score = (LABELS[0], p_left) if p_left >= 1.0 - p_left else (LABELS[1], 1.0 - p_left)
        return LandmarkResult(project(raw.reshape(21, 3), padding, rect, width, height), presence, label, score)


def project(raw: np.ndarray, padding, rect: NormRect, width: int, height: int) -> np.ndarray:
    """Network landmarks (input pixels) to image pixels: ``TensorsToLandmarks``, letterbox removal
    and ``LandmarkProjectionCalculator``."""
    x, y = raw[:, 0] / INPUT_SIZE, raw[:, 1] / INPUT_SIZE
    z = raw[:, 2] / INPUT_SIZE / NORMALIZE_Z
    left, top, right, bottom = padding
    x, y = (x - left) / (1.0 - left - right), (y - top) / (1.0 - top - bottom)
    z = z / (1.0 - left - right)
    c, s = math.cos(rect.rotation), math.sin(rect.rotation)
    px, py = x - 0.5, y - 0.5
    nx = (c * px - s * py) * rect.width + rect.x_center
    ny = (s * px + c * py) * rect.height + rect.y_center
    nz = z * rect.width
    return np.stack([nx * width, ny * height, nz * width], 1).astype(np.float32)
