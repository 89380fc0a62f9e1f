"""Transforms: output shapes, channel conversion, normalisation, and the before/after grid."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from emolib import transforms as T
from emolib.data import FER2013


def _gray(n=48):
    return torch.randint(0, 256, (1, n, n), dtype=torch.uint8)


def test_face_train_transform_output():
    torch.manual_seed(0)
    out = T.face_train_transform()(_gray())
    assert out.shape == (1, 48, 48) and out.dtype == torch.float32
    assert -1.0 <= out.min() and out.max() <= 1.0  # mean 0.5, std 0.5 maps [0, 1] to [-1, 1]


def test_face_transform_is_random_but_seedable():
    tf = T.face_train_transform()
    x = _gray()
    torch.manual_seed(3)
    a = tf(x)
    torch.manual_seed(3)
    b = tf(x)
    c = tf(x)
    assert torch.equal(a, b) and not torch.equal(b, c)


@pytest.mark.parametrize("channels", [1, 3])
def test_eval_transform_converts_gray_and_rgb(channels):
    tf = T.eval_transform(224, channels, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert tf(_gray()).shape == (channels, 224, 224)
    rgb = torch.randint(0, 256, (3, 100, 100), dtype=torch.uint8)
    assert tf(rgb).shape == (channels, 224, 224)


def test_gray_to_rgb_repeats_the_channel():
    x = _gray()
    out = T.eval_transform(48, 3, (0.0,), (1.0,))(x)
    assert torch.allclose(out[0], out[1]) and torch.allclose(out[1], out[2])
    assert torch.allclose(out[0], x[0].float() / 255)


def test_eval_transform_is_deterministic():
    tf = T.eval_transform()
    x = _gray()
    assert torch.equal(tf(x), tf(x))


def test_hand_transform_output():
    x = torch.randint(0, 256, (3, 128, 128), dtype=torch.uint8)
    assert T.hand_train_transform(size=96)(x).shape == (3, 96, 96)


def test_bad_channel_count():
    with pytest.raises(ValueError, match="channels"):
        T.eval_transform(48, 2)


def test_denormalize_inverts_normalize():
    x = _gray()
    tf = T.eval_transform(48, 1, (0.5,), (0.5,))
    assert torch.allclose(T.denormalize(tf(x), (0.5,), (0.5,)), x.float() / 255, atol=1e-6)


def test_show_augmentations_draws_a_grid(fer_folders):
    ds = FER2013(fer_folders, "train")
    fig = T.show_augmentations(ds, T.face_train_transform(), n=3, repeats=2)
    assert len(fig.axes) == 3 * 3
    assert fig.axes[0].get_title() == "original"
