"""Every label list and label map of emolib, in one place (a foundation: imports nothing of emolib).

Emotions use one canonical order everywhere, :data:`EMOTIONS`, the order of the original
``fer2013.csv``'s ``emotion`` column::

    0 angry  1 disgust  2 fear  3 happy  4 sad  5 surprise  6 neutral

Per-dataset maps translate to it: FER2013's CSV indices (:data:`FER2013_LABELS`) and Kaggle
folders (:data:`FER2013_FOLDERS`), RAF-DB's labels 1..7 (:data:`RAFDB_LABELS`). The hand
gestures of the thesis are :data:`GESTURES`, read from ASL letters through
:data:`DEFAULT_LETTER_TO_GESTURE` and paired with emotions by :data:`GESTURE_EMOTIONS`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "EMOTIONS",
    "FER2013_LABELS",
    "FER2013_FOLDERS",
    "RAFDB_LABELS",
    "GESTURES",
    "DEFAULT_LETTER_TO_GESTURE",
    "GESTURE_EMOTIONS",
    "ASL_ALPHABET",
    "check_gesture_map",
    "gesture_folder_names",
]

#: Canonical emotion order (index = label), shared by every dataset and model.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: FER2013 CSV ``emotion`` index -> canonical emotion (the canonical order is the CSV's).
FER2013_LABELS: dict[int, str] = dict(enumerate(EMOTIONS))

#: Kaggle FER2013 folder name -> canonical emotion.
FER2013_FOLDERS: dict[str, str] = {e: e for e in EMOTIONS}

#: RAF-DB basic-expression label (1..7, as in ``list_patition_label.txt``) -> canonical emotion.
RAFDB_LABELS: dict[int, str] = {
    1: "surprise",
    2: "fear",
    3: "disgust",
    4: "happy",  # "happiness" in the RAF-DB paper
    5: "sad",  # "sadness"
    6: "angry",  # "anger"
    7: "neutral",
}

#: The thesis's four hand gestures, in label order.
GESTURES: tuple[str, ...] = ("punch", "super", "loser", "victory")

#: ASL letter -> gesture, as in the thesis (A punch, F super, L loser, V victory).
DEFAULT_LETTER_TO_GESTURE: dict[str, str] = {"A": "punch", "F": "super", "L": "loser", "V": "victory"}

#: The thesis's pairing of gestures with emotions.
GESTURE_EMOTIONS: dict[str, str] = {"punch": "angry", "super": "happy", "loser": "sad", "victory": "happy"}

#: Class folders of the Kaggle ASL-alphabet set (letters, ``del``, ``nothing``, ``space``): a letter map
#: may use any of the letters; the folders it does not use are ignored, not errors.
ASL_ALPHABET: frozenset[str] = frozenset({chr(c) for c in range(ord("A"), ord("Z") + 1)} | {"del", "nothing", "space"})


def check_gesture_map(letter_to_gesture: Mapping[str, str]) -> dict[str, str]:
    """``letter_to_gesture`` as a dict, after checking it: not empty, keys ASL letters, one letter per gesture."""
    mapping = dict(letter_to_gesture)
    if not mapping:
        raise ValueError("letter_to_gesture is empty")
    bad = [k for k in mapping if k not in ASL_ALPHABET]
    if bad:
        raise ValueError(f"letter_to_gesture keys must be ASL letters A..Z, got {bad}")
    gestures = list(mapping.values())
    if len(set(gestures)) != len(gestures):
        raise ValueError(f"letter_to_gesture maps two letters to one gesture: {mapping}")
    return mapping


def gesture_folder_names(letter_to_gesture: Mapping[str, str]) -> dict[str, str]:
    """Folder name -> gesture for a letter map: the letters (``A/``) and the gestures' own names (``punch/``)."""
    mapping = check_gesture_map(letter_to_gesture)
    return {**mapping, **{g: g for g in mapping.values()}}
