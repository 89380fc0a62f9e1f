"""The command line: train (resumable) and evaluate --json on folders."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PIL import Image

from emolib.cli import main
from emolib.data import EMOTIONS
from emolib.models import create_model, save_checkpoint
from tests.conftest import needs_real

JSON_KEYS = {"accuracy", "n", "per_class", "auc", "confusion", "classes", "model", "data", "skipped"}


@pytest.fixture
def baseline_ckpt(tmp_path):
    return save_checkpoint(create_model("baseline"), tmp_path / "b.pt", EMOTIONS)


def test_evaluate_json_on_a_fer_layout_folder(fer_folders, baseline_ckpt, capsys):
    assert main(["evaluate", "--model", str(baseline_ckpt), "--data", str(fer_folders / "test"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert JSON_KEYS <= set(out) and out["n"] == 14
    assert set(out["per_class"]) == set(EMOTIONS)
    assert set(out["per_class"]["happy"]) == {"precision", "recall", "f1-score", "support"}


def test_evaluate_text_report(fer_folders, baseline_ckpt, capsys):
    assert main(["evaluate", "--model", str(baseline_ckpt), "--data", str(fer_folders / "test")]) == 0
    text = capsys.readouterr().out
    assert "precision" in text and "accuracy" in text and "14 images" in text


def test_evaluate_bad_model_and_bad_folder(fer_folders, baseline_ckpt, tmp_path, capsys):
    assert main(["evaluate", "--model", "nope", "--data", str(fer_folders / "test")]) == 2
    assert "neither a shipped model" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(baseline_ckpt), "--data", str(tmp_path / "missing")]) == 2
    assert "expected a folder" in capsys.readouterr().err


def test_train_then_evaluate_the_result(fer_folders, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders), "--out", str(out),
            "--epochs", "1", "--batch-size", "8"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs_run"] == 1 and summary["parameters"] == 1_668_615
    result = json.loads((out / "result.json").read_text())
    assert result["test"]["n"] == 14 and "test_tta_flip" in result
    # a second call resumes: the run is complete, so it trains no further epoch
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["epochs_run"] == 1
    assert main(["evaluate", "--model", str(out / "model.pt"), "--data", str(fer_folders / "test"), "--json"]) == 0


def test_train_init_from_starts_at_the_given_weights(fer_folders, baseline_ckpt, tmp_path, capsys):
    import torch

    from emolib.models import load_model

    out = tmp_path / "stage2"
    args = ["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders), "--out", str(out),
            "--epochs", "1", "--batch-size", "8", "--lr", "0", "--init-from", str(baseline_ckpt)]
    assert main(args) == 0  # learning rate 0: the weights stay those of the checkpoint
    result = json.loads((out / "result.json").read_text())
    assert result["init_from"] == str(baseline_ckpt)
    start, trained = load_model(baseline_ckpt).state_dict(), load_model(out / "model.pt").state_dict()
    conv = next(k for k in start if k.endswith("weight") and start[k].ndim == 4)
    assert torch.equal(start[conv], trained[conv])
    wrong = save_checkpoint(create_model("emonet"), tmp_path / "e.pt", EMOTIONS)
    capsys.readouterr()
    assert main([*args[:-1], str(wrong)]) == 2
    assert "does not fit baseline" in capsys.readouterr().err


def test_python_dash_m_emolib_runs():
    proc = subprocess.run([sys.executable, "-m", "emolib", "models"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and "baseline" in proc.stdout and "1,668,615" in proc.stdout


@pytest.mark.slow  # 3,589 faces
@pytest.mark.realdata
def test_shipped_baseline_on_the_real_test_split(capsys):
    from emolib.models import list_pretrained, model_card

    if "baseline-fer2013" not in list_pretrained():
        pytest.skip("baseline-fer2013 is not shipped in this checkout")
    test = needs_real("fer2013/test")
    assert main(["evaluate", "--model", "baseline-fer2013", "--data", str(test), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    card = model_card("baseline-fer2013")["test"]
    assert out["n"] == 3589
    # the card's number, within one point (always answering "happy" would score 895 / 3589 = 0.249)
    assert abs(out["accuracy"] - card["accuracy"]) <= 0.01, (out["accuracy"], card["accuracy"])
    assert out["confusion"][3][3] == pytest.approx(card["confusion"][3][3], abs=20)  # happy faces read as happy


def test_export_ships_a_run_with_a_model_card(fer_folders, tmp_path, capsys):
    from emolib.experiment import ship
    from emolib.models import load_model

    out = tmp_path / "run"
    assert main(["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders),
                 "--out", str(out), "--epochs", "1", "--batch-size", "8"]) == 0
    card = ship(out, "baseline-test", "emolib train ...", results_dir=tmp_path / "results", root=fer_folders,
                checkpoint_dir=tmp_path / "ckpt")
    assert card["stored_as"] == "float16" and card["parameters"] == 1_668_615
    assert card["test"]["n"] == 14 and "test_tta_flip" in card and "test_fp32" in card
    assert (tmp_path / "ckpt" / "baseline-test.md").read_text().startswith("# Model card: baseline-test")
    assert (tmp_path / "results" / "baseline-test" / "history.json").exists()
    model = load_model(tmp_path / "ckpt" / "baseline-test.pt")
    assert model.classes == EMOTIONS
    # a second stage from the shipped weights, shipped under the same name: one card, both stages
    out2 = tmp_path / "run2"
    assert main(["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders),
                 "--out", str(out2), "--epochs", "2", "--batch-size", "8", "--lr", "3e-4",
                 "--init-from", str(tmp_path / "ckpt" / "baseline-test.pt")]) == 0
    card2 = ship(out2, "baseline-test", "emolib train ... --init-from baseline-test", results_dir=tmp_path / "results",
                 root=fer_folders, checkpoint_dir=tmp_path / "ckpt")
    assert card2["epochs_run"] == 3 and [st["epochs_run"] for st in card2["stages"]] == [1, 2]
    assert [st["config"]["lr"] for st in card2["stages"]] == [1e-3, 3e-4]
    assert card2["train_seconds"] == pytest.approx(sum(st["train_seconds"] for st in card2["stages"]))
    history = json.loads((tmp_path / "results" / "baseline-test" / "history.json").read_text())["history"]
    assert [(h["epoch"], h["stage"]) for h in history] == [(1, 1), (2, 2), (3, 2)]
    assert "stage 2: 2 epochs" in (tmp_path / "ckpt" / "baseline-test.md").read_text()


def test_export_of_a_folder_without_a_run_names_the_missing_file(tmp_path, capsys):
    assert main(["export", str(tmp_path / "no-run"), "--name", "x-test", "--command", "emolib train ...",
                 "--checkpoint-dir", str(tmp_path / "ckpt")]) == 2
    assert str(tmp_path / "no-run" / "result.json") in capsys.readouterr().err
    assert not (tmp_path / "ckpt").exists()  # nothing half-written


def test_train_says_what_a_landmark_recipe_needs_without_a_hand_detector(tmp_path, monkeypatch, capsys):
    # without onnxruntime (emolib[hands]) the landmark recipe stops with the install line, not a traceback
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    asl = tmp_path / "asl" / "train"
    for letter in "AFLV":
        (asl / letter).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (16, 16), (60 * i, 40, 90)).save(asl / letter / f"{letter}{i}.jpg")
    assert main(["train", "--recipe", "landmark_mlp-asl", "--data", str(tmp_path / "asl"),
                 "--out", str(tmp_path / "run"), "--epochs", "1"]) == 2
    assert 'pip install "emolib[hands]"' in capsys.readouterr().err


def test_evaluate_gestures_text_report_matches_a_hand_worked_confusion(monkeypatch, capsys):
    """The text report of ``emolib evaluate`` for a gesture model is scikit-learn's report of the
    confusion matrix the evaluation returns (no-hand photos counted as errors), worked by hand here."""
    import emolib.cli as cli

    # rows: true punch, super, loser, victory; columns: predicted
    confusion = [[3, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 2], [0, 0, 1, 1]]
    result = {"confusion": confusion, "classes": ["punch", "super", "loser", "victory"], "accuracy": 0.6,
              "n": 10, "auc": 0.8, "kind": "image", "skipped": 0}
    monkeypatch.setattr(cli, "is_gesture_model", lambda name: True)
    monkeypatch.setattr(cli, "evaluate_gestures", lambda *a, **k: result)
    assert main(["evaluate", "--model", "gestures-x", "--data", "anywhere"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines() if line.strip()}
    # punch: precision 3/3, recall 3/4, f1 6/7; super: 2/3, 1, 0.8; loser: 0, 0, 0; victory: 1/3, 1/2, 0.4
    assert rows["punch"] == ["1.00", "0.75", "0.86", "4"]
    assert rows["super"] == ["0.67", "1.00", "0.80", "2"]
    assert rows["loser"] == ["0.00", "0.00", "0.00", "2"]
    assert rows["victory"] == ["0.33", "0.50", "0.40", "2"]
    assert rows["macro"][1:4] == ["0.50", "0.56", "0.51"]  # means of the four columns above


def test_evaluate_gestures_text_report_counts_photos_without_a_hand_as_misses(monkeypatch, capsys):
    """For a landmark model the returned confusion matrix holds the photos with a hand only;
    the report adds each class's photos without one as misses (recall and support), as the card does."""
    import emolib.cli as cli

    confusion = [[2, 0], [1, 3]]  # with a hand; punch has 2 more photos without one, super 0
    result = {"confusion": confusion, "classes": ["punch", "super"], "no_hand_per_class": {"punch": 2, "super": 0},
              "accuracy": 5 / 8, "n": 8, "auc": 0.8, "kind": "landmarks", "skipped": 0, "no_hand": 2,
              "hands_found": 6, "accuracy_with_hand": 5 / 6}
    monkeypatch.setattr(cli, "is_gesture_model", lambda name: True)
    monkeypatch.setattr(cli, "evaluate_gestures", lambda *a, **k: result)
    assert main(["evaluate", "--model", "gestures-x", "--data", "anywhere"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    # punch: precision 2/3, recall 2/4, f1 4/7; super: precision 3/3, recall 3/4, f1 6/7
    assert rows["punch"] == ["0.67", "0.50", "0.57", "4"]
    assert rows["super"] == ["1.00", "0.75", "0.86", "4"]
    accuracy = [line.split()[1] for line in out.splitlines() if line.split()[:1] == ["accuracy"]]
    assert accuracy == ["0.62", "0.6250"]  # the table's and the summary's: 5 of 8, no-hand photos are errors
    assert "no hand found in 2 image(s)" in out
