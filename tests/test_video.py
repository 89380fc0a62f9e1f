"""emolib.video on its own: the frames it reads, the CSV rows it writes, the plot it draws.

A scripted pipeline stands in for MTCNN and the model (the real pipeline on the real clip is in
``tests/test_pipeline.py``), so each test knows exactly which faces, boxes and probabilities went in
and checks what came out: columns, rounding, times, the source each frame is read with, the annotated
frames, the averaging and gaps of the plot, and the errors that name what is wrong.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolib.labels import EMOTIONS
from emolib.pipeline import FaceResult, PipelineResult
from emolib.video import csv_columns, frame_rows, iter_video_frames, plot_emotions_over_time, process_video

FPS = 30  # a rate whose frame times are not round: 1/30 s = 0.0333... s


def _write_video(path: Path, frames: int = 9, size: int = 32) -> Path:
    """A small video whose frame k is filled with the gray value 20 * k (PyAV, mpeg4)."""
    av = pytest.importorskip("av", reason="PyAV writes the test video (pip install av)")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for k in range(frames):
            rgb = np.full((size, size, 3), 20 * k, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _face(box, score=0.987654321, probs=None) -> FaceResult:
    probs = probs or {c: 1.0 / len(EMOTIONS) for c in EMOTIONS}
    return FaceResult(box=list(box), score=score, landmarks=[[0.0, 0.0]] * 5,
                      emotion=max(probs, key=probs.get), probabilities=dict(probs))


class ScriptedPipeline:
    """Returns the faces given for each call, in turn, and remembers what it was called with."""

    classes = EMOTIONS

    def __init__(self, faces_per_call):
        self.faces_per_call, self.calls = list(faces_per_call), []

    def __call__(self, img, source=None):
        self.calls.append((img.size, source))
        faces = self.faces_per_call[len(self.calls) - 1] if len(self.calls) <= len(self.faces_per_call) else []
        return PipelineResult(image_size=img.size, faces=faces, source=source)


def test_frame_rows_round_and_name_every_column():
    probs = {c: (k + 1) / 28 + 1.234567e-6 for k, c in enumerate(EMOTIONS)}
    result = PipelineResult((64, 48), faces=[_face([10.26, 5.04, 40.55, 30.96], probs=probs),
                                             _face([1, 2, 3, 4])])
    rows = frame_rows(result, 1.5, 45, EMOTIONS)
    assert [list(r) for r in rows] == [csv_columns(EMOTIONS)] * 2
    first = rows[0]
    assert (first["time_s"], first["frame"], first["face"]) == (1.5, 45, 0) and rows[1]["face"] == 1
    assert [first[k] for k in ("x1", "y1", "x2", "y2")] == [10.3, 5.0, 40.5, 31.0]  # pixels: 1 decimal
    assert first["score"] == 0.9877  # 4 decimals
    assert all(first[c] == round(probs[c], 5) for c in EMOTIONS)  # probabilities: 5 decimals
    assert first["emotion"] == max(probs, key=probs.get)
    assert first["left_gesture"] == first["right_gesture"] == ""  # no hand attached


def test_a_frame_without_faces_is_one_row_of_empty_cells():
    rows = frame_rows(PipelineResult((64, 48)), 0.25, 7, EMOTIONS)
    assert len(rows) == 1 and list(rows[0]) == csv_columns(EMOTIONS)
    assert (rows[0]["time_s"], rows[0]["frame"]) == (0.25, 7)
    assert all(rows[0][k] == "" for k in csv_columns(EMOTIONS)[2:])


def test_iter_video_frames_takes_every_nth_frame_from_time_zero(tmp_path):
    clip = _write_video(tmp_path / "clip.mp4")
    every_frame = list(iter_video_frames(clip, every=1))
    assert [i for i, _, _ in every_frame] == list(range(9))
    assert every_frame[0][1] == 0.0 and every_frame[3][1] == pytest.approx(3 / FPS)
    assert every_frame[4][2].shape == (32, 32, 3) and abs(int(every_frame[4][2].mean()) - 80) <= 3
    assert [i for i, _, _ in iter_video_frames(clip, every=3)] == [0, 3, 6]
    assert [i for i, _, _ in iter_video_frames(clip, every=2, max_frames=2)] == [0, 2]
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"every must be >= 1, got {bad}"):
            next(iter_video_frames(clip, every=bad))


def test_reading_a_video_without_pyav_says_how_to_install_it(tmp_path, monkeypatch):
    clip = _write_video(tmp_path / "clip.mp4")
    monkeypatch.setitem(sys.modules, "av", None)  # "import av" now raises ImportError
    with pytest.raises(ImportError, match=r"^reading videos needs PyAV: pip install av \(or pip install "
                                          r"'emolib\[video\]'\)$"):
        next(iter_video_frames(clip))


def test_process_video_rows_times_sources_and_annotated_frames(tmp_path):
    clip = _write_video(tmp_path / "clip.mp4")
    pipe = ScriptedPipeline([[_face([4, 4, 20, 20])], [], [_face([2, 3, 12, 14]), _face([14, 3, 30, 14])]])
    seen = []
    rows = process_video(clip, pipe, every=4, out_csv=tmp_path / "out" / "clip.csv", progress=False,
                         out_frames=tmp_path / "frames", callback=lambda i, t, img, r: seen.append((i, len(r))))
    assert [(r["frame"], r["face"]) for r in rows] == [(0, 0), (4, ""), (8, 0), (8, 1)]
    assert [r["time_s"] for r in rows] == [0.0, round(4 / FPS, 4), round(8 / FPS, 4), round(8 / FPS, 4)]
    assert rows[1]["time_s"] == 0.1333  # 4 decimals
    assert pipe.calls == [((32, 32), f"{clip}#frame={i}") for i in (0, 4, 8)]
    assert seen == [(0, 1), (4, 0), (8, 2)]
    written = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert written == ["frame_000000.jpg", "frame_000004.jpg", "frame_000008.jpg"]
    with Image.open(tmp_path / "frames" / "frame_000008.jpg") as im:
        assert im.format == "JPEG" and im.size == (32, 32)
    lines = (tmp_path / "out" / "clip.csv").read_text().splitlines()
    assert lines[0].split(",") == csv_columns(EMOTIONS) and len(lines) == 1 + len(rows)


def _two_faces_rows():
    """Three frames: two faces, then none, then the second face alone (rows as process_video returns them)."""
    a = {c: 0.0 for c in EMOTIONS} | {"happy": 1.0}
    b = {c: 0.0 for c in EMOTIONS} | {"happy": 0.5, "sad": 0.5}
    rows = frame_rows(PipelineResult((64, 48), faces=[_face([0, 0, 9, 9], probs=a), _face([20, 0, 29, 9], probs=b)]),
                      0.0, 0, EMOTIONS)
    rows += frame_rows(PipelineResult((64, 48)), 0.5, 15, EMOTIONS)
    lone = frame_rows(PipelineResult((64, 48), faces=[_face([20, 0, 29, 9], probs=b)]), 1.0, 30, EMOTIONS)
    return rows + [{**r, "face": 1} for r in lone]


def test_plot_averages_faces_follows_one_and_leaves_gaps():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _two_faces_rows()
    fig = plot_emotions_over_time(rows)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert list(lines) == list(EMOTIONS) and ax.get_title() == "mean over faces"
    happy = lines["happy"].get_ydata()
    assert list(lines["happy"].get_xdata()) == [0.0, 0.5, 1.0]
    assert happy[0] == pytest.approx(0.75) and math.isnan(happy[1]) and happy[2] == pytest.approx(0.5)
    plt.close(fig)

    fig = plot_emotions_over_time(rows, face=0)  # the first face: seen in the first frame only
    happy = {ln.get_label(): ln for ln in fig.axes[0].lines}["happy"].get_ydata()
    assert happy[0] == pytest.approx(1.0) and math.isnan(happy[1]) and math.isnan(happy[2])
    assert fig.axes[0].get_title() == "face 0"
    plt.close(fig)

    fig = plot_emotions_over_time(rows, face=1, title="the second singer")
    sad = {ln.get_label(): ln for ln in fig.axes[0].lines}["sad"].get_ydata()
    assert sad[0] == pytest.approx(0.5) and sad[2] == pytest.approx(0.5)
    assert fig.axes[0].get_title() == "the second singer"
    plt.close(fig)


def test_plot_takes_the_classes_from_the_rows():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [{"time_s": 0.0, "frame": 0, "face": 0, "punch": 0.9, "victory": 0.1},
            {"time_s": 0.1, "frame": 3, "face": 0, "punch": 0.2, "victory": 0.8}]
    fig = plot_emotions_over_time(rows)
    assert [ln.get_label() for ln in fig.axes[0].lines] == ["punch", "victory"]
    assert list(fig.axes[0].lines[1].get_ydata()) == pytest.approx([0.1, 0.8])
    plt.close(fig)
