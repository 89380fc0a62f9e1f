"""MediaPipe's ``ImageToTensorCalculator`` in numpy: a rotated rectangle of an image as a network input.

MediaPipe (``mediapipe/calculators/tensor/image_to_tensor_calculator.cc``, CPU converter
``image_to_tensor_converter_opencv.cc``) maps the rectangle's corners to the output's corners
with ``cv::getPerspectiveTransform`` and samples the ``uint8`` image with
``cv::warpPerspective`` (bilinear, ``INTER_LINEAR``), then scales the ``uint8`` result to
``[0, 1]``. With ``keep_aspect_ratio`` the rectangle is first grown to the output's aspect
ratio (``PadRoi`` in ``image_to_tensor_utils.cc``) and the growth is returned as letterbox
padding. The same here, without OpenCV: the sample points are computed as OpenCV computes
them, rounded to 1/32 pixel (its ``INTER_TAB_SIZE``) and interpolated with its integer
weights, so the ``uint8`` result is OpenCV's to the bit (checked against
``cv2.warpPerspective`` of opencv-contrib-python 4.11 while writing this); the border is
zeros (``BORDER_ZERO``, the palm detector's) or the nearest edge pixel
(``BORDER_REPLICATE``, MediaPipe's default, the landmark network's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RotatedRect:
    """A rectangle in pixels: centre, size, and rotation in radians (clockwise on screen, y down)."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float = 0.0


def pad_roi(roi: RotatedRect, out_w: int, out_h: int) -> tuple[RotatedRect, tuple[float, float, float, float]]:
    """``PadRoi`` with ``keep_aspect_ratio``: ``roi`` grown to ``out_h / out_w`` and the letterbox
    padding ``(left, top, right, bottom)`` as fractions of the output."""
    if roi.width <= 0 or roi.height <= 0:
        raise ValueError(f"region must have a positive size, got {roi.width} x {roi.height}")
    tensor_aspect = out_h / out_w
    roi_aspect = roi.height / roi.width
    if tensor_aspect > roi_aspect:
        new_w, new_h = roi.width, roi.width * tensor_aspect
        v, h = (1.0 - roi_aspect / tensor_aspect) / 2.0, 0.0
    else:
        new_w, new_h = roi.height / tensor_aspect, roi.height
        v, h = 0.0, (1.0 - tensor_aspect / roi_aspect) / 2.0
    return RotatedRect(roi.cx, roi.cy, new_w, new_h, roi.rotation), (h, v, h, v)


def sample_points(roi: RotatedRect, out_w: int, out_h: int) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates ``(X, Y)`` (each ``(out_h, out_w)``) of every output pixel.

    As OpenCV computes them: the rectangle's corners by ``cv::RotatedRect::points`` (float32),
    mapped to the output's corners (``(0, out_h)``, ``(0, 0)``, ``(out_w, 0)``, ``(out_w, out_h)``)
    by ``cv::getPerspectiveTransform``, inverted, and applied to each output pixel (in double).
    Coordinates are OpenCV's, integer at pixel centres.
    """
    f = np.float32
    angle = f(f(roi.rotation) * f(180.0) / f(np.pi))
    b = f(np.cos(np.float64(angle) * np.pi / 180.0)) * f(0.5)
    a = f(np.sin(np.float64(angle) * np.pi / 180.0)) * f(0.5)
    cx, cy, w, h = f(roi.cx), f(roi.cy), f(roi.width), f(roi.height)
    p0 = (cx - a * h - b * w, cy + b * h - a * w)
    p1 = (cx + a * h - b * w, cy - b * h - a * w)
    src = np.array([p0, p1, (f(2) * cx - p0[0], f(2) * cy - p0[1]), (f(2) * cx - p1[0], f(2) * cy - p1[1])],
                   dtype=np.float64)
    dst = np.array([(0, out_h), (0, 0), (out_w, 0), (out_w, out_h)], dtype=np.float64)
    # getPerspectiveTransform: dst -> src here directly (the inverse OpenCV computes before warping).
    A = np.zeros((8, 8))
    for i, ((x, y), (u, v)) in enumerate(zip(dst, src)):
        A[i] = (x, y, 1, 0, 0, 0, -x * u, -y * u)
        A[i + 4] = (0, 0, 0, x, y, 1, -x * v, -y * v)
    m = np.append(np.linalg.solve(A, np.concatenate([src[:, 0], src[:, 1]])), 1.0).reshape(3, 3)
    xs, ys = np.meshgrid(np.arange(out_w, dtype=np.float64), np.arange(out_h, dtype=np.float64))
    W = m[2, 0] * xs + m[2, 1] * ys + m[2, 2]
    return (m[0, 0] * xs + m[0, 1] * ys + m[0, 2]) / W, (m[1, 0] * xs + m[1, 1] * ys + m[1, 2]) / W


def warp(image: np.ndarray, roi: RotatedRect, out_w: int, out_h: int, border: str = "replicate") -> np.ndarray:
    """The ``(out_h, out_w, 3)`` ``uint8`` picture of ``roi`` (bilinear, as ``cv::warpPerspective``)."""
    if border not in ("replicate", "zero"):
        raise ValueError(f"border must be 'replicate' or 'zero', got {border!r}")
    h, w = image.shape[:2]
    X, Y = sample_points(roi, out_w, out_h)
    # OpenCV rounds the source position to 1/32 pixel (INTER_TAB_SIZE) and interpolates with integer
    # weights (32 - f) * (32 - g) etc., rounding the sum half up (remapBilinear, FixedPtCast): exact here.
    Xq, Yq = np.rint(X * 32).astype(np.int64).ravel(), np.rint(Y * 32).astype(np.int64).ravel()
    x0, y0 = Xq >> 5, Yq >> 5
    fx, fy = (Xq & 31).astype(np.int32), (Yq & 31).astype(np.int32)
    flat = image.reshape(h * w, -1)
    acc = np.zeros((out_h * out_w, flat.shape[1]), dtype=np.int32)
    for dy, wy in ((0, 32 - fy), (1, fy)):
        yi = y0 + dy
        row = np.clip(yi, 0, h - 1) * w
        for dx, wx in ((0, 32 - fx), (1, fx)):
            xi = x0 + dx
            weight = wx * wy
            if border == "zero":
                weight = weight * ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h))
            acc += weight[:, None] * flat.take(row + np.clip(xi, 0, w - 1), axis=0)
    return ((acc + 512) >> 10).astype(np.uint8).reshape(out_h, out_w, -1)


def image_to_tensor(image: np.ndarray, roi: RotatedRect, out_w: int, out_h: int,
                    border: str = "replicate") -> tuple[np.ndarray, tuple[float, float, float, float], RotatedRect]:
    """``ImageToTensorCalculator`` (``keep_aspect_ratio``, range ``[0, 1]``): the ``(1, out_h, out_w, 3)``
    float32 input, the letterbox padding and the padded region."""
    padded, padding = pad_roi(roi, out_w, out_h)
    pixels = warp(image, padded, out_w, out_h, border)
    return (pixels.astype(np.float32) * (1.0 / 255.0))[None], padding, padded
