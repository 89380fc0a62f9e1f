"""Hands followed from frame to frame (:class:`emolib.hands.HandTracker`, MediaPipe's video mode).

The geometry (``HandLandmarksToRectCalculator`` and the region it gives the next frame) needs only
numpy; the tracker runs the hand networks (onnxruntime) on a real ASL photo, fed as the frames of a
still video, and on frames of the live page tests' camera clip (PyAV decodes it). How close it is
to MediaPipe itself on that clip is measured by ``benchmarks/hands_vs_mediapipe.py compare-video``
(``results/benchmarks/hands_vs_mediapipe_video.json``), and ``tests/test_live_page.py`` checks that
the live page follows hands as it does.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emolib import hands as H
from emolib.fileio import PipelineInputError
from emolib.hands.tracker import ROI_LANDMARKS
from tests.conftest import needs_real

needs_hands = pytest.mark.skipif(not H.hands_available(),
                                 reason='onnxruntime is not installed (pip install "emolib[hands]")')


def _upright_hand() -> np.ndarray:
    """21 landmarks (pixels) of an upright hand: wrist at the bottom, the knuckles above it, fingers up."""
    pts = np.zeros((21, 3))
    pts[0] = (100, 200, 0)
    for f, x in enumerate((70, 85, 100, 115, 130)):  # thumb .. pinky
        for j in range(4):
            pts[1 + 4 * f + j] = (x, 160 - 20 * j, 0)
    return pts


def _turn(pts: np.ndarray, angle: float, centre=(100.0, 150.0)) -> np.ndarray:
    """``pts`` turned by ``angle`` radians clockwise on screen (y down) about ``centre``."""
    c, s = math.cos(angle), math.sin(angle)
    out = pts.copy()
    d = pts[:, :2] - centre
    out[:, 0] = centre[0] + c * d[:, 0] - s * d[:, 1]
    out[:, 1] = centre[1] + s * d[:, 0] + c * d[:, 1]
    return out


def test_landmarks_give_an_upright_box_of_the_twelve_roi_landmarks():
    pts = _upright_hand()
    rect = H.landmarks_to_rect(pts, 400, 300)
    assert abs(rect.rotation) < 1e-12, "wrist straight below the knuckles: no rotation"
    sub = pts[list(ROI_LANDMARKS)]
    assert ROI_LANDMARKS == (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
    # the finger tips and the fingers' third joints are left out: the box ends at the thumb's y 120, not 100
    assert rect.height * 300 == pytest.approx(sub[:, 1].max() - sub[:, 1].min()) == pytest.approx(80.0)
    assert rect.width * 400 == pytest.approx(60.0)
    assert (rect.x_center * 400, rect.y_center * 300) == pytest.approx((100.0, 160.0))
    # the next frame's region: squared on the long side, twice as large, moved 0.1 of it towards the fingers
    roi = H.hand_region_from_landmarks(pts, 400, 300)
    assert (roi.width * 400, roi.height * 300) == pytest.approx((160.0, 160.0))
    assert (roi.x_center * 400, roi.y_center * 300) == pytest.approx((100.0, 160.0 - 8.0))


@pytest.mark.parametrize("angle", [0.5, -1.2, 2.8])
def test_a_turned_hand_gives_the_same_box_turned(angle):
    """The box turns with the hand (rotation in radians, clockwise on screen), keeping its size."""
    pts, w, h = _upright_hand(), 400, 300
    upright, turned = H.landmarks_to_rect(pts, w, h), H.landmarks_to_rect(_turn(pts, angle), w, h)
    assert turned.rotation == pytest.approx(angle, abs=1e-9)
    assert (turned.width * w, turned.height * h) == pytest.approx((upright.width * w, upright.height * h))
    centre = _turn(np.array([[upright.x_center * w, upright.y_center * h, 0.0]]), angle)[0]
    assert (turned.x_center * w, turned.y_center * h) == pytest.approx(tuple(centre[:2]))
    roi = H.hand_region_from_landmarks(_turn(pts, angle), w, h)
    shift = _turn(np.array([[100.0, 152.0, 0.0]]), angle)[0]  # the upright region's centre, turned
    assert (roi.x_center * w, roi.y_center * h) == pytest.approx(tuple(shift[:2]))


def test_landmarks_to_rect_rejects_other_than_21_points():
    with pytest.raises(ValueError, match="21 landmarks"):
        H.landmarks_to_rect(np.zeros((12, 3)), 100, 100)


# --------------------------------------------------------------------------- with the networks


@pytest.fixture(scope="module")
def detector():
    if not H.hands_available():
        pytest.skip('onnxruntime is not installed (pip install "emolib[hands]")')
    with H.HandDetector(max_num_hands=1, model_complexity=0) as d:
        yield d


def _photo() -> np.ndarray:
    folder = needs_real("asl/train/V")
    return np.asarray(Image.open(min(folder.iterdir())).convert("RGB"))


def _counting(tracker: H.HandTracker, monkeypatch) -> list:
    """Count the palm detector's runs (the detector's ``palm_regions``) in the returned list's length."""
    calls, palm_regions = [], tracker.detector.palm_regions
    monkeypatch.setattr(tracker.detector, "palm_regions", lambda rgb: calls.append(1) or palm_regions(rgb))
    return calls


@needs_hands
def test_a_hand_is_followed_without_the_palm_detector(detector, monkeypatch):
    """max_num_hands 1: the palm detector finds the hand on the first frame only; on the next frames the
    hand is read in the region its last landmarks give, close to where the detector reads it."""
    photo = _photo()
    still = detector(photo)
    assert len(still) == 1
    tracker = H.HandTracker(detector)
    calls = _counting(tracker, monkeypatch)
    for k in range(4):
        hands = tracker(photo)
        assert len(hands) == 1 and hands[0].handedness == still[0].handedness, k
        assert tracker.palm_detected == (k == 0) and len(calls) == 1 and len(tracker.regions) == 1
        # read in another region than the palm's, the same hand: most points within a few pixels of the
        # detector's (the wrist, at the photo's lower edge, moves most: up to 20 px on this 224 x 224 photo)
        off = np.linalg.norm(hands[0].landmarks[:, :2] - still[0].landmarks[:, :2], axis=1)
        assert np.median(off) < 5 and off.max() < 30, (k, off)
        assert hands[0].score == still[0].score, "a followed hand keeps the score of the palm it came from"
    assert tracker.frames == 4 and tracker.palm_detections == 1


@needs_hands
def test_a_lost_hand_brings_the_palm_detector_back_and_reset_forgets(detector, monkeypatch):
    photo = _photo()
    tracker = H.HandTracker(detector)
    calls = _counting(tracker, monkeypatch)
    blank = np.full_like(photo, 127)
    assert len(tracker(photo)) == 1 and len(calls) == 1
    assert tracker(blank) == [] and len(calls) == 1, "a followed hand: the frame is read in its region only"
    assert tracker.regions == [], "the hand is lost (presence under min_presence): its region goes"
    assert tracker(blank) == [] and len(calls) == 2 and tracker.palm_detected, \
        "none followed: palms looked for"
    assert len(tracker(photo)) == 1 and len(calls) == 3
    tracker(photo)
    assert len(calls) == 3
    tracker.reset()
    assert tracker.regions == [] and len(tracker(photo)) == 1 and len(calls) == 4, "reset: palms looked for"
    # a frame of another size starts afresh too
    bigger = np.pad(photo, ((0, 20), (0, 20), (0, 0)), mode="edge")
    assert len(tracker(bigger)) == 1 and len(calls) == 5 and tracker.palm_detected


@needs_hands
def test_a_palm_on_a_followed_hand_is_not_a_second_hand(monkeypatch):
    """max_num_hands 2 with one hand: the palm detector runs on every frame (fewer than 2 followed) and finds
    the hand's palm, and the association step keeps the followed region, not the new palm's (MediaPipe's
    AssociationNormRectCalculator: the later stream, the followed regions, wins): one hand, read where the
    last frame's landmarks put it."""
    photo = _photo()
    with H.HandTracker(max_num_hands=2, model_complexity=0) as tracker:
        calls = _counting(tracker, monkeypatch)
        palms, counted = [], tracker.detector.palm_regions
        monkeypatch.setattr(tracker.detector, "palm_regions", lambda rgb: palms.append(counted(rgb)) or palms[-1])
        read, read_region = [], tracker.detector.read_region
        monkeypatch.setattr(tracker.detector, "read_region",
                            lambda rgb, rect, *a, **k: read.append(rect) or read_region(rgb, rect, *a, **k))
        for k in range(3):
            before, read[:] = list(tracker.regions), []
            hands = tracker(photo)
            assert len(hands) == 1 and tracker.palm_detected and len(calls) == k + 1, k
            assert len(palms[-1]) == 1, "the palm detector finds the hand's palm on every frame"
            expected = [palms[-1][0][0]] if k == 0 else before  # from frame 2 on: the followed region only
            assert read == expected, (k, read, expected)
        assert palms[-1][0][0] != tracker.regions[0], "the palm's region and the landmarks' differ on this photo"
    with pytest.raises(RuntimeError, match="closed"):  # the tracker closed the detector it made
        counted(photo)


@needs_hands
def test_palm_every_spaces_out_the_palm_detector_while_a_hand_is_followed(monkeypatch):
    """palm_every 3, max_num_hands 2, one hand: the palm detector on the first frame, then on every 3rd only
    while the hand is followed; with no hand followed, on every frame."""
    photo = _photo()
    with H.HandTracker(max_num_hands=2, model_complexity=0, palm_every=3) as tracker:
        calls = _counting(tracker, monkeypatch)
        steps = []
        for _ in range(7):
            assert len(tracker(photo)) == 1
            steps.append(tracker.palm_detected)
        assert steps == [True, False, False, True, False, False, True] and len(calls) == 3
        blank = np.full_like(photo, 127)
        tracker(blank)  # the hand is lost here (read in its region only: not a 3rd frame)
        assert not tracker.palm_detected and tracker.regions == []
        tracker(blank)
        tracker(blank)
        assert tracker.palm_detected and len(calls) == 5, "no hand followed: the palm detector on every frame"
    for bad in (0, 1.5, -2):
        with pytest.raises(ValueError, match="palm_every"):
            H.HandTracker(palm_every=bad)


@needs_hands
def test_tracker_settings_and_bad_input(detector, tmp_path):
    with pytest.raises(TypeError, match="not both"):
        H.HandTracker(detector, max_num_hands=2)
    tracker = H.HandTracker(detector)
    bad = tmp_path / "frame.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(PipelineInputError, match="frame.jpg"):
        tracker(bad)
    with pytest.raises(PipelineInputError, match="missing.png"):
        tracker(tmp_path / "missing.png")
    assert tracker.frames == 0, "a frame that cannot be read is not counted"
    closed = H.HandDetector(model_complexity=0)
    closed.close()
    with pytest.raises(RuntimeError, match="closed"):
        H.HandTracker(closed)(_photo())


@needs_hands
def test_on_camera_frames_the_palm_detector_runs_only_when_too_few_hands_are_followed(tmp_path):
    """On 20 frames of the live page tests' clip (a person gesturing with both hands): on each frame the palm
    detector ran exactly when the last frame left fewer than max_num_hands hands, every hand found gives one
    region for the next frame, and most frames were read without the palm detector."""
    pytest.importorskip("av", reason="PyAV is needed to decode the test video: pip install av")
    from tests.browser_page import write_y4m
    from tests.test_live_page import CLIP, CLIP_START_S, read_y4m

    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    y4m = Path(tmp_path) / "clip.y4m"
    write_y4m(CLIP, y4m, CLIP_START_S + 0.9, 0.7)
    frames = read_y4m(y4m)
    assert len(frames) >= 15
    with H.HandTracker(max_num_hands=2, model_complexity=0) as tracker:
        found = []
        for frame in frames:
            before = len(tracker.regions)
            hands = tracker(frame)
            assert tracker.palm_detected == (before < 2)
            assert len(tracker.regions) == len(hands)
            assert all(0 <= h.box[0] < h.box[2] <= 640 and 0 <= h.box[1] < h.box[3] <= 480 for h in hands)
            found.append(len(hands))
    assert sum(n == 2 for n in found) >= len(frames) // 2, found
    assert tracker.palm_detections <= len(frames) // 2, (tracker.palm_detections, found)
