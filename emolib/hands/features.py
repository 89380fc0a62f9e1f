"""Hand landmarks as classifier features: MediaPipe's 21 points made independent of position, size,
hand side and rotation (numpy only; no model needed)."""

from __future__ import annotations

import numpy as np

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
#: The palm's landmarks (wrist and the five knuckles' bases).
PALM = (0, 1, 5, 9, 13, 17)

#: Bones between landmarks (for drawing), as MediaPipe's ``HAND_CONNECTIONS``.
HAND_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11), (11, 12),
    (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20),
)


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
    return np.array([v == "left" for v in values], dtype=bool)  # bool also when there is no hand


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
