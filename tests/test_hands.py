"""Hands and gestures: landmark normalisation, the classifiers, evaluation, the shipped model.

Most tests need only numpy and torch. Those that run the hand detector (MediaPipe's networks
as ONNX, run by onnxruntime: ``pip install "emolib[hands]"``, which ``make test`` installs) skip
with a reason where onnxruntime is missing; ``tests/data/hands_mediapipe_reference.json``
(MediaPipe 0.10.21's own hands on a few photos, recorded by ``benchmarks/hands_vs_mediapipe.py``)
is what the detector is compared with.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from emolib import cli
from emolib import data as D
from emolib import gestures as G
from emolib import hands as H
from emolib import models as M
from emolib.train import TrainConfig, fit
from tests.conftest import needs_real

HAVE_ORT = H.hands_available()
needs_hands = pytest.mark.skipif(not HAVE_ORT, reason='onnxruntime is not installed (pip install "emolib[hands]")')
REFERENCE = Path(__file__).parent / "data" / "hands_mediapipe_reference.json"
JSON_KEYS = {"accuracy", "n", "per_class", "auc", "macro_f1", "confusion", "classes", "model", "data", "skipped",
             "no_hand"}


def _hand(seed: int = 0) -> np.ndarray:
    """A plausible right hand in pixels: wrist at the bottom, fingers up, z small."""
    rng = np.random.default_rng(seed)
    pts = np.zeros((21, 3))
    pts[0] = (100, 200, 0)
    for f, base_x in enumerate((70, 85, 100, 115, 130)):  # thumb .. pinky
        for j in range(4):
            pts[1 + 4 * f + j] = (base_x + rng.normal(0, 3), 160 - 20 * j + rng.normal(0, 3), rng.normal(0, 5))
    pts[9, :2] = (100, 150)
    return pts


def _similar(pts: np.ndarray, angle: float, scale: float, shift) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = pts.copy()
    out[:, :2] = pts[:, :2] @ np.array([[c, s], [-s, c]]) * scale + np.asarray(shift)
    out[:, 2] = pts[:, 2] * scale
    return out


# --------------------------------------------------------------------------- normalisation


def test_normalisation_is_invariant_to_translation_scale_and_rotation():
    p = _hand()
    ref = H.normalize_landmarks(p, "right")
    assert ref.shape == (21, 3) and ref.dtype == np.float32
    assert np.allclose(ref[0], 0) and np.isclose(np.linalg.norm(ref[9, :2]), 1)
    assert np.allclose(ref[9, :2], [0, -1], atol=1e-6), "rotated upright: wrist -> middle knuckle points up"
    for angle, scale, shift in ((0.0, 3.0, (500, -40)), (0.7, 0.25, (3, 3)), (-2.5, 1.7, (-100, 900))):
        moved = _similar(p, angle, scale, shift)
        assert np.allclose(H.normalize_landmarks(moved, "right"), ref, atol=1e-5)
        # without rotation it is still invariant to translation and scale
        if angle == 0.0:
            assert np.allclose(H.normalize_landmarks(moved, "right", rotate=False),
                               H.normalize_landmarks(p, "right", rotate=False), atol=1e-5)
    rotated = _similar(p, 0.7, 1.0, (0, 0))
    assert not np.allclose(H.normalize_landmarks(rotated, "right", rotate=False),
                           H.normalize_landmarks(p, "right", rotate=False), atol=1e-3)


def test_normalising_no_hand_gives_an_empty_batch():
    """A batch of zero hands (no photo had one) with its empty list of sides: an empty batch, not an
    indexing error (an empty list of sides made a float array, which cannot index)."""
    out = H.normalize_landmarks(np.zeros((0, 21, 3), np.float32), [])
    assert out.shape == (0, 21, 3)
    out = H.normalize_landmarks(np.zeros((0, 21, 3), np.float32), np.array([], dtype=object))
    assert out.shape == (0, 21, 3)


def test_a_mirrored_left_hand_maps_to_the_right_hand():
    p = _hand(1)
    left = H.mirror_landmarks(p, width=640)  # the same hand shape seen as a left hand in a 640-wide photo
    assert np.allclose(H.normalize_landmarks(left, "left"), H.normalize_landmarks(p, "right"), atol=1e-5)
    assert not np.allclose(H.normalize_landmarks(left, "right"), H.normalize_landmarks(p, "right"), atol=1e-3)
    both = H.normalize_landmarks(np.stack([p, left]), ["right", "left"])
    assert both.shape == (2, 21, 3) and np.allclose(both[0], both[1], atol=1e-5)
    feats = H.landmark_features(np.stack([p, left]), ["Right", "LEFT"], use_z=False)
    assert feats.shape == (2, 42)


def test_normalisation_rejects_bad_input():
    with pytest.raises(ValueError, match="handedness"):
        H.normalize_landmarks(_hand(), "both")
    with pytest.raises(ValueError, match=r"\(\.\.\., 21, 3\)"):
        H.normalize_landmarks(np.zeros((20, 3)))
    with pytest.raises(ValueError, match="2 handedness labels for 3"):
        H.normalize_landmarks(np.stack([_hand()] * 3), ["left", "right"])
    # a degenerate hand (all points on the wrist) does not divide by zero
    assert np.isfinite(H.normalize_landmarks(np.zeros((21, 3)))).all()


# --------------------------------------------------------------------------- the landmark classifier


def _gesture_problem(n: int = 400, seed: int = 0):
    """Four hand shapes (one per class), seen anywhere, at any size and angle, as left or right hands."""
    rng = np.random.default_rng(seed)
    shapes = [_hand(100 + k) for k in range(4)]
    for k, s in enumerate(shapes):  # make the classes clearly different: curl k fingers
        for f in range(k + 1):
            s[1 + 4 * (f + 1) + 3, 1] += 60
    lms, hands, ys = [], [], []
    for i in range(n):
        k = i % 4
        p = shapes[k] + rng.normal(0, 2, (21, 3))
        p = _similar(p, rng.uniform(-np.pi, np.pi), rng.uniform(0.3, 3), rng.uniform(0, 800, 2))
        side = "right" if rng.random() < 0.5 else "left"
        if side == "left":
            p = H.mirror_landmarks(p, 1000)
        lms.append(p)
        hands.append(side)
        ys.append(k)
    return np.array(lms), hands, np.array(ys)


def test_landmark_mlp_learns_a_generated_problem_and_classifies_hands(tmp_path):
    lms, sides, ys = _gesture_problem()
    feats = H.normalize_landmarks(lms, sides)
    classes = D.GESTURES
    train = G.LandmarkDataset(feats[:300], ys[:300], classes, {"noise": 0.02, "scale": 0.05, "mirror": 0.1})
    val = G.LandmarkDataset(feats[300:], ys[300:], classes)
    x, y = train[0]
    assert x.shape == (63,) and isinstance(y, int)
    model = G.landmark_mlp(4)
    hist = fit(model, train, val, TrainConfig(epochs=15, batch_size=32, lr=3e-3, channels_last=False,
                                              device="cpu"), progress=False)
    assert hist[-1]["val_acc"] > 0.9
    path = M.save_checkpoint(model, tmp_path / "lm.pt", classes, kind="landmarks",
                             normalization={"rotate": True, "use_z": True})
    clf = G.GestureClassifier(path)
    assert clf.kind == "landmarks" and clf.classes == classes
    hands = [H.Hand(box=[0, 0, 1, 1], handedness=s, score=0.9, landmarks=p) for p, s in zip(lms[300:], sides[300:])]
    out = clf.classify(None, hands)
    assert len(out) == len(hands)
    gesture, probs = out[0]
    assert gesture in classes and set(probs) == set(classes) and abs(sum(probs.values()) - 1) < 1e-5
    assert hands[0].gesture == gesture and hands[0].probabilities == probs
    acc = np.mean([classes.index(g) == t for (g, _), t in zip(out, ys[300:])])
    assert acc > 0.9
    assert clf.classify(None, []) == []  # no hand: no answer
    assert clf.emotion("punch") == "angry" and clf.emotion("victory") == "happy"


def test_landmark_augmentation_options_are_checked():
    with pytest.raises(ValueError, match="unknown landmark augmentation"):
        G.LandmarkDataset(np.zeros((2, 21, 3)), [0, 1], ("a", "b"), {"blur": 1})


def test_landmark_mlp_is_small_and_takes_both_layouts():
    m = G.landmark_mlp(4)
    assert m.emolib_name == G.LANDMARK_ARCH and m.input_config == G.LANDMARK_INPUT
    assert m(torch.zeros(5, 63)).shape == (5, 4) and m(torch.zeros(5, 21, 3)).shape == (5, 4)
    assert M.count_parameters(m) < 50_000
    assert G.landmark_mlp(4, in_chans=2)(torch.zeros(2, 42)).shape == (2, 4)
    if G.LANDMARK_ARCH in M.list_models():  # once emolib.models registers it
        assert M.count_parameters(M.create_model(G.LANDMARK_ARCH)) == M.count_parameters(m)


# --------------------------------------------------------------------------- data, map, split, metrics


def test_gesture_map_is_validated(asl_folders):
    with pytest.raises(ValueError, match="two letters to one gesture"):
        G.asl_files(asl_folders, letter_to_gesture={"A": "punch", "F": "punch"})
    with pytest.raises(ValueError, match="ASL letters"):
        G.asl_files(asl_folders, letter_to_gesture={"AB": "punch"})
    with pytest.raises(ValueError, match="empty"):
        G.asl_files(asl_folders, letter_to_gesture={})
    paths, labels, classes = G.asl_files(asl_folders, letter_to_gesture={"V": "peace", "A": "fist"})
    assert classes == ("peace", "fist") and len(paths) == 8 and labels.count(0) == 4
    assert all("/V/" in p for p, y in zip(paths, labels) if y == 0)


def test_asl_split_is_the_split_of_the_image_models(asl_folders):
    for n in range(3):  # more photos, so that the split has something to shuffle
        for letter in "AFLV":
            shutil.copy(asl_folders / "train" / letter / f"{letter}0.jpg", asl_folders / "train" / letter / f"x{n}.jpg")
    split = G.asl_split(asl_folders, 0.25, seed=3)
    _, val = D.train_val_split(D.ASLGestures(asl_folders, size=16, cache=False), 0.25, seed=3)
    assert [split["paths"][i] for i in split["val_idx"]] == val.paths
    assert len(split["train_idx"]) + len(split["val_idx"]) == 28
    assert set(split["train_idx"]).isdisjoint(split["val_idx"])


def test_gesture_metrics_count_no_hand_as_errors():
    y = np.array([0, 0, 1, 1, 2, 3])
    probs = np.eye(4)[[0, 0, 1, 1, 2, 3]]
    found = np.array([True, False, True, True, True, False])
    r = G.gesture_metrics(y, probs, found, D.GESTURES)
    assert r["n"] == 6 and r["no_hand"] == 2 and r["hands_found"] == 4
    assert r["accuracy"] == pytest.approx(4 / 6) and r["accuracy_with_hand"] == 1.0
    assert r["per_class"]["punch"]["recall"] == 0.5 and r["per_class"]["victory"]["recall"] == 0.0
    assert r["per_class"]["punch"]["precision"] == 1.0  # a photo without a hand is nobody's false positive
    assert r["no_hand_per_class"] == {"punch": 1, "super": 0, "loser": 0, "victory": 1}
    cm = np.array(r["confusion"])
    assert cm.shape == (4, 4) and cm.sum() == 4
    assert (cm.sum(1) + np.array(list(r["no_hand_per_class"].values()))).tolist() == [2, 2, 1, 1]
    from emolib.metrics import format_report

    report = G.gesture_report(y, np.where(found, probs.argmax(1), -1), D.GESTURES)
    assert report["accuracy"] == pytest.approx(4 / 6) and "micro avg" not in report
    assert "accuracy" in format_report(report) and "0.67" in format_report(report)


# --------------------------------------------------------------------------- evaluate (CLI) on folders


@pytest.fixture
def image_gesture_ckpt(tmp_path):
    model = M.create_model("emonet", num_classes=4, in_chans=1)
    model.input_config = M.input_config("emonet", size=32)
    return M.save_checkpoint(model, tmp_path / "img.pt", D.GESTURES, kind="image",
                             letter_to_gesture=D.DEFAULT_LETTER_TO_GESTURE)


def _evaluate_argv(args: argparse.Namespace) -> list[str]:
    """``emolib evaluate`` arguments for the model, folder and ``--json`` of ``args``."""
    return ["evaluate", "--model", str(args.model), "--data", str(args.data)] + (["--json"] if args.json else [])


def test_evaluate_an_image_gesture_model_on_a_letter_folder(asl_folders, image_gesture_ckpt, capsys):
    assert G.is_gesture_model(image_gesture_ckpt)
    assert not G.is_gesture_model("no-such-model")
    emotions = M.save_checkpoint(M.create_model("baseline"), image_gesture_ckpt.with_name("e.pt"), D.EMOTIONS)
    assert not G.is_gesture_model(emotions)
    (asl_folders / "train" / "B").mkdir()  # other ASL letters are ignored
    args = argparse.Namespace(model=str(image_gesture_ckpt), data=asl_folders / "train", json=True, tta=None)
    assert cli.main(_evaluate_argv(args)) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert JSON_KEYS <= set(out) and out["n"] == 16 and out["no_hand"] == 0 and out["kind"] == "image"
    assert out["classes"] == list(D.GESTURES) and set(out["per_class"]["punch"]) == {
        "precision", "recall", "f1-score", "support"}
    args.json = False
    assert cli.main(_evaluate_argv(args)) == 0
    assert "precision" in capsys.readouterr().out
    args.data = asl_folders / "missing"
    assert cli.main(_evaluate_argv(args)) == 2 and "expected a folder" in capsys.readouterr().err


def test_emolib_evaluate_dispatches_gesture_models(asl_folders, image_gesture_ckpt, capsys):
    assert cli.main(["evaluate", "--model", str(image_gesture_ckpt), "--data", str(asl_folders / "train"),
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert JSON_KEYS <= set(out) and out["n"] == 16


def _landmark_ckpt(tmp_path):
    model = G.landmark_mlp(4)
    return M.save_checkpoint(model, tmp_path / "lm.pt", D.GESTURES, kind="landmarks",
                             letter_to_gesture=D.DEFAULT_LETTER_TO_GESTURE)


@pytest.fixture
def no_onnxruntime(monkeypatch):
    """onnxruntime made unimportable (as in an install without the extra ``emolib[hands]``)."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert not H.hands_available()


def test_without_onnxruntime_a_landmark_model_says_how_to_install_it(asl_folders, tmp_path, capsys, no_onnxruntime):
    with pytest.raises(H.HandsUnavailableError, match=r'pip install "emolib\[hands\]"'):
        H.HandDetector()
    ckpt = _landmark_ckpt(tmp_path)
    with pytest.raises(H.HandsUnavailableError, match=r'pip install "emolib\[hands\]"'):
        G.evaluate_gestures(ckpt, asl_folders / "train")
    args = argparse.Namespace(model=str(ckpt), data=asl_folders / "train", json=True, tta=None)
    assert cli.main(_evaluate_argv(args)) == 2
    assert 'pip install "emolib[hands]"' in capsys.readouterr().err


# --------------------------------------------------------------------------- the shipped model


def test_shipped_gesture_model_loads_and_has_a_card():
    if "gestures-asl" not in M.list_pretrained():
        pytest.skip("gestures-asl is not shipped in this checkout")
    model = G.load_gesture_model("gestures-asl")
    assert model.emolib_name == G.LANDMARK_ARCH and model.classes == D.GESTURES
    if G.LANDMARK_ARCH in M.list_models():  # once emolib.models registers it, load_model reads it too
        assert M.load_model("gestures-asl").classes == D.GESTURES
    card = M.model_card("gestures-asl")
    assert card["name"] == "gestures-asl" and card["kind"] == "landmarks"
    assert card["val"]["classes"] == list(D.GESTURES)
    # The stated accuracy is the one its own confusion matrix gives (photos without a hand count as wrong).
    confusion = np.array(card["val"]["confusion"])
    assert confusion.shape == (4, 4) and confusion.sum() + card["val"]["no_hand"] == card["val"]["n"]
    assert card["val"]["accuracy"] == pytest.approx(np.trace(confusion) / card["val"]["n"])
    assert {"no_hand", "confusion", "per_class"} <= set(card["val"]) and card["command"]
    assert card["size_bytes"] < 3_000_000 and (M.CHECKPOINT_DIR / "gestures-asl.md").is_file()
    assert G.is_gesture_model("gestures-asl")
    clf = G.GestureClassifier("gestures-asl")
    probs = clf.predict_landmarks(np.stack([_hand(), H.mirror_landmarks(_hand(), 300)]), ["right", "left"])
    assert probs.shape == (2, 4) and np.allclose(probs[0], probs[1], atol=1e-5)  # one classifier for both hands


# --------------------------------------------------------------------------- with the detector


@pytest.fixture(scope="module")
def detector():
    if not HAVE_ORT:
        pytest.skip('onnxruntime is not installed (pip install "emolib[hands]")')
    with H.HandDetector(max_num_hands=2) as d:
        yield d


def _real_hand_photo():
    folder = needs_real("asl/train/V")
    return np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(sorted(folder.iterdir())[0]).convert("RGB"))


@needs_hands
def test_no_hand_gives_an_empty_list(detector):
    assert detector(np.full((240, 320, 3), 127, np.uint8)) == []
    rng = np.random.default_rng(0)
    assert detector(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)) == []


@needs_hands
def test_a_real_hand_two_hands_and_a_hand_cut_by_the_border(detector):
    photo = _real_hand_photo()
    hands = detector(photo)
    assert len(hands) >= 1
    hand = hands[0]
    h, w = photo.shape[:2]
    x1, y1, x2, y2 = hand.box
    assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
    assert hand.landmarks.shape == (21, 3) and hand.handedness in ("left", "right") and 0 < hand.score <= 1
    assert json.loads(json.dumps(hand.to_dict()))["handedness"] == hand.handedness
    # two hands: the photo beside its mirror image; each keeps its own handedness, left to right
    pad = np.full((h, w // 2, 3), 255, np.uint8)
    pair = np.concatenate([photo, pad, photo[:, ::-1]], axis=1)
    two = detector(pair)
    assert len(two) == 2 and two[0].box[0] < two[1].box[0]
    assert {two[0].handedness, two[1].handedness} == {"left", "right"}
    assert two[0].handedness == hand.handedness
    # a hand cut by the border: keep the lower 70 % of the hand box (the finger tips leave the photo at the top)
    cut = np.ascontiguousarray(photo[int(y2 - 0.7 * (y2 - y1)):])
    found = detector(cut)
    assert len(found) == 1, "the detector finds the cut hand (it looks again in a padded copy)"
    assert found[0].truncated and found[0].box[1] == 0 and found[0].box[3] <= cut.shape[0]
    assert found[0].landmarks[:, 1].min() < 0, "the cut-off landmarks lie outside the photo"
    assert not hand.truncated or hand.box[0] == 0 or hand.box[2] == w or hand.box[1] == 0 or hand.box[3] == h


@needs_hands
def test_regions_map_back_to_full_image_pixels(detector):
    photo = _real_hand_photo()
    h, w = photo.shape[:2]
    canvas = np.full((2 * h, 2 * w, 3), 255, np.uint8)
    canvas[h:, w:] = photo
    full = detector(photo)
    inside = detector(canvas, regions=[[w - 10, h - 10, 2 * w, 2 * h], [w, h, 2 * w, 2 * h]])
    assert len(inside) == len(full) >= 1  # found in both regions, kept once
    assert np.allclose(np.array(inside[0].box) - [w, h, w, h], full[0].box, atol=6)


@needs_hands
@pytest.mark.realdata
def test_shipped_model_reads_real_photos(tmp_path):
    if "gestures-asl" not in M.list_pretrained():
        pytest.skip("gestures-asl is not shipped in this checkout")
    src = needs_real("asl/train")
    # 5 validation photos of every letter: photos the model was not trained on (its card's split)
    card = M.model_card("gestures-asl")
    split = G.asl_split(src.parent, card["recipe"]["val_fraction"], card["recipe"]["config"]["seed"])
    for letter in "AFLV":
        (tmp_path / letter).mkdir()
        val = sorted(split["paths"][i] for i in split["val_idx"] if Path(split["paths"][i]).parent.name == letter)
        for f in val[:5]:
            (tmp_path / letter / Path(f).name).symlink_to(f)
    r = G.evaluate_gestures("gestures-asl", tmp_path, progress=False, cache=False)
    # its card: 99.6 % of 800 validation photos; 20 photos leave room for one miss
    assert JSON_KEYS <= set(r) and r["n"] == 20 and r["accuracy"] >= 0.95, r
    clf = G.GestureClassifier("gestures-asl")
    hands = clf(str(src / "V" / sorted(p.name for p in (src / "V").iterdir())[0]))
    assert hands and hands[0].gesture in D.GESTURES


# --------------------------------------------------------------------------- MediaPipe's graph, piece by piece


def test_ssd_anchors_are_mediapipes_2016():
    from emolib.hands.palm import ssd_anchors

    a = ssd_anchors()
    assert a.shape == (2016, 2)
    # stride 8: a 24 x 24 grid, 2 anchors per cell; then stride 16: 12 x 12, 6 per cell
    assert np.allclose(a[0], [0.5 / 24, 0.5 / 24]) and np.allclose(a[1], a[0]) and np.allclose(a[2], [1.5 / 24, 0.5 / 24])
    assert np.allclose(a[1152], [0.5 / 12, 0.5 / 12]) and np.allclose(a[1152:1158], a[1152])
    assert np.allclose(a[-1], [11.5 / 12, 11.5 / 12])


def test_weighted_nms_averages_overlapping_palms_and_keeps_the_best_score():
    from emolib.hands.palm import PalmDetection, weighted_nms

    kp = np.zeros((7, 2))
    a = PalmDetection(np.array([0.1, 0.1, 0.2, 0.2]), kp + 0.2, 0.9)
    b = PalmDetection(np.array([0.12, 0.1, 0.2, 0.2]), kp + 0.3, 0.6)  # overlaps a (IoU 0.82)
    c = PalmDetection(np.array([0.6, 0.6, 0.2, 0.2]), kp + 0.7, 0.55)  # elsewhere
    out = weighted_nms([a, b, c])
    assert len(out) == 2 and out[0].score == 0.9 and out[1].score == 0.55
    assert np.isclose(out[0].box[0], (0.1 * 0.9 + 0.12 * 0.6) / 1.5)
    assert np.allclose(out[0].keypoints, (0.2 * 0.9 + 0.3 * 0.6) / 1.5)
    assert weighted_nms([]) == []


def test_hand_region_from_a_palm_is_upright_scaled_and_shifted():
    from emolib.hands.palm import PalmDetection, palm_to_rect

    kp = np.zeros((7, 2))
    kp[0], kp[2] = (0.5, 0.6), (0.5, 0.4)  # wrist below the middle knuckle: the hand points up
    rect = palm_to_rect(PalmDetection(np.array([0.4, 0.4, 0.2, 0.2]), kp, 0.9), 200, 100)
    assert abs(rect.rotation) < 1e-9
    assert np.isclose(rect.x_center, 0.5) and np.isclose(rect.y_center, 0.5 - 0.5 * 0.2)  # shifted up by half
    # squared on the long side in pixels (0.2 * 200 = 40 px), then scaled by 2.6
    assert np.isclose(rect.width * 200, 2.6 * 40) and np.isclose(rect.height * 100, 2.6 * 40)
    kp[2] = (0.6, 0.6)  # knuckle to the right of the wrist: the region turns by 90 degrees
    rect = palm_to_rect(PalmDetection(np.array([0.4, 0.4, 0.2, 0.2]), kp, 0.9), 100, 100)
    assert np.isclose(rect.rotation, np.pi / 2)


def test_warp_samples_like_opencv():
    from emolib.hands.warp import RotatedRect, image_to_tensor, warp

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    # the whole image at its own size is the image itself
    assert np.array_equal(warp(img, RotatedRect(30, 25, 60, 50), 60, 50), img)
    # a half-turned region is the image upside down
    assert np.array_equal(warp(img, RotatedRect(30, 25, 60, 50, np.pi), 60, 50)[1:, 1:], img[::-1, ::-1][:-1, :-1])
    # outside the image: zeros, or the edge pixel repeated
    far = RotatedRect(500, 500, 10, 10)
    assert not warp(img, far, 4, 4, "zero").any()
    assert (warp(img, far, 4, 4, "replicate") == img[-1, -1]).all()
    # letterboxing a wide image into a square: padding above and below, values in [0, 1]
    x, pad, _ = image_to_tensor(img, RotatedRect(30, 25, 60, 50), 24, 24, border="zero")
    assert x.shape == (1, 24, 24, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert pad[0] == pad[2] == 0 and np.isclose(pad[1], (1 - 50 / 60) / 2) and not x[0, 0].any()
    with pytest.raises(ValueError, match="border"):
        warp(img, far, 4, 4, "reflect")


@needs_hands
def test_missing_or_corrupt_model_file_is_named(tmp_path):
    for f in H.MODEL_FILES.values():
        shutil.copy(H.MODEL_DIR / f, tmp_path / f)
    (tmp_path / "hand_landmark_full.onnx").unlink()
    with pytest.raises(H.HandModelError, match=r"hand_landmark_full\.onnx is missing"):
        H.HandDetector(model_dir=tmp_path)
    (tmp_path / "hand_landmark_full.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(H.HandModelError, match=r"hand_landmark_full\.onnx cannot be loaded"):
        H.HandDetector(model_dir=tmp_path)
    truncated = (H.MODEL_DIR / "palm_detection_lite.onnx").read_bytes()[:5000]
    (tmp_path / "palm_detection_lite.onnx").write_bytes(truncated)
    with pytest.raises(H.HandModelError, match=r"palm_detection_lite\.onnx"):
        H.HandDetector(model_complexity=0, model_dir=tmp_path)
    assert H.HandDetector(model_complexity=0, model_dir=H.MODEL_DIR).model_complexity == 0


def test_shipped_model_files_are_the_converted_ones():
    source = json.loads((H.MODEL_DIR / "SOURCE.json").read_text())
    assert source["wheel"].startswith("mediapipe-0.10.21-")
    assert "Apache License" in (H.MODEL_DIR / "NOTICE").read_text()
    import hashlib

    for name, info in source["models"].items():
        data = (H.MODEL_DIR / f"{name}.onnx").read_bytes()
        assert hashlib.sha256(data).hexdigest() == info["onnx_sha256"], name
        assert info["max_diff"] <= 1e-4


@needs_hands
@pytest.mark.realdata
def test_detector_matches_the_recorded_mediapipe_hands():
    """On the reference photos, the ONNX detector finds MediaPipe 0.10.21's hands, within 2 px, same labels."""
    ref = json.loads(REFERENCE.read_text())
    data = needs_real("asl/train").parents[1]
    checked = 0
    with H.HandDetector(mirrored=True, pad_retry=0.0, max_num_hands=ref["settings"]["max_num_hands"]) as det:
        for name, want in ref["images"].items():
            hands = det(str(data / name))
            assert len(hands) == len(want["hands"]), name
            for theirs in want["hands"]:
                pts = np.asarray(theirs["landmarks"])
                mine = min(hands, key=lambda h: np.abs(h.landmarks[:, :2] - pts[:, :2]).mean())
                dist = np.linalg.norm(mine.landmarks[:, :2] - pts[:, :2], axis=1)
                assert np.median(dist) < 2.0, (name, np.median(dist))
                assert mine.handedness == theirs["label"].lower(), name  # mirrored=True: MediaPipe's own label
                assert abs(mine.handedness_score - theirs["handedness_score"]) < 0.05, name
                checked += 1
    assert checked >= 10
    with H.HandDetector() as det:  # the default (mirrored=False) swaps the label: the person's own hand
        name = next(n for n, w in ref["images"].items() if w["hands"])
        assert det(str(data / name), )[0].handedness != ref["images"][name]["hands"][0]["label"].lower()


def test_warp_is_opencvs_to_the_bit():
    """Against cv2.warpPerspective outputs recorded in tests/data/opencv_warps.json (OpenCV is not installed here)."""
    import base64

    from emolib.hands.warp import RotatedRect, warp

    cases = json.loads((Path(__file__).parent / "data" / "opencv_warps.json").read_text())["cases"]
    for case in cases:
        h, w, seed = case["image"]
        img = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
        ow, oh = case["out"]
        want = np.frombuffer(base64.b64decode(case["expected_b64"]), np.uint8).reshape(oh, ow, 3)
        assert np.array_equal(warp(img, RotatedRect(*case["roi"]), ow, oh, case["border"]), want), case["roi"]


def test_draw_hands_draws_boxes_and_bones():
    import matplotlib

    matplotlib.use("Agg")
    lm = _hand().astype(np.float32)
    hand = H.Hand(box=[60, 90, 140, 210], handedness="left", score=0.9, landmarks=lm, gesture="victory")
    ax = H.draw_hands(np.zeros((240, 200, 3), np.uint8), [hand])
    assert len(ax.patches) == 1 and len(ax.lines) == len(H.HAND_CONNECTIONS)
    assert "left: victory" in [t.get_text() for t in ax.texts]


def test_palm_iou_is_torchvisions_box_iou_on_xywh_boxes():
    from emolib.hands.palm import iou_xywh

    a = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [0, 0, 0, 10]], float)  # the last one has no area
    b = np.array([[5, 0, 10, 10], [20, 20, 1, 1]], float)
    iou = iou_xywh(a, b)
    assert iou.shape == (3, 2)
    assert iou[0, 0] == pytest.approx(50 / 150) and iou[0, 1] == 0.0
    assert iou[1, 0] == pytest.approx(50 / 150)  # x 5..15 both, y 5..10 shared
    assert iou[2].tolist() == [0.0, 0.0]  # no NaN for an empty box
    assert iou_xywh(a[:1], a[:1])[0, 0] == pytest.approx(1.0)


def test_extract_landmarks_reads_with_emolibs_decoder_and_counts_bad_files(tmp_path):
    from PIL import Image

    from emolib.hands import DEFAULT_DETECTOR, extract_landmarks

    class NoHands:  # the decoding is under test, not MediaPipe
        settings = dict(DEFAULT_DETECTOR)
        seen = []

        def detect(self, rgb):
            self.seen.append(rgb.shape)
            return []

    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (30, 20), (0, 0, 0, 0)).save(rgba)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.warns(UserWarning, match="1 unreadable image.*broken.jpg"):
        out = extract_landmarks([rgba, broken], detector=NoHands(), cache=False, progress=False)
    assert out["n_hands"].tolist() == [0, -1] and out["size"][0].tolist() == [30, 20]
    assert NoHands.seen == [(20, 30, 3)]  # RGBA composited to RGB, as emolib.fileio.load_image does


# --------------------------------------------------------------------------- written from sampled mutants (issue 17)


@needs_hands
def test_regions_are_clipped_to_the_image_and_hands_come_back_left_to_right(detector, monkeypatch):
    crops, lm = [], _hand().astype(np.float32)

    def graph(rgb, ox, oy, width, height):  # the right hand (high up) found before the left one (low down)
        crops.append((rgb.shape[:2], ox, oy))
        return [H.Hand(box=[150, 0, 190, 40], handedness="right", score=0.9, landmarks=lm),
                H.Hand(box=[0, 100, 40, 200], handedness="left", score=0.9, landmarks=lm)]

    monkeypatch.setattr(detector, "_detect_array", graph)
    hands = detector(np.zeros((200, 200, 3), np.uint8), regions=[[-5.5, -3.2, 250, 199.5]])
    assert crops == [((200, 200), 0, 0)]  # the whole image, from its first row and column
    assert [h.handedness for h in hands] == ["left", "right"]  # by the box centre's x


def test_draw_hands_tells_left_from_right_by_colour():
    import matplotlib
    from matplotlib.colors import to_rgba

    matplotlib.use("Agg")
    lm = _hand().astype(np.float32)
    hands = [H.Hand(box=[10, 10, 90, 110], handedness=side, score=0.9, landmarks=lm) for side in ("left", "right")]
    ax = H.draw_hands(np.zeros((240, 200, 3), np.uint8), hands)
    assert [p.get_edgecolor() for p in ax.patches] == [to_rgba("tab:orange"), to_rgba("tab:cyan")]


def test_extract_landmarks_reads_its_cache_back_without_detecting_again(tmp_path):
    from PIL import Image

    from emolib.hands import DEFAULT_DETECTOR, extract_landmarks

    class Counting:
        settings = dict(DEFAULT_DETECTOR)
        calls = 0

        def detect(self, rgb):
            Counting.calls += 1
            return []

    photo = tmp_path / "a.png"
    Image.new("RGB", (30, 20), (9, 9, 9)).save(photo)
    first = extract_landmarks([photo], detector=Counting(), cache=tmp_path / "cache", progress=False)
    again = extract_landmarks([photo], detector=Counting(), cache=tmp_path / "cache", progress=False)
    assert Counting.calls == 1
    assert again["size"].tolist() == first["size"].tolist() == [[30, 20]]
    assert again["paths"].tolist() == [str(photo)] and again["n_hands"].tolist() == [0]


def test_letterbox_removal_maps_boxes_back_to_a_landscape_or_portrait_image():
    from emolib.hands.palm import PalmDetection, remove_letterbox

    det = PalmDetection(np.array([0.2, 0.3, 0.1, 0.2]), np.array([[0.25, 0.5]] * 7), 0.9)
    wide = remove_letterbox(det, (0.0, 0.25, 0.0, 0.25))  # a 2:1 image in the square: a quarter above, below
    assert wide.box.tolist() == pytest.approx([0.2, 0.1, 0.1, 0.4])
    assert wide.keypoints[0].tolist() == pytest.approx([0.25, 0.5]) and wide.score == 0.9
    tall = remove_letterbox(det, (0.25, 0.0, 0.25, 0.0))  # a 1:2 image: a quarter left and right
    assert tall.box.tolist() == pytest.approx([-0.1, 0.3, 0.2, 0.2])
    assert tall.keypoints[0].tolist() == pytest.approx([0.0, 0.5])


def test_palm_scores_are_clipped_both_ways_before_the_sigmoid():
    from emolib.hands.palm import decode

    boxes = np.zeros((2, 18))
    boxes[:, 2:4] = 10.0  # 10-pixel palms
    dets = decode(boxes, np.array([10.0, -10.0]), np.full((2, 2), 0.5), min_score=0.0, clip=2.0)
    assert [d.score for d in dets] == pytest.approx([1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(2.0))])


def test_invert3_inverts_any_3x3_matrix_not_only_an_affine_one():
    from emolib.hands.warp import _invert3

    m = np.array([[2.0, 0.5, -1.0], [0.3, 1.5, 0.7], [0.2, -0.4, 1.2]])  # its last row is not 0, 0, 1
    assert np.allclose(np.array(_invert3(m.ravel().tolist())).reshape(3, 3) @ m, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match="cannot be inverted"):
        _invert3([1.0, 2.0, 3.0, 2.0, 4.0, 6.0, 0.0, 0.0, 1.0])
