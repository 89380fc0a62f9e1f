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


def _lu_solve(a: list[list[float]], b: list[float]) -> list[float]:
    """OpenCV's ``hal::LU64f`` (Gaussian elimination, partial pivoting) in the same operation order."""
    m = len(a)
    for i in range(m):
        k = max(range(i, m), key=lambda j: (abs(a[j][i]), -j))
        if abs(a[k][i]) < np.finfo(np.float64).eps * 10:
            raise ValueError("degenerate region: its corners do not span a rectangle")
        if k != i:
            a[i], a[k] = a[k], a[i]
            b[i], b[k] = b[k], b[i]
        d = -1.0 / a[i][i]
        for j in range(i + 1, m):
            alpha = a[j][i] * d
            for c in range(i + 1, m):
                a[j][c] += alpha * a[i][c]
            b[j] += alpha * b[i]
    for i in range(m - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, m):
            s -= a[i][k] * b[k]
        b[i] = s / a[i][i]
    return b


def _invert3(m: list[float]) -> list[float]:
    """``cv::invert`` of a 3 x 3 double matrix with ``DECOMP_LU`` (OpenCV's closed form)."""
    S = lambda r, c: m[3 * r + c]  # noqa: E731
    det = (S(0, 0) * (S(1, 1) * S(2, 2) - S(1, 2) * S(2, 1)) - S(0, 1) * (S(1, 0) * S(2, 2) - S(1, 2) * S(2, 0))
           + S(0, 2) * (S(1, 0) * S(2, 1) - S(1, 1) * S(2, 0)))
    if det == 0:
        raise ValueError("degenerate region: its transform cannot be inverted")
    d = 1.0 / det
    return [(S(1, 1) * S(2, 2) - S(1, 2) * S(2, 1)) * d, (S(0, 2) * S(2, 1) - S(0, 1) * S(2, 2)) * d,
            (S(0, 1) * S(1, 2) - S(0, 2) * S(1, 1)) * d, (S(1, 2) * S(2, 0) - S(1, 0) * S(2, 2)) * d,
            (S(0, 0) * S(2, 2) - S(0, 2) * S(2, 0)) * d, (S(0, 2) * S(1, 0) - S(0, 0) * S(1, 2)) * d,
            (S(1, 0) * S(2, 1) - S(1, 1) * S(2, 0)) * d, (S(0, 1) * S(2, 0) - S(0, 0) * S(2, 1)) * d,
            (S(0, 0) * S(1, 1) - S(0, 1) * S(1, 0)) * d]


def sample_points(roi: RotatedRect, out_w: int, out_h: int) -> tuple[np.ndarray, np.ndarray]:
    """Source coordinates of every output pixel in 1/32 pixel (``(out_h, out_w)`` int64 each).

    Computed as OpenCV computes them, so that even positions exactly between two 1/32 steps
    round the same way: the rectangle's corners by ``cv::RotatedRect::points`` (float32),
    ``cv::getPerspectiveTransform`` to the output's corners (``(0, out_h)``, ``(0, 0)``,
    ``(out_w, 0)``, ``(out_w, out_h)``; an 8 x 8 LU solve), ``cv::invert``, then per pixel
    ``warpPerspective``'s ``(X0 + M[0] x1) * (32 / W)`` in blocks of 64 columns, rounded half to
    even. Coordinates are OpenCV's: integer at pixel centres.
    """
    f = np.float32
    angle = f(np.float64(f(roi.rotation) * f(180.0)) / np.pi)  # MediaPipe: rotation * 180.f / M_PI, as a float
    b = f(np.cos(np.float64(angle) * np.pi / 180.0)) * f(0.5)
    a = f(np.sin(np.float64(angle) * np.pi / 180.0)) * f(0.5)
    cx, cy, w, h = f(roi.cx), f(roi.cy), f(roi.width), f(roi.height)
    p0 = (cx - a * h - b * w, cy + b * h - a * w)
    p1 = (cx + a * h - b * w, cy - b * h - a * w)
    src = [p0, p1, (f(2) * cx - p0[0], f(2) * cy - p0[1]), (f(2) * cx - p1[0], f(2) * cy - p1[1])]
    dst = [(0.0, float(out_h)), (0.0, 0.0), (float(out_w), 0.0), (float(out_w), float(out_h))]
    A = [[0.0] * 8 for _ in range(8)]
    B = [0.0] * 8
    for i, ((sx, sy), (dx, dy)) in enumerate(zip(src, dst)):
        sx, sy = float(sx), float(sy)
        A[i][0] = A[i + 4][3] = sx
        A[i][1] = A[i + 4][4] = sy
        A[i][2] = A[i + 4][5] = 1.0
        A[i][6], A[i][7] = -sx * dx, -sy * dx
        A[i + 4][6], A[i + 4][7] = -sx * dy, -sy * dy
        B[i], B[i + 4] = dx, dy
    M = _invert3(_lu_solve(A, B) + [1.0])
    xs = np.arange(out_w, dtype=np.float64)
    xb, x1 = xs - xs % 64, xs % 64  # warpPerspective's blocks: 64 columns (BLOCK_SZ^2 / (BLOCK_SZ / 2))
    ys = np.arange(out_h, dtype=np.float64)[:, None]
    X0 = M[0] * xb + M[1] * ys + M[2]
    Y0 = M[3] * xb + M[4] * ys + M[5]
    W0 = M[6] * xb + M[7] * ys + M[8]
    W = W0 + M[6] * x1
    W = np.divide(32.0, W, out=np.zeros_like(W), where=W != 0)
    X = np.clip((X0 + M[0] * x1) * W, np.iinfo(np.int32).min, np.iinfo(np.int32).max)
    Y = np.clip((Y0 + M[3] * x1) * W, np.iinfo(np.int32).min, np.iinfo(np.int32).max)
    return np.rint(X).astype(np.int64), np.rint(Y).astype(np.int64)


def warp(image: np.ndarray, roi: RotatedRect, out_w: int, out_h: int, border: str = "replicate") -> np.ndarray:
    """The ``(out_h, out_w, 3)`` ``uint8`` picture of ``roi`` (bilinear, as ``cv::warpPerspective``)."""
    if border not in ("replicate", "zero"):
        raise ValueError(f"border must be 'replicate' or 'zero', got {border!r}")
    h, w = image.shape[:2]
    # OpenCV rounds the source position to 1/32 pixel (INTER_TAB_SIZE) and interpolates with integer
    # weights (32 - f) * (32 - g) etc., rounding the sum half up (remapBilinear, FixedPtCast): exact here.
    Xq, Yq = (v.ravel() for v in sample_points(roi, out_w, out_h))
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
