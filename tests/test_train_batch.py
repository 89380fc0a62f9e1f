"""Trainer options of the GPU study's recipe: augmentation on batches, optimizers, the weight average (EMA)."""

from __future__ import annotations

import pytest
import torch

from emolib.augment import BatchAugment
from emolib.fileio import load_torch, save_torch
from emolib.optim import make_ema, make_optimizer
from emolib.train import ResumeMismatchError, TrainConfig, fit, predict
from emolib.transforms import eval_transform
from tests.toy import fit_cut_and_resumed, tiny_cnn, tiny_mlp, toy_dataset

# The toy classes are quadrants, so no flip (it would swap classes); small shifts and crops only.
AUG = {"rotation": 5.0, "shift": 0.05, "flip": 0.0, "brightness": 0.2, "crop_padding": 1, "fill": "zeros"}


def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _splits(n=160, cut=120):
    data = toy_dataset(n)
    return data.subset(range(cut)), data.subset(range(cut, n))


def _assert_same_state(a, b, path=""):
    """Equal nested checkpoint content: tensors bit for bit, everything else by value."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _assert_same_state(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


# --------------------------------------------------------------------------- the batch eval path


@pytest.mark.parametrize("size,channels,stored", [(16, 1, 1), (24, 1, 1), (12, 3, 1), (20, 3, 3), (16, 1, 3)])
def test_the_batch_eval_path_equals_the_eval_transform(size, channels, stored):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, stored, 16, 16), generator=g, dtype=torch.uint8)
    mean, std = (0.485, 0.456, 0.406)[:channels], (0.229, 0.224, 0.225)[:channels]
    tf = eval_transform(size, channels, mean, std)
    one_by_one = torch.stack([tf(im) for im in images])
    assert one_by_one.shape == (6, channels, size, size)
    assert torch.equal(tf(images), one_by_one)  # gray -> RGB, RGB -> gray and resizes included


@pytest.mark.parametrize("size,channels", [(16, 1), (24, 3), (12, 1)])
def test_the_training_batch_path_without_augmentation_is_the_eval_transform(size, channels):
    # fit's training path: BatchAugment to floats in [0, 1], then the eval transform on the batch
    from emolib.train import batch_transforms

    data = toy_dataset(12)
    mean, std = (0.5, 0.4, 0.3)[:channels], (0.2, 0.25, 0.3)[:channels]
    tf = eval_transform(size, channels, mean, std)
    none = {"rotation": 0.0, "shift": 0.0, "flip": 0.0, "brightness": 0.0}
    augment, prepare = batch_transforms(TrainConfig(batch_augment=none), data, data.with_transform(tf))
    out = prepare(augment(data.images, generator=torch.Generator().manual_seed(0)))
    expected = torch.stack([tf(im) for im in data.images])
    assert out.shape == expected.shape == (12, channels, size, size)
    # equal up to the uint8 rounding the per-image path does after a resize (none at the stored size)
    step = 1 / 255 / min(std) + 1e-5 if size != 16 else 1e-5
    assert (out - expected).abs().max() <= step


def test_predict_on_raw_batches_equals_predict_on_transformed_images():
    data = toy_dataset(40)
    tf = eval_transform(24, 3, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))  # another size and channel count
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 4))
    p1, t1 = predict(model, data.with_transform(tf), batch_size=16, progress=False)
    p2, t2 = predict(model, data.with_transform(None), batch_size=16, progress=False, batch_transform=tf)
    assert torch.equal(t1, t2)
    assert torch.allclose(p1, p2, atol=1e-6)


# --------------------------------------------------------------------------- crop_padding


def test_crop_padding_shifts_each_image_by_whole_pixels_of_the_reflect_padded_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (32, 1, 10, 10), generator=g, dtype=torch.uint8)
    aug = BatchAugment(mean=(0.0,), std=(1.0,), rotation=0, shift=0, flip=0, brightness=0, crop_padding=2)
    out = aug(x, generator=torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x.float() / 255, (2, 2, 2, 2), mode="reflect")
    offsets = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if torch.allclose(out[i], padded[i, :, dy:dy + 10, dx:dx + 10], atol=1e-6)]
        assert found, f"image {i} is no crop of its padded image"
        offsets.add(found[0])
    assert len(offsets) > 5  # the offsets vary over the batch
    for axis in (0, 1):  # and reach both ends of the range, 0 and 2 * padding
        assert {o[axis] for o in offsets} >= {0, 4}


def test_crop_padding_is_checked():
    with pytest.raises(ValueError, match="crop_padding"):
        BatchAugment(crop_padding=-1)
    with pytest.raises(ValueError, match="crop_padding"):
        BatchAugment(crop_padding=1.5)
    with pytest.raises(ValueError, match="smaller than the image"):
        BatchAugment(crop_padding=8)(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))


# --------------------------------------------------------------------------- training on batches


def test_batch_augmented_training_learns_and_is_reproducible(tmp_path):
    data = toy_dataset(240)
    train, val = data.subset(range(200)), data.subset(range(200, 240))
    cfg = TrainConfig(epochs=5, batch_size=20, lr=1e-2, device="cpu", batch_augment=AUG)
    h1 = fit(tiny_cnn(), train, val, cfg, out_dir=tmp_path / "a", progress=False)
    assert h1[-1]["val_acc"] >= 0.8  # chance is 0.25
    assert h1[-1]["train_loss"] < h1[0]["train_loss"]
    m2 = tiny_cnn()
    h2 = fit(m2, train, val, cfg, out_dir=tmp_path / "b", progress=False)
    assert _strip(h1) == _strip(h2)
    _assert_same_state(load_torch(tmp_path / "a" / "last.pt")["model"], load_torch(tmp_path / "b" / "last.pt")["model"])
    # the datasets passed in keep their transforms
    assert train.transform is not None and val.transform is not None
    # and the augmentation does change what is learnt (it is not silently skipped)
    h3 = fit(tiny_cnn(), train, val, TrainConfig(epochs=5, batch_size=20, lr=1e-2, device="cpu",
                                                 batch_augment=dict(AUG, brightness=0.0)), progress=False)
    assert _strip(h3) != _strip(h1)


def test_a_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    train, val = _splits()
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.05, optimizer="sgd", schedule="onecycle", pct_start=0.25,
                      weight_decay=5e-4, label_smoothing=0.1, ema=0.9, batch_augment=AUG, device="cpu")
    full, resumed = fit_cut_and_resumed(tiny_cnn, train, val, cfg, tmp_path)
    assert _strip(full) == _strip(resumed)
    a, b = load_torch(tmp_path / "full" / "last.pt"), load_torch(tmp_path / "cut" / "last.pt")
    for part in ("model", "optimizer", "scheduler", "ema", "best_state"):
        _assert_same_state(a[part], b[part], part)
    assert a["ema"]["n_averaged"].item() == 4 * len(range(0, 120, 16))  # one update per step


def test_a_resume_with_other_batch_augmentation_is_refused(tmp_path):
    train, val = _splits(80, 60)
    cfg = TrainConfig(epochs=1, batch_size=20, device="cpu", batch_augment=AUG)
    fit(tiny_mlp(), train, val, cfg, out_dir=tmp_path, progress=False)
    other = TrainConfig(epochs=2, batch_size=20, device="cpu", batch_augment=dict(AUG, rotation=20.0))
    with pytest.raises(ResumeMismatchError, match="batch_augment"):
        fit(tiny_mlp(), train, val, other, out_dir=tmp_path, progress=False)


def test_a_checkpoint_from_before_these_options_still_resumes(tmp_path):
    train, val = _splits(80, 60)
    fit(tiny_mlp(), train, val, TrainConfig(epochs=1, batch_size=20, device="cpu"), out_dir=tmp_path, progress=False)
    state = load_torch(tmp_path / "last.pt")
    for key in ("optimizer", "pct_start", "ema", "batch_augment"):
        del state["config"][key]
    del state["ema"]
    save_torch(state, tmp_path / "last.pt")
    history = fit(tiny_mlp(), train, val, TrainConfig(epochs=2, batch_size=20, device="cpu"), out_dir=tmp_path,
                  progress=False)
    assert len(history) == 2 and "stage" not in history[-1]


def test_batch_augment_needs_image_datasets_with_an_eval_transform():
    train, val = _splits(40, 30)
    cfg = TrainConfig(epochs=1, batch_size=10, device="cpu", batch_augment=AUG)
    with pytest.raises(ValueError, match="validation set has none"):
        fit(tiny_mlp(), train, val.with_transform(None), cfg, progress=False)
    with pytest.raises(ValueError, match="ImageDataset"):
        fit(tiny_mlp(), list(train), val, cfg, progress=False)
    with pytest.raises(ValueError, match="mean and std"):
        fit(tiny_mlp(), train, val, TrainConfig(epochs=1, device="cpu", batch_augment={"mean": (0.5,)}),
            progress=False)


# --------------------------------------------------------------------------- optimizers and EMA


@pytest.mark.parametrize("name,kind", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW),
                                       ("sgd", torch.optim.SGD)])
def test_make_optimizer(name, kind):
    opt = make_optimizer(tiny_mlp().parameters(), name, lr=0.1, weight_decay=1e-3)
    assert type(opt) is kind
    group = opt.param_groups[0]
    assert group["lr"] == 0.1 and group["weight_decay"] == 1e-3
    if name == "sgd":
        assert group["momentum"] == 0.9 and group["nesterov"] is True


def test_bad_optimizer_and_ema_are_refused():
    with pytest.raises(ValueError, match="adam, adamw, sgd"):
        make_optimizer(tiny_mlp().parameters(), "rmsprop", lr=0.1)
    with pytest.raises(ValueError, match="decay between 0 and 1"):
        make_ema(tiny_mlp(), 1.5)


def test_each_optimizer_option_takes_effect_in_fit(tmp_path):
    train, val = _splits(80, 60)
    weights, groups = {}, {}
    for name in ("adam", "adamw", "sgd"):
        cfg = TrainConfig(epochs=1, batch_size=20, lr=0.05, weight_decay=0.1, optimizer=name, schedule="none",
                          device="cpu")
        model = tiny_mlp()
        fit(model, train, val, cfg, out_dir=tmp_path / name, progress=False)
        weights[name] = torch.cat([p.detach().flatten() for p in model.parameters()])
        groups[name] = load_torch(tmp_path / name / "last.pt")["optimizer"]["param_groups"][0]
    assert groups["sgd"]["nesterov"] is True and groups["sgd"]["momentum"] == 0.9
    assert "betas" in groups["adam"] and "betas" in groups["adamw"]
    for a, b in (("adam", "adamw"), ("adam", "sgd"), ("adamw", "sgd")):
        assert not torch.allclose(weights[a], weights[b]), f"{a} and {b} trained the same weights"


def test_with_ema_validation_best_pt_and_the_result_are_the_averaged_weights(tmp_path):
    train, val = _splits()
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.05, optimizer="sgd", schedule="none", ema=0.8, device="cpu")
    model = tiny_cnn()
    history = fit(model, train, val, cfg, out_dir=tmp_path, progress=False)
    last = load_torch(tmp_path / "last.pt")
    averaged = {k[len("module."):]: v for k, v in last["ema"].items() if k.startswith("module.")}
    _assert_same_state(model.state_dict(), averaged)  # one epoch: the best epoch is the last
    _assert_same_state(load_torch(tmp_path / "best.pt"), averaged)
    assert not torch.equal(last["model"]["0.weight"], averaged["0.weight"])  # the raw weights differ
    probs, targets = predict(model, val, progress=False)
    assert history[0]["val_acc"] == pytest.approx((probs.argmax(1) == targets).float().mean().item())


# --------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("name", ["vgg-fer2013", "baseline_batch-fer2013"])
def test_the_batch_recipes_train_from_one_call(tmp_path, fer_folders, name):
    from emolib.experiment import run_recipe
    from emolib.recipes import get_recipe

    recipe = get_recipe(name, epochs=1, batch_size=8, device="cpu")
    assert recipe.config.batch_augment
    result = run_recipe(recipe, tmp_path / "run", root=fer_folders, progress=False)
    assert result["epochs_run"] == 1 and 0 <= result["test"]["accuracy"] <= 1
    assert result["recipe"]["config"]["batch_augment"] == dict(recipe.config.batch_augment)
    assert (tmp_path / "run" / "model.pt").is_file()


def test_the_thesis_face_augmentation_on_batches_keeps_the_per_image_ranges():
    import inspect

    from emolib.recipes import THESIS_FACE_AUGMENT
    from emolib.transforms import face_train_transform

    per_image = {k: p.default for k, p in inspect.signature(face_train_transform).parameters.items()}
    for key in ("rotation", "brightness", "shift", "crop_padding", "flip"):
        assert THESIS_FACE_AUGMENT[key] == per_image[key], key
    assert THESIS_FACE_AUGMENT["fill"] == "zeros"  # black, as torchvision's RandomAffine fills


def test_a_non_zero_rank_leaves_the_run_folder_to_rank_0(tmp_path, fer_folders, monkeypatch):
    """Under torchrun every rank runs run_recipe; only rank 0 evaluates the test split and writes
    model.pt and result.json (the other ranks' batch-norm statistics differ). RANK alone, without
    WORLD_SIZE, keeps fit in one process, which is enough to see what the folder gets."""
    from emolib.experiment import run_recipe
    from emolib.recipes import get_recipe

    monkeypatch.setenv("RANK", "1")
    result = run_recipe(get_recipe("baseline_batch-fer2013", epochs=1, batch_size=8, device="cpu"),
                        tmp_path / "run", root=fer_folders, progress=False)
    assert result["epochs_run"] == 1 and "test" not in result
    assert not (tmp_path / "run" / "model.pt").exists() and not (tmp_path / "run" / "result.json").exists()
