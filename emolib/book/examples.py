"""The pipeline chapters' inputs: the example photos and video, and the emotion model.

The real photos and the video lie in ``$EMOLIB_DATA/photos`` (with ``faces.json``, the
faces counted by eye) and ``$EMOLIB_DATA/video``. Where they are absent, a smoke run gets
random-noise stand-ins under the real names (:func:`make_placeholder_photos`), and says so.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .. import data as D
from ..models import CheckpointError, create_model, list_pretrained, load_model, model_card
from ..pipeline import DEFAULT_MODEL
from .sample_data import noise_image

__all__ = ["EXAMPLE_PHOTOS", "EXAMPLE_VIDEO", "make_placeholder_photos", "pipeline_examples", "pipeline_model"]

#: The photos of :func:`make_placeholder_photos` (the names of the real ones, with their face counts).
EXAMPLE_PHOTOS = {"obama.jpg": 1, "two_people.jpg": 2, "multiface.jpg": 6, "bald_guys.jpg": 24, "ivan.jpg": 1,
                  "Tom_Cruise_avp_2014_4.jpg": 1, "dogs.jpg": 0, "no-faces.jpg": 0}
EXAMPLE_VIDEO = "short_hamilton_clip.mp4"


def make_placeholder_photos(root: str | os.PathLike, seed: int = 0) -> Path:
    """Write **random-noise** stand-ins for ``photos/`` (the real file names, ``faces.json``) and
    ``video/short_hamilton_clip.mp4`` (12 frames, MPEG-4 with PyAV) under ``root``; returns ``root``.

    For smoke runs of the pipeline chapters where the real photos are absent: the code
    runs on them and finds no faces. ``faces.json`` gives the real photos' counts.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    (root / "photos").mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(EXAMPLE_PHOTOS):
        noise_image(rng, 160, 3, k).resize((320, 240)).save(root / "photos" / name, quality=90)
    (root / "photos" / "faces.json").write_text(json.dumps(EXAMPLE_PHOTOS, indent=1))
    (root / "video").mkdir(exist_ok=True)
    try:
        import av
    except ImportError:
        return root
    with av.open(str(root / "video" / EXAMPLE_VIDEO), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for _ in range(12):
            frame = av.VideoFrame.from_image(noise_image(rng, 160, 3, 3).resize((320, 240)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return root


def pipeline_examples(data_root: str | os.PathLike | None = None, smoke: bool = False,
                      placeholder_dir: str | os.PathLike | None = None) -> tuple[Path, Path | None, str | None]:
    """The pipeline chapters' inputs: ``(photos folder, video file or None, placeholder label or None)``.

    The real ones are ``photos/`` (with ``faces.json``) and ``video/short_hamilton_clip.mp4``
    under ``data_root`` (default ``$EMOLIB_DATA``). Without them, a smoke run gets
    :func:`make_placeholder_photos` (under ``placeholder_dir``, default a temporary
    folder) and a label saying so; a full run raises
    :class:`emolib.data.DatasetNotFoundError`.
    """
    base = D.data_root(data_root)
    photos = base / "photos"
    if (photos / "faces.json").is_file():
        video = base / "video" / EXAMPLE_VIDEO
        return photos, (video if video.is_file() else None), None
    if not smoke:
        raise D.DatasetNotFoundError(f"the example photos (photos/faces.json) are not under {base}")
    root = Path(placeholder_dir or Path(tempfile.gettempdir()) / "emolib-book-samples" / "placeholder-photos")
    if not (root / "photos" / "faces.json").is_file():
        make_placeholder_photos(root)
    video = root / "video" / EXAMPLE_VIDEO
    return root / "photos", (video if video.is_file() else None), (
        "GENERATED PLACEHOLDER PHOTOS (random noise, no faces): the example photos are not in the data folder")


def pipeline_model(smoke: bool, name: str = DEFAULT_MODEL):
    """The emotion model of the pipeline chapters, and a label that says what it is.

    ``name`` defaults to the pipeline's default model (:data:`emolib.pipeline.DEFAULT_MODEL`).
    Smoke runs get an **untrained** model of ``name``'s architecture (its card's ``arch``;
    ``baseline`` when ``name`` is not shipped): random weights, the same input and cost as
    the trained one, so every step runs, but its emotions mean nothing. Full runs get the
    shipped checkpoint ``name``, or :class:`emolib.models.CheckpointError` when it is not
    shipped (see :func:`show_missing_model`).
    """
    if smoke:
        arch = model_card(name)["arch"] if name in list_pretrained() else "baseline"
        model = create_model(arch).eval()
        model.classes = tuple(D.EMOTIONS)
        return model, f"UNTRAINED {arch} (smoke run: random weights, so the emotions shown mean nothing)"
    if name not in list_pretrained():
        raise CheckpointError(f"the trained model {name!r} is not shipped in this installation "
                              f"(shipped: {', '.join(list_pretrained()) or 'none'})")
    return load_model(name), f"{name} (the trained checkpoint shipped with emolib)"
