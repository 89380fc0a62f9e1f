"""The real-world pipeline (emolib.pipeline): detection, crops, inputs, drawing, folders, video, CLI.

One MTCNN and one classifier per module (the ``pipe`` fixture). The classifier is an
untrained baseline saved as a checkpoint here: these tests check behaviour (faces
found, boxes, shapes, errors), not what the emotions are. Real photos and the video
come from ``$EMOLIB_DATA`` (default ``../shared/data``) and are skipped when absent.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emolib.data import EMOTIONS
from emolib.models import InputConfig, create_model, save_checkpoint
from emolib.pipeline import (
    EmotionPipeline,
    FaceResult,
    PipelineInputError,
    PipelineResult,
    clahe,
    draw,
    load_image,
    plot_emotions_over_time,
    process_video,
    read_emotion_csv,
)
from emolib.pipeline_cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]

# MTCNN is not a perfect counter on crowded photos; the tolerance for those is stated here.
COUNT_TOLERANCE = {6: 1, 24: 2}


def _data_root() -> Path:
    return Path(os.environ.get("EMOLIB_DATA", REPO.parent / "shared" / "data"))


def _real(sub: str) -> Path:
    path = _data_root() / sub
    if not path.exists():
        pytest.skip(f"real data {path} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    return path


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # MTCNN's many small convolutions gain little from a second thread, and lose a lot
    # when the other core is busy (a training run): one thread keeps this file fast.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)



@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("baseline")
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt") / "baseline-test.pt", EMOTIONS)


@pytest.fixture(scope="module")
def pipe(checkpoint) -> EmotionPipeline:
    return EmotionPipeline(checkpoint, device="cpu", hands=False)  # hands: tests/test_pipeline_hands.py


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the astronaut photo")
    return skdata.astronaut()


@pytest.fixture(scope="module")
def astro_result(pipe, astronaut) -> PipelineResult:
    return pipe(astronaut)


@pytest.fixture(scope="module")
def small_astronaut(astronaut) -> np.ndarray:
    return np.asarray(Image.fromarray(astronaut).resize((256, 256), Image.BILINEAR))


@pytest.fixture(scope="module")
def small_result(pipe, small_astronaut) -> PipelineResult:
    return pipe(small_astronaut)


# --------------------------------------------------------------------------- CLAHE


def test_clahe_widens_low_contrast_and_keeps_shape():
    rng = np.random.default_rng(0)
    low = np.clip(110 + 10 * rng.standard_normal((50, 37)), 0, 255).astype(np.uint8)
    out = clahe(low, clip_limit=2.0, grid=4)
    assert out.shape == low.shape and out.dtype == np.uint8
    assert out.std() > 2 * low.std()
    flat = np.full((64, 64), 128, np.uint8)
    assert np.abs(clahe(flat).astype(int) - 128).max() <= 3  # a flat image stays (nearly) flat
    with pytest.raises(ValueError):
        clahe(np.zeros((8, 8, 3), np.uint8))


def test_clahe_leaves_no_seams_between_tiles():
    """Each pixel blends the mappings of its four nearest tile centres, so a smooth image stays free of
    seams: neighbouring pixels differ by at most the mapping's slope times their input step (the clip
    limit caps a bin at (clip + 1) / 256 of a tile, so the slope is under clip + 1) plus what the
    blend weights move per pixel (1 / tile size of at most 255), plus 1 for rounding."""
    y, x = np.mgrid[0:128, 0:128]
    smooth = (128 + 100 * np.sin(x / 20.0) * np.cos(y / 25.0)).astype(np.uint8)
    step = max(np.abs(np.diff(smooth.astype(int), axis=a)).max() for a in (0, 1))
    clip, grid = 2.0, 8
    out = clahe(smooth, clip_limit=clip, grid=grid).astype(int)
    jump = max(np.abs(np.diff(out, axis=a)).max() for a in (0, 1))
    assert jump <= (clip + 1) * step + 255 / (128 / grid) + 1, (jump, step)
    assert np.abs(out - smooth).mean() > 5  # the tiles' mappings did change the image


def test_square_crop_of_a_box_outside_the_image_repeats_the_nearest_border():
    from emolib.faces import square_crop

    arr = np.arange(100, dtype=np.uint8).reshape(10, 10)
    crop = square_crop(arr, (20, 2, 24, 6), 0.0)  # right of the image (boxes are clipped before, normally)
    assert crop.shape == (4, 4) and all(np.array_equal(crop[:, k], arr[2:6, 9]) for k in range(4))
    above = square_crop(arr, (3, -9, 7, -5), 0.0)  # above it: the top row, repeated
    assert above.shape == (4, 4) and all(np.array_equal(above[k], arr[0, 3:7]) for k in range(4))
    rgb = square_crop(np.stack([arr] * 3, -1), (-8, -8, -4, -4), 0.0)  # beyond a corner, colour kept
    assert rgb.shape == (4, 4, 3) and (rgb == arr[0, 0]).all()


# --------------------------------------------------------------------------- synthetic photos


def test_astronaut_one_face(astro_result, astronaut):
    r = astro_result
    assert r.image_size == (512, 512)
    assert len(r.faces) == 1
    f = r.faces[0]
    x1, y1, x2, y2 = f.box
    assert 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 512
    assert 150 < (x1 + x2) / 2 < 260 and 60 < (y1 + y2) / 2 < 200  # her face, upper middle
    assert 0.95 <= f.score <= 1.0
    assert np.asarray(f.landmarks).shape == (5, 2)
    assert all(x1 - 5 <= x <= x2 + 5 and y1 - 5 <= y <= y2 + 5 for x, y in f.landmarks)
    assert list(f.probabilities) == list(EMOTIONS)
    assert abs(sum(f.probabilities.values()) - 1) < 1e-4
    assert f.emotion == max(f.probabilities, key=f.probabilities.get)
    assert f.hands == {"left": None, "right": None}
    d = json.loads(json.dumps(r.to_dict()))
    assert set(d) == {"image", "image_size", "faces"}
    assert set(d["faces"][0]) >= {"box", "score", "landmarks", "emotion", "probabilities", "hands"}


def test_collage_of_four(pipe, astronaut):
    collage = np.concatenate([np.concatenate([astronaut, astronaut], 1)] * 2, 0)  # 2x2, 1024x1024
    calls = []
    handle = pipe.model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        r = pipe(collage)
    finally:
        handle.remove()
    assert len(r.faces) == 4
    quadrants = {(int((f.box[0] + f.box[2]) / 2 // 512), int((f.box[1] + f.box[3]) / 2 // 512)) for f in r.faces}
    assert quadrants == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert calls == [4], "all faces of one image must be classified in one batch"


@pytest.mark.parametrize("kind", ["noise", "plain"])
def test_no_face_gives_empty_result(pipe, kind):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) if kind == "noise" else \
        np.full((240, 320, 3), 127, np.uint8)
    r = pipe(img)
    assert r.faces == [] and r.image_size == (320, 240)
    assert r.to_dict()["faces"] == []
    assert draw(img, r).size == (320, 240)


def test_exif_rotation_is_applied(pipe, astronaut, tmp_path):
    upright = Image.fromarray(astronaut[:400])  # displayed: 512 wide, 400 high
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what the camera wrote: 400x512, sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    assert Image.open(path).size == (400, 512)
    r = pipe(path)
    assert r.image_size == (512, 400)
    assert len(r.faces) == 1
    expected = pipe(np.asarray(upright)).faces[0].box
    assert _iou(r.faces[0].box, expected) > 0.8
    assert draw(path, r).size == (512, 400)


def test_gray_rgba_palette_inputs(pipe, small_astronaut, small_result):
    assert len(small_result.faces) == 1
    ref = small_result.faces[0].box
    pil = Image.fromarray(small_astronaut)
    gray = np.asarray(pil.convert("L"))
    rgba = np.dstack([small_astronaut, np.full(small_astronaut.shape[:2], 255, np.uint8)])
    inputs = {
        "gray array": gray,
        "gray (H, W, 1)": gray[:, :, None],
        "gray PIL": pil.convert("L"),
        "RGBA array": rgba,
        "RGBA PIL": pil.convert("RGBA"),
        "palette PIL": pil.convert("P", palette=Image.Palette.ADAPTIVE, colors=256),
        "float array": small_astronaut.astype(np.float32) / 255,
    }
    for name, img in inputs.items():
        r = pipe(img)
        assert r.image_size == (256, 256), name
        assert len(r.faces) == 1, name
        assert _iou(r.faces[0].box, ref) > 0.7, name


def test_bgr_flag(pipe, small_astronaut, small_result):
    bgr = np.ascontiguousarray(small_astronaut[:, :, ::-1])
    r = pipe(bgr, bgr=True)
    assert len(r.faces) == 1
    assert np.allclose(r.faces[0].box, small_result.faces[0].box)
    assert r.faces[0].probabilities == pytest.approx(small_result.faces[0].probabilities)


def test_huge_image_is_downscaled_and_mapped_back(pipe, astronaut):
    canvas = Image.new("RGB", (6000, 4000), (40, 40, 40))
    canvas.paste(Image.fromarray(astronaut).resize((4000, 4000), Image.BILINEAR), (1500, 0))
    small = pipe(astronaut).faces[0].box
    expected = [1500 + small[0] * 4000 / 512, small[1] * 4000 / 512, 1500 + small[2] * 4000 / 512,
                small[3] * 4000 / 512]
    r = pipe(canvas)
    assert r.image_size == (6000, 4000)
    assert len(r.faces) == 1
    x1, y1, x2, y2 = r.faces[0].box
    assert 0 <= x1 < x2 <= 6000 and 0 <= y1 < y2 <= 4000
    assert _iou(r.faces[0].box, expected) > 0.7
    assert all(1500 <= x <= 5500 for x, _ in r.faces[0].landmarks)


def test_detection_only_and_rgb_model(pipe, small_astronaut):
    det_only = EmotionPipeline(None, detector=pipe.detector, hands=False)
    r = det_only(small_astronaut)
    assert len(r.faces) == 1 and r.faces[0].emotion is None and r.faces[0].probabilities == {}
    assert draw(small_astronaut, r).size == (256, 256)

    class TinyRGB(torch.nn.Module):  # a 3-channel model of another size: crops must follow its input_config
        classes = ("pos", "neg")
        input_config = InputConfig(64, 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3 * 64 * 64, 2)
            self.seen = None

        def forward(self, x):
            self.seen = tuple(x.shape)
            return self.fc(x.flatten(1))

    model = TinyRGB()
    r = EmotionPipeline(model, detector=pipe.detector, contrast="equalize", hands=False)(small_astronaut)
    assert model.seen == (1, 3, 64, 64)
    assert set(r.faces[0].probabilities) == {"pos", "neg"}


def test_default_model_message_when_not_shipped(monkeypatch, tmp_path):
    # An installation without the shipped weights (list_pretrained() empty): the message says what to do.
    import emolib.pipeline as P
    from emolib.models import CheckpointError

    monkeypatch.setattr(P, "list_pretrained", lambda: [])
    monkeypatch.chdir(tmp_path)  # no file of that name here either
    with pytest.raises(CheckpointError, match=f"default model '{P.DEFAULT_MODEL}'.*model=PATH"):
        EmotionPipeline(detector=object(), hands=False)


def test_bad_parameters():
    with pytest.raises(ValueError, match="contrast"):
        EmotionPipeline(None, contrast="sharpen")


# --------------------------------------------------------------------------- bad inputs


def test_bad_files_raise_clear_errors(pipe, tmp_path, small_astronaut):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.txt"
    text.write_text("not an image at all\n")
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n garbage that is not a PNG")
    truncated = tmp_path / "truncated.jpg"
    Image.fromarray(small_astronaut).save(truncated, quality=90)
    truncated.write_bytes(truncated.read_bytes()[:600])
    cases = {
        empty: "empty",
        text: "unsupported or unrecognised",
        fake: "unsupported or unrecognised|could not be decoded",
        truncated: "could not be decoded",
        tmp_path / "missing.jpg": "no such file",
        tmp_path: "is a folder",
    }
    for path, message in cases.items():
        with pytest.raises(PipelineInputError, match=message):
            pipe(path)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        (np.zeros((10, 0), np.uint8), "empty"),
        (np.zeros((10, 10, 5), np.uint8), "shape"),
        (np.zeros((2, 10, 10, 3), np.uint8), "shape"),
        (np.zeros(10, np.uint8), "shape"),
        (np.full((10, 10), 1000, np.int32), "dtype"),
        (np.full((10, 10), np.nan, np.float32), "NaN"),
    ],
)
def test_bad_arrays_raise_clear_errors(array, message):
    with pytest.raises(PipelineInputError, match=message):
        load_image(array)


def test_unsupported_type():
    with pytest.raises(PipelineInputError, match="unsupported input type"):
        load_image(12345)


# --------------------------------------------------------------------------- folders and CLI


@pytest.fixture
def mixed_folder(tmp_path, small_astronaut) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(small_astronaut).save(folder / "a_face.jpg")
    Image.fromarray(np.full((80, 120, 3), 200, np.uint8)).save(folder / "b_plain.png")
    (folder / "c_empty.jpg").write_bytes(b"")
    (folder / "d_broken.png").write_bytes(b"this is not a png")
    (folder / "readme.txt").write_text("not an image extension: ignored")
    return folder


def test_predict_many_skips_bad_files(pipe, mixed_folder):
    out = pipe.predict_many(mixed_folder, progress=False)
    assert [Path(n).name for n, _ in out.results] == ["a_face.jpg", "b_plain.png"]
    assert [len(r.faces) for _, r in out.results] == [1, 0]
    assert sorted(Path(n).name for n, _ in out.skipped) == ["c_empty.jpg", "d_broken.png"]
    assert all(reason for _, reason in out.skipped)
    assert len(pipe.predict_many([mixed_folder / "a_face.jpg"], progress=False)) == 1


def test_cli_json_one_object_per_image(checkpoint, mixed_folder, capsys):
    code = cli_main(["predict", str(mixed_folder), "--model", str(checkpoint), "--json", "--no-progress"])
    cap = capsys.readouterr()
    assert code == 0
    lines = [json.loads(line) for line in cap.out.splitlines()]
    assert len(lines) == 2
    for obj in lines:
        assert {"image", "faces"} <= set(obj)
    face = lines[0]["faces"][0]
    assert {"box", "score", "emotion", "probabilities", "hands"} <= set(face)
    assert len(face["box"]) == 4 and set(face["probabilities"]) == set(EMOTIONS)
    assert "c_empty.jpg" in cap.err and "d_broken.png" in cap.err


def test_cli_text_and_annotated_out(checkpoint, mixed_folder, tmp_path, capsys):
    out = tmp_path / "annotated.jpg"
    code = cli_main(["predict", str(mixed_folder / "a_face.jpg"), "--model", str(checkpoint), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "1 face" in text and "box [" in text and "neutral" in text
    assert Image.open(out).size == (256, 256)
    # a single bad file: exit 1 with the reason on stderr
    code = cli_main(["predict", str(mixed_folder / "c_empty.jpg"), "--model", str(checkpoint)])
    assert code == 1 and "empty" in capsys.readouterr().err
    assert cli_main(["predict", str(tmp_path / "nope.jpg"), "--model", str(checkpoint)]) == 2


def test_draw_returns_input_size(astronaut, astro_result):
    out = draw(astronaut, astro_result)
    assert isinstance(out, Image.Image) and out.size == (512, 512) and out.mode == "RGB"
    assert np.any(np.asarray(out) != astronaut)  # something was drawn
    with pytest.raises(ValueError):
        draw(astronaut[:100], astro_result)


# --------------------------------------------------------------------------- real photos


def _face_counts() -> dict:
    path = _real("photos") / "faces.json"
    return json.loads(path.read_text())


@pytest.mark.realdata
def test_real_photo_face_counts(pipe):
    photos = _real("photos")
    counts = _face_counts()
    assert counts, "faces.json lists no photos"
    for name, expected in counts.items():
        r = pipe(photos / name)
        tol = COUNT_TOLERANCE.get(expected, 0)
        assert abs(len(r.faces) - expected) <= tol, f"{name}: found {len(r.faces)} faces, expected {expected}"
        w, h = r.image_size
        for f in r.faces:
            assert 0 <= f.box[0] < f.box[2] <= w and 0 <= f.box[1] < f.box[3] <= h


# --------------------------------------------------------------------------- video


@pytest.mark.realdata
def test_video_csv_and_plot(pipe, tmp_path, capsys, checkpoint):
    pytest.importorskip("av", reason="PyAV reads the video (pip install av)")
    clip = _real("video") / "short_hamilton_clip.mp4"
    if not clip.exists():
        pytest.skip(f"{clip} is absent")
    csv_path = tmp_path / "clip.csv"
    rows = process_video(clip, every=60, pipeline=pipe, out_csv=csv_path, max_frames=3, progress=False)
    assert {r["frame"] for r in rows} == {0, 60, 120}
    header = csv_path.read_text().splitlines()[0].split(",")
    assert header[:9] == ["time_s", "frame", "face", "x1", "y1", "x2", "y2", "score", "emotion"]
    assert header[9:] == [*EMOTIONS, "left_gesture", "right_gesture"]
    assert all(r["left_gesture"] == r["right_gesture"] == "" for r in rows)  # this pipeline's hands are off
    back = read_emotion_csv(csv_path)
    assert len(back) == len(rows) and back[0]["time_s"] == 0.0
    assert any(r["emotion"] for r in back), "the singer's face should be found in some frame"
    fig = plot_emotions_over_time(csv_path)
    assert len(fig.axes[0].lines) == len(EMOTIONS)
    import matplotlib.pyplot as plt

    plt.close(fig)
    # the CLI on a video: CSV on stdout
    code = cli_main(["predict", str(clip), "--model", str(checkpoint), "--every", "100", "--max-frames", "2",
                     "--no-progress"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0].startswith("time_s,frame,face") and len(out) >= 3


def test_video_errors(pipe, tmp_path):
    pytest.importorskip("av", reason="PyAV reads the video (pip install av)")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(PipelineInputError, match="not a readable video"):
        process_video(bad, pipeline=pipe, progress=False)
    with pytest.raises(PipelineInputError, match="is a video"):
        pipe(bad)


def test_facenet_detect_path_and_its_numpy2_trap(pipe, small_astronaut):
    # facenet-pytorch 2.5.3's own MTCNN.detect (vectorized=False) returns [None]-like
    # probabilities under numpy 2 when there is no face: that must be an empty result.
    from emolib.faces import as_float_array as _as_float_array

    assert _as_float_array(np.array([None], dtype=object), ()).shape == (0,)
    assert _as_float_array(None, (4,)).shape == (0, 4)
    slow = EmotionPipeline(None, detector=pipe.detector, vectorized=False, hands=False)
    assert slow(np.full((120, 160, 3), 90, np.uint8)).faces == []
    r = slow(small_astronaut)
    assert len(r.faces) == 1


def test_loaded_model_runs_channels_last_with_the_same_outputs(checkpoint, pipe, small_astronaut):
    from emolib.models import load_model

    assert pipe.model.emolib_channels_last
    plain = load_model(checkpoint).eval()  # loaded outside the pipeline: the default layout
    assert not getattr(plain, "emolib_channels_last", False)
    boxes, _, _ = pipe.detect(small_astronaut)
    batch = pipe.preprocess(Image.fromarray(small_astronaut), boxes)
    with torch.inference_mode():
        expected = plain(batch).softmax(1).numpy()
    np.testing.assert_allclose(pipe.classify(batch), expected, atol=1e-5)
    # a module passed in keeps its layout
    given = EmotionPipeline(plain, device="cpu", hands=False)
    assert not getattr(given.model, "emolib_channels_last", False)
    np.testing.assert_allclose(given.classify(batch), expected, atol=1e-6)


# --------------------------------------------------------------------------- the module layout (issue 11)


def test_fileio_load_image_errors_name_the_file(tmp_path, small_astronaut):
    from emolib import fileio

    empty = tmp_path / "empty photo.jpg"
    empty.write_bytes(b"")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a png")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 16)
    truncated = tmp_path / "truncated.jpg"
    Image.fromarray(small_astronaut).save(truncated, quality=90)
    truncated.write_bytes(truncated.read_bytes()[:600])
    for path in (empty, broken, clip, truncated, tmp_path / "missing.jpg", tmp_path):
        with pytest.raises(fileio.PipelineInputError) as err:
            fileio.load_image(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)
    # the pipeline's names are fileio's: one decoder, one extension list
    import emolib.pipeline as P

    assert P.load_image is fileio.load_image and P.PipelineInputError is fileio.PipelineInputError
    assert P.IMAGE_EXTENSIONS is fileio.IMAGE_EXTENSIONS and P.list_images is fileio.list_images
    assert np.array_equal(np.asarray(fileio.load_image(small_astronaut)), small_astronaut)


def test_importing_fileio_does_not_import_torch():
    code = ("import sys, emolib.fileio as f; assert 'torch' not in sys.modules, 'torch imported'; "
            "import numpy as np; img = f.load_image(np.zeros((4, 6, 3), np.uint8)); "
            "assert img.size == (6, 4) and 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr


def test_settings_are_grouped_and_keywords_still_work():
    from emolib.faces import CropOptions, DetectionOptions
    from emolib.pipeline import HandOptions

    class FakeMTCNN:
        min_face_size = 40

    p = EmotionPipeline(None, detector=FakeMTCNN(), hands=False, margin=0.3, contrast=None, max_side=640,
                        min_score=0.9, hand_regions="image")
    assert p.crop == CropOptions(margin=0.3, contrast=None)
    assert p.detection == DetectionOptions(max_side=640, min_score=0.9)
    assert p.hand_options == HandOptions(hand_regions="image")
    # a group given whole, and one of its settings overridden by keyword
    q = EmotionPipeline(None, detector=FakeMTCNN(), hands=False, detection=DetectionOptions(min_score=0.5),
                        min_face_size=64)
    assert q.detection.min_score == 0.5 and q.detection.min_face_size == 64
    assert "margin=0.2" in repr(q) and "min_face_size=40" in repr(q)  # the detector's own size is reported
    with pytest.raises(TypeError, match="unknown settings.*marginn"):
        EmotionPipeline(None, detector=FakeMTCNN(), hands=False, marginn=0.3)
    with pytest.raises(ValueError, match="max_side"):
        DetectionOptions(max_side=8)
    with pytest.raises(ValueError, match="hand_regions"):
        HandOptions(hand_regions="room")
    with pytest.raises(ValueError, match="margin"):
        EmotionPipeline(None, detector=FakeMTCNN(), hands=False, margin=-1)


def test_tracker_stage_is_mtcnn_last_stage(pipe, small_astronaut):
    """The tracker and the detector share one O-Net stage: on the detector's own boxes it keeps the face."""
    from emolib.faces import FaceTracker

    img = Image.fromarray(small_astronaut)
    full = pipe(img)
    tracker = FaceTracker(pipe, detect_every=3)
    first = tracker(img)
    assert tracker.full_detections == 1 and len(first) == len(full) == 1
    second = tracker(img)  # O-Net alone on the previous boxes
    assert tracker.full_detections == 1 and tracker.since_full == 1 and len(second) == 1
    assert _iou(second.faces[0].box, full.faces[0].box) > 0.8
    assert second.faces[0].emotion is not None and set(second.faces[0].probabilities) == set(full.faces[0].probabilities)


def test_tracker_grows_each_box_evenly_before_o_net(pipe, small_astronaut, monkeypatch):
    """Between full detections O-Net reads each followed box grown by ``grow`` times its width and height
    on every side and made square about the same centre (the live page's ``trackBoxes`` does the same)."""
    import emolib.faces as faces

    seen = []
    real = faces.onet_stage

    def spy(det, img, boxes, *args, **kwargs):
        seen.append(boxes[:, :4].detach().cpu().numpy().astype(np.float64))
        return real(det, img, boxes, *args, **kwargs)

    monkeypatch.setattr(faces, "onet_stage", spy)
    tracker = faces.FaceTracker(pipe, detect_every=5, grow=0.1)
    img = Image.fromarray(small_astronaut)
    assert len(tracker(img)) == 1
    box = np.asarray(tracker.boxes[0], np.float64)
    seen.clear()  # the full detection's own O-Net stage
    assert len(tracker(img)) == 1 and tracker.since_full == 1
    (square,) = seen[-1]
    side = max(box[2] - box[0], box[3] - box[1]) * 1.2
    np.testing.assert_allclose((square[:2] + square[2:]) / 2, (box[:2] + box[2:]) / 2, atol=1e-3)
    np.testing.assert_allclose(square[2:] - square[:2], [side, side], atol=1e-3)


def test_make_mtcnn_uses_the_thresholds_asked_for_on_the_cpu_by_default(small_astronaut):
    from emolib.faces import DetectionOptions, detect_faces, make_mtcnn

    found = {}
    for last in (0.9, 1.0):  # O-Net's probability is never above 1: that threshold keeps no face
        options = DetectionOptions(thresholds=(0.7, 0.8, last))
        det = make_mtcnn(options)
        assert next(det.parameters()).device.type == "cpu"
        found[last] = len(detect_faces(det, small_astronaut, options)[0])
    assert found == {0.9: 1, 1.0: 0}


def test_tracker_on_a_region_answers_in_frame_pixels(pipe, small_astronaut):
    """Given only the region :meth:`next_region` asked for, at its offset, the tracker follows the face
    with O-Net alone and answers in the whole frame's pixels and size."""
    from emolib.faces import FaceTracker

    img = Image.fromarray(small_astronaut)
    tracker = FaceTracker(pipe, detect_every=5)
    first = tracker(img)
    region = tracker.next_region(img.size)
    assert len(first) == 1 and region is not None
    x, y, w, h = region
    part = tracker(img.crop((x, y, x + w, y + h)), offset=(x, y), frame_size=img.size)
    assert part.image_size == img.size and len(part) == 1
    assert tracker.full_detections == 1 and tracker.since_full == 1  # O-Net alone, no full detection
    assert _iou(part.faces[0].box, first.faces[0].box) > 0.9
    assert np.abs(np.subtract(part.faces[0].landmarks, first.faces[0].landmarks)).max() < 3


def test_tracker_never_reports_one_face_twice(pipe, small_astronaut):
    """Two followed boxes that O-Net moves onto the same face (two faces close together, one of them
    gone) give that face once: the tracker then looks again with a full detection."""
    from emolib.faces import FaceTracker

    img = Image.fromarray(small_astronaut)
    tracker = FaceTracker(pipe, detect_every=5)
    assert len(tracker(img)) == 1
    box = np.asarray(tracker.boxes, np.float32)
    tracker.boxes = np.concatenate([box, box + 3])  # two boxes on the one face
    again = tracker(img)
    assert len(again) == 1 and len(tracker.boxes) == 1
    assert tracker.full_detections == 2


def test_tracker_region_holds_every_face_with_room_around_it(pipe):
    """:meth:`FaceTracker.next_region`: the smallest pixel rectangle holding every followed face's box
    grown by ``region_grow`` times its long side on every side, clipped to the frame; ``None`` when
    that is more than ``max_region`` of the frame, or when a full detection is due."""
    from emolib.faces import FaceTracker

    frame = (320, 240)
    tracker = FaceTracker(pipe, detect_every=5, region_grow=0.25)

    def wanted(boxes):
        half = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) * (0.5 + 0.25)
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        x1, y1 = max(0, int(np.floor((cx - half).min()))), max(0, int(np.floor((cy - half).min())))
        x2 = min(frame[0], int(np.ceil((cx + half).max())))
        y2 = min(frame[1], int(np.ceil((cy + half).max())))
        return [x1, y1, x2 - x1, y2 - y1]

    boxes = np.array([[100, 60, 140, 110], [30, 150, 50, 170]], np.float32)  # long sides 50 and 20
    tracker.boxes = boxes
    assert tracker.next_region(frame) == wanted(boxes) == [25, 47, 133, 128]
    corner = boxes - [95, 55, 95, 55]  # the first face at the frame's top-left corner: clipped there
    tracker.boxes = corner
    assert tracker.next_region(frame) == wanted(corner) and wanted(corner)[:2] == [0, 0]
    tracker.boxes = np.array([[60, 40, 260, 220]], np.float32)  # one face filling most of the frame
    assert tracker.next_region(frame) is None
    right = np.array([[200, 60, 300, 160]], np.float32)  # a large face at the right edge: 145x150, under 0.6
    tracker.boxes = right
    assert tracker.next_region(frame) == wanted(right) == [175, 35, 145, 150]
    tracker.boxes = boxes
    tracker.since_full = 4  # the next frame is due a full detection (detect_every=5)
    assert tracker.next_region(frame) is None


def test_widget_javascript_and_css_are_files():
    pytest.importorskip("anywidget", reason="the widgets extra (anywidget) is needed")
    from emolib.widgets import WebcamWidget, camera

    web = Path(camera.__file__).resolve().parents[1] / "web"
    esm, css = WebcamWidget._esm, WebcamWidget._css
    assert esm == (web / "draw.js").read_text() + "\n" + (web / "webcam.js").read_text()
    assert "export function drawFaces" in esm and "export default { render }" in esm
    assert css == (web / "webcam.css").read_text() and ".emolib-webcam-overlay" in css
    assert not hasattr(WebcamWidget, "process")


# --------------------------------------------------------------------------- written from sampled mutants (issue 17)


def test_many_images_honour_bgr_and_the_device_asked_for(pipe, small_astronaut, small_result):
    bgr = np.ascontiguousarray(small_astronaut[:, :, ::-1])
    as_bgr = pipe.predict_many([bgr], progress=False, bgr=True).results[0][1]
    assert as_bgr.faces[0].probabilities == pytest.approx(small_result.faces[0].probabilities)
    as_rgb = pipe.predict_many([bgr], progress=False).results[0][1]  # the same array read as RGB differs
    assert not as_rgb.faces or as_rgb.faces[0].probabilities != pytest.approx(small_result.faces[0].probabilities)

    class FakeMTCNN:
        min_face_size = 40

    assert EmotionPipeline(None, detector=FakeMTCNN(), hands=False, device="meta").device == torch.device("meta")


def test_no_progress_bar_when_asked_for_none_even_on_a_terminal(pipe, monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert list(pipe.iter_many([], progress=False)) == []
    assert sys.stderr.getvalue() == ""
    list(pipe.iter_many([], progress=True))
    assert "faces" in sys.stderr.getvalue()  # the bar this test would see


def test_face_json_keeps_two_decimals_of_pixels():
    face = FaceResult(box=[1.234, 2.0, 3.0, 4.0], score=0.912345, landmarks=[[10.126, 20.444]])
    d = face.to_dict()
    assert d["landmarks"] == [[10.13, 20.44]] and d["box"][0] == 1.23 and d["score"] == 0.9123
