"""Geometry of the pipeline: hands to faces (assign_hands), person regions, face crops and box mapping.

Worked on non-square faces and images (a face is taller than wide, so widths and heights
differ) and on rotated images, with hand-made hands (anything with ``landmarks``, ``box``
and ``handedness``) and a stub detector, so no network or MediaPipe is needed.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from emolib.pipeline import EmotionPipeline, FaceResult, assign_hands, person_region
from tests.conftest import pattern


def _face(cx: float, cy: float, w: float = 50, h: float = 100) -> FaceResult:
    return FaceResult(box=[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], score=0.99, landmarks=[])


def _hand(wrist, side: str = "right", box=None, name: str = "") -> SimpleNamespace:
    """A hand whose wrist (landmark 0) is at ``wrist``; its box defaults to one above the wrist."""
    x, y = wrist
    box = box or [x - 30, y - 80, x + 30, y]
    lm = None if wrist is None else [[x, y]] + [[x, y - 10 * k] for k in range(1, 21)]
    return SimpleNamespace(landmarks=lm, box=box, handedness=side, name=name)


# --------------------------------------------------------------------------- assign_hands


def test_distance_is_in_face_heights_not_widths():
    face = _face(500, 500, w=50, h=100)  # 1 height = 2 widths
    near = _hand((500 + 350, 500), "right", name="3.5 heights = 7 widths")
    left = assign_hands([face], [near], max_distance=4.0)
    assert face.hands["right"] is near and left == []
    far = _hand((500 + 450, 500), "right", name="4.5 heights")
    assert assign_hands([face], [far], max_distance=4.0) == [far] and face.hands["right"] is None


def test_distance_is_from_the_wrist_not_the_box_centre():
    a, b = _face(200, 200), _face(800, 200)
    # the wrist sits just below face a; the hand's (long) box reaches over to face b
    hand = _hand((220, 330), "left", box=[200, 150, 900, 340])
    assert assign_hands([a, b], [hand]) == []
    assert a.hands["left"] is hand and b.hands["left"] is None
    # without landmarks, the box centre is what counts
    boxed = SimpleNamespace(landmarks=None, box=[700, 250, 900, 340], handedness="left")
    assert assign_hands([a, b], [boxed]) == [] and b.hands["left"] is boxed and a.hands["left"] is None


def test_each_face_has_one_left_and_one_right_slot():
    face = _face(500, 500)
    r1, r2 = _hand((560, 620), "right", name="near"), _hand((700, 700), "right", name="farther")
    l1 = _hand((440, 620), "left")
    rest = assign_hands([face], [r2, l1, r1])
    assert face.hands == {"left": l1, "right": r1} and rest == [r2]  # the nearer right hand wins
    odd = _hand((500, 650), "unknown")
    assert assign_hands([face], [odd]) == [odd]


def test_hands_go_to_their_own_person_by_minimum_total_distance():
    near, far = _face(300, 300, h=120), _face(700, 300, h=60)  # far person: smaller face
    # hand x is 1 near-height (120 px) from `near` and 4.7 far-heights (280 px) from `far`
    x = _hand((420, 300), "right")
    y = _hand((700, 420), "right")  # 2 far-heights below `far`, 3.5 near-heights from `near`
    rest = assign_hands([far, near], [y, x])
    assert rest == [] and near.hands["right"] is x and far.hands["right"] is y


def test_no_faces_or_no_hands():
    hand = _hand((10, 10))
    assert assign_hands([], [hand]) == [hand]
    face = _face(50, 50)
    face.hands = {"left": "stale", "right": "stale"}
    assert assign_hands([face], []) == [] and face.hands == {"left": None, "right": None}


# --------------------------------------------------------------------------- person regions


def test_person_region_reaches_widths_sideways_and_heights_down():
    # face 50 wide, 100 high: 2.5 widths (125 px) to each side, 1 height above, 4 heights (400 px) below
    assert person_region([300, 200, 350, 300], 2000, 1500) == [175.0, 100.0, 475.0, 700.0]
    assert person_region([20, 50, 70, 150], 400, 500) == [0.0, 0.0, 195.0, 500.0]  # clipped to the image


# --------------------------------------------------------------------------- crops and boxes


class StubDetector:
    """Returns fixed boxes in the pixels of the image it is given, and records that image's size."""

    min_face_size = 32

    def __init__(self, boxes):
        self.boxes = np.asarray(boxes, np.float32)
        self.seen = None

    def detect(self, img, landmarks=True):
        self.seen = np.asarray(img).shape[:2]
        points = np.stack([np.stack([(b[0] + b[2]) / 2 * np.ones(5), (b[1] + b[3]) / 2 * np.ones(5)], 1)
                           for b in self.boxes])
        return self.boxes.copy(), np.full(len(self.boxes), 0.99, np.float32), points.astype(np.float32)


def _pipe(boxes=((0, 0, 10, 10),), **kw) -> EmotionPipeline:
    return EmotionPipeline(None, detector=StubDetector(boxes), hands=False, contrast=None, **kw)


def _unnorm(t) -> np.ndarray:
    return (t.numpy() * 0.5 + 0.5) * 255  # the 48x48 gray input back to grey levels


def _gray_scene(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    g = (x * 255 // w + rng.integers(0, 30, (h, w))).clip(0, 255).astype(np.uint8)
    g[: h // 3, : w // 4] = 240
    return np.stack([g, g, g], -1)


def test_crop_is_a_square_of_the_long_side_around_the_box():
    scene = _gray_scene(300, 400)
    box = np.array([[150, 60, 190, 140]], np.float32)  # 40 wide, 80 high: the square is 80 x 80 (margin 0)
    got = _unnorm(_pipe(margin=0.0).preprocess(Image.fromarray(scene), box))[0, 0]
    square = scene[60:140, 130:210, 0]
    expected = np.asarray(Image.fromarray(square).resize((48, 48), Image.BILINEAR), np.float64)
    assert np.abs(got - expected).max() < 0.6
    # margin 0.5: a 120 x 120 square around the same centre
    got = _unnorm(_pipe(margin=0.5).preprocess(Image.fromarray(scene), box))[0, 0]
    expected = np.asarray(Image.fromarray(scene[40:160, 110:230, 0]).resize((48, 48), Image.BILINEAR), np.float64)
    assert np.abs(got - expected).max() < 0.6


def test_crop_of_a_rotated_image_is_the_rotated_crop():
    scene = _gray_scene(240, 320)
    box = [100, 40, 180, 120]  # square, well inside
    img = Image.fromarray(scene)
    rotated = img.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise: (x, y) -> (y, W - x)
    W = scene.shape[1]
    rbox = [box[1], W - box[2], box[3], W - box[0]]
    a = _unnorm(_pipe(margin=0.0).preprocess(img, np.array([box], np.float32)))[0, 0]
    b = _unnorm(_pipe(margin=0.0).preprocess(rotated, np.array([rbox], np.float32)))[0, 0]
    assert np.abs(np.rot90(a) - b).mean() < 1.0
    assert np.abs(a - b).mean() > 10  # and the rotation shows


def test_crop_outside_the_image_repeats_the_border():
    scene = _gray_scene(100, 100)
    box = np.array([[-20, 0, 20, 40]], np.float32)  # half off the left edge
    got = _unnorm(_pipe(margin=0.0).preprocess(Image.fromarray(scene), box))[0, 0]
    padded = np.pad(scene[0:40, 0:20, 0], ((0, 0), (20, 0)), mode="edge")
    expected = np.asarray(Image.fromarray(padded).resize((48, 48), Image.BILINEAR), np.float64)
    assert np.abs(got - expected).max() < 0.6


def test_crop_goes_to_gray_by_itu_r_601_luma():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (48, 48, 3)).astype(np.uint8)
    rgb[:, :, 0] = 250
    got = _unnorm(_pipe(margin=0.0).preprocess(Image.fromarray(rgb), np.array([[0, 0, 48, 48]], np.float32)))[0, 0]
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    assert np.abs(got - (0.299 * r + 0.587 * g + 0.114 * b)).max() < 1.0


@pytest.mark.parametrize("size", [(3000, 1000), (900, 2700)])
def test_boxes_of_a_downscaled_image_are_mapped_back(size):
    w, h = size
    small_box = [100.0, 50.0, 200.0, 170.0]
    pipe = _pipe([small_box], max_side=1000)
    boxes, scores, points = pipe.detect(Image.new("RGB", (w, h), (90, 90, 90)))
    sh, sw = pipe.detector.seen
    assert max(sh, sw) == 1000 and abs(sw / sh - w / h) < 0.01  # the detector saw the image, downscaled
    sx, sy = w / sw, h / sh
    assert boxes.shape == (1, 4)
    np.testing.assert_allclose(boxes[0], [100 * sx, 50 * sy, 200 * sx, 170 * sy], rtol=0.005)
    np.testing.assert_allclose(points[0][:, 0], 150 * sx, rtol=0.005)
    np.testing.assert_allclose(points[0][:, 1], 110 * sy, rtol=0.005)


def test_boxes_are_clipped_and_sorted_left_to_right():
    pipe = _pipe([[300, 10, 360, 90], [-15, 20, 40, 110], [120, -5, 170, 60]], max_side=None)
    boxes, _, _ = pipe.detect(Image.new("RGB", (350, 100)))
    np.testing.assert_allclose(boxes, [[0, 20, 40, 100], [120, 0, 170, 60], [300, 10, 350, 90]])


# --------------------------------------------------------------------------- loading arrays, results, CSV


def test_load_image_reads_every_array_kind_as_the_same_rgb():
    from emolib.pipeline import load_image

    rgb = pattern(16, "RGB", 120, seed=21)
    ref = np.asarray(load_image(rgb))
    assert np.array_equal(ref, rgb)
    assert np.array_equal(np.asarray(load_image(np.ascontiguousarray(rgb[:, :, ::-1]), bgr=True)), rgb)
    assert np.array_equal(np.asarray(load_image(rgb[:, :, ::-1].copy())), rgb[:, :, ::-1])  # bgr=False: as given
    assert np.array_equal(np.asarray(load_image(rgb / 255.0)), rgb)  # floats in [0, 1]
    assert np.array_equal(np.asarray(load_image(rgb.astype(np.float32))), rgb)  # floats in [0, 255]
    assert np.array_equal(np.asarray(load_image(rgb.astype(np.int64))), rgb)
    assert np.array_equal(np.asarray(load_image(torch.from_numpy(rgb).permute(2, 0, 1))), rgb)  # CHW tensor
    gray = rgb[:, :, 1]
    assert np.array_equal(np.asarray(load_image(gray)), np.stack([gray] * 3, -1))
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = True
    assert np.asarray(load_image(mask))[0, 0].tolist() == [255, 255, 255] and np.asarray(load_image(mask)).sum() == 765
    half = np.dstack([rgb, np.full((16, 16), 0, np.uint8)])  # fully transparent: white, as composited
    assert np.asarray(load_image(half)).min() == 255
    bgra = np.dstack([rgb[:, :, ::-1], np.full((16, 16), 255, np.uint8)])
    assert np.array_equal(np.asarray(load_image(bgra, bgr=True)), rgb)


def test_results_to_dict_round_numbers_and_keep_hands():
    from emolib.pipeline import PipelineResult

    face = FaceResult(box=[1.23456, 2, 3, 4], score=0.987654321, landmarks=[[1.005, 2.0]], emotion="happy",
                      probabilities={"happy": 0.123456789})
    d = face.to_dict()
    assert d["box"] == [1.23, 2.0, 3.0, 4.0] and d["score"] == 0.9877 and d["probabilities"] == {"happy": 0.1235}
    assert d["hands"] == {"left": None, "right": None} and d["emotion"] == "happy"
    r = PipelineResult(image_size=(640, 480), faces=[face], source="x.jpg")
    assert r.to_dict() == {"image": "x.jpg", "image_size": [640, 480], "faces": [d]} and len(r) == 1
    r.hands_on = True
    assert r.to_dict()["hands"] == []


def test_emotion_csv_round_trip(tmp_path):
    from emolib.pipeline import read_emotion_csv, write_emotion_csv

    rows = [{"time_s": 0.5, "frame": 15, "face": 0, "x1": 1, "y1": 2, "x2": 3, "y2": 4, "score": 0.99,
             "emotion": "happy", "a": 0.25, "b": 0.75, "left_gesture": "punch", "right_gesture": ""},
            {"time_s": 1.0, "frame": 30, "face": "", "emotion": "", "a": "", "b": "", "left_gesture": "",
             "right_gesture": "victory"}]
    path = tmp_path / "sub" / "out.csv"
    write_emotion_csv(rows, path, ["a", "b"])
    assert path.read_text().splitlines()[0] == "time_s,frame,face,x1,y1,x2,y2,score,emotion,a,b,left_gesture,right_gesture"
    back = read_emotion_csv(path)
    assert back[0]["time_s"] == 0.5 and back[0]["frame"] == 15.0 and back[0]["a"] == 0.25
    assert back[0]["emotion"] == "happy" and back[0]["left_gesture"] == "punch" and back[0]["right_gesture"] is None
    assert back[1]["emotion"] is None and back[1]["face"] is None and back[1]["x1"] is None
    assert back[1]["right_gesture"] == "victory"


def test_list_images_filters_and_sorts(tmp_path):
    from emolib.pipeline import PipelineInputError, list_images

    for name in ("b.JPG", "a.png", ".hidden.jpg", "notes.txt", "c.webp"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "d.jpg").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.png", "b.JPG", "c.webp"]
    assert list_images(tmp_path / "notes.txt") == [tmp_path / "notes.txt"]
    with pytest.raises(PipelineInputError, match="no such file or folder"):
        list_images(tmp_path / "missing")


def test_clahe_on_one_tile_is_clipped_histogram_equalisation_by_hand():
    from emolib.pipeline import clahe

    # 16x16, half 0 and half 255. One tile, area 256; clip limit 1 x mean bin count = 1 pixel a bin:
    # both bins clipped from 128 to 1, the excess 254 spread as 254/256 over every bin. The mapping
    # (cumulative histogram x 255 / area) sends 0 to (1 + 254/256) * 255/256 = 1.98 -> 2, and 255 to 255.
    img = np.zeros((16, 16), np.uint8)
    img[:, 8:] = 255
    out = clahe(img, clip_limit=1.0, grid=1)
    assert set(np.unique(out[:, :8]).tolist()) == {2} and set(np.unique(out[:, 8:]).tolist()) == {255}
    # no clipping (a high limit): plain equalisation, 0 -> 128 * 255/256 = 127.5 -> 128
    out = clahe(img, clip_limit=1000.0, grid=1)
    assert set(np.unique(out[:, :8]).tolist()) == {128} and set(np.unique(out[:, 8:]).tolist()) == {255}
    # several tiles: every tile's mapping is monotonic, so a left-to-right ramp stays increasing
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (64, 1))
    out = clahe(ramp, clip_limit=2.0, grid=(2, 4))
    assert out.shape == ramp.shape and np.all(np.diff(out.astype(int), axis=1) >= -1)  # still increasing


# --------------------------------------------------------------------------- written from sampled mutants (issue 17)


def test_distance_is_from_the_face_box_centre_vertically_too():
    face = _face(500, 500, w=50, h=100)  # centre (500, 500): a hand straight below it
    below = _hand((500, 500 + 390), "right")  # 3.9 heights
    assert assign_hands([face], [below], max_distance=4.0) == [] and face.hands["right"] is below
    lower = _hand((500, 500 + 410), "right")  # 4.1 heights
    assert assign_hands([face], [lower], max_distance=4.0) == [lower] and face.hands["right"] is None
