"""The shipped gesture model held to its card, on photos it was not trained on.

``gestures-asl`` was trained on the ASL photos of ``emolib.gestures.asl_split`` (stratified
20 %, seed 0: its card's ``data.split``) and its card reports the other 800, the
validation photos. Those are the photos checked here (never its training photos), through
the public :func:`emolib.gestures.evaluate_gestures`, with whichever hand detector the
installation has. Skipped with a reason without the real data or a hand detector. Run by
``make test-hands`` (the side environment that holds the detector) as well.
"""

from __future__ import annotations

import os

import pytest

from emolib import gestures as G
from emolib.models import list_pretrained, model_card
from tests.conftest import needs_real


@pytest.mark.slow  # a hand detector over 800 photos: minutes on 2 cores
@pytest.mark.realdata
def test_gesture_model_scores_its_card_on_photos_it_was_not_trained_on(tmp_path):
    from emolib.hands import HandsUnavailableError

    root = needs_real("asl")
    if "gestures-asl" not in list_pretrained():
        pytest.skip("gestures-asl is not shipped in this checkout")
    card = model_card("gestures-asl")
    assert "asl_split" in card["data"]["split"] and "seed 0" in card["data"]["split"]
    split = G.asl_split(root, card["recipe"]["val_fraction"], card["recipe"]["config"]["seed"])
    val = [split["paths"][i] for i in split["val_idx"]]
    train = {split["paths"][i] for i in split["train_idx"]}
    assert len(val) == card["data"]["val_images"] and not train & set(val)
    folder = tmp_path / "val"  # the validation photos only, in letter folders
    for path in val:
        letter = os.path.basename(os.path.dirname(path))
        (folder / letter).mkdir(parents=True, exist_ok=True)
        (folder / letter / os.path.basename(path)).symlink_to(path)
    try:
        got = G.evaluate_gestures("gestures-asl", folder, progress=False)
    except HandsUnavailableError as err:
        pytest.skip(f"no hand detector in this environment: {err}")
    assert got["n"] == len(val)
    assert abs(got["accuracy"] - card["val"]["accuracy"]) <= 0.01, (got["accuracy"], card["val"]["accuracy"])
