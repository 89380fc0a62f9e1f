"""The real-world pipeline: find the faces in a photo or video, read each one's emotion.

::

    from emolib.pipeline import EmotionPipeline, draw

    pipe = EmotionPipeline()                 # MTCNN + the shipped "vgg_cpu-fer2013"
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
   taken as RGB ``uint8`` (``bgr=True`` for OpenCV frames). This is
   :func:`emolib.fileio.load_image`, emolib's one image decoder.
2. **Detect.** MTCNN (Zhang et al. 2016) with facenet-pytorch's networks
   (``MTCNN(keep_all=True)``), its three stages run by a vectorised re-implementation
   of facenet's loop (:func:`emolib.faces.mtcnn_detect`, several times faster on CPU; the original
   with ``vectorized=False``). Images whose long side exceeds ``max_side`` are
   downscaled for detection only and the boxes mapped back; detections below
   ``min_score`` are dropped (a blurred background patch can reach 0.9).
3. **Crop.** A square of ``(1 + margin)`` times the box's long side around the box
   centre (FER2013's faces include some forehead and chin; a square keeps the aspect
   ratio when resizing); parts outside the image repeat the border pixels.
4. **Contrast.** CLAHE (default), plain histogram equalisation or none, on the gray
   crop (on the luma of an RGB crop), see :func:`emolib.faces.clahe`.
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

Where things live: detection, tracking, crops and CLAHE in :mod:`emolib.faces`; image
decoding in :mod:`emolib.fileio`; drawing in :mod:`emolib.drawing`; videos in
:mod:`emolib.video`. This module holds the pipeline, its results and the hand-face
pairing, and re-exports the names users import from it (``load_image``, ``clahe``,
``draw``, ``process_video``, ...).

The settings come in three groups (:class:`~emolib.faces.DetectionOptions`,
:class:`~emolib.faces.CropOptions`, :class:`HandOptions`); each setting may also be given
by its name, ``EmotionPipeline(min_face_size=64, margin=0.3)``.
"""

from __future__ import annotations

import dataclasses
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
from PIL import Image
from torch import nn

from . import video as _video
from .labels import EMOTIONS
from .drawing import draw
from .faces import CropOptions, DetectionOptions, clahe, detect_faces, enhance, make_mtcnn, square_crop
from .fileio import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, PipelineInputError, list_images, load_image
from .gestures import GestureClassifier
from .hands import DEFAULT_DETECTOR, HandDetector, HandsUnavailableError
from .models import CheckpointError, InputConfig, list_pretrained, load_model
from .video import iter_video_frames, plot_emotions_over_time, read_emotion_csv, write_emotion_csv

__all__ = [
    "EmotionPipeline",
    "HandOptions",
    "DetectionOptions",
    "CropOptions",
    "PipelineResult",
    "FaceResult",
    "BatchResult",
    "PipelineInputError",
    "load_image",
    "list_images",
    "clahe",
    "draw",
    "iter_video_frames",
    "process_video",
    "read_emotion_csv",
    "write_emotion_csv",
    "plot_emotions_over_time",
    "assign_hands",
    "person_region",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DEFAULT_MODEL",
]

DEFAULT_MODEL = "vgg_cpu-fer2013"
_GRAY48 = InputConfig(48, 1, (0.5,), (0.5,))
_HANDS_OFF_WARNED = False  # the "hands are off" warning is given once per process


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


# --------------------------------------------------------------------------- the pipeline


@dataclass(frozen=True)
class HandOptions:
    """How hands are found and paired with faces (see :class:`EmotionPipeline` for each one's meaning)."""

    gesture_model: str | os.PathLike = "gestures-asl"
    hand_regions: str = "person"
    max_hands: int = 4
    hand_complexity: int | None = None
    hand_distance: float = 4.0

    def __post_init__(self) -> None:
        if self.hand_regions not in ("image", "person"):
            raise ValueError(f"hand_regions must be 'image' or 'person', got {self.hand_regions!r}")


_GROUPS = {"detection": DetectionOptions, "crop": CropOptions, "hand_options": HandOptions}
_SETTING_GROUP = {f.name: group for group, cls in _GROUPS.items() for f in dataclasses.fields(cls)}


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
    detection, crop, hand_options:
        The settings below, grouped: a :class:`~emolib.faces.DetectionOptions` (from
        ``min_face_size`` to ``crop_sampling``), a :class:`~emolib.faces.CropOptions`
        (``contrast``, ``margin``, ``clahe_*``) and a :class:`HandOptions` (``gesture_model``
        to ``hand_distance``). Each setting may also be given as a keyword by its name; it
        then overrides the group's value.
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
        Run MTCNN's stages with :func:`emolib.faces.mtcnn_detect` (same networks and steps as
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

    Call the pipeline on one image (``pipe(image)``), or :meth:`predict_many` on a folder
    or a list; :meth:`detect`, :meth:`preprocess`, :meth:`classify` and
    :meth:`read_faces` are its steps.
    """

    def __init__(
        self,
        model: str | os.PathLike | nn.Module | None = DEFAULT_MODEL,
        device: str | torch.device | None = None,
        *,
        hands: bool | str | Any = "auto",
        detection: DetectionOptions | None = None,
        crop: CropOptions | None = None,
        hand_options: HandOptions | None = None,
        detector: Any = None,
        hand_detector: Any = None,
        **settings: Any,
    ) -> None:
        unknown = sorted(set(settings) - set(_SETTING_GROUP))
        if unknown:
            raise TypeError(f"EmotionPipeline got unknown settings {unknown}; known: {sorted(_SETTING_GROUP)}")
        groups = {"detection": detection or DetectionOptions(), "crop": crop or CropOptions(),
                  "hand_options": hand_options or HandOptions()}
        for name, cls in _GROUPS.items():
            mine = {k: v for k, v in settings.items() if _SETTING_GROUP[k] == name}
            if mine:
                groups[name] = dataclasses.replace(groups[name], **mine)
        self.detection: DetectionOptions = groups["detection"]
        self.crop: CropOptions = groups["crop"]
        self.hand_options: HandOptions = groups["hand_options"]
        if hands not in ("auto", True, False, None) and not hasattr(hands, "classify"):
            raise ValueError(f"hands must be 'auto', True, False or a GestureClassifier, got {hands!r}")
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self.detector = detector if detector is not None else make_mtcnn(self.detection, self.device)
        self.model, self.classes, self.input_config = self._resolve_model(model)
        self.hands_off_reason: str | None = None
        self.gestures, self.hand_detector = self._resolve_hands(hands, hand_detector)

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

    def _resolve_hands(self, hands, detector=None):
        """``(GestureClassifier, HandDetector)``, or ``(None, None)`` with ``hands_off_reason`` set."""
        if hands is False or hands is None:
            self.hands_off_reason = "hands=False"
            return None, None
        opts = self.hand_options
        try:
            clf = hands if hasattr(hands, "classify") else GestureClassifier(opts.gesture_model)
            if detector is not None:
                return clf, detector
            settings = {**DEFAULT_DETECTOR, **dict(getattr(clf, "meta", {}) or {}).get("detector", {})}
            settings["max_num_hands"] = opts.max_hands if opts.hand_regions == "image" else 2
            if opts.hand_complexity is not None:
                settings["model_complexity"] = opts.hand_complexity
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

        Boxes are clipped to the image and sorted left to right (then top to bottom);
        see :func:`emolib.faces.detect_faces`.
        """
        return detect_faces(self.detector, image, self.detection)

    def preprocess(self, image: Image.Image, boxes: np.ndarray) -> torch.Tensor:
        """The model-input batch ``(n, C, S, S)`` for the faces at ``boxes`` of an RGB image."""
        cfg, opts = self.input_config, self.crop
        src = np.asarray(image)
        work = max(cfg.size, opts.clahe_size) if opts.contrast == "clahe" else cfg.size
        batch = np.empty((len(boxes), cfg.size, cfg.size, cfg.channels), np.float32)
        for i, box in enumerate(boxes):
            crop = Image.fromarray(square_crop(src, box, opts.margin))
            if cfg.channels == 1:
                crop = crop.convert("L")  # ITU-R 601 luma, as FER2013's gray faces
            crop = crop.resize((work, work), Image.BILINEAR)
            crop = enhance(crop, opts.contrast, opts.clahe_clip, opts.clahe_grid)
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

    def read_faces(self, image: Image.Image, boxes: np.ndarray, scores: np.ndarray, points: np.ndarray,
                   offset: tuple[int, int] = (0, 0), image_size: tuple[int, int] | None = None,
                   source: str | None = None) -> PipelineResult:
        """The faces at ``boxes`` of an RGB image classified in one batch, as a :class:`PipelineResult` (no hands).

        ``image`` may be a part of a larger frame whose top-left corner is at ``offset`` in
        it; boxes and landmarks are then given in frame pixels and ``image_size`` is the
        frame's (default: the image's). :class:`emolib.faces.FaceTracker` uses it.
        """
        probs = self.classify(self.preprocess(image, boxes)) if self.model is not None and len(boxes) else None
        ox, oy = float(offset[0]), float(offset[1])
        faces = []
        for i in range(len(boxes)):
            p = {c: float(v) for c, v in zip(self.classes, probs[i])} if probs is not None else {}
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            faces.append(FaceResult(
                box=[x1 + ox, y1 + oy, x2 + ox, y2 + oy],
                score=float(scores[i]),
                landmarks=[[float(x) + ox, float(y) + oy] for x, y in points[i]],
                emotion=max(p, key=p.get) if p else None,
                probabilities=p,
            ))
        size = tuple(image_size) if image_size is not None else image.size
        return PipelineResult(image_size=size, faces=faces, source=source)

    # ------------------------------------------------------------------ public

    def __call__(self, image: Any, bgr: bool = False, source: str | None = None) -> PipelineResult:
        """Detect and classify every face of one image (path, PIL image or array), and read the hands.

        See :func:`emolib.fileio.load_image` for the inputs. ``source`` names the image in
        the result (default: the path, when a path is given).
        """
        img = load_image(image, bgr=bgr)
        if source is None and isinstance(image, (str, os.PathLike)):
            source = str(image)
        result = self.read_faces(img, *self.detect(img), source=source)
        result.hands_on = self.hands_on
        if self.hands_on:
            result.hands = assign_hands(result.faces, self.find_hands(img, result.faces),
                                        self.hand_options.hand_distance)
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
        if self.hand_options.hand_regions == "person" and faces:
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

    def __repr__(self) -> str:
        name = getattr(self.model, "emolib_name", type(self.model).__name__) if self.model is not None else None
        hands = (f"hands={self.gestures.name!r}, hand_regions={self.hand_options.hand_regions!r}"
                 if self.hands_on else "hands=off")
        return (f"EmotionPipeline(model={name}, classes={len(self.classes)}, device={self.device}, "
                f"contrast={self.crop.contrast!r}, margin={self.crop.margin}, min_face_size={self.min_face_size}, "
                f"max_side={self.detection.max_side}, {hands})")


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


# --------------------------------------------------------------------------- videos


def process_video(path: str | os.PathLike, every: int = 10, pipeline: EmotionPipeline | None = None,
                  **kwargs: Any) -> list[dict]:
    """:func:`emolib.video.process_video` with a default :class:`EmotionPipeline` when ``pipeline`` is ``None``.

    One CSV row per face and every ``every``-th frame; ``out_csv``, ``out_frames``,
    ``max_frames``, ``progress`` and ``callback`` as there.
    """
    return _video.process_video(path, pipeline if pipeline is not None else EmotionPipeline(), every, **kwargs)
