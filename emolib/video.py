"""Videos: their frames, the pipeline over them, and the emotions over time as CSV and as a plot.

::

    from emolib.pipeline import process_video, plot_emotions_over_time

    rows = process_video("clip.mp4", every=10, out_csv="clip.csv")   # one row per face and frame
    plot_emotions_over_time("clip.csv")

:func:`iter_video_frames` reads every N-th frame with PyAV (``pip install av``);
:func:`process_video` runs a pipeline on them and writes one CSV row per face and frame
(streamed, so an interrupted run keeps what it did); :func:`read_emotion_csv` reads the
CSV back and :func:`plot_emotions_over_time` draws it. This module takes the pipeline as
an argument (it does not import :mod:`emolib.pipeline`, which re-exports these names);
``emolib.pipeline.process_video`` is the same function with the default pipeline.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .drawing import PALETTE, draw
from .fileio import PipelineInputError, atomic_write, save_image
from .labels import EMOTIONS

__all__ = ["iter_video_frames", "process_video", "frame_rows", "csv_columns", "write_emotion_csv",
           "read_emotion_csv", "plot_emotions_over_time"]


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
    pipeline: Any,
    every: int = 10,
    out_csv: str | os.PathLike | None = None,
    max_frames: int | None = None,
    progress: bool = True,
    out_frames: str | os.PathLike | None = None,
    callback: Any = None,
) -> list[dict]:
    """Run ``pipeline`` on every ``every``-th frame; return (and write to ``out_csv``) one row per face.

    ``pipeline``: an :class:`emolib.pipeline.EmotionPipeline` (``emolib.pipeline.process_video``
    makes the default one when none is given).

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
            result = pipeline(img, source=f"{path}#frame={index}")
            new_rows = frame_rows(result, round(t, 4), index, classes)
            rows += new_rows
            if sink is not None:
                sink.write(new_rows)
            if out_frames is not None:
                save_image(draw(img, result), Path(out_frames) / f"frame_{index:06d}.jpg", quality=90)
            if callback is not None:
                callback(index, t, img, result)
    return rows


def frame_rows(result: Any, t: float, index: int, classes: Sequence[str]) -> list[dict]:
    """The CSV rows of one frame's result (see :func:`process_video` for the columns)."""
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
        self.stream, self.columns = stream, csv_columns(classes)
        self.write([], header=True)

    def write(self, rows: Sequence[Mapping], header: bool = False) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.columns, extrasaction="ignore")
        if header:
            writer.writeheader()
        writer.writerows(rows)
        self.stream.write(buf.getvalue())
        self.stream.flush()


def csv_columns(classes: Sequence[str]) -> list[str]:
    """The columns of :func:`process_video`'s CSV for a model with these ``classes``."""
    return ["time_s", "frame", "face", "x1", "y1", "x2", "y2", "score", "emotion", *classes,
            "left_gesture", "right_gesture"]


def write_emotion_csv(rows: Sequence[Mapping], out: str | os.PathLike | io.TextIOBase,
                      classes: Sequence[str]) -> None:
    """Write :func:`process_video` rows as CSV to a path or an open text stream."""
    if hasattr(out, "write"):
        writer = csv.DictWriter(out, csv_columns(classes), extrasaction="ignore")
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
    fixed = set(csv_columns(()))
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
        ax.plot(times, series[c], label=c, color=np.asarray(PALETTE[k % len(PALETTE)]) / 255, lw=1.5)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.set_title(title or ("mean over faces" if face is None else f"face {face}"))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
