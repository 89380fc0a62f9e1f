"""Transforms: output shapes, channel conversion, normalisation, and the before/after grid."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import math

import numpy as np
import pytest
import torch

from emolib import transforms as T
from emolib.data import FER2013
from tests.conftest import pattern


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


# --------------------------------------------------------------------------- what each step does
#
# Each configured augmentation step is measured on a synthetic image with the other steps off:
# the angle of a thin bar (rotation, shear) from its second moments, the shift of its centroid,
# the brightness factor of a flat image, and the flip against the flipped input.

N_DRAWS = 40
SIZE = 96


def _bar(vertical: bool = False, channels: int = 1, size: int = SIZE) -> torch.Tensor:
    img = torch.zeros(channels, size, size, dtype=torch.uint8)
    c = size // 2
    if vertical:
        img[:, 12 : size - 12, c - 1 : c + 1] = 255
    else:
        img[:, c - 1 : c + 1, 12 : size - 12] = 255
    return img


def _moments(img: torch.Tensor):
    w = img.float().mean(0) if img.ndim == 3 else img.float()
    w = w - w.min()
    y, x = torch.meshgrid(torch.arange(w.shape[0]).float(), torch.arange(w.shape[1]).float(), indexing="ij")
    m = w.sum()
    mx, my = (w * x).sum() / m, (w * y).sum() / m
    cxx, cyy = (w * (x - mx) ** 2).sum() / m, (w * (y - my) ** 2).sum() / m
    cxy = (w * (x - mx) * (y - my)).sum() / m
    return float(mx), float(my), float(cxx), float(cyy), float(cxy)


def _angle(img: torch.Tensor, vertical: bool = False) -> float:
    """Orientation of the bar in degrees (0 for the input bar)."""
    _, _, cxx, cyy, cxy = _moments(img)
    deg = math.degrees(0.5 * math.atan2(2 * cxy, cxx - cyy))
    if vertical:
        deg = deg - 90 if deg > 0 else deg + 90
    return deg


def _length(img: torch.Tensor) -> float:
    _, _, cxx, cyy, cxy = _moments(img)
    return math.sqrt(0.5 * (cxx + cyy) + math.sqrt(0.25 * (cxx - cyy) ** 2 + cxy**2))


def _draws(tf, x, n: int = N_DRAWS):
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(tf(x))
    return out


RAW = dict(mean=(0.0,), std=(1.0,))  # outputs in [0, 1]: pixel / 255
FACE_OFF = dict(rotation=0.0, brightness=0.0, shift=0.0, crop_padding=0, flip=0.0)
HAND_OFF = dict(rotation=0.0, shear=0.0, zoom=0.0, shift=0.0, flip=0.0)


def test_face_rotation_spans_plus_minus_its_degrees():
    tf = T.face_train_transform(SIZE, 1, **RAW, **{**FACE_OFF, "rotation": 10.0})
    angles = [_angle(y) for y in _draws(tf, _bar())]
    assert max(abs(a) for a in angles) <= 10.5
    assert min(angles) < -5 and max(angles) > 5  # both directions, most of the range


def test_face_shift_moves_the_image_by_at_most_its_fraction():
    tf = T.face_train_transform(SIZE, 1, **RAW, **{**FACE_OFF, "shift": 0.1})
    x = torch.zeros(1, SIZE, SIZE, dtype=torch.uint8)
    x[:, 40:56, 40:56] = 255
    mx0, my0, *_ = _moments(x)
    moves = [(_moments(y)[0] - mx0, _moments(y)[1] - my0) for y in _draws(tf, x)]
    assert all(abs(dx) <= 0.1 * SIZE + 0.6 and abs(dy) <= 0.1 * SIZE + 0.6 for dx, dy in moves)
    assert max(abs(dx) for dx, _ in moves) > 0.05 * SIZE and max(abs(dy) for _, dy in moves) > 0.05 * SIZE
    assert all(abs(_angle(y) - _angle(x)) < 0.5 for y in _draws(tf, _bar(), 10))  # a shift, no rotation


def test_face_brightness_scales_by_a_factor_within_its_range():
    tf = T.face_train_transform(SIZE, 1, **RAW, **{**FACE_OFF, "brightness": 0.2})
    flat = torch.full((1, SIZE, SIZE), 100, dtype=torch.uint8)
    factors = [float(y.mean()) * 255 / 100 for y in _draws(tf, flat)]
    assert all(0.79 <= f <= 1.21 for f in factors)
    assert min(factors) < 0.9 and max(factors) > 1.1
    assert all(float(y.std()) < 1e-6 for y in _draws(tf, flat, 5))  # brightness only: a flat image stays flat


def test_face_crop_padding_shifts_by_at_most_the_padding_and_reflects():
    tf = T.face_train_transform(SIZE, 1, **RAW, **{**FACE_OFF, "crop_padding": 4})
    x = torch.from_numpy(pattern(SIZE, "L", 100, seed=1)).unsqueeze(0)
    ref = x.float() / 255
    seen = set()
    for y in _draws(tf, x):
        # find the shift: the output equals the reflect-padded input cropped at some offset in [-4, 4]
        padded = torch.nn.functional.pad(ref.unsqueeze(0), (4, 4, 4, 4), mode="reflect")[0]
        hits = [(dy, dx) for dy in range(9) for dx in range(9)
                if torch.allclose(padded[:, dy : dy + SIZE, dx : dx + SIZE], y, atol=1e-6)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) > 5


def test_face_flip_is_horizontal_with_its_probability():
    x = torch.from_numpy(pattern(SIZE, "L", 100, seed=2)).unsqueeze(0)
    ref = x.float() / 255
    always = T.face_train_transform(SIZE, 1, **RAW, **{**FACE_OFF, "flip": 1.0})
    assert torch.allclose(always(x), ref.flip(-1))
    half = T.face_train_transform(SIZE, 1, **RAW, **{**FACE_OFF, "flip": 0.5})
    kinds = ["flip" if torch.allclose(y, ref.flip(-1)) else "same" if torch.allclose(y, ref) else "other"
             for y in _draws(half, x)]
    assert "other" not in kinds and 10 <= kinds.count("flip") <= 30
    assert torch.allclose(T.face_train_transform(SIZE, 1, **RAW, **FACE_OFF)(x), ref)  # every step off: identity


def test_hand_rotation_spans_plus_minus_its_degrees():
    tf = T.hand_train_transform(SIZE, 1, **RAW, **{**HAND_OFF, "rotation": 30.0})
    angles = [_angle(y) for y in _draws(tf, _bar())]
    assert max(abs(a) for a in angles) <= 30.5
    assert min(angles) < -15 and max(angles) > 15


def test_hand_shear_is_read_in_radians():
    # 0.3 rad = 17.2 degrees: a vertical bar leans by up to that much, to both sides.
    tf = T.hand_train_transform(SIZE, 1, **RAW, **{**HAND_OFF, "shear": 0.3})
    leans = [_angle(y, vertical=True) for y in _draws(tf, _bar(vertical=True))]
    limit = math.degrees(0.3)
    assert max(abs(a) for a in leans) <= limit + 0.5
    assert min(leans) < -limit / 2 and max(leans) > limit / 2


def test_hand_zoom_scales_within_its_range():
    tf = T.hand_train_transform(SIZE, 1, **RAW, **{**HAND_OFF, "zoom": 0.3})
    x = _bar()
    ratios = [_length(y) / _length(x) for y in _draws(tf, x)]
    assert all(0.68 <= r <= 1.32 for r in ratios)
    assert min(ratios) < 0.85 and max(ratios) > 1.15


def test_hand_shift_and_flip():
    x = torch.zeros(3, SIZE, SIZE, dtype=torch.uint8)
    x[:, 40:56, 40:56] = 255
    tf = T.hand_train_transform(SIZE, 3, (0.0,) * 3, (1.0,) * 3, **{**HAND_OFF, "shift": 0.4})
    mx0, my0, *_ = _moments(x)
    moves = [(_moments(y)[0] - mx0, _moments(y)[1] - my0) for y in _draws(tf, x)]
    assert max(abs(dx) for dx, _ in moves) > 0.2 * SIZE and max(abs(dy) for _, dy in moves) > 0.2 * SIZE
    assert all(abs(dx) <= 0.4 * SIZE + 1 and abs(dy) <= 0.4 * SIZE + 1 for dx, dy in moves)
    img = torch.from_numpy(pattern(SIZE, "RGB", 100, seed=3)).permute(2, 0, 1).contiguous()
    flip = T.hand_train_transform(SIZE, 3, (0.0,) * 3, (1.0,) * 3, **{**HAND_OFF, "flip": 1.0})
    assert torch.allclose(flip(img), img.float().flip(-1) / 255)


# --------------------------------------------------------------------------- model input


def test_rgb_to_gray_uses_the_itu_r_601_weights():
    rgb = torch.from_numpy(pattern(48, "RGB", 120, seed=4)).permute(2, 0, 1).contiguous()
    rgb[0, :, :24] = 250  # make the channels very different
    rgb[2, 24:, :] = 5
    out = T.eval_transform(48, 1, (0.0,), (1.0,))(rgb)[0] * 255
    r, g, b = rgb.float()
    # torchvision rounds the uint8 result down: within 1.1 grey levels of the weighted sum
    assert float((out - (0.299 * r + 0.587 * g + 0.114 * b)).abs().max()) < 1.1
    rgba = torch.cat([rgb, torch.full((1, 48, 48), 255, dtype=torch.uint8)])
    assert torch.allclose(T.eval_transform(48, 1, (0.0,), (1.0,))(rgba)[0] * 255, out)


def test_eval_transform_normalises_each_channel_with_its_own_mean_and_std():
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    rgb = torch.from_numpy(pattern(32, "RGB", 120, seed=5)).permute(2, 0, 1).contiguous()
    out = T.eval_transform(32, 3, mean, std)(rgb)
    expected = (rgb.float() / 255 - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    assert torch.allclose(out, expected, atol=1e-5)
    gray = T.eval_transform(32, 1, (0.5,), (0.25,))(rgb[:1])
    assert torch.allclose(gray, (rgb[:1].float() / 255 - 0.5) / 0.25, atol=1e-5)
    # the face transform ends with the same steps
    face = T.face_train_transform(32, 3, mean, std, **FACE_OFF)
    assert torch.allclose(face(rgb), expected, atol=1e-5)


def test_eval_transform_resizes_without_flipping():
    x = torch.from_numpy(pattern(48, "L", 100, seed=6)).unsqueeze(0)
    big = T.eval_transform(96, 1, (0.0,), (1.0,))(x)[0]
    small = torch.nn.functional.avg_pool2d(big[None, None], 2)[0, 0] * 255
    assert (small - x[0].float()).abs().mean() < 6  # the same picture, twice the size
    assert (small - x[0].float().flip(-1)).abs().mean() > 15


def test_show_augmentations_first_column_is_the_original_with_its_label(fer_folders):
    import matplotlib.pyplot as plt

    ds = FER2013(fer_folders, "train")
    fig = T.show_augmentations(ds, T.face_train_transform(), n=2, repeats=3, seed=1)
    axes = np.array(fig.axes).reshape(2, 4)
    assert [a.get_title() for a in axes[0]] == ["original", "augmented 1", "augmented 2", "augmented 3"]
    for row in axes:
        shown = row[0].images[0].get_array()
        match = [i for i in range(len(ds)) if np.allclose(shown, ds.images[i, 0].numpy() / 255)]
        assert len(match) == 1 and row[0].get_ylabel() == ds.classes[int(ds.targets[match[0]])]
        assert all(not np.allclose(a.images[0].get_array(), shown) for a in row[1:])  # augmented differ
    plt.close(fig)


def test_transforms_say_what_they_do():
    text = repr(T.face_train_transform(crop_padding=4, channels=3))
    assert "padding=4" in text and "RGB()" in text  # torchvision's gray -> RGB
    assert "Grayscale(num_output_channels=1)" in repr(T.eval_transform(48, 1))
    with pytest.raises(ValueError, match="channels must be 1 or 3, got 2"):
        T.eval_transform(48, 2)
    x = torch.rand(3, 8, 8)
    assert torch.allclose(T.denormalize((x - 0.2) / 0.5, (0.2,) * 3, (0.5,) * 3), x, atol=1e-6)
    assert T.denormalize(torch.full((1, 2, 2), 5.0), (0.5,), (0.5,)).max() == 1.0  # clamped for display


def test_a_mean_of_another_channel_count_uses_the_average():
    rgb = torch.from_numpy(pattern(32, "RGB", 120, seed=7)).permute(2, 0, 1).contiguous()
    gray_of = T.eval_transform(32, 1, (0.0,), (1.0,))(rgb)
    # an ImageNet mean/std given to a gray model: the average of the three, (0.485 + 0.456 + 0.406) / 3
    out = T.eval_transform(32, 1, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))(rgb)
    assert torch.allclose(out, (gray_of - 0.449) / 0.226, atol=1e-5)
    face = T.face_train_transform(32, 1, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), **FACE_OFF)
    assert torch.allclose(face(rgb), out, atol=1e-5)  # the same rule in both transforms
    # a gray mean/std given to an RGB model: repeated for the three channels, in both transforms
    for tf in (T.eval_transform(32, 3, (0.5,), (0.25,)), T.face_train_transform(32, 3, (0.5,), (0.25,), **FACE_OFF)):
        assert torch.allclose(tf(rgb), (rgb.float() / 255 - 0.5) / 0.25, atol=1e-5)


def test_channel_stats_is_the_one_rule_for_other_channel_counts():
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    mean, std = T.channel_stats(*imagenet, 1)
    assert mean == pytest.approx((0.449,)) and std == pytest.approx((0.226,))  # the average, not the first
    assert T.channel_stats(*imagenet, 3) == imagenet  # one value per channel: kept
    assert T.channel_stats((0.5,), (0.25,), 3) == ((0.5,) * 3, (0.25,) * 3)  # repeated
    with pytest.raises(ValueError, match="same number of values"):
        T.channel_stats((0.5, 0.5), (0.25,), 1)


def test_rgba_input_loses_only_its_alpha():
    rgb = torch.from_numpy(pattern(32, "RGB", 120, seed=8)).permute(2, 0, 1).contiguous()
    rgba = torch.cat([rgb, torch.zeros((1, 32, 32), dtype=torch.uint8)])  # a fully transparent alpha
    for channels in (1, 3):
        tf = T.eval_transform(32, channels, (0.0,), (1.0,))
        assert torch.equal(tf(rgba), tf(rgb))
    assert not torch.allclose(T.eval_transform(32, 3, (0.0,), (1.0,))(rgba)[0],
                              T.eval_transform(32, 3, (0.0,), (1.0,))(rgba)[2])  # colour kept, not made gray


def test_eval_transform_takes_batches_as_fit_gives_them():
    batch = torch.from_numpy(np.stack([pattern(24, "RGB", 120, seed=s) for s in (1, 2)])).permute(0, 3, 1, 2)
    tf = T.eval_transform(32, 1, (0.5,), (0.5,))
    out = tf(batch.contiguous())
    assert out.shape == (2, 1, 32, 32)
    assert torch.allclose(out[1], tf(batch[1].contiguous()), atol=1e-6)


def test_tta_views_are_the_batch_its_mirror_and_four_two_pixel_shifts():
    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float32).view(2, 1, 5, 6)  # every pixel distinct, not square
    assert len(T.tta_views(x)) == 1 and T.tta_views(x)[0] is x  # no augmentation: the batch alone
    plain, mirror = T.tta_views(x, ("flip",))
    assert plain is x and torch.equal(mirror[..., 0], x[..., -1]) and torch.equal(mirror[..., -1], x[..., 0])
    assert torch.equal(mirror[:, :, 2], x[:, :, 2].flip(-1))  # left-right, rows stay in place
    views = T.tta_views(x, ("flip", "shift"))
    assert len(views) == 6 and torch.equal(views[1], mirror)
    # pixel (r, c) of a shifted view comes from (r - dr, c - dc), wrapping round
    for view, (dr, dc) in zip(views[2:], ((2, 0), (-2, 0), (0, 2), (0, -2)), strict=True):
        for r in range(5):
            for c in range(6):
                assert view[1, 0, r, c] == x[1, 0, (r - dr) % 5, (c - dc) % 6], (dr, dc, r, c)
    assert len(T.tta_views(x, ("shift",))) == 5 and torch.equal(T.tta_views(x, ("shift",))[1], views[2])


def test_show_augmentations_draws_the_seeded_augmentations_on_a_fixed_scale(fer_folders):
    import matplotlib.pyplot as plt

    from emolib.data import ImageDataset

    ds = FER2013(fer_folders, "train")
    tf = T.face_train_transform()
    names = [c.upper() for c in ds.classes]
    fig = T.show_augmentations(ds, tf, n=2, repeats=2, seed=5, classes=names)
    axes = np.array(fig.axes).reshape(2, 3)
    picks = torch.randperm(len(ds), generator=torch.Generator().manual_seed(5))[:2].tolist()
    torch.manual_seed(5)  # the same draws, in the same order: row by row, column by column
    for row, i in zip(axes, picks, strict=True):
        raw = ds.images[i]
        assert np.allclose(row[0].images[0].get_array(), raw[0].numpy() / 255)
        for ax in row[1:]:
            expected = T.denormalize(tf(raw), (0.5,), (0.5,))[0].numpy()
            assert np.allclose(ax.images[0].get_array(), expected, atol=1e-6)
        assert row[0].get_ylabel() == names[int(ds.targets[i])]  # the names given, not the dataset's
        for ax in row:
            assert ax.images[0].get_clim() == (0, 1) and ax.images[0].get_cmap().name == "gray"
            assert len(ax.get_xticks()) == 0 and len(ax.get_yticks()) == 0
    plt.close(fig)
    rgb = torch.from_numpy(np.stack([pattern(32, "RGB", 100, seed=s) for s in (1, 2)])).permute(0, 3, 1, 2)
    colour = ImageDataset(rgb.contiguous(), [0, 1], ("x", "y"))
    fig = T.show_augmentations(colour, T.eval_transform(32, 3, (0.0,), (1.0,)), n=2, repeats=1)
    for row in np.array(fig.axes).reshape(2, 2):
        shown = row[0].images[0].get_array()
        assert shown.shape == (32, 32, 3)  # colour images drawn as colour, channels last
        assert np.allclose(row[1].images[0].get_array(), shown, atol=1e-6)  # eval transform: unchanged
    plt.close(fig)
    fig = T.show_augmentations(ds, tf, n=1, repeats=1)  # one row: still a grid, row by column
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "original"
    plt.close(fig)
    fig = T.show_augmentations(ds, tf)  # by default 6 images, each with 4 augmentations
    assert len(fig.axes) == 6 * 5
    plt.close(fig)


def test_eval_transform_defaults_to_fer2013_s_48_pixel_gray():
    out = T.eval_transform()(torch.from_numpy(pattern(64, "RGB", 100, seed=9)).permute(2, 0, 1).contiguous())
    assert out.shape == (1, 48, 48)


def test_hand_transform_defaults_are_the_thesis_settings():
    affine = T.hand_train_transform().transforms[0]  # 30 degrees, 0.3 rad, zoom 30 %, shift 40 %
    assert list(affine.degrees) == [-30.0, 30.0] and affine.translate == (0.4, 0.4)
    assert affine.scale == pytest.approx((0.7, 1.3))
    assert list(affine.shear)[:2] == pytest.approx([-math.degrees(0.3), math.degrees(0.3)])
    image = torch.from_numpy(pattern(64, "RGB", 100, seed=3)).permute(2, 0, 1).contiguous()
    out = T.hand_train_transform()(image)
    assert out.shape == (3, 224, 224)


def test_denormalize_clamps_below_as_well_as_above():
    assert T.denormalize(torch.full((1, 2, 2), -5.0), (0.5,), (0.5,)).min() == 0.0


# --------------------------------------------------------------------------- written from sampled mutants (issue 17)


def test_downscaling_keeps_thin_lines_as_antialiasing_does():
    # one bright column in four: a 4x downscale without antialiasing samples between them and loses them all
    lines = torch.zeros(1, 192, 192, dtype=torch.uint8)
    lines[:, :, ::4] = 255
    out = T.eval_transform(48, 1, (0.0,), (1.0,))(lines)
    assert out.mean().item() == pytest.approx(0.25, abs=0.01)  # the average brightness is kept
    assert out.std().item() < 0.05  # spread evenly, not aliased into stripes


def test_denormalize_keeps_the_statistics_on_the_tensor_s_device():
    # "meta" tensors stand in for a GPU: statistics left on the CPU cannot be combined with them
    out = T.denormalize(torch.zeros(3, 4, 4, device="meta"), (0.5,) * 3, (0.5,) * 3)
    assert out.device.type == "meta" and out.shape == (3, 4, 4)


def test_face_transform_defaults_are_the_documented_settings():
    affine, jitter, pad_crop, flip = T.face_train_transform().transforms[:4]
    assert list(affine.degrees) == [-10.0, 10.0] and affine.translate == (0.1, 0.1)  # 10 degrees, 10 % shift
    assert jitter.brightness == pytest.approx((0.8, 1.2))  # brightness +-20 %
    assert repr(pad_crop) == "_PadCrop(padding=4)" and flip.p == 0.5
