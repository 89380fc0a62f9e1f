"""Faces: finding them (MTCNN), following them in a video (:class:`FaceTracker`), and cutting them out.

* **Detection.** MTCNN (Zhang et al. 2016) with facenet-pytorch's networks
  (``MTCNN(keep_all=True)``, made by :func:`make_mtcnn`); its three stages are run by
  :func:`mtcnn_detect`, a vectorised re-implementation of facenet's loop (several times
  faster on CPU; facenet's own ``MTCNN.detect`` with ``vectorized=False``).
  :func:`detect_faces` adds what a photo needs: downscaling to ``max_side`` for detection
  only, a ``min_score`` floor, boxes clipped and sorted left to right.
  :class:`DetectionOptions` groups these settings.
* **Tracking.** :class:`FaceTracker` runs MTCNN in full every few frames and only its last
  stage (:func:`onet_stage`, shared with :func:`mtcnn_detect`) in between.
* **Crops.** :func:`square_crop` cuts a square of ``(1 + margin)`` times the box's long
  side around it (border pixels repeated outside the image); :func:`enhance` raises the
  crop's contrast with :func:`clahe` or global equalisation. :class:`CropOptions`
  groups these settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = ["DetectionOptions", "CropOptions", "FaceTracker", "make_mtcnn", "detect_faces", "mtcnn_detect",
           "onet_stage", "mtcnn_crops", "as_float_array", "square_crop", "clahe", "enhance"]


@dataclass(frozen=True)
class DetectionOptions:
    """How faces are found (see :class:`emolib.pipeline.EmotionPipeline` for each one's meaning).

    ``min_face_size``: smallest face in detector pixels (the main speed knob); ``max_side``:
    longer images are downscaled for detection (``None``: never); ``thresholds`` and
    ``factor``: MTCNN's stage thresholds and pyramid factor; ``min_score``: detections below
    it are dropped; ``vectorized``: :func:`mtcnn_detect` instead of facenet's loop;
    ``crop_sampling``: ``roi_align``'s sampling ratio for the 2nd/3rd-stage patches.
    """

    min_face_size: int = 32
    max_side: int | None = 1280
    thresholds: tuple[float, float, float] = (0.7, 0.8, 0.9)
    factor: float = 0.709
    min_score: float = 0.95
    vectorized: bool = True
    crop_sampling: int = 2

    def __post_init__(self) -> None:
        if self.max_side is not None and self.max_side < 32:
            raise ValueError(f"max_side must be at least 32 pixels, got {self.max_side}")
        if len(tuple(self.thresholds)) != 3:
            raise ValueError(f"thresholds must be three numbers (one per MTCNN stage), got {self.thresholds!r}")
        object.__setattr__(self, "thresholds", tuple(float(v) for v in self.thresholds))


@dataclass(frozen=True)
class CropOptions:
    """How each face is cut out and its contrast raised before the emotion model sees it.

    ``margin``: fraction of the box's long side added around it; ``contrast``: ``"clahe"``,
    ``"equalize"`` or ``None``; ``clahe_clip``, ``clahe_grid``: CLAHE's clip limit and tile
    grid (OpenCV's meaning) on a crop of ``clahe_size`` pixels (or the model's size when larger).
    """

    margin: float = 0.2
    contrast: str | None = "clahe"
    clahe_clip: float = 2.0
    clahe_grid: int = 8
    clahe_size: int = 128

    def __post_init__(self) -> None:
        if self.contrast not in ("clahe", "equalize", None):
            raise ValueError(f"contrast must be 'clahe', 'equalize' or None, got {self.contrast!r}")
        if self.margin < 0:
            raise ValueError(f"margin must be >= 0, got {self.margin}")


def make_mtcnn(options: DetectionOptions, device: torch.device | str = "cpu") -> Any:
    """facenet-pytorch's ``MTCNN(keep_all=True)`` with ``options``' face size, thresholds and factor."""
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device=device, min_face_size=options.min_face_size,
                 thresholds=list(options.thresholds), factor=options.factor, post_process=False)


def _no_faces() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)


def _clip_and_sort(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, width: int, height: int,
                   keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes clipped to the image, empty ones (and those not in ``keep``) dropped, sorted left to right."""
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    ok = (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
    if keep is not None:
        ok &= keep
    boxes, scores, points = boxes[ok], scores[ok], points[ok]
    order = np.lexsort((boxes[:, 1], boxes[:, 0]))
    return boxes[order], scores[order], points[order]


def detect_faces(mtcnn: Any, image: Image.Image | np.ndarray,
                 options: DetectionOptions = DetectionOptions()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces in an RGB image: ``boxes (n, 4)``, ``scores (n,)``, ``landmarks (n, 5, 2)`` in its pixels.

    Images longer than ``options.max_side`` are downscaled for detection and the boxes
    mapped back; detections below ``options.min_score`` are dropped. Boxes are clipped to
    the image and sorted left to right (then top to bottom).
    """
    rgb = np.asarray(image)
    h, w = rgb.shape[:2]
    scale = 1.0
    det = rgb
    if options.max_side and max(h, w) > options.max_side:
        scale = options.max_side / max(h, w)
        small = (max(1, round(w * scale)), max(1, round(h * scale)))
        pil = image if isinstance(image, Image.Image) else Image.fromarray(rgb)
        det = np.asarray(pil.resize(small, Image.BILINEAR, reducing_gap=2.0))
        scale = small[0] / w
    with torch.inference_mode():
        if options.vectorized and all(hasattr(mtcnn, n) for n in ("pnet", "rnet", "onet")):
            boxes, probs, points = mtcnn_detect(mtcnn, det, options.crop_sampling)
        else:
            boxes, probs, points = mtcnn.detect(det, landmarks=True)
    boxes = as_float_array(boxes, (4,))
    probs = as_float_array(probs, ())
    points = as_float_array(points, (5, 2))
    if len(boxes) == 0 or len(probs) != len(boxes):
        return _no_faces()
    return _clip_and_sort(boxes / scale, probs, points / scale, w, h, keep=probs >= options.min_score)


# --------------------------------------------------------------------------- contrast

def clahe(gray: np.ndarray, clip_limit: float = 2.0, grid: int | tuple[int, int] = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (Zuiderveld 1994) of a ``uint8`` gray image.

    The same algorithm and parameter meaning as OpenCV's ``createCLAHE(clipLimit,
    tileGridSize)``, which the thesis used: the image is cut into ``grid`` x ``grid``
    tiles, each tile's histogram is clipped at ``clip_limit`` times its mean bin count
    (the excess spread evenly over all bins), its cumulative histogram becomes the
    tile's grey-level mapping, and each pixel's value is interpolated bilinearly
    between the mappings of the four nearest tile centres.

    Written here in numpy (about 30 lines, vectorised over tiles and pixels) because the
    main install has no OpenCV (``cv2.createCLAHE``) and no scikit-image
    (``skimage.exposure.equalize_adapthist``), and neither is worth its size for this one
    function: a 128x128 face takes well under a millisecond.
    """
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"clahe wants a 2-D uint8 image, got {gray.shape} {gray.dtype}")
    gy, gx = (grid, grid) if isinstance(grid, int) else grid
    h, w = gray.shape
    th, tw = -(-h // gy), -(-w // gx)  # tile size, rounding up
    padded = np.pad(gray, ((0, th * gy - h), (0, tw * gx - w)), mode="symmetric")
    tiles = padded.reshape(gy, th, gx, tw).transpose(0, 2, 1, 3).reshape(gy * gx, th * tw)
    n, area = gy * gx, th * tw
    offsets = (np.arange(n, dtype=np.int64) * 256)[:, None]
    hist = np.bincount((tiles + offsets).ravel(), minlength=256 * n).reshape(n, 256).astype(np.float64)
    limit = max(clip_limit * area / 256.0, 1.0)
    excess = np.clip(hist - limit, 0, None).sum(1, keepdims=True)
    hist = np.minimum(hist, limit) + excess / 256.0
    lut = np.clip(hist.cumsum(1) * (255.0 / area), 0, 255).reshape(gy, gx, 256)

    def axis(size: int, tile: int, count: int):
        pos = (np.arange(size) + 0.5) / tile - 0.5  # position in tile-centre units
        lo = np.clip(np.floor(pos), 0, count - 1).astype(np.intp)
        hi = np.minimum(lo + 1, count - 1)
        frac = np.clip(pos - lo, 0, 1)
        return lo, hi, frac

    y0, y1, wy = axis(h, th, gy)
    x0, x1, wx = axis(w, tw, gx)
    v = gray.astype(np.intp)
    top = lut[y0[:, None], x0[None, :], v] * (1 - wx) + lut[y0[:, None], x1[None, :], v] * wx
    bottom = lut[y1[:, None], x0[None, :], v] * (1 - wx) + lut[y1[:, None], x1[None, :], v] * wx
    out = top * (1 - wy[:, None]) + bottom * wy[:, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def enhance(crop: Image.Image, contrast: str | None, clip_limit: float = 2.0, grid: int = 8) -> Image.Image:
    """``crop`` with its contrast raised: ``"clahe"`` (:func:`clahe`), ``"equalize"`` (global
    histogram equalisation) or ``None`` (unchanged). RGB crops get it on their luma only."""
    if contrast is None:
        return crop
    if crop.mode == "L":
        if contrast == "equalize":
            return ImageOps.equalize(crop)
        return Image.fromarray(clahe(np.asarray(crop), clip_limit, grid))
    ycc = crop.convert("YCbCr")  # equalise the luma only, keep the colours
    y, cb, cr = ycc.split()
    y = ImageOps.equalize(y) if contrast == "equalize" else Image.fromarray(clahe(np.asarray(y), clip_limit, grid))
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")



def square_crop(arr: np.ndarray, box: Sequence[float], margin: float) -> np.ndarray:
    """A square around ``box`` of side ``(1 + margin) * long side``; outside pixels repeat the border."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 1)
    h, w = arr.shape[:2]
    l0, t0, r0, b0 = max(left, 0), max(top, 0), min(left + s, w), min(top + s, h)
    if r0 <= l0 or b0 <= t0:  # wholly outside the image (not for a clipped box): the nearest border, repeated
        rows, cols = np.clip(np.arange(top, top + s), 0, h - 1), np.clip(np.arange(left, left + s), 0, w - 1)
        return arr[np.ix_(rows, cols)]
    part = arr[t0:b0, l0:r0]
    pad = ((t0 - top, top + s - b0), (l0 - left, left + s - r0)) + ((0, 0),) * (arr.ndim - 2)
    if any(p for pair in pad for p in pair):
        part = np.pad(part, pad, mode="edge")
    return part


def mtcnn_crops(img: torch.Tensor, boxes: torch.Tensor, size: int, sampling: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate patches of MTCNN's 2nd/3rd stage, all in one ``roi_align`` call.

    Same region as facenet-pytorch (box truncated to integers and clipped to the image,
    the patch stretched to ``size``), but resampled in one vectorised call instead of
    one ``interpolate`` per candidate, which is most of facenet's time on busy photos.
    Returns the patches and the mask of the boxes that had a non-empty patch.
    """
    from torchvision.ops import roi_align

    h, w = img.shape[-2:]
    b = boxes[:, :4].trunc()
    x1, y1 = b[:, 0].clamp(min=1) - 1, b[:, 1].clamp(min=1) - 1
    x2, y2 = b[:, 2].clamp(max=w), b[:, 3].clamp(max=h)
    valid = (x2 > x1) & (y2 > y1)
    rois = torch.stack([torch.zeros_like(x1), x1, y1, x2, y2], 1)[valid]
    patches = roi_align(img, rois, (size, size), spatial_scale=1.0, sampling_ratio=sampling, aligned=True)
    patches = ((patches - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)
    return patches, valid



def onet_stage(det: Any, img: torch.Tensor, boxes: torch.Tensor, threshold: float,
               sampling: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """MTCNN's last stage on candidate boxes: O-Net on their 48x48 patches.

    ``img`` is the ``(1, 3, H, W)`` float image, ``boxes`` ``(n, >=4)`` candidates. Keeps the
    candidates O-Net scores above ``threshold`` and returns their regressed boxes with the
    score, ``(m, 5)``, and their five landmarks ``(m, 5, 2)``, before any NMS (the caller
    chooses it). Used by :func:`mtcnn_detect` and by :class:`FaceTracker`.
    """
    from facenet_pytorch.models.utils.detect_face import bbreg

    patches, valid = mtcnn_crops(img, boxes, 48, sampling)
    boxes = boxes[valid]
    if not len(boxes):
        return boxes.new_zeros((0, 5)), boxes.new_zeros((0, 5, 2))
    reg, pts, prob = det.onet(patches.to(next(det.onet.parameters()).dtype))
    keep = prob[:, 1] > threshold
    boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], 1)
    reg, pts = reg[keep], pts[keep]
    if not len(boxes):
        return boxes.new_zeros((0, 5)), boxes.new_zeros((0, 5, 2))
    bw, bh = boxes[:, 2:3] - boxes[:, 0:1] + 1, boxes[:, 3:4] - boxes[:, 1:2] + 1
    points = torch.stack([bw * pts[:, :5] + boxes[:, 0:1] - 1, bh * pts[:, 5:] + boxes[:, 1:2] - 1], 2)
    return bbreg(boxes, reg), points



def mtcnn_detect(det: Any, rgb: np.ndarray, sampling: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MTCNN's three stages with facenet-pytorch's networks and thresholds, vectorised.

    Follows ``facenet_pytorch.models.utils.detect_face`` step by step (pyramid, P-Net,
    NMS, R-Net, NMS, O-Net, landmarks, "Min" NMS) for one image, except that the R-Net
    and O-Net patches are cut with :func:`mtcnn_crops`. Returns float32 ``boxes (n, 4)``,
    ``scores (n,)``, ``landmarks (n, 5, 2)``; never facenet's ``None``/object arrays.
    """
    from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, bbreg, generateBoundingBox, rerec
    from torchvision.ops import nms

    empty = (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
    dtype = next(det.pnet.parameters()).dtype
    if not (rgb.flags.writeable and rgb.flags.c_contiguous):
        rgb = np.array(rgb)  # torch.from_numpy wants a writable, contiguous array
    img = torch.from_numpy(rgb).to(det.device).permute(2, 0, 1).unsqueeze(0).to(dtype)
    h, w = rgb.shape[:2]
    th = det.thresholds
    scale = 12.0 / det.min_face_size
    minl = min(h, w) * scale
    found = []
    prev = Image.fromarray(rgb)
    while minl >= 12:
        # The pyramid: PIL's BOX filter is the area average of facenet's interpolate(mode="area"),
        # on uint8, and each level is made from the previous one instead of the full image;
        # resampling was the largest single cost of facenet's implementation.
        prev = prev.resize((int(w * scale + 1), int(h * scale + 1)), Image.BOX)
        im = torch.from_numpy(np.array(prev)).to(det.device).permute(2, 0, 1).unsqueeze(0).to(dtype)
        reg, probs = det.pnet((im - 127.5) * 0.0078125)
        bb, _ = generateBoundingBox(reg, probs[:, 1], scale, th[0])
        if len(bb):
            found.append(bb[nms(bb[:, :4], bb[:, 4], 0.5)])
        scale *= det.factor
        minl *= det.factor
    if not found:
        return empty
    boxes = torch.cat(found)
    boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                         boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh, boxes[:, 4]], 1)
    boxes = rerec(boxes)

    # R-Net
    patches, valid = mtcnn_crops(img, boxes, 24, sampling)
    boxes = boxes[valid]
    if not len(boxes):
        return empty
    reg, prob = det.rnet(patches)
    keep = prob[:, 1] > th[1]
    boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], 1)
    reg = reg[keep]
    pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
    boxes = rerec(bbreg(boxes[pick], reg[pick]))

    boxes, points = onet_stage(det, img, boxes, th[2], sampling)
    if not len(boxes):
        return empty
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], torch.zeros(len(boxes), device=boxes.device), 0.7, "Min")
    boxes, points = boxes[pick].float().cpu().numpy(), points[pick].float().cpu().numpy()
    return boxes[:, :4].copy(), boxes[:, 4].copy(), points



def as_float_array(value: Any, shape_tail: tuple[int, ...]) -> np.ndarray:
    """facenet-pytorch 2.5.3 under numpy 2 returns ``None``, ``[None]`` or ``object`` arrays: make them floats."""
    if value is None:
        return np.zeros((0, *shape_tail), np.float32)
    arr = np.asarray(value, dtype=object)
    if arr.size == 0 or any(v is None for v in arr.ravel()):
        return np.zeros((0, *shape_tail), np.float32)
    return arr.astype(np.float32).reshape(-1, *shape_tail)




# --------------------------------------------------------------------------- tracking


class FaceTracker:
    """Faces of a video stream: MTCNN in full every ``detect_every`` frames, O-Net alone in between.

    A face moves little from one camera frame to the next, so between two full
    detections the boxes of the previous frame go straight to MTCNN's last stage
    (:func:`onet_stage` on a 48x48 patch of each box, grown by ``grow`` on every side),
    which confirms each face, corrects its box and places its landmarks: one small network
    per face instead of the image pyramid and three stages (about a seventh of the time on
    a 640x480 frame). When O-Net no longer confirms one of the faces (probability below
    ``keep_score``), and on every ``detect_every``-th frame, the full detector runs
    instead, so new faces appear within ``detect_every`` frames. ``pipeline`` is an
    :class:`emolib.pipeline.EmotionPipeline`; the tracker returns the same
    :class:`~emolib.pipeline.PipelineResult` as the pipeline (built by its
    :meth:`~emolib.pipeline.EmotionPipeline.read_faces`).

    Between full detections the tracker needs only the pixels around the faces.
    :meth:`next_region` says which part of the next frame it needs (a rectangle around
    all faces, each face's box grown by ``region_grow`` times its long side on every
    side, which leaves room for the face to move and for the pipeline's crop margin), or
    ``None`` when it needs the whole frame. A caller that sends frames somewhere (the
    webcam widget) sends only that region, and passes its position to ``__call__``
    as ``offset`` with the whole frame's ``frame_size``; the result is in frame pixels.
    """

    def __init__(self, pipeline: Any, detect_every: int = 5, grow: float = 0.05,
                 keep_score: float = 0.9, region_grow: float = 0.5, max_region: float = 0.6) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        margin = pipeline.crop.margin
        if region_grow < margin / 2:
            raise ValueError(f"region_grow must leave room for the crop margin: >= {margin / 2}, got {region_grow}")
        self.pipeline, self.detect_every, self.grow, self.keep_score = pipeline, int(detect_every), grow, keep_score
        self.region_grow, self.max_region = float(region_grow), float(max_region)
        self.usable = all(hasattr(pipeline.detector, n) for n in ("onet", "device"))
        self.boxes = None
        self.since_full = 0
        self.full_detections = 0
        self.need_full = False

    def reset(self) -> None:
        self.boxes, self.since_full, self.need_full = None, 0, False

    def _full_due(self) -> bool:
        return (not self.usable or self.boxes is None or not len(self.boxes) or self.need_full
                or self.since_full >= self.detect_every - 1)

    def next_region(self, frame_size: tuple[int, int]) -> list[int] | None:
        """``[x, y, width, height]`` of the next frame that the tracker needs, or ``None`` for all of it.

        ``None`` when a full detection is due, when there is no face to follow, and when
        the region would cover more than ``max_region`` of the frame (no saving then).
        """
        if self._full_due():
            return None
        W, H = frame_size
        b = np.asarray(self.boxes, np.float64)
        side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        half = side * (0.5 + self.region_grow)
        x1 = int(max(0, np.floor((cx - half).min())))
        y1 = int(max(0, np.floor((cy - half).min())))
        x2 = int(min(W, np.ceil((cx + half).max())))
        y2 = int(min(H, np.ceil((cy + half).max())))
        if x2 - x1 < 2 or y2 - y1 < 2 or (x2 - x1) * (y2 - y1) > self.max_region * W * H:
            return None
        return [x1, y1, x2 - x1, y2 - y1]

    def _refine(self, img: Image.Image, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from facenet_pytorch.models.utils.detect_face import rerec
        from torchvision.ops import nms

        det = self.pipeline.detector
        rgb = torch.from_numpy(np.array(img)).to(det.device).permute(2, 0, 1).unsqueeze(0).float()
        b = torch.as_tensor(np.asarray(boxes), dtype=torch.float32, device=det.device)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        g = self.grow
        b = rerec(torch.stack([b[:, 0] - g * w, b[:, 1] - g * h, b[:, 2] + g * w, b[:, 3] + g * h,
                               torch.ones_like(w)], 1))
        with torch.inference_mode():
            b, points = onet_stage(det, rgb, b, self.keep_score, self.pipeline.detection.crop_sampling)
        if not len(b):
            return _no_faces()
        pick = nms(b[:, :4], b[:, 4], 0.5)
        b, points = b[pick].float().cpu().numpy(), points[pick].float().cpu().numpy()
        return _clip_and_sort(b[:, :4].copy(), b[:, 4].copy(), points, img.width, img.height)

    def __call__(self, img: Image.Image, offset: tuple[int, int] = (0, 0),
                 frame_size: tuple[int, int] | None = None) -> Any:
        """The faces of one frame, or of the region of it at ``offset`` (see :meth:`next_region`)."""
        pipe = self.pipeline
        ox, oy = int(offset[0]), int(offset[1])
        frame_size = tuple(frame_size) if frame_size is not None else (img.width + ox, img.height + oy)
        whole = (ox, oy) == (0, 0) and tuple(img.size) == frame_size
        shift = np.array([ox, oy, ox, oy], np.float32)
        tracked = None
        if self.usable and self.boxes is not None and len(self.boxes) and (not whole or not self._full_due()):
            tracked = self._refine(img, np.asarray(self.boxes, np.float32) - shift)
            if len(tracked[0]) < len(self.boxes):  # a face was lost (turned away, or left): look again
                tracked = None
        if tracked is None:
            boxes, scores, points = pipe.detect(img)
            if whole:
                self.since_full, self.need_full = 0, False
                self.full_detections += 1
            else:  # a region is all there is to look in now: ask for the whole next frame
                self.need_full = True
        else:
            boxes, scores, points = tracked
            self.since_full += 1
        self.boxes = boxes + shift
        return pipe.read_faces(img, boxes, scores, points, offset=(ox, oy), image_size=frame_size)
