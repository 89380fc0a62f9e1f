"""The real-world pipeline: find the faces in a photo or video, read each one's emotion.

::

    from emolib.pipeline import EmotionPipeline, draw

    pipe = EmotionPipeline()                 # MTCNN + the shipped "baseline-fer2013"
    result = pipe("party.jpg")               # path, PIL image or numpy array
    for face in result.faces:
        print(face.box, face.emotion, face.probabilities["happy"])
    draw("party.jpg", result).save("party-annotated.jpg")

The steps, as in the thesis's real-world pipeline (its Figure 5.11):

1. **Load.** Any size and mode: gray, RGBA, palette and CMYK images are converted to
   RGB and the EXIF orientation is applied (:func:`PIL.ImageOps.exif_transpose`), so
   boxes are given in the orientation a photo viewer shows. 16-bit images are scaled
   to 8 bits (:func:`emolib.fileio.to_8bit`), not clipped; images over PIL's pixel limit
   are refused with one line (``EMOLIB_MAX_IMAGE_PIXELS`` raises it). Numpy arrays are
   taken as RGB ``uint8`` (``bgr=True`` for OpenCV frames).
2. **Detect.** MTCNN (Zhang et al. 2016) with facenet-pytorch's networks
   (``MTCNN(keep_all=True)``), its three stages run by a vectorised re-implementation
   of facenet's loop (:func:`_mtcnn_detect`, several times faster on CPU; the original
   with ``vectorized=False``). Images whose long side exceeds ``max_side`` are
   downscaled for detection only and the boxes mapped back; detections below
   ``min_score`` are dropped (a blurred background patch can reach 0.9).
3. **Crop.** A square of ``(1 + margin)`` times the box's long side around the box
   centre (FER2013's faces include some forehead and chin; a square keeps the aspect
   ratio when resizing); parts outside the image repeat the border pixels.
4. **Contrast.** CLAHE (default), plain histogram equalisation or none, on the gray
   crop (on the luma of an RGB crop), see :func:`clahe`.
5. **Classify.** Resize to the model's input (48x48 gray for the FER2013 models, RGB
   224 for RAF-DB's timm models), normalise with its ``input_config``, and run all
   the faces of one image through the model in **one batch**.

6. **Hands** (when onnxruntime is installed: ``pip install "emolib[hands]"``). MediaPipe
   Hands (its networks shipped as ONNX, :mod:`emolib.hands`) finds the hands and says which is left and which right (the person's own);
   the shipped gesture model ``gestures-asl`` reads each hand's gesture from its 21
   landmarks (:class:`emolib.gestures.GestureClassifier`); then every hand is attached
   to the face of its person (:func:`assign_hands`).

The result is a :class:`PipelineResult` with one :class:`FaceResult` per face, so it
reads per person: ``face.emotion``, ``face.hands["left"]`` and ``face.hands["right"]``
(a :class:`~emolib.hands.Hand` with ``gesture``, ``probabilities`` and the paired
emotion in ``extra["emotion"]``, or ``None``). Hands that belong to no face are in
``result.hands``. Without onnxruntime the face part works alone, and the pipeline says
once (a warning) that hands are off.

Videos: :func:`process_video` reads every N-th frame with PyAV (``pip install av``)
and writes one CSV row per face and frame; :func:`plot_emotions_over_time` draws it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError
from torch import nn

from .data import EMOTIONS
from .fileio import ImageTooLargeError, atomic_write, open_image, save_image, to_8bit
from .models import CheckpointError, InputConfig, list_pretrained, load_model

__all__ = [
    "EmotionPipeline",
    "PipelineResult",
    "FaceResult",
    "BatchResult",
    "PipelineInputError",
    "load_image",
    "clahe",
    "draw",
    "iter_video_frames",
    "process_video",
    "read_emotion_csv",
    "plot_emotions_over_time",
    "assign_hands",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DEFAULT_MODEL",
]

DEFAULT_MODEL = "baseline-fer2013"
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp",
                              ".ppm", ".pgm", ".pbm", ".pnm", ".jfif"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})
_GRAY48 = InputConfig(48, 1, (0.5,), (0.5,))
_HANDS_OFF_WARNED = False  # the "hands are off" warning is given once per process


class PipelineInputError(ValueError):
    """An input the pipeline cannot read: missing, empty or unreadable file, unsupported format, bad array."""


# --------------------------------------------------------------------------- results


def _empty_hands() -> dict:
    return {"left": None, "right": None}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


@dataclass
class FaceResult:
    """One face: where it is, how sure the detector is, and the emotion read from it.

    ``box`` is ``[x1, y1, x2, y2]`` in pixels of the (EXIF-rotated) input image;
    ``landmarks`` the five MTCNN points (eyes, nose, mouth corners) as ``[[x, y], ...]``;
    ``probabilities`` maps each class of the model to its softmax probability and
    ``emotion`` is the most probable one (``None`` for a detection-only pipeline).
    ``hands`` has one slot per hand for the gesture stage: ``None`` until a hand is
    found; then anything with a ``to_dict()`` or a JSON-ready dict.
    """

    box: list[float]
    score: float
    landmarks: list[list[float]]
    emotion: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    hands: dict[str, Any] = field(default_factory=_empty_hands)

    def to_dict(self, digits: int = 4) -> dict:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), digits),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "emotion": self.emotion,
            "probabilities": {k: round(float(v), digits) for k, v in self.probabilities.items()},
            "hands": _jsonable(self.hands),
        }


@dataclass
class PipelineResult:
    """All faces found in one image; ``image_size`` is ``(width, height)`` as displayed.

    ``hands`` holds the hands that were found but attached to no face (too far from
    every face, or their person's slot for that side already taken); ``hands_on`` says
    whether the hand stage ran at all.
    """

    image_size: tuple[int, int]
    faces: list[FaceResult] = field(default_factory=list)
    source: str | None = None
    hands: list[Any] = field(default_factory=list)
    hands_on: bool = False

    def __len__(self) -> int:
        return len(self.faces)

    def to_dict(self) -> dict:
        """JSON-ready: ``{"image", "image_size", "faces": [...]}``, plus ``"hands"`` (the unattached
        hands) when the hand stage ran."""
        d = {"image": self.source, "image_size": list(self.image_size),
             "faces": [f.to_dict() for f in self.faces]}
        if self.hands_on:
            d["hands"] = [_jsonable(h) for h in self.hands]
        return d


@dataclass
class BatchResult:
    """What :meth:`EmotionPipeline.predict_many` found: results, and the files it had to skip (with why)."""

    results: list[tuple[str, PipelineResult]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.results)


# --------------------------------------------------------------------------- loading


def _describe(image: Any) -> str:
    return str(image) if isinstance(image, (str, os.PathLike)) else f"<{type(image).__name__}>"


def _open_path(path: Path) -> Image.Image:
    if not path.exists():
        raise PipelineInputError(f"{path}: no such file")
    if path.is_dir():
        raise PipelineInputError(f"{path} is a folder; use EmotionPipeline.predict_many for folders")
    if path.stat().st_size == 0:
        raise PipelineInputError(f"{path}: the file is empty (0 bytes)")
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        raise PipelineInputError(f"{path} is a video; use emolib.pipeline.process_video")
    try:
        img = open_image(path)
    except ImageTooLargeError as err:
        raise PipelineInputError(str(err)) from None
    except UnidentifiedImageError:
        raise PipelineInputError(
            f"{path}: unsupported or unrecognised image format (PIL reads JPEG, PNG, BMP, GIF, TIFF, WebP, ...)"
        ) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise PipelineInputError(f"{path}: the image could not be decoded ({type(err).__name__}: {err})") from None
    return img


def _from_array(arr: Any, bgr: bool) -> Image.Image:
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu()
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = arr.permute(1, 2, 0)  # CHW -> HWC
        arr = arr.numpy()
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise PipelineInputError(
            f"an image array must be (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA; got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise PipelineInputError(f"the image array is empty (shape {arr.shape})")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise PipelineInputError("the image array holds NaN or infinite values")
        scale = 255.0 if arr.max(initial=0) <= 1.0 else 1.0  # [0, 1] floats, else [0, 255]
        arr = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    elif arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() > 255:
            raise PipelineInputError(f"unsupported array dtype {arr.dtype} (give uint8 0..255 or floats 0..1)")
        arr = arr.astype(np.uint8)
    if bgr and arr.ndim == 3:
        arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]
    return Image.fromarray(np.ascontiguousarray(arr))


def load_image(image: Any, bgr: bool = False) -> Image.Image:
    """Any supported input as an upright RGB PIL image.

    ``image``: a path (str or Path), a PIL image, a numpy array ``(H, W)``, ``(H, W, 1|3|4)``
    (``uint8``, or floats in ``[0, 1]``) or a torch tensor (``CHW`` or ``HWC``). The EXIF
    orientation of files and PIL images is applied; transparency is composited on white.
    ``bgr=True`` swaps the channels of arrays (OpenCV's order); PIL images and files are
    always RGB. Raises :class:`PipelineInputError` for anything it cannot read.
    """
    if isinstance(image, (str, os.PathLike)):
        img = _open_path(Path(image))
    elif isinstance(image, Image.Image):
        img = image
    elif isinstance(image, (np.ndarray, torch.Tensor)):
        img = _from_array(image, bgr)
    else:
        raise PipelineInputError(
            f"unsupported input type {type(image).__name__}: give a path, a PIL image or a numpy array"
        )
    if img.width == 0 or img.height == 0:
        raise PipelineInputError(f"{_describe(image)}: zero-size image ({img.width}x{img.height})")
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not lose the photo
        pass
    img = to_8bit(img)  # 16-bit and float images scaled to 0..255, not clipped to white
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    if img.mode != "RGB":
        try:
            img = img.convert("RGB")
        except (ValueError, OSError) as err:
            raise PipelineInputError(f"{_describe(image)}: cannot convert mode {img.mode!r} to RGB ({err})") from None
    return img


# --------------------------------------------------------------------------- contrast


def clahe(gray: np.ndarray, clip_limit: float = 2.0, grid: int | tuple[int, int] = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (Zuiderveld 1994) of a ``uint8`` gray image.

    The same algorithm and parameter meaning as OpenCV's ``createCLAHE(clipLimit,
    tileGridSize)``, which the thesis used: the image is cut into ``grid`` x ``grid``
    tiles, each tile's histogram is clipped at ``clip_limit`` times its mean bin count
    (the excess spread evenly over all bins), its cumulative histogram becomes the
    tile's grey-level mapping, and each pixel's value is interpolated bilinearly
    between the mappings of the four nearest tile centres.

    Written in numpy (about 30 lines, vectorised over tiles and pixels) rather than
    calling ``skimage.exposure.equalize_adapthist``, so the core library needs no
    scikit-image (nor OpenCV): a 128x128 face takes well under a millisecond.
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


def _enhance(crop: Image.Image, contrast: str | None, clip_limit: float, grid: int) -> Image.Image:
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


def _square_crop(arr: np.ndarray, box: Sequence[float], margin: float) -> np.ndarray:
    """A square around ``box`` of side ``(1 + margin) * long side``; outside pixels repeat the border."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(int(round(side)), 1)
    h, w = arr.shape[:2]
    l0, t0, r0, b0 = max(left, 0), max(top, 0), min(left + s, w), min(top + s, h)
    if r0 <= l0 or b0 <= t0:  # cannot happen for a clipped box; keep a valid pixel anyway
        l0, t0 = min(max(l0, 0), w - 1), min(max(t0, 0), h - 1)
        r0, b0 = l0 + 1, t0 + 1
    part = arr[t0:b0, l0:r0]
    pad = ((t0 - top, top + s - b0), (l0 - left, left + s - r0)) + ((0, 0),) * (arr.ndim - 2)
    if any(p for pair in pad for p in pair):
        part = np.pad(part, pad, mode="edge")
    return part


def _mtcnn_crops(img: torch.Tensor, boxes: torch.Tensor, size: int, sampling: int) -> tuple[torch.Tensor, torch.Tensor]:
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


def _mtcnn_detect(det: Any, rgb: np.ndarray, sampling: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MTCNN's three stages with facenet-pytorch's networks and thresholds, vectorised.

    Follows ``facenet_pytorch.models.utils.detect_face`` step by step (pyramid, P-Net,
    NMS, R-Net, NMS, O-Net, landmarks, "Min" NMS) for one image, except that the R-Net
    and O-Net patches are cut with :func:`_mtcnn_crops`. Returns float32 ``boxes (n, 4)``,
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
    patches, valid = _mtcnn_crops(img, boxes, 24, sampling)
    boxes = boxes[valid]
    if not len(boxes):
        return empty
    reg, prob = det.rnet(patches)
    keep = prob[:, 1] > th[1]
    boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], 1)
    reg = reg[keep]
    pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
    boxes = rerec(bbreg(boxes[pick], reg[pick]))

    # O-Net
    patches, valid = _mtcnn_crops(img, boxes, 48, sampling)
    boxes = boxes[valid]
    if not len(boxes):
        return empty
    reg, pts, prob = det.onet(patches)
    keep = prob[:, 1] > th[2]
    boxes = torch.cat([boxes[keep, :4], prob[keep, 1:2]], 1)
    reg, pts = reg[keep], pts[keep]
    if not len(boxes):
        return empty
    bw, bh = boxes[:, 2:3] - boxes[:, 0:1] + 1, boxes[:, 3:4] - boxes[:, 1:2] + 1
    points = torch.stack([bw * pts[:, :5] + boxes[:, 0:1] - 1, bh * pts[:, 5:] + boxes[:, 1:2] - 1], 2)
    boxes = bbreg(boxes, reg)
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], torch.zeros(len(boxes), device=boxes.device), 0.7, "Min")
    boxes, points = boxes[pick].float().cpu().numpy(), points[pick].float().cpu().numpy()
    return boxes[:, :4].copy(), boxes[:, 4].copy(), points


def _as_float_array(value: Any, shape_tail: tuple[int, ...]) -> np.ndarray:
    """facenet-pytorch 2.5.3 under numpy 2 returns ``None``, ``[None]`` or ``object`` arrays: make them floats."""
    if value is None:
        return np.zeros((0, *shape_tail), np.float32)
    arr = np.asarray(value, dtype=object)
    if arr.size == 0 or any(v is None for v in arr.ravel()):
        return np.zeros((0, *shape_tail), np.float32)
    return arr.astype(np.float32).reshape(-1, *shape_tail)


# --------------------------------------------------------------------------- the pipeline


class EmotionPipeline:
    """Photo or frame in, faces with emotions out. See the module docstring for the steps.

    Parameters
    ----------
    model:
        A shipped checkpoint name (:func:`emolib.models.list_pretrained`), a checkpoint
        path, an ``nn.Module`` (with ``.classes`` and ``.input_config``, else the FER2013
        defaults are assumed), or ``None`` for detection only.
    device:
        ``"cpu"``, ``"cuda"``...; default: CUDA when available.
    contrast:
        ``"clahe"`` (default, as the thesis), ``"equalize"`` (global histogram
        equalisation) or ``None``.
    margin:
        Fraction of the box's long side added around the face (0.2: the square crop is
        1.2 times the box).
    min_face_size:
        Smallest face MTCNN looks for, in pixels of the image the detector sees (after
        downscaling to ``max_side``). The main speed knob: the first and largest level
        of MTCNN's image pyramid has ``(12 / min_face_size)**2`` of the image's pixels.
        32 (facenet-pytorch: 20) because a smaller face has too few pixels for a 48x48
        classifier anyway; lower it (and raise ``max_side``) for crowds of small faces.
    max_side:
        Images with a longer side are downscaled to it for detection (boxes are mapped
        back to the original pixels; the crops come from the full-resolution image).
        ``None`` never downscales.
    thresholds, factor:
        MTCNN's three stage thresholds and its image-pyramid scale factor. Raised from
        facenet-pytorch's (0.6, 0.7, 0.7): fewer candidates reach the 2nd and 3rd stage
        (faster), and fewer false detections.
    min_score:
        Detections with a final MTCNN probability below this are dropped. On the test
        photos, frontal faces score above 0.98 and MTCNN's false detections (a blurred
        chair, a dog) up to 0.96 depending on the pyramid; profile faces in video score
        0.9 to 0.98, so lower it to 0.9 to keep more of them.
    clahe_clip, clahe_grid:
        CLAHE's clip limit and tile grid (OpenCV's meaning), on a crop of
        ``clahe_size`` pixels (or the model's size when larger).
    detector:
        An existing ``facenet_pytorch.MTCNN`` to share between pipelines (its own
        ``min_face_size``, thresholds and factor are then used).
    vectorized:
        Run MTCNN's stages with :func:`_mtcnn_detect` (same networks and steps as
        facenet-pytorch, but the image pyramid made with PIL and the 2nd/3rd-stage
        patches cut in one ``roi_align`` call): about twice as fast on busy photos.
        ``False`` calls facenet-pytorch's own ``MTCNN.detect``.
    crop_sampling:
        ``roi_align``'s sampling ratio for those patches (0: adaptive, closer to an area
        average; 2: four bilinear samples per output pixel, faster).
    hands:
        ``"auto"`` (default): read the hand gestures when onnxruntime is installed and the
        gesture model is available, else warn once and go on with the faces alone;
        ``True``: the same, but raise :class:`~emolib.hands.HandsUnavailableError` (with
        the install command) instead of warning; ``False``: faces only. A
        :class:`~emolib.gestures.GestureClassifier` may be passed instead.
    gesture_model:
        The gesture model's name or checkpoint (default: the shipped ``gestures-asl``).
    hand_regions:
        ``"person"`` (default): one MediaPipe pass per face over a region around its
        person (the face box grown by 2.5 face widths to each side, 1 face height up and
        4 down; the whole image when there is no face). It finds the small hands of a
        group photo that a pass over the whole image misses (MediaPipe's palm detector
        sees a 192x192 version of what it is given), at the cost of one pass per face.
        ``"image"``: one pass over the whole image, at most ``max_hands`` hands.
    hand_complexity:
        MediaPipe's landmark network: 0 (lite, faster) or 1 (full); ``None``: what the
        gesture model was trained with (its card).
    hand_distance:
        A hand farther than this many face heights from a face's centre is attached to
        no face (see :func:`assign_hands`).
    hand_detector:
        Any ``detector(rgb_array, regions) -> list[Hand]`` to use instead of a
        :class:`~emolib.hands.HandDetector` made from the gesture model's settings.
    """

    def __init__(
        self,
        model: str | os.PathLike | nn.Module | None = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        contrast: str | None = "clahe",
        margin: float = 0.2,
        min_face_size: int = 32,
        max_side: int | None = 1280,
        thresholds: Sequence[float] = (0.7, 0.8, 0.9),
        factor: float = 0.709,
        min_score: float = 0.95,
        clahe_clip: float = 2.0,
        clahe_grid: int = 8,
        clahe_size: int = 128,
        detector: Any = None,
        vectorized: bool = True,
        crop_sampling: int = 2,
        hands: bool | str | Any = "auto",
        gesture_model: str | os.PathLike = "gestures-asl",
        hand_regions: str = "person",
        max_hands: int = 4,
        hand_complexity: int | None = None,
        hand_distance: float = 4.0,
        hand_detector: Any = None,
    ) -> None:
        if contrast not in ("clahe", "equalize", None):
            raise ValueError(f"contrast must be 'clahe', 'equalize' or None, got {contrast!r}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if max_side is not None and max_side < 32:
            raise ValueError(f"max_side must be at least 32 pixels, got {max_side}")
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.contrast = contrast
        self.margin = float(margin)
        self.max_side = max_side
        self.min_score = float(min_score)
        self.vectorized, self.crop_sampling = bool(vectorized), int(crop_sampling)
        self.clahe_clip, self.clahe_grid, self.clahe_size = float(clahe_clip), int(clahe_grid), int(clahe_size)
        if detector is None:
            from facenet_pytorch import MTCNN

            detector = MTCNN(keep_all=True, device=self.device, min_face_size=min_face_size,
                             thresholds=list(thresholds), factor=factor, post_process=False)
        if hand_regions not in ("image", "person"):
            raise ValueError(f"hand_regions must be 'image' or 'person', got {hand_regions!r}")
        if hands not in ("auto", True, False, None) and not hasattr(hands, "classify"):
            raise ValueError(f"hands must be 'auto', True, False or a GestureClassifier, got {hands!r}")
        self.detector = detector
        self.model, self.classes, self.input_config = self._resolve_model(model)
        self.hand_regions, self.max_hands, self.hand_distance = hand_regions, int(max_hands), float(hand_distance)
        self.hands_off_reason: str | None = None
        self.gestures, self.hand_detector = self._resolve_hands(hands, gesture_model, hand_complexity, hand_detector)

    # ------------------------------------------------------------------ set-up

    def _resolve_model(self, model) -> tuple[nn.Module | None, tuple[str, ...], InputConfig]:
        if model is None:
            return None, (), _GRAY48
        if not isinstance(model, nn.Module):
            if str(model) == DEFAULT_MODEL and DEFAULT_MODEL not in list_pretrained() and not Path(model).exists():
                raise CheckpointError(
                    f"the default model {DEFAULT_MODEL!r} is not shipped in this installation (shipped: "
                    f"{', '.join(list_pretrained()) or 'none'}); pass model=PATH to an emolib checkpoint, "
                    f"or model=None for detection only"
                )
            model = load_model(model, device=self.device)
            # Loaded here, so its layout is ours to choose: channels-last convolutions are
            # faster on CPU (for the baseline on one 48x48 face too) and on GPUs.
            # A module passed in by the caller keeps its layout.
            model = model.to(memory_format=torch.channels_last)
            model.emolib_channels_last = True
        classes = tuple(getattr(model, "classes", None) or EMOTIONS)
        cfg = getattr(model, "input_config", None) or _GRAY48
        return model.to(self.device).eval(), classes, cfg

    def _resolve_hands(self, hands, gesture_model, complexity, detector=None):
        """``(GestureClassifier, HandDetector)``, or ``(None, None)`` with ``hands_off_reason`` set."""
        if hands is False or hands is None:
            self.hands_off_reason = "hands=False"
            return None, None
        from .hands import DEFAULT_DETECTOR, HandDetector, HandsUnavailableError

        try:
            if hasattr(hands, "classify"):
                clf = hands
            else:
                from .gestures import GestureClassifier

                clf = GestureClassifier(gesture_model)
            if detector is not None:
                return clf, detector
            settings = {**DEFAULT_DETECTOR, **dict(getattr(clf, "meta", {}) or {}).get("detector", {})}
            settings["max_num_hands"] = self.max_hands if self.hand_regions == "image" else 2
            if complexity is not None:
                settings["model_complexity"] = complexity
            return clf, HandDetector(**{k: settings[k] for k in DEFAULT_DETECTOR})
        except (HandsUnavailableError, CheckpointError) as err:
            if hands is True or hasattr(hands, "classify"):
                raise
            self.hands_off_reason = str(err)
            global _HANDS_OFF_WARNED
            if not _HANDS_OFF_WARNED:
                _HANDS_OFF_WARNED = True
                warnings.warn(f"hands are off, the pipeline reads faces only: {err}", stacklevel=3)
            return None, None

    @property
    def hands_on(self) -> bool:
        """Whether this pipeline reads hand gestures (see ``hands_off_reason`` when not)."""
        return self.gestures is not None

    @property
    def min_face_size(self) -> int:
        return self.detector.min_face_size

    # ------------------------------------------------------------------ steps

    def detect(self, image: Image.Image | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Faces in an RGB image: ``boxes (n, 4)``, ``scores (n,)``, ``landmarks (n, 5, 2)`` in its pixels.

        Boxes are clipped to the image and sorted left to right (then top to bottom).
        """
        rgb = np.asarray(image)
        h, w = rgb.shape[:2]
        scale = 1.0
        det = rgb
        if self.max_side and max(h, w) > self.max_side:
            scale = self.max_side / max(h, w)
            small = (max(1, round(w * scale)), max(1, round(h * scale)))
            pil = image if isinstance(image, Image.Image) else Image.fromarray(rgb)
            det = np.asarray(pil.resize(small, Image.BILINEAR, reducing_gap=2.0))
            scale = small[0] / w
        with torch.inference_mode():
            if self.vectorized and all(hasattr(self.detector, n) for n in ("pnet", "rnet", "onet")):
                boxes, probs, points = _mtcnn_detect(self.detector, det, self.crop_sampling)
            else:
                boxes, probs, points = self.detector.detect(det, landmarks=True)
        boxes = _as_float_array(boxes, (4,))
        probs = _as_float_array(probs, ())
        points = _as_float_array(points, (5, 2))
        if len(boxes) == 0 or len(probs) != len(boxes):
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        boxes, points = boxes / scale, points / scale
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        keep = (probs >= self.min_score) & (boxes[:, 2] - boxes[:, 0] >= 1) & (boxes[:, 3] - boxes[:, 1] >= 1)
        boxes, probs, points = boxes[keep], probs[keep], points[keep]
        order = np.lexsort((boxes[:, 1], boxes[:, 0]))
        return boxes[order], probs[order], points[order]

    def preprocess(self, image: Image.Image, boxes: np.ndarray) -> torch.Tensor:
        """The model-input batch ``(n, C, S, S)`` for the faces at ``boxes`` of an RGB image."""
        cfg = self.input_config
        src = np.asarray(image)
        work = max(cfg.size, self.clahe_size) if self.contrast == "clahe" else cfg.size
        batch = np.empty((len(boxes), cfg.size, cfg.size, cfg.channels), np.float32)
        for i, box in enumerate(boxes):
            crop = Image.fromarray(_square_crop(src, box, self.margin))
            if cfg.channels == 1:
                crop = crop.convert("L")  # ITU-R 601 luma, as FER2013's gray faces
            crop = crop.resize((work, work), Image.BILINEAR)
            crop = _enhance(crop, self.contrast, self.clahe_clip, self.clahe_grid)
            if work != cfg.size:
                crop = crop.resize((cfg.size, cfg.size), Image.BILINEAR)
            a = np.asarray(crop, dtype=np.float32)
            batch[i] = a[..., None] if a.ndim == 2 else a
        mean = np.asarray(cfg.mean, np.float32).reshape(1, 1, 1, -1)
        std = np.asarray(cfg.std, np.float32).reshape(1, 1, 1, -1)
        batch = (batch / 255.0 - mean) / std
        return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()

    def classify(self, batch: torch.Tensor) -> np.ndarray:
        """Softmax probabilities ``(n, classes)`` for a preprocessed batch (one forward pass)."""
        if self.model is None or len(batch) == 0:
            return np.zeros((len(batch), len(self.classes)), np.float32)
        with torch.inference_mode():
            batch = batch.to(self.device)
            if getattr(self.model, "emolib_channels_last", False):
                batch = batch.contiguous(memory_format=torch.channels_last)
            logits = self.model(batch)
        if logits.shape[1] != len(self.classes):
            raise CheckpointError(f"the model gives {logits.shape[1]} outputs but has {len(self.classes)} classes")
        return logits.float().softmax(1).cpu().numpy()

    # ------------------------------------------------------------------ public

    def __call__(self, image: Any, bgr: bool = False) -> PipelineResult:
        """Detect and classify every face of one image (path, PIL image or array). See :func:`load_image`."""
        img = load_image(image, bgr=bgr)
        source = str(image) if isinstance(image, (str, os.PathLike)) else None
        return self._run(img, source)

    predict = __call__

    def _run(self, img: Image.Image, source: str | None) -> PipelineResult:
        boxes, scores, points = self.detect(img)
        probs = self.classify(self.preprocess(img, boxes)) if self.model is not None and len(boxes) else None
        faces = []
        for i in range(len(boxes)):
            p = {c: float(v) for c, v in zip(self.classes, probs[i])} if probs is not None else {}
            faces.append(FaceResult(
                box=[float(v) for v in boxes[i]],
                score=float(scores[i]),
                landmarks=[[float(x), float(y)] for x, y in points[i]],
                emotion=max(p, key=p.get) if p else None,
                probabilities=p,
            ))
        result = PipelineResult(image_size=img.size, faces=faces, source=source, hands_on=self.hands_on)
        if self.hands_on:
            result.hands = assign_hands(faces, self.find_hands(img, faces), self.hand_distance)
        return result

    def find_hands(self, image: Image.Image, faces: Sequence[FaceResult] = ()) -> list:
        """The hands in an RGB image, each with its ``gesture``, ``probabilities`` and ``extra["emotion"]``.

        With ``hand_regions="person"`` MediaPipe looks in a region around each face (and
        over the whole image when there is no face).
        """
        if not self.hands_on:
            return []
        rgb = np.asarray(image)
        regions = None
        if self.hand_regions == "person" and faces:
            h, w = rgb.shape[:2]
            regions = [person_region(f.box, w, h) for f in faces]
        hands = self.hand_detector(rgb, regions)
        self.gestures.classify(rgb, hands)
        for hand in hands:
            hand.extra["emotion"] = self.gestures.emotion(hand.gesture) if hand.gesture else None
        return hands

    def iter_many(self, images: str | os.PathLike | Iterable[Any], progress: bool = True,
                  bgr: bool = False) -> Iterator[tuple[str, PipelineResult | None, str | None]]:
        """Yield ``(name, result, None)`` per readable image and ``(name, None, reason)`` per bad one.

        ``images``: a folder (its image files by extension, sorted; not recursive), or
        any iterable of paths, PIL images or arrays. A tqdm progress bar goes to stderr.
        """
        from tqdm.auto import tqdm

        items = list_images(images) if isinstance(images, (str, os.PathLike)) else list(images)
        bar = tqdm(items, desc="faces", unit="img", file=sys.stderr, disable=not progress, leave=False)
        for k, item in enumerate(bar):
            name = str(item) if isinstance(item, (str, os.PathLike)) else f"#{k}"
            try:
                yield name, self(item, bgr=bgr), None
            except PipelineInputError as err:
                yield name, None, str(err)

    def predict_many(self, images: str | os.PathLike | Iterable[Any], progress: bool = True,
                     bgr: bool = False) -> BatchResult:
        """Every image of a folder or list; unreadable files are skipped and listed in ``.skipped``."""
        out = BatchResult()
        for name, result, error in self.iter_many(images, progress=progress, bgr=bgr):
            if result is None:
                out.skipped.append((name, error))
            else:
                out.results.append((name, result))
        return out

    batch = predict_many

    def __repr__(self) -> str:
        name = getattr(self.model, "emolib_name", type(self.model).__name__) if self.model is not None else None
        hands = f"hands={self.gestures.name!r}, hand_regions={self.hand_regions!r}" if self.hands_on else "hands=off"
        return (f"EmotionPipeline(model={name}, classes={len(self.classes)}, device={self.device}, "
                f"contrast={self.contrast!r}, margin={self.margin}, min_face_size={self.min_face_size}, "
                f"max_side={self.max_side}, {hands})")


# --------------------------------------------------------------------------- hands


def person_region(box: Sequence[float], width: int, height: int) -> list[float]:
    """The region around a face where its person's hands are looked for, clipped to the image:
    2.5 face widths to each side, 1 face height above and 4 below the face box."""
    x1, y1, x2, y2 = box
    fw, fh = x2 - x1, y2 - y1
    return [max(0.0, x1 - 2.5 * fw), max(0.0, y1 - fh), min(float(width), x2 + 2.5 * fw),
            min(float(height), y2 + 4 * fh)]


def assign_hands(faces: Sequence[FaceResult], hands: Sequence[Any], max_distance: float = 4.0) -> list:
    """Attach each hand to the face of its person; returns the hands attached to no face.

    Fills ``face.hands["left"]`` and ``face.hands["right"]``. The distance between a hand
    and a face is from the hand's wrist (landmark 0, or its box centre when it has no
    landmarks) to the face box's centre, in face heights, so it means the same for near
    and far people. Hands and faces are paired by a minimum-cost assignment
    (:func:`scipy.optimize.linear_sum_assignment`) in which each face has one left and
    one right slot and a hand may only take the slot of its own handedness; pairs
    farther than ``max_distance`` face heights are not made. A hand left over (a third
    hand near one person, a hand whose person's face was not found, or two hands that
    MediaPipe both calls "right") is returned, not forced onto a face.
    """
    hands = list(hands)
    for face in faces:
        face.hands = _empty_hands()
    if not hands or not faces:
        return hands
    from scipy.optimize import linear_sum_assignment

    def anchor(hand) -> tuple[float, float]:
        lm = getattr(hand, "landmarks", None)
        if lm is not None and len(lm):
            return float(lm[0][0]), float(lm[0][1])
        x1, y1, x2, y2 = hand.box
        return (x1 + x2) / 2, (y1 + y2) / 2

    big = 1e9
    sides = ("left", "right")
    cost = np.full((len(hands), 2 * len(faces)), big)
    for i, hand in enumerate(hands):
        hx, hy = anchor(hand)
        for j, face in enumerate(faces):
            x1, y1, x2, y2 = face.box
            d = math.hypot(hx - (x1 + x2) / 2, hy - (y1 + y2) / 2) / max(y2 - y1, 1.0)
            if d <= max_distance and hand.handedness in sides:
                cost[i, 2 * j + sides.index(hand.handedness)] = d
    rows, cols = linear_sum_assignment(cost)
    taken = set()
    for i, c in zip(rows, cols):
        if cost[i, c] < big:
            faces[c // 2].hands[sides[c % 2]] = hands[i]
            taken.add(i)
    return [h for i, h in enumerate(hands) if i not in taken]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files (by extension, not hidden) directly in ``folder``, sorted; a file gives ``[file]``."""
    folder = Path(folder)
    if folder.is_file():
        return [folder]
    if not folder.is_dir():
        raise PipelineInputError(f"{folder}: no such file or folder")
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and not p.is_dir())


# --------------------------------------------------------------------------- drawing

_PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
            (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128)]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def draw(image: Any, result: PipelineResult, bars: bool = True, landmarks: bool = False,
         font_size: int | None = None, bgr: bool = False, hands: bool = True) -> Image.Image:
    """The image with each face's box, top emotion and (``bars=True``) its probabilities as bars.

    Like the thesis's Figure 5.11. With ``hands=True`` each hand found is drawn too: its
    box in the colour of its person's face, labelled with the side (L/R, the person's own)
    and the gesture; hands attached to no face in gray. ``image`` is what was given to the
    pipeline (path, PIL image or array; EXIF orientation is applied the same way);
    returns a new RGB image of the same size.
    """
    img = load_image(image, bgr=bgr).copy()
    if img.size != tuple(result.image_size):
        raise ValueError(f"the result is for a {result.image_size} image, this one is {img.size}")
    W, H = img.size
    canvas = ImageDraw.Draw(img, "RGBA")
    line = max(1, round(min(W, H) / 300))
    for i, face in enumerate(result.faces):
        color = _PALETTE[i % len(_PALETTE)]
        x1, y1, x2, y2 = face.box
        bw = max(x2 - x1, 1.0)
        canvas.rectangle([x1, y1, x2, y2], outline=color, width=line)
        if landmarks:
            r = max(1.5, bw / 40)
            for px, py in face.landmarks:
                canvas.ellipse([px - r, py - r, px + r, py + r], fill=color)
        fs = font_size or int(np.clip(bw / 7, 9, max(9, min(W, H) / 20)))
        font = _font(fs)
        label = f"{face.emotion} {face.probabilities[face.emotion]:.0%}" if face.emotion else f"face {face.score:.2f}"
        tb = canvas.textbbox((0, 0), label, font=font)
        tw, th = tb[2] - tb[0], tb[3] - tb[1]
        ty = y1 - th - 2 * line - 2 if y1 - th - 2 * line - 2 >= 0 else y1 + line
        canvas.rectangle([x1, ty, x1 + tw + 4, ty + th + 4], fill=color + (200,))
        canvas.text((x1 + 2 - tb[0], ty + 2 - tb[1]), label, fill=(255, 255, 255), font=font)
        if bars and face.probabilities:
            _draw_bars(canvas, face, (x1, y1, x2, y2), color, W, H, max(8, round(fs * 0.7)))
        if hands:
            for hand in face.hands.values():
                if hand is not None:
                    _draw_hand(canvas, hand, color, max(8, round(fs * 0.8)), line, face.box, H)
    if hands:
        for hand in result.hands:
            _draw_hand(canvas, hand, (160, 160, 160), max(9, round(min(W, H) / 40)), line, None, H)
    return img


def _draw_hand(canvas: ImageDraw.ImageDraw, hand: Any, color, fs: int, line: int, face_box, H: int) -> None:
    get = (lambda k: hand.get(k)) if isinstance(hand, Mapping) else (lambda k: getattr(hand, k, None))
    box = get("box")
    if box is None:
        return
    x1, y1, x2, y2 = box
    canvas.rectangle([x1, y1, x2, y2], outline=color, width=line)
    if face_box is not None:  # a thin line from the face to its hand
        fx, fy = (face_box[0] + face_box[2]) / 2, face_box[3]
        canvas.line([fx, fy, (x1 + x2) / 2, (y1 + y2) / 2], fill=color + (140,), width=max(1, line // 2))
    side = {"left": "L", "right": "R"}.get(get("handedness"), "?")
    label = f"{side} {get('gesture') or 'hand'}"
    font = _font(fs)
    tb = canvas.textbbox((0, 0), label, font=font)
    tw, th = tb[2] - tb[0], tb[3] - tb[1]
    ty = y2 + line if y2 + line + th + 4 <= H else max(0, y1 - th - 4)
    canvas.rectangle([x1, ty, x1 + tw + 4, ty + th + 4], fill=color + (200,))
    canvas.text((x1 + 2 - tb[0], ty + 2 - tb[1]), label, fill=(255, 255, 255), font=font)


def _draw_bars(canvas: ImageDraw.ImageDraw, face: FaceResult, box, color, W: int, H: int, fs: int) -> None:
    font = _font(fs)
    names = list(face.probabilities)
    name_w = max(canvas.textbbox((0, 0), n, font=font)[2] for n in names)
    row = fs + 3
    bar_len = 3 * fs
    panel_w, panel_h = name_w + bar_len + 8, row * len(names) + 4
    x1, y1, x2, y2 = box
    px = x2 + 4 if x2 + 4 + panel_w <= W else (x1 - 4 - panel_w if x1 - 4 - panel_w >= 0 else max(0, x2 - panel_w))
    py = min(max(0, y1), max(0, H - panel_h))
    canvas.rectangle([px, py, px + panel_w, py + panel_h], fill=(0, 0, 0, 140))
    top = max(face.probabilities.values())
    for k, name in enumerate(names):
        p = face.probabilities[name]
        ry = py + 2 + k * row
        canvas.text((px + 3, ry), name, fill=(255, 255, 255), font=font)
        bx = px + name_w + 6
        canvas.rectangle([bx, ry + 2, bx + bar_len, ry + row - 2], outline=(255, 255, 255, 90))
        if p > 0:
            canvas.rectangle([bx, ry + 2, bx + max(1, p * bar_len), ry + row - 2],
                             fill=color + (255,) if p == top else (220, 220, 220, 220))


# --------------------------------------------------------------------------- video


def _open_video(path: Path):
    try:
        import av
    except ImportError:
        raise ImportError("reading videos needs PyAV: pip install av (or pip install 'emolib[video]')") from None
    if not path.is_file():
        raise PipelineInputError(f"{path}: no such video file")
    try:
        container = av.open(str(path))
    except Exception as err:  # av.error.InvalidDataError and friends
        raise PipelineInputError(f"{path}: not a readable video ({type(err).__name__}: {err})") from None
    if not container.streams.video:
        container.close()
        raise PipelineInputError(f"{path}: the file has no video stream")
    return container


def iter_video_frames(path: str | os.PathLike, every: int = 1,
                      max_frames: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(frame_index, time_s, rgb_uint8_array)`` for every ``every``-th frame (PyAV).

    ``time_s`` counts from the first frame. Raises :class:`PipelineInputError` for a
    missing or unreadable file and ``ImportError`` (with the fix) without PyAV.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    container = _open_video(Path(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        taken = 0
        t0 = None
        for index, frame in enumerate(container.decode(stream)):
            t = float(frame.time) if frame.time is not None else index / fps
            if t0 is None:
                t0 = t  # times count from the first frame (streams may start at, e.g., 0.85 s)
            if index % every:
                continue
            yield index, t - t0, frame.to_ndarray(format="rgb24")
            taken += 1
            if max_frames is not None and taken >= max_frames:
                break
    finally:
        container.close()


def _video_frame_count(path: Path) -> int | None:
    try:
        container = _open_video(path)
    except (ImportError, PipelineInputError):
        return None
    try:
        return container.streams.video[0].frames or None
    finally:
        container.close()


def process_video(
    path: str | os.PathLike,
    every: int = 10,
    pipeline: EmotionPipeline | None = None,
    out_csv: str | os.PathLike | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    out_frames: str | os.PathLike | None = None,
    callback: Any = None,
) -> list[dict]:
    """Run the pipeline on every ``every``-th frame; return (and write to ``out_csv``) one row per face.

    Columns: ``time_s, frame, face, x1, y1, x2, y2, score, emotion``, one column per
    class with its probability, and ``left_gesture, right_gesture`` (the person's hands;
    empty when not seen or when the pipeline's hand stage is off). A frame without faces gives one row with an empty
    ``face`` (so the time line shows the gap). ``out_frames``: a folder for annotated
    JPEG frames (``frame_000120.jpg``...). ``callback(frame_index, time_s, image,
    result)`` is called for every processed frame (the CLI prints JSON lines with it).

    ``out_csv`` (a path or an open text stream) gets the header at once and each frame's
    rows as soon as the frame is done (flushed), so an interrupted run (Ctrl-C, a crash)
    keeps every frame processed before it; the ``KeyboardInterrupt`` is passed on.
    """
    from tqdm.auto import tqdm

    path = Path(path)
    pipeline = pipeline or EmotionPipeline()
    classes = list(pipeline.classes)
    if out_frames is not None:
        Path(out_frames).mkdir(parents=True, exist_ok=True)
    total = _video_frame_count(path)
    expected = -(-total // every) if total else None
    if max_frames is not None and expected is not None:
        expected = min(expected, max_frames)
    rows: list[dict] = []
    frames = iter_video_frames(path, every=every, max_frames=max_frames)
    with contextlib.ExitStack() as stack:
        stack.callback(frames.close)  # closes the video file, also on Ctrl-C
        sink = None
        if out_csv is not None:
            if hasattr(out_csv, "write"):
                stream = out_csv
            else:  # streamed, not written atomically: what is processed must survive an interruption
                Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
                stream = stack.enter_context(open(out_csv, "w", newline=""))
            sink = _CsvSink(stream, classes)
        bar = stack.enter_context(tqdm(frames, total=expected, desc=path.name, unit="frame", file=sys.stderr,
                                       disable=not progress, leave=False))
        for index, t, rgb in bar:
            img = Image.fromarray(rgb)
            result = pipeline._run(img, f"{path}#frame={index}")
            new_rows = _frame_rows(result, round(t, 4), index, classes)
            rows += new_rows
            if sink is not None:
                sink.write(new_rows)
            if out_frames is not None:
                save_image(draw(img, result), Path(out_frames) / f"frame_{index:06d}.jpg", quality=90)
            if callback is not None:
                callback(index, t, img, result)
    return rows


def _frame_rows(result: PipelineResult, t: float, index: int, classes: Sequence[str]) -> list[dict]:
    base = {"time_s": t, "frame": index}
    if not result.faces:
        return [{**base, "face": "", "x1": "", "y1": "", "x2": "", "y2": "", "score": "", "emotion": "",
                 **{c: "" for c in classes}, "left_gesture": "", "right_gesture": ""}]
    rows = []
    for k, face in enumerate(result.faces):
        x1, y1, x2, y2 = (round(v, 1) for v in face.box)
        rows.append({**base, "face": k, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
                     "score": round(face.score, 4), "emotion": face.emotion or "",
                     **{c: round(face.probabilities.get(c, float("nan")), 5) for c in classes},
                     **{f"{side}_gesture": getattr(face.hands.get(side), "gesture", None) or ""
                        for side in ("left", "right")}})
    return rows


class _CsvSink:
    """Rows of one frame written with one ``write`` call and flushed: an interruption never cuts a row."""

    def __init__(self, stream, classes: Sequence[str]) -> None:
        self.stream, self.columns = stream, _columns(classes)
        self.write([], header=True)

    def write(self, rows: Sequence[Mapping], header: bool = False) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.columns, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        self.stream.write(buf.getvalue())
        self.stream.flush()


def _columns(classes: Sequence[str]) -> list[str]:
    return ["time_s", "frame", "face", "x1", "y1", "x2", "y2", "score", "emotion", *classes,
            "left_gesture", "right_gesture"]


def write_emotion_csv(rows: Sequence[Mapping], out: str | os.PathLike | io.TextIOBase,
                      classes: Sequence[str]) -> None:
    """Write :func:`process_video` rows as CSV to a path or an open text stream."""
    if hasattr(out, "write"):
        writer = csv.DictWriter(out, _columns(classes), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        return
    with atomic_write(out, "w", newline="") as fh:
        write_emotion_csv(rows, fh, classes)


def read_emotion_csv(path: str | os.PathLike) -> list[dict]:
    """Read a :func:`process_video` CSV back as rows (numbers as floats, empty cells as ``None``)."""
    rows = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            parsed = {}
            for k, v in row.items():
                if k in ("emotion", "left_gesture", "right_gesture"):
                    parsed[k] = v or None
                elif v == "" or v is None:
                    parsed[k] = None
                else:
                    try:
                        parsed[k] = float(v)
                    except ValueError:
                        parsed[k] = v
            rows.append(parsed)
    return rows


def plot_emotions_over_time(csv_or_rows: str | os.PathLike | Sequence[Mapping], face: int | None = None,
                            classes: Sequence[str] | None = None, ax=None, title: str | None = None):
    """Probability of each emotion against time; returns the matplotlib figure.

    ``csv_or_rows``: a CSV written by :func:`process_video` or its rows. ``face=None``
    averages the faces of each frame; ``face=k`` follows the k-th face (left to right).
    Frames without a (that) face leave a gap.
    """
    import matplotlib.pyplot as plt

    rows = read_emotion_csv(csv_or_rows) if isinstance(csv_or_rows, (str, os.PathLike)) else list(csv_or_rows)
    fixed = set(_columns(()))
    if classes is None:
        keys = list(rows[0].keys()) if rows else list(EMOTIONS)
        classes = [k for k in keys if k not in fixed] or list(EMOTIONS)
    by_time: dict[float, list[Mapping]] = {}
    for r in rows:
        by_time.setdefault(float(r["time_s"]), []).append(r)
    times = sorted(by_time)
    series = {c: [] for c in classes}
    for t in times:
        faces = [r for r in by_time[t] if r.get("face") not in (None, "")]
        if face is not None:
            faces = [r for r in faces if int(float(r["face"])) == face]
        for c in classes:
            vals = [float(r[c]) for r in faces if r.get(c) not in (None, "")]
            series[c].append(float(np.mean(vals)) if vals else math.nan)
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 3.5))
    else:
        fig = ax.figure
    for k, c in enumerate(classes):
        ax.plot(times, series[c], label=c, color=np.asarray(_PALETTE[k % len(_PALETTE)]) / 255, lw=1.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(title or ("mean over faces" if face is None else f"face {face}"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
