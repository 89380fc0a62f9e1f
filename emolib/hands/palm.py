"""MediaPipe's palm detection graph around the palm network, in numpy.

Follows ``mediapipe/modules/palm_detection/palm_detection_cpu.pbtxt`` (mediapipe 0.10.21) and
the calculators it names:

1. ``ImageToTensorCalculator``: the whole image, letterboxed to 192 x 192 (``keep_aspect_ratio``,
   ``BORDER_ZERO``, values in ``[0, 1]``), see :mod:`emolib.hands.warp`;
2. the palm network: 2016 boxes x 18 numbers (box centre and size, 7 keypoints) and 2016 scores;
3. ``SsdAnchorsCalculator`` (``ssd_anchors_calculator.cc``): 4 layers, strides 8, 16, 16, 16,
   ``fixed_anchor_size``, anchor offset 0.5, one aspect ratio plus the interpolated scale, so
   2 anchors per cell (24 x 24 x 2 + 12 x 12 x 6 = 2016);
4. ``TensorsToDetectionsCalculator`` (``tensors_to_detections_calculator.cc``):
   ``reverse_output_order`` (x, y, w, h), scales 192, scores clipped to +-100 then a sigmoid,
   kept when >= ``min_score_thresh`` (0.5), boxes of negative size dropped;
5. ``NonMaxSuppressionCalculator`` (``non_max_suppression_calculator.cc``), ``WEIGHTED``, IoU
   threshold 0.3: each group of overlapping boxes becomes the score-weighted mean of its boxes
   and keypoints, with the best one's score;
6. ``DetectionLetterboxRemovalCalculator``: back to coordinates relative to the image.

Then, from ``mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.pbtxt``:
``ClipDetectionVectorSizeCalculator`` (the ``num_hands`` best palms) and
``palm_detection_detection_to_roi.pbtxt`` (``DetectionsToRectsCalculator``: the rotation that
turns wrist (keypoint 0) to middle-finger knuckle (keypoint 2) upright;
``RectTransformationCalculator``: scale 2.6, shift -0.5 of the height along the hand, square
on the long side), and ``AssociationNormRectCalculator`` (``association_calculator.h``: of two
regions overlapping with IoU > 0.5, the later one is kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import box_iou

from .warp import RotatedRect, image_to_tensor

INPUT_SIZE = 192


@dataclass
class PalmDetection:
    """One palm: box ``[xmin, ymin, width, height]`` and 7 keypoints ``(7, 2)``, relative to the image."""

    box: np.ndarray
    keypoints: np.ndarray
    score: float


@dataclass
class NormRect:
    """MediaPipe's ``NormalizedRect``: centre and size relative to the image, rotation in radians."""

    x_center: float
    y_center: float
    width: float
    height: float
    rotation: float = 0.0

    def to_pixels(self, width: int, height: int) -> RotatedRect:
        return RotatedRect(self.x_center * width, self.y_center * height, self.width * width,
                           self.height * height, self.rotation)


def ssd_anchors(input_size: int = INPUT_SIZE, strides=(8, 16, 16, 16), per_layer: int = 2) -> np.ndarray:
    """``(N, 2)`` anchor centres ``(x, y)`` relative to the input (their size is 1: ``fixed_anchor_size``).

    Layers with the same stride are merged, their anchors interleaved per cell, as
    ``SsdAnchorsCalculator::GenerateAnchors`` does.
    """
    out, layer = [], 0
    while layer < len(strides):
        same = 0
        while layer + same < len(strides) and strides[layer + same] == strides[layer]:
            same += 1
        n = math.ceil(input_size / strides[layer])
        ys, xs = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], 1)
        out.append(np.repeat(centres, per_layer * same, axis=0))
        layer += same
    return np.concatenate(out).astype(np.float32)


def decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, anchors: np.ndarray, min_score: float,
           scale: float = INPUT_SIZE, clip: float = 100.0) -> list[PalmDetection]:
    """``TensorsToDetectionsCalculator``: the palms scoring at least ``min_score``, best first."""
    raw_boxes = raw_boxes.reshape(len(anchors), -1)
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores.reshape(-1).astype(np.float64), -clip, clip)))
    keep = np.flatnonzero(scores >= min_score)
    dets = []
    for i in keep:
        r, (ax, ay) = raw_boxes[i], anchors[i]
        xc, yc = r[0] / scale + ax, r[1] / scale + ay
        w, h = r[2] / scale, r[3] / scale
        if not (w >= 0 and h >= 0):  # negative or NaN size: dropped (b/171391719)
            continue
        kps = r[4:].reshape(-1, 2) / scale + (ax, ay)
        dets.append(PalmDetection(np.array([xc - w / 2, yc - h / 2, w, h], dtype=np.float64),
                                  kps.astype(np.float64), float(scores[i])))
    dets.sort(key=lambda d: -d.score)
    return dets


def iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every ``[xmin, ymin, width, height]`` box of ``a`` (n, 4) with every one of ``b`` (m, 4):
    :func:`torchvision.ops.box_iou` on the corners; 0 for boxes without area."""
    def corners(x: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(x, np.float64).reshape(-1, 4))
        return torch.cat([t[:, :2], t[:, :2] + t[:, 2:]], 1)

    return box_iou(corners(a), corners(b)).nan_to_num(0.0).numpy()


def weighted_nms(dets: list[PalmDetection], threshold: float = 0.3) -> list[PalmDetection]:
    """``NonMaxSuppressionCalculator`` with ``algorithm: WEIGHTED`` (``dets`` best first)."""
    if not dets:
        return []
    iou = iou_xywh(np.array([d.box for d in dets]), np.array([d.box for d in dets]))
    remaining, out = list(range(len(dets))), []
    while remaining:
        top = dets[remaining[0]]
        group = [dets[i] for i in remaining if iou[i, remaining[0]] > threshold]
        rest = [i for i in remaining if iou[i, remaining[0]] <= threshold]
        weights = np.array([d.score for d in group])
        total = weights.sum()
        corners = np.array([[d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3]] for d in group])
        x1, y1, x2, y2 = (weights[:, None] * corners).sum(0) / total
        kps = (weights[:, None, None] * np.array([d.keypoints for d in group])).sum(0) / total
        out.append(PalmDetection(np.array([x1, y1, x2 - x1, y2 - y1]), kps, top.score))
        if len(rest) == len(remaining):
            break
        remaining = rest
    return out


def remove_letterbox(det: PalmDetection, padding) -> PalmDetection:
    """``DetectionLetterboxRemovalCalculator``: from the letterboxed input's coordinates to the image's."""
    left, top, right, bottom = padding
    sx, sy = 1.0 - left - right, 1.0 - top - bottom
    box = np.array([(det.box[0] - left) / sx, (det.box[1] - top) / sy, det.box[2] / sx, det.box[3] / sy])
    kps = (det.keypoints - (left, top)) / (sx, sy)
    return PalmDetection(box, kps, det.score)


def normalize_radians(angle: float) -> float:
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def palm_to_rect(det: PalmDetection, width: int, height: int, scale: float = 2.6, shift_y: float = -0.5) -> NormRect:
    """``palm_detection_detection_to_roi.pbtxt``: the rotated, squared hand region of a palm."""
    xmin, ymin, w, h = det.box
    (x0, y0), (x1, y1) = det.keypoints[0] * (width, height), det.keypoints[2] * (width, height)
    rotation = normalize_radians(math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0))
    rect = NormRect(xmin + w / 2, ymin + h / 2, w, h, rotation)
    return transform_rect(rect, width, height, scale, scale, 0.0, shift_y)


def transform_rect(rect: NormRect, width: int, height: int, scale_x: float, scale_y: float,
                   shift_x: float, shift_y: float, square_long: bool = True) -> NormRect:
    """``RectTransformationCalculator`` for a normalised rectangle (shift along the rotated axes,
    then square on the long side in pixels, then scale)."""
    w, h, r = rect.width, rect.height, rect.rotation
    if r == 0.0:
        xc, yc = rect.x_center + w * shift_x, rect.y_center + h * shift_y
    else:
        xc = rect.x_center + (width * w * shift_x * math.cos(r) - height * h * shift_y * math.sin(r)) / width
        yc = rect.y_center + (width * w * shift_x * math.sin(r) + height * h * shift_y * math.cos(r)) / height
    if square_long:
        long_side = max(w * width, h * height)
        w, h = long_side / width, long_side / height
    return NormRect(xc, yc, w * scale_x, h * scale_y, r)


def _rect_box(r: NormRect) -> list[float]:
    """The axis-aligned ``[xmin, ymin, width, height]`` of a region (rotation ignored, as ``GetRectangle`` does)."""
    return [r.x_center - r.width / 2, r.y_center - r.height / 2, r.width, r.height]


def associate(items: list[tuple[NormRect, PalmDetection]], threshold: float = 0.5) -> list[tuple[NormRect, PalmDetection]]:
    """``AssociationNormRectCalculator`` on one stream: a region overlapping an earlier one (IoU >
    ``threshold``) replaces it, at the end of the list."""
    out: list[tuple[NormRect, PalmDetection]] = []
    for item in items:
        if out:
            iou = iou_xywh(np.array([_rect_box(item[0])]), np.array([_rect_box(o[0]) for o in out]))[0]
            out = [o for o, v in zip(out, iou) if v <= threshold]
        out.append(item)
    return out


class PalmDetector:
    """Palms in an RGB ``uint8`` image: ``detector(rgb, max_palms) -> [(hand region, palm), ...]``."""

    def __init__(self, model, min_score: float = 0.5) -> None:
        self.model = model
        self.min_score = min_score
        self.anchors = ssd_anchors()
        if tuple(model.input_shape[1:3]) != (INPUT_SIZE, INPUT_SIZE):
            raise ValueError(f"{model.path}: expected a {INPUT_SIZE}x{INPUT_SIZE} palm detector, got {model.input_shape}")

    def palms(self, rgb: np.ndarray) -> list[PalmDetection]:
        """Palm detections relative to the image, best first (after weighted NMS)."""
        height, width = rgb.shape[:2]
        tensor, padding, _ = image_to_tensor(rgb, RotatedRect(width / 2, height / 2, width, height),
                                             INPUT_SIZE, INPUT_SIZE, border="zero")
        out = self.model(tensor)
        # The box tensor has 18 numbers per anchor, the score tensor 1 (named by size, not by order).
        boxes, scores = sorted(out.values(), key=lambda a: -a.shape[-1])
        dets = weighted_nms(decode(boxes, scores, self.anchors, self.min_score))
        return [remove_letterbox(d, padding) for d in dets]

    def __call__(self, rgb: np.ndarray, max_palms: int) -> list[tuple[NormRect, PalmDetection]]:
        height, width = rgb.shape[:2]
        palms = self.palms(rgb)[:max_palms]
        return associate([(palm_to_rect(d, width, height), d) for d in palms])
