"""Datasets: every layout, the canonical label order, splits, caching and bad input."""

from __future__ import annotations

import warnings

import pytest
import torch

from emolib import data as D
from tests.conftest import needs_real


def test_canonical_order_is_the_fer2013_csv_order():
    assert D.EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    # RAF-DB's 1..7 cover all seven emotions exactly once
    assert sorted(D.RAFDB_LABELS.values()) == sorted(D.EMOTIONS)


def test_fer_folders_map_folder_names_to_canonical_labels(fer_folders):
    ds = D.FER2013(fer_folders, "train")
    assert len(ds) == 21 and ds.images.shape == (21, 1, 48, 48) and ds.images.dtype == torch.uint8
    assert ds.classes == D.EMOTIONS
    assert ds.class_counts == {e: 3 for e in D.EMOTIONS}
    for path, target in zip(ds.paths, ds.targets.tolist()):
        assert f"/{D.EMOTIONS[target]}/" in path
    x, y = ds[0]
    assert x.shape == (1, 48, 48) and isinstance(y, int)
    assert len(D.FER2013(fer_folders, "test")) == 14


def test_fer_csv_splits_and_labels(fer_csv):
    train = D.FER2013(fer_csv, "train")
    assert len(train) == 14 and train.class_counts == {e: 2 for e in D.EMOTIONS}
    # pixel value encodes the CSV label: label k starts at 30k
    assert train.images[train.targets == 3][0, 0, 0, 0].item() == 90
    assert len(D.FER2013(fer_csv, "test")) == 7
    assert len(D.FER2013(fer_csv.parent, "private_test")) == 7  # a folder holding fer2013.csv works too


def test_fer_csv_bad_columns_and_pixels_name_the_line(tmp_path):
    bad = tmp_path / "cols.csv"
    bad.write_text("label,pixels,split\n0,1 2 3,Training\n")
    with pytest.raises(D.DatasetFormatError, match="emotion,pixels,Usage"):
        D.FER2013(bad)
    short = tmp_path / "short.csv"
    good = " ".join(["7"] * 2304)
    short.write_text(f"emotion,pixels,Usage\n0,{good},Training\n3,1 2 3,Training\n")
    with pytest.raises(D.DatasetFormatError, match=r"line 3: 3 pixel values, expected 2304"):
        D.FER2013(short)


def test_missing_fer_says_where_and_how(tmp_path):
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.FER2013(tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere") in msg and "train/" in msg and "download('fer2013')" in msg
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "train").mkdir()
    with pytest.raises(D.DatasetNotFoundError, match="test"):
        D.FER2013(tmp_path / "only", "test")


def test_unknown_class_folder_is_an_error_naming_it(fer_folders):
    (fer_folders / "train" / "contempt").mkdir()
    with pytest.raises(D.DatasetFormatError, match="contempt"):
        D.FER2013(fer_folders, "train")


def test_unreadable_images_are_skipped_counted_and_reported_once(fer_folders):
    (fer_folders / "train" / "happy" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    full = (fer_folders / "train" / "sad" / "train_5_0.jpg").read_bytes()
    (fer_folders / "train" / "sad" / "truncated.jpg").write_bytes(full[: len(full) // 3])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = D.FER2013(fer_folders, "train", cache=False)
    reports = [w for w in caught if "skipped" in str(w.message)]
    assert len(reports) == 1 and "2 unreadable" in str(reports[0].message)
    assert len(ds) == 21 and sorted(p.split("/")[-1] for p in ds.skipped) == ["broken.jpg", "truncated.jpg"]


def test_cache_returns_the_same_tensor_and_notices_changes(fer_folders):
    a = D.FER2013(fer_folders, "train", cache=True)
    b = D.FER2013(fer_folders, "train", cache=True)
    assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
    (fer_folders / "train" / "angry" / "train_0_0.jpg").unlink()
    assert len(D.FER2013(fer_folders, "train", cache=True)) == 20


def test_rafdb_official_layout(rafdb_official):
    train = D.RAFDB(rafdb_official, "train")
    assert len(train) == 14 and train.images.shape[1:] == (3, 100, 100)
    assert train.class_counts == {e: 2 for e in D.EMOTIONS}
    # RAF-DB label 1 (surprise) was drawn at level 20, label 6 (anger) at 120
    surprise = train.images[train.targets == D.EMOTIONS.index("surprise")].float().mean()
    angry = train.images[train.targets == D.EMOTIONS.index("angry")].float().mean()
    assert abs(surprise - 20) < 8 and abs(angry - 120) < 8
    assert len(D.RAFDB(rafdb_official, "test")) == 7


def test_rafdb_kaggle_layout(rafdb_kaggle):
    train = D.RAFDB(rafdb_kaggle, "train")
    assert len(train) == 14 and train.class_counts == {e: 2 for e in D.EMOTIONS}
    assert all("/DATASET/train/" in p for p in train.paths)


def test_rafdb_bad_label_line_and_missing_dataset(rafdb_official, tmp_path):
    labels = rafdb_official / "EmoLabel" / "list_patition_label.txt"
    labels.write_text(labels.read_text() + "train_9999.jpg 9\n")
    with pytest.raises(D.DatasetFormatError, match="line 22"):
        D.RAFDB(rafdb_official)
    with pytest.raises(D.DatasetNotFoundError, match="whdeng.cn"):
        D.RAFDB(tmp_path / "no-raf")
    with pytest.raises(D.DownloadError, match="licence"):
        D.download("rafdb")


def test_asl_letters_become_gestures(asl_folders):
    ds = D.ASLGestures(asl_folders, size=32)
    assert ds.classes == D.GESTURES and ds.class_counts == {g: 4 for g in D.GESTURES}
    assert ds.images.shape == (16, 3, 32, 32)
    (asl_folders / "train" / "nothing").mkdir()  # other ASL classes are ignored
    custom = D.ASLGestures(asl_folders, size=32, letter_to_gesture={"V": "victory", "A": "punch"})
    assert custom.classes == ("victory", "punch") and len(custom) == 8


def test_asl_map_is_validated(asl_folders):
    with pytest.raises(ValueError, match="two letters"):
        D.ASLGestures(asl_folders, letter_to_gesture={"A": "punch", "F": "punch"})
    with pytest.raises(ValueError, match="ASL letters"):
        D.ASLGestures(asl_folders, letter_to_gesture={"AA": "punch"})
    (asl_folders / "train" / "thumbs").mkdir()
    with pytest.raises(D.DatasetFormatError, match="thumbs"):
        D.ASLGestures(asl_folders)


def test_stratified_seeded_split(fer_folders):
    ds = D.FER2013(fer_folders, "train")
    tr, va = D.train_val_split(ds, val_fraction=1 / 3, seed=1)
    assert len(tr) == 14 and len(va) == 7
    assert va.class_counts == {e: 1 for e in D.EMOTIONS}  # stratified
    assert not set(tr.paths) & set(va.paths)
    tr2, va2 = D.train_val_split(ds, val_fraction=1 / 3, seed=1)
    assert va.paths == va2.paths  # seeded
    with pytest.raises(ValueError):
        D.train_val_split(ds, val_fraction=1.5)


def test_emolib_data_env_var(fer_folders, monkeypatch):
    monkeypatch.setenv("EMOLIB_DATA", str(fer_folders.parent))
    assert len(D.FER2013(split="test")) == 14


def test_download_fails_clearly_offline(tmp_path, monkeypatch):
    import sys
    import types

    fake = types.ModuleType("kagglehub")

    def dataset_download(handle):
        raise ConnectionError("network is unreachable")

    fake.dataset_download = dataset_download
    monkeypatch.setitem(sys.modules, "kagglehub", fake)
    with pytest.raises(D.DownloadError, match="offline") as err:
        D.download("fer2013", tmp_path)
    assert "msambare/fer2013" in str(err.value)


def test_download_finds_nested_layout_and_checks_counts(tmp_path, monkeypatch, fer_folders):
    import sys
    import types

    nested = tmp_path / "kaggle-cache" / "versions" / "1"
    nested.parent.mkdir(parents=True)
    fer_folders.rename(nested)
    fake = types.ModuleType("kagglehub")
    fake.dataset_download = lambda handle: str(tmp_path / "kaggle-cache")
    monkeypatch.setitem(sys.modules, "kagglehub", fake)
    # the fixture has 21 training images, not the real 28,709: the check must refuse it
    with pytest.raises(D.DownloadError, match="expected 28709"):
        D.download("fer2013", tmp_path / "data")


@pytest.mark.realdata
def test_real_fer2013_sizes_and_counts():
    root = needs_real("fer2013")
    train = D.FER2013(root, "train")
    assert len(train) == 28709
    assert train.class_counts == {"angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215,
                                  "sad": 4830, "surprise": 3171, "neutral": 4965}
    test = D.FER2013(root, "test")
    assert len(test) == 3589
    assert test.class_counts == {"angry": 467, "disgust": 56, "fear": 496, "happy": 895,
                                 "sad": 653, "surprise": 415, "neutral": 607}
    assert not train.skipped and not test.skipped


@pytest.mark.realdata
def test_real_asl_counts():
    ds = D.ASLGestures(needs_real("asl"), size=64)
    assert ds.class_counts == {"punch": 1000, "super": 1000, "loser": 1000, "victory": 1000}
