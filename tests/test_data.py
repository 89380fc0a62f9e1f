"""Datasets: every layout, the canonical label order, splits, caching and bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emolib import data as D
from tests.conftest import (
    FER_FOLDER_NAMES,
    asl_image,
    close_to_pattern,
    fer_csv_rows,
    fer_folder_image,
    needs_real,
    pattern,
    rafdb_image,
)

# Label tables written from the datasets' own documentation, not from emolib:
# FER2013's CSV indices, as /work/shared/data/README.md (and the Kaggle challenge page) give them.
FER_CSV_DOC = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
# RAF-DB's README (basic emotions, EmoLabel/list_patition_label.txt).
RAFDB_DOC = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}
DOC_NAME = {"happiness": "happy", "sadness": "sad", "anger": "angry"}  # the paper's nouns, FER2013's words
# The thesis's letters (data README): A punch, F super, L loser, V victory.
THESIS_GESTURES = {"A": "punch", "F": "super", "L": "loser", "V": "victory"}


def test_canonical_order_is_the_fer2013_csv_order():
    assert D.EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    # RAF-DB's 1..7 cover all seven emotions exactly once
    assert sorted(D.RAFDB_LABELS.values()) == sorted(D.EMOTIONS)


def test_fer_folders_map_folder_names_to_canonical_labels(fer_folders):
    ds = D.FER2013(fer_folders, "train")
    assert len(ds) == 21 and ds.images.shape == (21, 1, 48, 48) and ds.images.dtype == torch.uint8
    assert ds.classes == D.EMOTIONS
    assert ds.class_counts == {e: 3 for e in D.EMOTIONS}
    x, y = ds[0]
    assert x.shape == (1, 48, 48) and isinstance(y, int)
    assert len(D.FER2013(fer_folders, "test")) == 14


@pytest.mark.parametrize("split", ["train", "test"])
def test_fer_folders_every_image_and_label(fer_folders, split):
    # Each file is decoded to its own pixels (not transposed, not flipped), and labelled with
    # the emotion its Kaggle folder is named after.
    ds = D.FER2013(fer_folders, split, cache=False)
    seen = set()
    for image, target, path in zip(ds.images, ds.targets.tolist(), ds.paths):
        folder, name = Path(path).parent.name, Path(path).stem
        _, k, i = name.split("_")
        assert FER_FOLDER_NAMES[int(k)] == folder
        assert ds.classes[target] == folder, path
        assert close_to_pattern(image, fer_folder_image(split, int(k), int(i))), path
        assert not close_to_pattern(image, fer_folder_image(split, int(k), int(i)).T), "a transpose must show"
        seen.add(folder)
    assert seen == set(FER_FOLDER_NAMES)


@pytest.mark.parametrize("split, usage", [("train", "Training"), ("test", "PublicTest"),
                                          ("private_test", "PrivateTest")])
def test_fer_csv_splits_rows_and_labels(fer_csv, split, usage):
    # Exactly the rows of that Usage, in file order, pixels row-major (not transposed), and
    # the CSV's emotion index read as the dataset documents it.
    rows = [(label, img) for label, use, img in fer_csv_rows() if use == usage]
    ds = D.FER2013(fer_csv.parent if split == "private_test" else fer_csv, split)  # a folder with the CSV works too
    assert len(ds) == len(rows) == (14 if usage == "Training" else 7)
    for (label, img), image, target in zip(rows, ds.images, ds.targets.tolist()):
        assert torch.equal(image[0], torch.from_numpy(img))
        assert ds.classes[target] == FER_CSV_DOC[label]


def test_fer_csv_every_row_is_distinct(fer_csv):
    imgs = [img.tobytes() for _, _, img in fer_csv_rows()]
    assert len(set(imgs)) == len(imgs)  # so a row from the wrong split cannot pass


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


@pytest.mark.parametrize("layout", ["official", "kaggle"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_rafdb_every_label_and_image(request, layout, split):
    root = request.getfixturevalue(f"rafdb_{layout}")
    ds = D.RAFDB(root, split, cache=False)
    n = {"train": 2, "test": 1}[split]
    assert len(ds) == 7 * n and ds.images.shape[1:] == (3, 100, 100)
    assert ds.class_counts == {e: n for e in D.EMOTIONS}
    for image, target, path in zip(ds.images, ds.targets.tolist(), ds.paths):
        p = Path(path)
        if layout == "official":  # <split>_<label><i:04d>_aligned.jpg
            assert p.name.startswith(split + "_")
            label, i = int(p.name.split("_")[1][0]), int(p.name.split("_")[1][1:])
        else:  # DATASET/<split>/<label>/<split>_<label>_<i>.jpg
            assert p.parent.parent.name == split
            label, i = int(p.parent.name), int(p.stem.split("_")[-1])
        assert ds.classes[target] == DOC_NAME.get(RAFDB_DOC[label], RAFDB_DOC[label]), path
        assert close_to_pattern(image, rafdb_image(split, label, i)), path


def test_rafdb_table_is_the_documented_one():
    assert {k: DOC_NAME.get(v, v) for k, v in RAFDB_DOC.items()} == D.RAFDB_LABELS


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
    ds = D.ASLGestures(asl_folders, size=64, cache=False)
    assert ds.classes == D.GESTURES and ds.class_counts == {g: 4 for g in D.GESTURES}
    assert ds.images.shape == (16, 3, 64, 64)
    for image, target, path in zip(ds.images, ds.targets.tolist(), ds.paths):
        letter, i = Path(path).parent.name, int(Path(path).stem[1:])
        assert ds.classes[target] == THESIS_GESTURES[letter], path
        assert close_to_pattern(image, asl_image("AFLV".index(letter), i)), path  # RGB order kept
    assert D.DEFAULT_LETTER_TO_GESTURE == THESIS_GESTURES
    (asl_folders / "train" / "nothing").mkdir()  # other ASL classes are ignored
    custom = D.ASLGestures(asl_folders, size=32, letter_to_gesture={"V": "victory", "A": "punch"})
    assert custom.classes == ("victory", "punch") and len(custom) == 8
    assert all(custom.classes[t] == {"V": "victory", "A": "punch"}[Path(p).parent.name]
               for t, p in zip(custom.targets.tolist(), custom.paths))


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
    assert D.train_val_split(ds, val_fraction=1 / 3, seed=2)[1].paths != va.paths  # the seed matters
    row = {p: i for i, p in enumerate(ds.paths)}
    for part in (tr, va):  # every image keeps its own label and pixels
        for image, target, path in zip(part.images, part.targets.tolist(), part.paths):
            assert target == int(ds.targets[row[path]]) and torch.equal(image, ds.images[row[path]])
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


# --------------------------------------------------------------------------- the dataset class and loader


def test_image_dataset_checks_its_input_and_reports_itself():
    images = torch.zeros(3, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"uint8 tensor \(N, C, H, W\), got torch.float32"):
        D.ImageDataset(images.float(), [0, 1, 0], ["a", "b"])
    with pytest.raises(ValueError, match=r"uint8 tensor \(N, C, H, W\), got torch.uint8 \(3, 4, 4\)"):
        D.ImageDataset(images[:, 0], [0, 1, 0], ["a", "b"])
    with pytest.raises(ValueError, match="3 images but 2 targets"):
        D.ImageDataset(images, [0, 1], ["a", "b"])
    images[1] = 7
    ds = D.ImageDataset(images, [0, 1, 0], ["a", "b"], paths=["x", "y", "z"])
    assert ds.class_counts == {"a": 2, "b": 1} and ds.class_to_idx == {"a": 0, "b": 1}
    assert repr(ds) == "ImageDataset(n=3, image=1x4x4, a=2, b=1)"
    x, y = ds[1]
    assert torch.equal(x, images[1]) and y == 1  # no transform: the raw uint8 image
    sub = ds.subset([2, 1], transform=lambda t: t.float() + 1)
    assert sub.paths == ["z", "y"] and sub.targets.tolist() == [0, 1] and sub[1][0].max() == 8
    assert ds.subset([1]).transform is None and ds.subset([1]).paths == ["y"]
    other = ds.with_transform(lambda t: t * 2)
    assert other.images is ds.images and other.paths == ds.paths and other[1][0].max() == 14


def test_load_images_resizes_refuses_mixed_sizes_and_all_unreadable(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(pattern(20, "RGB", 100, 1), "RGB").save(a)
    Image.fromarray(pattern(30, "RGB", 100, 2), "RGB").save(b)
    with pytest.raises(D.DatasetFormatError, match="different sizes.*pass size=N"):
        D.load_images([a, b], [0, 1], "RGB")
    images, targets, kept, skipped = D.load_images([a, b], [0, 1], "RGB", size=16)
    assert images.shape == (2, 3, 16, 16) and targets.tolist() == [0, 1] and kept == [str(a), str(b)]
    gray, *_ = D.load_images([a], [0], "L")
    rgb = pattern(20, "RGB", 100, 1).astype(float)
    assert np.abs(gray[0, 0].numpy() - (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])).max() <= 1
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"), \
            pytest.raises(D.DatasetFormatError, match="none of the 1 image files could be decoded"):
        D.load_images([bad], [0])
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        images, targets, kept, skipped = D.load_images([a, bad, a], [3, 4, 5], "RGB")
    assert targets.tolist() == [3, 5] and skipped == [str(bad)]  # labels stay with their files


def test_exif_orientation_is_applied_on_load(tmp_path):
    upright = pattern(32, "L", 100, 3)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # what a camera wrote
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    stored.save(path, exif=exif, quality=95)
    images, *_ = D.load_images([path], [0], "L")
    assert close_to_pattern(images[0], upright)


def test_a_corrupt_cache_is_rebuilt(fer_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    first = D.FER2013(fer_folders, "test", cache=True)
    files = list((tmp_path / "cache").glob("images-*.pt"))
    assert len(files) == 1
    files[0].write_bytes(b"garbage")
    again = D.FER2013(fer_folders, "test", cache=True)
    assert torch.equal(first.images, again.images) and torch.equal(first.targets, again.targets)
    assert files[0].stat().st_size > 1000  # written again


def test_data_root_and_image_folder_dataset(tmp_path, monkeypatch, fer_folders):
    monkeypatch.delenv("EMOLIB_DATA", raising=False)
    assert D.data_root() == Path.home() / "emolib-data"
    assert D.data_root(tmp_path) == tmp_path
    monkeypatch.setenv("EMOLIB_DATA", "~/x")
    assert D.data_root() == Path.home() / "x"
    ds = D.ImageFolderDataset(fer_folders / "test", D.EMOTIONS)
    assert len(ds) == 14 and ds.classes == D.EMOTIONS
    assert all(ds.classes[t] == Path(p).parent.name for t, p in zip(ds.targets.tolist(), ds.paths))
    two = D.ImageFolderDataset(fer_folders / "test", ("pos", "neg"), {"happy": "pos", "sad": "neg", "angry": "neg",
                               "disgust": "neg", "fear": "neg", "neutral": "pos", "surprise": "pos"}, size=24)
    assert two.images.shape[-1] == 24 and two.class_counts == {"pos": 6, "neg": 8}


def test_upper_case_suffixes_and_hidden_folders(fer_folders):
    src = fer_folders / "test" / "happy" / "test_3_0.jpg"
    src.rename(src.with_name("TEST_3_0.JPG"))
    (fer_folders / "test" / ".ipynb_checkpoints").mkdir()
    assert len(D.FER2013(fer_folders, "test", cache=False)) == 14


def test_download_refuses_unknown_names_and_needs_kagglehub(tmp_path, monkeypatch):
    import sys

    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        D.download("mnist", tmp_path)
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(D.DownloadError, match="pip install kagglehub"):
        D.download("fer2013", tmp_path)
    (tmp_path / "asl").mkdir()
    (tmp_path / "asl" / "A").mkdir()
    assert D.download("ASL", tmp_path) == tmp_path / "asl"  # already there: nothing to do


# --------------------------------------------------------------------------- written from sampled mutants (issue 17)


def test_the_validation_part_is_the_asked_fraction_once_that_exceeds_one_per_class():
    images = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1).expand(100, 1, 2, 2).contiguous()
    ds = D.ImageDataset(images, [i % 4 for i in range(100)], ["a", "b", "c", "d"])
    tr, va = D.train_val_split(ds, val_fraction=0.2, seed=0)
    assert (len(tr), len(va)) == (80, 20)
    assert va.class_counts == {"a": 5, "b": 5, "c": 5, "d": 5}
    assert len(D.train_val_split(ds, val_fraction=0.01)[1]) == 4  # never fewer than one per class


def test_a_csv_split_that_does_not_exist_is_refused_naming_the_splits(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n0," + " ".join(["7"] * 2304) + ",Training\n")
    with pytest.raises(ValueError, match=r"split must be one of \['private_test', 'test', 'train'\], got 'val'"):
        D.FER2013(path, "val")


def test_missing_data_messages_name_the_folders_expected(tmp_path):
    with pytest.raises(D.DatasetNotFoundError) as err:
        D.asl_files(tmp_path / "nowhere")
    assert f"ASL photos not found at {tmp_path / 'nowhere'}: expected one folder per letter (A, F, L, V)" in str(
        err.value)
    with pytest.raises(D.DatasetNotFoundError, match="per emotion: angry, disgust, fear, happy, neutral, sad, "
                                                     "surprise"):
        D.FER2013(tmp_path / "nowhere")


def test_a_second_load_reads_the_cache_and_decodes_nothing(fer_folders, monkeypatch):
    first = D.FER2013(fer_folders, "train", cache=True)

    def no_decoding(*args):
        raise AssertionError("an image was decoded again instead of read from the cache")

    monkeypatch.setattr(D, "_decode", no_decoding)
    again = D.FER2013(fer_folders, "train", cache=True)
    assert torch.equal(again.images, first.images) and torch.equal(again.targets, first.targets)
    assert again.paths == first.paths and again.skipped == first.skipped
