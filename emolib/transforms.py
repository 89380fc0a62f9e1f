"""Augmentation and evaluation transforms (torchvision transforms v2).

All transforms take the ``uint8`` image tensors ``(C, H, W)`` that :mod:`emolib.data`
stores and return normalised ``float32`` tensors of the size and channel count a
model expects (see :func:`emolib.models.input_config`).

The thesis trained with Keras's ``ImageDataGenerator``; its options map to v2 as:

========================  =====================================  ==============================
thesis (Keras)            face pipeline here                     hand pipeline here
========================  =====================================  ==============================
rotation_range            ``RandomRotation(10)``                 ``RandomAffine(degrees=30)``
brightness_range          ``ColorJitter(brightness=0.2)``        --
width/height_shift_range  ``RandomAffine(translate=(0.1, 0.1))`` ``translate=(0.4, 0.4)``
crop with padding         ``RandomCrop(size, padding=4)``        --
shear_range, zoom_range   --                                     ``shear=0.3 rad``, ``scale 0.7..1.3``
horizontal_flip           ``RandomHorizontalFlip(0.5)``          ``RandomHorizontalFlip(0.5)``
========================  =====================================  ==============================

Keras gives ``shear_range`` in degrees for ``ImageDataGenerator``; the thesis's 0.3 is
read here as 0.3 radians (about 17 degrees), which is what the value means in the
TensorFlow preprocessing layers the thesis text describes.

One difference stays: pixels that a rotation or shift uncovers are filled with black
(torchvision's constant fill), where Keras fills them with the nearest edge pixel by
default. The shipped models were trained this way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchvision.transforms import v2

__all__ = [
    "face_train_transform",
    "hand_train_transform",
    "eval_transform",
    "denormalize",
    "tta_views",
    "show_augmentations",
    "channel_stats",
]


def channel_stats(mean: Sequence[float], std: Sequence[float], channels: int
                  ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``mean`` and ``std`` for a ``channels``-channel input: as given when they have one value per channel,
    else the average of the given values, repeated.

    The one rule for every place that adapts statistics (:func:`eval_transform`,
    :func:`face_train_transform`, :func:`emolib.models.input_config`). The average, because a gray
    input is a mix of the three colour channels (the ITU-R 601 luma weighs them 0.299, 0.587 and
    0.114), so no single channel's statistics describe it better than the average does; and because
    it is what a gray image repeated to RGB sees on average after per-channel normalisation. For
    ImageNet's statistics: mean 0.449 and std 0.226 (the first value alone would be 0.485 and 0.229).
    """
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if len(mean) != len(std) or not mean:
        raise ValueError(f"mean and std need the same number of values (at least one), got {mean} and {std}")
    if len(mean) != channels:
        mean, std = (sum(mean) / len(mean),) * channels, (sum(std) / len(std),) * channels
    return mean, std


def _to_model_input(size: int, channels: int, mean: Sequence[float], std: Sequence[float]) -> list:
    """Resize, gray <-> RGB (torchvision's ``Grayscale``: ITU-R 601 luma; ``RGB``: the gray channel repeated),
    scale to [0, 1], normalise. An alpha channel is dropped first."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    mean, std = channel_stats(mean, std, channels)
    return [v2.Resize((size, size), antialias=True), _DropAlpha(),
            v2.Grayscale(1) if channels == 1 else v2.RGB(),
            v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


class _DropAlpha(torch.nn.Module):
    """RGBA -> RGB (the first three channels); other images pass unchanged. torchvision's ``Grayscale``
    refuses four channels and its ``RGB`` passes them through."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image[..., :3, :, :] if image.shape[-3] == 4 else image


def face_train_transform(
    size: int = 48,
    channels: int = 1,
    mean: Sequence[float] = (0.5,),
    std: Sequence[float] = (0.5,),
    rotation: float = 10.0,
    brightness: float = 0.2,
    shift: float = 0.1,
    crop_padding: int = 4,
    flip: float = 0.5,
) -> v2.Compose:
    """The thesis's face augmentation followed by the model-input steps.

    Rotation within ``±rotation`` degrees, brightness jitter, random crop of the
    padded image, width/height shift of up to ``shift`` of the side, horizontal flip
    with probability ``flip``. The geometric steps run at the stored resolution
    (48x48 for FER2013) before resizing to ``size``.
    """
    steps: list = []
    if rotation or shift:
        steps.append(v2.RandomAffine(degrees=rotation, translate=(shift, shift) if shift else None))
    if brightness:
        steps.append(v2.ColorJitter(brightness=brightness))
    if crop_padding:
        steps.append(_PadCrop(crop_padding))
    if flip:
        steps.append(v2.RandomHorizontalFlip(flip))
    return v2.Compose(steps + _to_model_input(size, channels, mean, std))


class _PadCrop(torch.nn.Module):
    """Random crop of the image padded by ``padding`` pixels, back to its own size."""

    def __init__(self, padding: int) -> None:
        super().__init__()
        self.padding = padding

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        return v2.RandomCrop((h, w), padding=self.padding, padding_mode="reflect")(image)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"


def hand_train_transform(
    size: int = 224,
    channels: int = 3,
    mean: Sequence[float] = (0.485, 0.456, 0.406),
    std: Sequence[float] = (0.229, 0.224, 0.225),
    rotation: float = 30.0,
    shear: float = 0.3,
    zoom: float = 0.3,
    shift: float = 0.4,
    flip: float = 0.5,
) -> v2.Compose:
    """The thesis's hand augmentation: rotation 30°, shear 0.3 rad, zoom ±30 %, shifts 40 %, flip.

    A horizontal flip turns a right hand into a left one, which is what the thesis
    wants: the gestures are read on both hands.
    """
    shear_deg = math.degrees(shear)
    steps: list = [
        v2.RandomAffine(
            degrees=rotation,
            translate=(shift, shift) if shift else None,
            scale=(1 - zoom, 1 + zoom) if zoom else None,
            shear=(-shear_deg, shear_deg) if shear else None,
        )
    ]
    if flip:
        steps.append(v2.RandomHorizontalFlip(flip))
    return v2.Compose(steps + _to_model_input(size, channels, mean, std))


def eval_transform(
    size: int = 48,
    channels: int = 1,
    mean: Sequence[float] = (0.5,),
    std: Sequence[float] = (0.5,),
) -> v2.Compose:
    """Resize, convert gray <-> RGB as the model needs, scale to [0, 1] and normalise
    (a ``mean``/``std`` of another channel count is adapted by :func:`channel_stats`)."""
    return v2.Compose(_to_model_input(size, channels, mean, std))


def tta_views(x: torch.Tensor, tta: Sequence[str] = ()) -> list[torch.Tensor]:
    """A batch ``(N, C, H, W)`` and its test-time augmented views: ``"flip"`` adds the mirrored
    batch, ``"shift"`` the batch shifted by two pixels in the four directions (wrapping round).
    A model's prediction is the mean of its probabilities over the views."""
    views = [x]
    if "flip" in tta:
        views.append(torch.flip(x, dims=[-1]))
    if "shift" in tta:
        views += [torch.roll(x, shifts=s, dims=(-2, -1)) for s in ((2, 0), (-2, 0), (0, 2), (0, -2))]
    return views


def denormalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo :class:`~torchvision.transforms.v2.Normalize` for display; returns values in [0, 1]."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return (x * s + m).clamp(0, 1)


def show_augmentations(dataset, transform, n: int = 6, repeats: int = 4, seed: int = 0, classes=None):
    """Draw a before/after grid: each row one image, first column the original, then ``repeats`` augmentations.

    ``dataset`` is an :class:`emolib.data.ImageDataset` (raw ``uint8`` images);
    ``transform`` must end with ``Normalize`` (as every transform here does).
    Returns the matplotlib figure.
    """
    import matplotlib.pyplot as plt

    norm = next(t for t in reversed(transform.transforms) if isinstance(t, v2.Normalize))
    g = torch.Generator().manual_seed(seed)
    picks = torch.randperm(len(dataset), generator=g)[:n].tolist()
    torch.manual_seed(seed)
    fig, axes = plt.subplots(n, repeats + 1, figsize=(1.6 * (repeats + 1), 1.6 * n), squeeze=False)
    for row, i in enumerate(picks):
        raw = dataset.images[i]
        cells = [raw.float() / 255] + [denormalize(transform(raw), norm.mean, norm.std) for _ in range(repeats)]
        for col, img in enumerate(cells):
            ax = axes[row][col]
            gray = img.shape[0] == 1
            ax.imshow((img.squeeze(0) if gray else img.permute(1, 2, 0)).numpy(), cmap="gray" if gray else None,
                      vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("original" if col == 0 else f"augmented {col}", fontsize=8)
        names = classes or dataset.classes
        axes[row][0].set_ylabel(names[int(dataset.targets[i])], fontsize=8)
    fig.tight_layout()
    return fig
