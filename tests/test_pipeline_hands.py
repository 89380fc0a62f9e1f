"""Hands in the photo pipeline: each hand attached to its person's face, with its gesture.

Most tests run without the hand detector: the pairing of hands and faces is plain geometry,
and the pipeline accepts any hand detector, so a stand-in detector returns hands that were
found earlier in the real photos (``results/06_hand_gestures/demo.json``, written by
``benchmarks/bench_hands.py``) and the shipped ``gestures-asl`` reads them. The tests marked
``needs_hands`` run the detector itself (MediaPipe's networks with onnxruntime, the extra
``emolib[hands]`` that ``make test`` installs); the "hands off" tests hide onnxruntime.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import emolib.pipeline as P
from emolib.data import EMOTIONS, GESTURES
from emolib.hands import Hand, HandsUnavailableError, hands_available
from emolib.models import create_model, list_pretrained, save_checkpoint
from emolib.pipeline import EmotionPipeline, FaceResult, assign_hands, draw
from emolib.pipeline_cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]


def needs_real(sub: str) -> Path:
    path = Path(os.environ.get("EMOLIB_DATA", REPO.parent / "shared" / "data")) / sub
    if not path.exists():
        pytest.skip(f"real data {path} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    return path


HAVE_ORT = hands_available()
needs_hands = pytest.mark.skipif(not HAVE_ORT, reason='onnxruntime is not installed (pip install "emolib[hands]")')


@pytest.fixture
def no_onnxruntime(monkeypatch):
    """onnxruntime made unimportable, as in an install without the extra ``emolib[hands]``."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
needs_gestures = pytest.mark.skipif("gestures-asl" not in list_pretrained(), reason="gestures-asl is not shipped")


def face(x1, y1, x2, y2) -> FaceResult:
    return FaceResult(box=[x1, y1, x2, y2], score=0.99, landmarks=[[0, 0]] * 5)


def hand(side: str, wrist_xy, size: float = 40.0) -> Hand:
    x, y = wrist_xy
    lm = np.zeros((21, 3), np.float32)
    lm[:, 0], lm[:, 1] = x, y - np.linspace(0, size, 21)  # a hand pointing up from its wrist
    return Hand(box=[x - size / 2, y - size, x + size / 2, y], handedness=side, score=0.9, landmarks=lm)


# --------------------------------------------------------------------------- pairing


def test_each_hand_goes_to_the_nearest_face_in_its_own_slot():
    a, b = face(100, 100, 200, 220), face(500, 100, 600, 220)
    hands = [hand("right", (80, 380)), hand("left", (230, 390)), hand("left", (620, 400))]
    left_over = assign_hands([a, b], hands)
    assert left_over == []
    assert a.hands["right"] is hands[0] and a.hands["left"] is hands[1]
    assert b.hands["left"] is hands[2] and b.hands["right"] is None


def test_far_hands_and_a_second_hand_of_one_side_are_left_over():
    a = face(100, 100, 200, 220)  # 120 pixels high: 4 face heights = 480 pixels
    near, twin, far = hand("right", (120, 350)), hand("right", (190, 360)), hand("left", (150, 900))
    left_over = assign_hands([a], [twin, near, far])
    assert a.hands["right"] is near  # the nearer of the two "right" hands
    assert a.hands["left"] is None
    assert set(map(id, left_over)) == {id(twin), id(far)}


def test_pairing_is_the_same_at_any_scale():
    def scene(s):
        faces = [face(100 * s, 100 * s, 200 * s, 220 * s), face(300 * s, 100 * s, 400 * s, 220 * s)]
        hands = [hand("left", (250 * s, 330 * s), 40 * s), hand("right", (90 * s, 350 * s), 40 * s)]
        assign_hands(faces, hands)
        return [{k: (v.handedness if v else None) for k, v in f.hands.items()} for f in faces]

    assert scene(1) == scene(7.5)


def test_assignment_is_global_not_greedy():
    # Greedy by distance would give the left hand at x=300 to face b (nearest), leaving the
    # one at x=420 too far from a. The assignment pairs both.
    a, b = face(0, 0, 100, 100), face(400, 0, 500, 100)
    h1, h2 = hand("left", (300, 120)), hand("left", (420, 130))
    assert assign_hands([a, b], [h1, h2], max_distance=3.5) == []
    assert a.hands["left"] is h1 and b.hands["left"] is h2


def test_no_faces_or_no_hands():
    hs = [hand("left", (10, 10))]
    assert assign_hands([], hs) == hs
    f = face(0, 0, 10, 10)
    assert assign_hands([f], []) == [] and f.hands == {"left": None, "right": None}


# --------------------------------------------------------------------------- the pipeline, any detector


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(create_model("baseline"), tmp_path_factory.mktemp("ckpt") / "b.pt", EMOTIONS)


def recorded_hands() -> dict[str, list[Hand]]:
    """Hands MediaPipe found in the real photos (results/06_hand_gestures/demo.json)."""
    demo = json.loads((REPO / "results/06_hand_gestures/demo.json").read_text())
    return {name: [Hand(box=h["box"], handedness=h["handedness"], score=h["score"],
                        landmarks=np.asarray(h["landmarks"], np.float32), truncated=h["truncated"])
                   for h in hands] for name, hands in demo["photos"].items()}


class Replay:
    """A hand detector that returns the given hands (copies), and records what it was asked."""

    def __init__(self, hands: list[Hand]) -> None:
        self.hands, self.calls = hands, []

    def __call__(self, rgb, regions=None):
        self.calls.append((rgb.shape, regions))
        return [Hand(box=list(h.box), handedness=h.handedness, score=h.score, landmarks=h.landmarks.copy(),
                     truncated=h.truncated) for h in self.hands]


@needs_gestures
def test_real_photo_reads_per_person(checkpoint):
    photo = needs_real("photos") / "ivan.jpg"
    detector = Replay(recorded_hands()["ivan.jpg"])
    pipe = EmotionPipeline(checkpoint, device="cpu", hands=_classifier(), hand_detector=detector)
    r = pipe(photo)
    assert pipe.hands_on and len(r.faces) == 1 and r.hands == []
    right = r.faces[0].hands["right"]
    assert right is not None and r.faces[0].hands["left"] is None
    assert right.gesture in GESTURES and abs(sum(right.probabilities.values()) - 1) < 1e-4
    assert right.extra["emotion"] in EMOTIONS
    d = r.to_dict()
    assert d["hands"] == [] and d["faces"][0]["hands"]["right"]["gesture"] == right.gesture
    json.dumps(d)
    img = draw(photo, r)
    assert img.size == Image.open(photo).size
    x1, y1, x2, y2 = (int(v) for v in right.box)
    assert np.any(np.asarray(img)[y1:y2, x1:x2] != np.asarray(Image.open(photo).convert("RGB"))[y1:y2, x1:x2])


def _classifier():
    from emolib.gestures import GestureClassifier

    return GestureClassifier("gestures-asl")


@needs_gestures
def test_person_regions_are_asked_per_face(checkpoint):
    photo = needs_real("photos") / "two_people.jpg"
    detector = Replay([])
    pipe = EmotionPipeline(checkpoint, device="cpu", hands=_classifier(), hand_detector=detector,
                           hand_regions="person")
    r = pipe(photo)
    assert len(r.faces) == 2
    (shape, regions), = detector.calls
    assert len(regions) == 2
    for f, reg in zip(r.faces, regions):
        assert reg[0] <= f.box[0] and reg[1] <= f.box[1] and reg[2] >= f.box[2] and reg[3] >= f.box[3]
        assert 0 <= reg[0] and 0 <= reg[1] and reg[2] <= shape[1] and reg[3] <= shape[0]


def test_bad_hand_options(checkpoint):
    with pytest.raises(ValueError, match="hand_regions"):
        EmotionPipeline(checkpoint, device="cpu", hands=False, hand_regions="body")
    with pytest.raises(ValueError, match="hands must be"):
        EmotionPipeline(checkpoint, device="cpu", hands="yes")


def test_hands_off_keeps_the_result_as_before(checkpoint):
    pipe = EmotionPipeline(checkpoint, device="cpu", hands=False)
    r = pipe(np.zeros((64, 64, 3), np.uint8))
    assert not pipe.hands_on and "hands" not in r.to_dict() and "hands=off" in repr(pipe)


# --------------------------------------------------------------------------- without onnxruntime


def test_without_onnxruntime_auto_warns_once_and_reads_faces(checkpoint, monkeypatch, no_onnxruntime):
    monkeypatch.setattr(P, "_HANDS_OFF_WARNED", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = EmotionPipeline(checkpoint, device="cpu")
        second = EmotionPipeline(checkpoint, device="cpu")
    said = [w for w in caught if "hands are off" in str(w.message)]
    assert len(said) == 1 and "emolib[hands]" in str(said[0].message)
    assert not first.hands_on and not second.hands_on and "onnxruntime" in first.hands_off_reason
    assert len(first(np.zeros((64, 64, 3), np.uint8)).faces) == 0


def test_without_onnxruntime_hands_true_says_how_to_install(checkpoint, no_onnxruntime):
    with pytest.raises(HandsUnavailableError, match=r"emolib\[hands\]"):
        EmotionPipeline(checkpoint, device="cpu", hands=True)


def test_cli_hands_on_without_onnxruntime_is_a_usage_error(checkpoint, tmp_path, capsys, no_onnxruntime):
    img = tmp_path / "x.jpg"
    Image.new("RGB", (64, 64)).save(img)
    assert cli_main(["predict", str(img), "--model", str(checkpoint), "--hands", "on"]) == 2
    assert "emolib[hands]" in capsys.readouterr().err
    assert cli_main(["predict", str(img), "--model", str(checkpoint), "--json"]) == 0
    out = capsys.readouterr()
    assert out.err.count("hands are off") == 1 and "hands" not in json.loads(out.out)


# --------------------------------------------------------------------------- with the hand detector


@needs_hands
@needs_gestures
def test_detector_finds_the_speakers_hand(checkpoint):
    photo = needs_real("photos") / "ivan.jpg"
    pipe = EmotionPipeline(checkpoint, device="cpu", hands=True)
    r = pipe(photo)
    assert pipe.hands_on and len(r.faces) == 1
    found = [h for h in r.faces[0].hands.values() if h is not None]
    assert found, "the speaker's raised hand is attached to his face"
    assert all(h.gesture in GESTURES and h.extra["emotion"] for h in found)


@needs_hands
@needs_gestures
def test_cli_json_has_hands(checkpoint, capsys):
    photo = needs_real("photos") / "ivan.jpg"
    assert cli_main(["predict", str(photo), "--model", str(checkpoint), "--json", "--hands", "on"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert "hands" in d and set(d["faces"][0]["hands"]) == {"left", "right"}
    assert any(v is not None and v["gesture"] in GESTURES for v in d["faces"][0]["hands"].values())
