"""BatchAugment: what each configured step does, measured on synthetic images."""

from __future__ import annotations

import math

import pytest
import torch

from emolib.augment import BatchAugment, batch_normalize
from emolib.models import VGGNet, count_parameters, create_model

OFF = dict(rotation=0.0, scale=(1.0, 1.0), shift=0.0, flip=0.0, brightness=0.0, contrast=0.0, erase=0.0)


def _asymmetric(n: int = 4, size: int = 48) -> torch.Tensor:
    """A batch of uint8 images with no symmetry: a gradient plus a bright block in the top-left quarter."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    img = (x * 2 + y).clamp(0, 255).to(torch.uint8)
    img[4:12, 6:18] = 250
    return img.expand(n, 1, size, size).clone()


def _dot(n: int, size: int, at: tuple[int, int]) -> torch.Tensor:
    img = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    img[:, :, at[0] - 1:at[0] + 2, at[1] - 1:at[1] + 2] = 255
    return img


def _centroid(x: torch.Tensor) -> torch.Tensor:
    """(N, 2) centroid (row, col) of each image's intensity, in pixels."""
    w = x.clamp(min=0).sum(dim=(1, 2, 3))
    size = x.shape[-1]
    idx = torch.arange(size, dtype=torch.float32)
    r = (x.clamp(min=0).sum(dim=(1, 3)) * idx).sum(1) / w
    c = (x.clamp(min=0).sum(dim=(1, 2)) * idx).sum(1) / w
    return torch.stack([r, c], 1)


def _unnorm(x: torch.Tensor) -> torch.Tensor:
    return x * 0.5 + 0.5  # mean 0.5, std 0.5 -> [0, 1]


def test_all_steps_off_is_normalisation_only():
    imgs = _asymmetric()
    out = BatchAugment(**OFF)(imgs)
    torch.testing.assert_close(out, (imgs.float() / 255 - 0.5) / 0.5, atol=1e-5, rtol=0)
    torch.testing.assert_close(out, batch_normalize(imgs, (0.5,), (0.5,)))


def test_flip_mirrors_left_right():
    imgs = _asymmetric()
    out = BatchAugment(**{**OFF, "flip": 1.0})(imgs)
    torch.testing.assert_close(out, batch_normalize(imgs.flip(3), (0.5,), (0.5,)), atol=1e-5, rtol=0)


def test_rotation_angles_are_degrees_within_the_range():
    aug = BatchAugment(**{**OFF, "rotation": 10.0})
    theta = aug.matrices(2000, torch.zeros(1), torch.Generator().manual_seed(0))
    angles = torch.rad2deg(torch.atan2(theta[:, 1, 0], theta[:, 0, 0]))
    assert angles.abs().max() <= 10.0 + 1e-4
    assert angles.min() < -9 and angles.max() > 9  # uniform over the whole range, not a fixed angle


def test_rotation_moves_a_dot_along_a_circle_by_the_matrix_angle():
    size, at = 48, (24, 40)  # a dot 16 px right of the centre (23.5, 23.5)
    aug = BatchAugment(**{**OFF, "rotation": 30.0})
    g = torch.Generator().manual_seed(1)
    out = _unnorm(aug(_dot(64, size, at), generator=g))
    theta = aug.matrices(64, out, torch.Generator().manual_seed(1))
    c = _centroid(out) - 23.5
    # The dot stays at the same distance from the centre and turns by the angle the matrix holds.
    radius = c.norm(dim=1)
    assert torch.allclose(radius, torch.full_like(radius, 16.5), atol=1.0)
    turned = torch.rad2deg(torch.atan2(c[:, 0], c[:, 1]))  # image rows grow downwards
    expected = -torch.rad2deg(torch.atan2(theta[:, 1, 0], theta[:, 0, 0]))
    assert (turned - expected).abs().max() < 3.0
    assert turned.abs().max() > 20  # it really turned


def test_shift_is_a_fraction_of_the_side():
    size = 48
    aug = BatchAugment(**{**OFF, "shift": 0.1})
    out = _unnorm(aug(_dot(256, size, (24, 24)), generator=torch.Generator().manual_seed(2)))
    d = _centroid(out) - torch.tensor([24.0, 24.0])
    assert d.abs().max() <= 0.1 * size + 1.0
    assert d[:, 0].abs().max() > 3 and d[:, 1].abs().max() > 3


def test_scale_zooms_about_the_centre():
    size = 48
    aug = BatchAugment(**{**OFF, "scale": (1.5, 1.5)})
    out = _unnorm(aug(_dot(2, size, (24, 32)), generator=torch.Generator().manual_seed(3)))
    c = _centroid(out) - 23.5
    assert c[:, 1].mean().item() == pytest.approx(8.5 * 1.5, abs=0.5)


def test_brightness_scales_each_image_within_the_range():
    imgs = torch.full((512, 1, 8, 8), 100, dtype=torch.uint8)
    out = _unnorm(BatchAugment(**{**OFF, "brightness": 0.2})(imgs, generator=torch.Generator().manual_seed(4)))
    ratio = out.mean(dim=(1, 2, 3)) / (100 / 255)
    assert ratio.min() >= 0.8 - 1e-4 and ratio.max() <= 1.2 + 1e-4
    assert ratio.std() > 0.08  # uniform on [0.8, 1.2] has std 0.115


def test_contrast_keeps_the_mean_and_scales_the_spread():
    imgs = _asymmetric(256)
    out = _unnorm(BatchAugment(**{**OFF, "contrast": 0.3})(imgs, generator=torch.Generator().manual_seed(5)))
    src = imgs.float() / 255
    spread = out.std(dim=(1, 2, 3)) / src.std(dim=(1, 2, 3))
    assert spread.min() >= 0.7 - 1e-3 and spread.max() <= 1.3 + 0.02
    assert spread.std() > 0.1


def test_erase_replaces_one_rectangle_of_2_to_20_percent():
    imgs = torch.zeros(200, 1, 48, 48, dtype=torch.uint8)
    out = _unnorm(BatchAugment(**{**OFF, "erase": 1.0})(imgs, generator=torch.Generator().manual_seed(6)))
    changed = (out > 1e-6).float().mean(dim=(1, 2, 3))  # noise is almost never exactly 0
    assert changed.min() > 0.01 and changed.max() < 0.21
    kept = _unnorm(BatchAugment(**OFF)(imgs))
    assert kept.abs().max() == 0


def test_fill_border_repeats_the_edge_and_zeros_fills_black():
    imgs = torch.full((1, 1, 16, 16), 200, dtype=torch.uint8)
    theta_shift = dict(**{**OFF, "shift": 0.4})
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    border = _unnorm(BatchAugment(**theta_shift, fill="border")(imgs, generator=g()))
    zeros = _unnorm(BatchAugment(**theta_shift, fill="zeros")(imgs, generator=g()))
    assert torch.allclose(border, torch.full_like(border, 200 / 255), atol=1e-5)
    assert zeros.min() < 0.05  # uncovered pixels are black


def test_a_generator_makes_it_reproducible():
    imgs = _asymmetric(8)
    aug = BatchAugment(rotation=10, scale=(0.9, 1.1), shift=0.1, flip=0.5, brightness=0.2, contrast=0.2, erase=0.5)
    a = aug(imgs, generator=torch.Generator().manual_seed(9))
    b = aug(imgs, generator=torch.Generator().manual_seed(9))
    c = aug(imgs, generator=torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_float_input_in_0_1_gives_the_same_as_uint8():
    imgs = _asymmetric()
    aug = BatchAugment(rotation=10, flip=0.5)
    a = aug(imgs, generator=torch.Generator().manual_seed(11))
    b = aug(imgs.float() / 255, generator=torch.Generator().manual_seed(11))
    torch.testing.assert_close(a, b)


def test_mean_0_std_1_returns_the_0_1_batch_as_fit_uses_it():
    """fit augments to [0, 1] (mean 0, std 1) and normalises with the eval transform: the same draw as a
    normalised augmentation, rescaled."""
    imgs = _asymmetric(8)
    kw = dict(rotation=10, shift=0.1, flip=0.5, brightness=0.2, crop_padding=4, fill="zeros")
    raw = BatchAugment(mean=(0.0,), std=(1.0,), **kw)(imgs, generator=torch.Generator().manual_seed(3))
    norm = BatchAugment(**kw)(imgs, generator=torch.Generator().manual_seed(3))
    assert raw.dtype == torch.float32 and 0 <= raw.min() and raw.max() <= 1 and raw.std() > 0.05
    torch.testing.assert_close(_unnorm(norm), raw, atol=1e-6, rtol=0)

def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"batch \(N, C, H, W\)"):
        BatchAugment()(torch.zeros(1, 48, 48, dtype=torch.uint8))
    with pytest.raises(ValueError, match="fill must be"):
        BatchAugment(fill="nearest")


def _vgg_parameters(widths, convs, in_chans=1, classes=7) -> int:
    """Counted by hand: 3x3 convolutions without bias, batch norm (weight, bias), the linear head."""
    total, cin = 0, in_chans
    for w in widths:
        for _ in range(convs):
            total += 9 * cin * w + 2 * w
            cin = w
    return total + cin * classes + classes


def test_vgg_parameter_counts_and_output():
    assert count_parameters(create_model("vgg")) == _vgg_parameters((32, 64, 128, 256), 2) == 1_174_439
    assert count_parameters(create_model("vgg_large")) == _vgg_parameters((64, 128, 256, 512), 2)
    assert count_parameters(VGGNet(widths=(48, 96, 192, 384), convs=3)) == _vgg_parameters((48, 96, 192, 384), 3)
    assert create_model("vgg").eval()(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
    assert math.isfinite(create_model("vgg_large").eval()(torch.zeros(1, 1, 48, 48)).sum().item())
