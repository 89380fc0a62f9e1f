"""emolib.labels: every label list and map, checked against tables written from the datasets' own documentation."""

from __future__ import annotations

import pytest

from emolib import data, gestures, labels

# FER2013's CSV indices: the Kaggle challenge "Challenges in Representation Learning: Facial Expression
# Recognition Challenge" (data page: "0=Angry, 1=Disgust, 2=Fear, 3=Happy, 4=Sad, 5=Surprise, 6=Neutral"),
# also /work/shared/data/README.md.
FER2013_DOC = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
# RAF-DB's basic expressions, EmoLabel/list_patition_label.txt (RAF-DB README; Li, Deng & Du, CVPR 2017):
# 1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral.
RAFDB_DOC = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}
NOUN_TO_FER_WORD = {"happiness": "happy", "sadness": "sad", "anger": "angry"}
# The thesis (and /work/shared/data/README.md): A punch, F super, L loser, V victory; punch angry, super happy,
# loser sad, victory happy.
THESIS_LETTERS = {"A": "punch", "F": "super", "L": "loser", "V": "victory"}
THESIS_EMOTIONS = {"punch": "angry", "super": "happy", "loser": "sad", "victory": "happy"}


def test_fer2013_csv_indices():
    assert labels.FER2013_LABELS == FER2013_DOC
    assert labels.EMOTIONS == tuple(FER2013_DOC[i] for i in range(7))  # the canonical order is the CSV's
    assert labels.FER2013_FOLDERS == {e: e for e in FER2013_DOC.values()}


def test_rafdb_labels():
    assert labels.RAFDB_LABELS == {k: NOUN_TO_FER_WORD.get(v, v) for k, v in RAFDB_DOC.items()}


def test_gestures_and_their_emotions():
    assert labels.DEFAULT_LETTER_TO_GESTURE == THESIS_LETTERS
    assert labels.GESTURES == tuple(THESIS_LETTERS.values())
    assert labels.GESTURE_EMOTIONS == THESIS_EMOTIONS
    assert set(labels.GESTURE_EMOTIONS.values()) <= set(labels.EMOTIONS)


def test_every_module_uses_the_one_definition():
    # re-exported, not copied: emolib.data.EMOTIONS etc. keep working and are the same objects
    for name in ("EMOTIONS", "FER2013_FOLDERS", "RAFDB_LABELS", "GESTURES", "DEFAULT_LETTER_TO_GESTURE",
                 "GESTURE_EMOTIONS"):
        assert getattr(data, name) is getattr(labels, name), name
    assert gestures.GESTURE_EMOTIONS is labels.GESTURE_EMOTIONS


def test_letter_maps_are_checked():
    assert labels.check_gesture_map({"V": "peace", "A": "fist"}) == {"V": "peace", "A": "fist"}
    with pytest.raises(ValueError, match="two letters to one gesture"):
        labels.check_gesture_map({"A": "punch", "F": "punch"})
    with pytest.raises(ValueError, match="ASL letters"):
        labels.check_gesture_map({"AB": "punch"})
    with pytest.raises(ValueError, match="empty"):
        labels.check_gesture_map({})
    assert labels.gesture_folder_names({"A": "punch"}) == {"A": "punch", "punch": "punch"}


def test_letter_map_errors_say_exactly_what_is_wrong():
    with pytest.raises(ValueError) as e:
        labels.check_gesture_map({})
    assert str(e.value) == "letter_to_gesture is empty"
    with pytest.raises(ValueError) as e:
        labels.check_gesture_map({"A": "punch", "ab": "super", "1": "loser"})
    assert str(e.value) == "letter_to_gesture keys must be ASL letters A..Z, got ['ab', '1']"  # the bad keys
    assert labels.check_gesture_map({"nothing": "rest", "del": "erase"}) == {"nothing": "rest", "del": "erase"}
