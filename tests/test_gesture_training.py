"""Gesture models train and ship through the one path of the face models (issue 11).

``emolib train --recipe landmark_mlp-asl`` on a generated ASL folder: the photos are
generated patterns (no real hand in them), so the hand detector is replaced by a landmark
source that reads generated landmarks for those photos (``landmark_source(precomputed=...)``,
the same code path as the detector's cached landmarks: the same normalisation, the same
training). Then ``emolib export`` ships the run, and its card is compared with the card of
a face model shipped the same way. A real-data run (real photos, the real detector) is
marked slow.
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest
from PIL import Image

from emolib import cli, experiment
from emolib import gestures as G
from emolib import hands as H
from emolib import models as M
from emolib.cards import card_markdown
from emolib.gesture_data import LandmarkDataset, asl_split
from emolib.labels import GESTURES
from emolib.recipes import get_recipe
from tests.conftest import needs_real, pattern

N_PER_LETTER = 15
NO_HAND = {"A3.jpg", "V7.jpg"}  # photos in which the (generated) detector finds no hand


def _shapes(seed: int = 3) -> list[np.ndarray]:
    """Four clearly different hands (21 x 3 points, pixels), one per gesture."""
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(0, 12, (21, 3)), axis=0) + np.array([0, 0, 0])
    base[9] = base[0] + [0, -60, 0]  # the middle knuckle above the wrist: a well-defined palm size
    shapes = []
    for k in range(4):
        s = base.copy()
        s[5 + 4 * k:9 + 4 * k, 1] += 70  # curl one finger per class
        shapes.append(s)
    return shapes


@pytest.fixture
def asl_with_landmarks(tmp_path):
    """A generated ASL folder (15 photos per letter) and, for every photo, the landmarks of its hand."""
    rng = np.random.default_rng(0)
    shapes = _shapes()
    root = tmp_path / "asl"
    paths, lms, sides, found = [], [], [], []
    for k, letter in enumerate("AFLV"):
        for i in range(N_PER_LETTER):
            path = root / "train" / letter / f"{letter}{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pattern(32, "RGB", 40 * k + i, seed=k * 100 + i), "RGB").save(path)
            theta, scale = rng.uniform(-0.5, 0.5), rng.uniform(0.5, 2)
            rot = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
            p = (shapes[k] + rng.normal(0, 2, (21, 3))) @ rot.T * scale + [rng.uniform(50, 150), 150, 0]
            side = "right" if i % 2 else "left"
            if side == "left":
                p = H.mirror_landmarks(p, 224)
            hand = path.name not in NO_HAND
            paths.append(str(path))
            lms.append(p if hand else np.full((21, 3), np.nan))
            sides.append(side if hand else "")
            found.append(hand)
    lm = {"paths": np.array(paths), "landmarks": np.array(lms, np.float32), "handedness": np.array(sides),
          "found": np.array(found), "seconds": np.full(len(paths), 0.01, np.float32)}
    return root, lm


@pytest.fixture
def trained(asl_with_landmarks, tmp_path, monkeypatch, capsys):
    """``emolib train --recipe landmark_mlp-asl`` on the generated folder; returns (root, landmarks, run folder)."""
    root, lm = asl_with_landmarks
    monkeypatch.setattr(cli, "landmark_source", functools.partial(G.landmark_source, precomputed=lm))
    out = tmp_path / "run"
    assert cli.main(["train", "--recipe", "landmark_mlp-asl", "--data", str(root), "--out", str(out)]) == 0
    (out / "printed.json").write_text(capsys.readouterr().out.strip().splitlines()[-1])
    return root, lm, out


def test_emolib_train_trains_the_landmark_recipe(trained):
    root, lm, out = trained
    summary = json.loads((out / "printed.json").read_text())
    result = json.loads((out / "result.json").read_text())
    recipe = get_recipe("landmark_mlp-asl")
    split = asl_split(root, recipe.val_fraction, recipe.config.seed)
    # every photo is on one side of the recipe's split, none lost: the image models' split
    assert result["train_images"] == len(split["train_idx"]) and result["val_images"] == len(split["val_idx"])
    assert result["train_images"] + result["val_images"] == 4 * N_PER_LETTER
    val_names = {split["paths"][i].rsplit("/", 1)[1] for i in split["val_idx"]}
    val_no_hand = len(NO_HAND & val_names)
    assert result["val"]["no_hand"] == val_no_hand and result["val_hands"] == result["val_images"] - val_no_hand
    assert result["train_hands"] == result["train_images"] - len(NO_HAND - val_names)
    assert result["epochs_run"] == recipe.config.epochs and summary["model"] == "landmark_mlp"
    # it learned the four hand shapes (any angle, size, place, either hand); a photo without a hand is an error
    assert result["best_val_acc_with_hand"] == 1.0
    assert result["val"]["accuracy"] == pytest.approx((result["val_images"] - val_no_hand) / result["val_images"])
    # the checkpoint is read by the one registry and by the gesture classifier
    model = M.load_model(out / "model.pt")
    assert model.emolib_name == "landmark_mlp" and model.classes == GESTURES
    assert model.meta["kind"] == "landmarks" and model.meta["detector"] == H.DEFAULT_DETECTOR
    clf = G.GestureClassifier(out / "model.pt")
    i = int(np.flatnonzero(lm["found"])[0])
    hand = H.Hand(box=[0, 0, 1, 1], handedness=str(lm["handedness"][i]), score=1.0, landmarks=lm["landmarks"][i])
    label = "AFLV".index(lm["paths"][i].rsplit("/", 2)[1])
    assert clf.classify(None, [hand])[0][0] == GESTURES[label]


def test_emolib_export_ships_a_gesture_model_with_the_face_models_card(trained, fer_folders, tmp_path, monkeypatch,
                                                                      capsys):
    root, lm, out = trained
    ckpt = tmp_path / "ckpt"
    monkeypatch.chdir(tmp_path)  # the run's files go to ./results/runs/<name>/ by default
    assert cli.main(["export", str(out), "--name", "gestures-test", "--command", "emolib train --recipe "
                     "landmark_mlp-asl", "--fp32", "--checkpoint-dir", str(ckpt)]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    card = json.loads((ckpt / "gestures-test.json").read_text())
    result = json.loads((out / "result.json").read_text())
    # measured again with the weights as stored (float32: the same numbers as the run's)
    assert card["val"] == result["val"] and printed["val_accuracy"] == card["val"]["accuracy"]
    assert card["stored_as"] == "float32" and card["size_bytes"] == (ckpt / "gestures-test.pt").stat().st_size
    assert card["kind"] == "landmarks" and card["letter_to_gesture"] == {"A": "punch", "F": "super", "L": "loser",
                                                                         "V": "victory"}
    assert (tmp_path / "results" / "runs" / "gestures-test" / "history.json").is_file()
    assert G.GestureClassifier(ckpt / "gestures-test.pt").kind == "landmarks"
    # a face model shipped by the same path: the same card keys (bar the metrics of a test split) and markdown
    face_run = tmp_path / "face"
    assert cli.main(["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders),
                     "--out", str(face_run), "--epochs", "1", "--batch-size", "8"]) == 0
    face = experiment.ship(face_run, "baseline-test", "emolib train ...", results_dir=tmp_path / "r", root=fer_folders,
                           checkpoint_dir=ckpt)
    assert set(face) - {"test", "test_tta_flip", "test_fp32"} <= set(card)
    assert set(face["data"]) <= set(card["data"])

    def prefixes(text):  # "- data", "- recipe", "## Test"...: which lines, in which order
        return [m.group(0) for m in re.finditer(r"^(#+|-) [A-Za-z]+", text, re.M)]

    face_md, gesture_md = (ckpt / "baseline-test.md").read_text(), (ckpt / "gestures-test.md").read_text()
    assert face_md == card_markdown(face) and gesture_md == card_markdown(card)
    shared = [p for p in prefixes(gesture_md) if p in prefixes(face_md)]
    assert shared == [p for p in prefixes(face_md) if p != "## Test"]  # every line of a face card, in its order
    assert "## Validation metrics (weights as stored)" in gesture_md and "| support | no hand |" in gesture_md


def test_a_landmark_recipe_without_a_landmark_source_says_what_it_needs(asl_with_landmarks, tmp_path):
    root, _ = asl_with_landmarks
    with pytest.raises(ValueError, match="landmark source"):
        experiment.run_recipe(get_recipe("landmark_mlp-asl", epochs=1), tmp_path / "run", root=root, progress=False)


def test_precomputed_landmarks_missing_a_photo_name_it(asl_with_landmarks, tmp_path):
    root, lm = asl_with_landmarks
    partial = {k: v[1:] for k, v in lm.items()}
    source = G.landmark_source(precomputed=partial)
    with pytest.raises(ValueError, match=lm["paths"][0].rsplit("/", 1)[1]):
        experiment.run_recipe(get_recipe("landmark_mlp-asl", epochs=1), tmp_path / "run", root=root,
                              landmarks=source, progress=False)


def test_landmark_dataset_refuses_bad_shapes_and_lengths():
    with pytest.raises(ValueError, match=r"\(N, 21, 3\)"):
        LandmarkDataset(np.zeros((2, 20, 3)), [0, 1], GESTURES)
    with pytest.raises(ValueError, match="2 landmark rows but 3 targets"):
        LandmarkDataset(np.zeros((2, 21, 3)), [0, 1, 2], GESTURES)
    with pytest.raises(ValueError, match="unknown landmark augmentation"):
        LandmarkDataset(np.zeros((2, 21, 3)), [0, 1], GESTURES, {"rotation": 10})  # removed: it was never used


@pytest.mark.slow  # the hand detector on 80 real photos
@pytest.mark.realdata
def test_emolib_train_landmark_recipe_on_real_photos(tmp_path, capsys):
    root = needs_real("asl")
    if not H.hands_available():
        pytest.skip("no hand detector (onnxruntime) in this environment")
    out = tmp_path / "run"
    assert cli.main(["train", "--recipe", "landmark_mlp-asl", "--data", str(root), "--out", str(out),
                     "--limit", "80", "--epochs", "20"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["train_images"] + result["val_images"] == 80 and result["val"]["n"] == result["val_images"]
    assert result["val_hands"] >= 0.9 * result["val_images"]  # the detector finds the hands of these photos
    assert result["val"]["accuracy_with_hand"] > 0.5  # well above chance (0.25) after 20 epochs of 64 photos
