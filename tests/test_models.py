"""Models: registry, parameter counts, forward/backward, checkpoints and their errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emolib import models as M

# Parameter counts with a 7-class head (4 for resnetv2_50), each from a source outside emolib:
# the baseline from the thesis (1,668,615 in its Table 5.8); the three torchvision architectures
# from torchvision's documented ImageNet counts (resnet34 21,797,672; wide_resnet50_2 68,883,240;
# mobilenet_v3_large 5,483,032) with the 1000-class head replaced: minus (features + 1) * 1000,
# plus (features + 1) * classes.
def _head_swap(imagenet: int, features: int, classes: int) -> int:
    return imagenet - (features + 1) * 1000 + (features + 1) * classes


EXPECTED = {
    "baseline": 1_668_615,
    "mobilenetv3_large": _head_swap(5_483_032, 1280, 7),
    "resnet34": _head_swap(21_797_672, 512, 7),
    "wide_resnet50_2": _head_swap(68_883_240, 2048, 7),
}
# ...and a timm backbone is timm's own ImageNet network with only its head swapped (resnetv2_50 has
# no documented torchvision count; the large ones are covered above and slow to build twice).
TIMM = {"mobilenetv3_large": ("mobilenetv3_large_100", 7), "resnetv2_50": ("resnetv2_50", 4)}


def test_registry_names():
    # one registry: the image models and the hand-landmark MLP (issue 11)
    assert set(EXPECTED) | set(TIMM) | {"emonet", "landmark_mlp"} <= set(M.list_models())


def test_the_landmark_mlp_is_in_the_registry():
    # 21 landmarks x 3 coordinates -> 128 -> 64 -> 4 classes: weights and biases of three linear layers
    m = M.create_model("landmark_mlp")
    assert M.count_parameters(m) == (63 * 128 + 128) + (128 * 64 + 64) + (64 * 4 + 4)
    assert m.emolib_name == "landmark_mlp" and m.input_config == M.InputConfig(21, 3, (0.0,) * 3, (1.0,) * 3)
    assert m(torch.zeros(2, 63)).shape == (2, 4) and m(torch.zeros(2, 21, 3)).shape == (2, 4)
    two = M.create_model("landmark_mlp", num_classes=5, in_chans=2)  # without the depth coordinate
    assert two(torch.zeros(2, 42)).shape == (2, 5) and two.input_config.channels == 2
    with pytest.raises(M.PretrainedWeightsError):
        M.create_model("landmark_mlp", pretrained=True)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts(name):
    assert M.count_parameters(M.create_model(name)) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(TIMM))
def test_timm_backbones_only_change_the_head(name):
    import timm

    timm_name, classes = TIMM[name]
    ref = timm.create_model(timm_name, pretrained=False)  # its ImageNet head (a Linear or a 1x1 Conv2d)
    head = ref.get_classifier()
    assert sum(p.numel() for p in head.parameters()) == (head.weight.shape[1] + 1) * 1000
    expected = _head_swap(sum(p.numel() for p in ref.parameters()), head.weight.shape[1], classes)
    assert M.count_parameters(M.create_model(name, num_classes=classes)) == expected


@pytest.mark.parametrize("name", ["baseline", "emonet", "mobilenetv3_large", "resnet34"])
def test_forward_backward(name):
    model = M.create_model(name)
    cfg = model.input_config
    size = cfg.size if cfg.size <= 48 else 64  # the timm nets are fully convolutional
    x = torch.randn(2, cfg.channels, size, size)
    out = model(x)
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_gray_input_for_a_timm_backbone():
    model = M.create_model("resnet34", in_chans=1)
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 7)
    assert model.input_config.channels == 1 and len(model.input_config.mean) == 1


def test_from_scratch_models_have_no_imagenet_weights():
    with pytest.raises(M.PretrainedWeightsError, match="from scratch"):
        M.create_model("baseline", pretrained=True)


def test_pretrained_offline_fails_with_a_clear_message(monkeypatch):
    import timm

    def offline(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        raise AssertionError("unexpected call")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(M.PretrainedWeightsError, match="network connection"):
        M.create_model("resnet34", pretrained=True)


def test_unknown_model():
    with pytest.raises(ValueError, match="choose one of"):
        M.create_model("vgg99")


def test_checkpoint_round_trip_in_half_precision(tmp_path):
    model = M.create_model("baseline").eval()
    x = torch.randn(3, 1, 48, 48)
    path = M.save_checkpoint(model, tmp_path / "m.pt", ["a", "b", "c", "d", "e", "f", "g"], half=True, note="x")
    loaded = M.load_model(path)
    assert loaded.classes == ("a", "b", "c", "d", "e", "f", "g") and loaded.meta == {"note": "x"}
    assert torch.allclose(loaded(x), model(x), atol=5e-2)


def test_weights_path_loads_a_checkpoint(tmp_path):
    src = M.create_model("baseline")
    path = M.save_checkpoint(src, tmp_path / "m.pt", list("abcdefg"))
    dst = M.create_model("baseline", weights=path)
    assert torch.equal(dst.head.weight, src.head.weight)


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = M.save_checkpoint(M.create_model("emonet"), tmp_path / "emonet.pt", list("abcdefg"))
    with pytest.raises(M.CheckpointError, match="does not fit this architecture"):
        M.create_model("baseline", weights=path)


def test_corrupt_or_missing_checkpoint(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(M.CheckpointError, match="not a readable PyTorch checkpoint"):
        M.load_model(bad)
    with pytest.raises(M.CheckpointError, match="neither a shipped model"):
        M.load_model("no-such-model")
    plain = tmp_path / "plain.pt"
    torch.save(M.create_model("baseline").state_dict(), plain)
    with pytest.raises(M.CheckpointError, match="not an emolib checkpoint"):
        M.load_model(plain)


def test_shipped_checkpoints_load_and_have_cards():
    assert {"baseline-fer2013", "gestures-asl"} <= set(M.list_pretrained())
    for name in M.list_pretrained():
        model = M.load_model(name)  # emotion and gesture checkpoints alike: one registry
        card = M.model_card(name)
        assert card["name"] == name and tuple(model.classes) == tuple(card["classes"])
        assert M.count_parameters(model) == card["parameters"]
        # the card's metrics agree with its own confusion matrix (accuracy = trace / total);
        # tests/test_shipped.py measures them again on the real data
        metrics = card.get("test") or card["val"]  # gesture cards: validation split (the test set is external)
        cm = np.array(metrics["confusion"])
        assert cm.shape == (len(model.classes),) * 2 and cm.sum() <= metrics["n"]
        assert np.trace(cm) / metrics["n"] == pytest.approx(metrics["accuracy"], abs=1e-9)


def test_timm_input_config_is_timms_pretrained_cfg():
    from timm.data import resolve_model_data_config

    for name, timm_name in (("resnet34", "resnet34"), ("resnetv2_50", "resnetv2_50")):
        model = M.create_model(name, num_classes=4)
        data = resolve_model_data_config(model)  # what timm says the built network takes
        cfg = model.input_config
        assert (cfg.channels, cfg.size, cfg.size) == data["input_size"]
        assert cfg.mean == pytest.approx(data["mean"]) and cfg.std == pytest.approx(data["std"])
        assert M.input_config(name) == cfg
    gray = M.input_config("resnet34", in_chans=1)  # one channel: the average of ImageNet's three
    assert gray.channels == 1 and gray.mean == pytest.approx((0.449,)) and gray.std == pytest.approx((0.226,))
    assert M.input_config("baseline") == M.InputConfig(48, 1, (0.5,), (0.5,))
    assert M.input_config("resnet34", size=112).size == 112


def test_a_backbone_state_dict_leaves_the_classifier_timm_names_new(tmp_path):
    # resnetv2_50's classifier is "head.fc" (timm's pretrained_cfg): a 1000-class backbone file fits a 4-class model
    import timm

    src = timm.create_model("resnetv2_50", pretrained=False)
    path = tmp_path / "backbone.pt"
    torch.save(src.state_dict(), path)
    dst = M.create_model("resnetv2_50", num_classes=4, weights=path)
    assert torch.equal(dst.stem.conv.weight, src.stem.conv.weight) and dst.head.fc.weight.shape[0] == 4
    # a weight outside the classifier of another shape is refused, not skipped
    sd = src.state_dict()
    sd["stem.conv.weight"] = sd["stem.conv.weight"][:, :1]
    torch.save(sd, path)
    with pytest.raises(M.CheckpointError, match="does not fit this architecture"):
        M.create_model("resnetv2_50", num_classes=4, weights=path)
