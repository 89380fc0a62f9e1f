"""Augmentation on whole batches: one affine warp for a batch of images, on the CPU or the GPU.

:mod:`emolib.transforms` augments one image at a time (torchvision transforms v2), which
is what a ``DataLoader`` worker does; on a small CPU that per-image work can bound a small
model's training speed (``benchmarks/bench_train.py`` measures the data-loading share, in
``results/benchmarks/train_throughput.json``). :class:`BatchAugment` does the same
kinds of steps on a ``uint8`` batch ``(N, C, H, W)`` at once, where the batch already is
(the training device): a random affine matrix per image (rotation, scale, shift,
horizontal flip) applied with one :func:`torch.nn.functional.affine_grid` /
:func:`~torch.nn.functional.grid_sample` call, brightness and contrast jitter as two
per-image factors, and random erasing of one rectangle per image. It returns the
normalised ``float32`` batch the model takes.

Uncovered pixels are filled from the nearest edge (``fill="border"``, as Keras's
``ImageDataGenerator`` does) or with zeros (``fill="zeros"``, torchvision's default).
``crop_padding=p`` adds the "random crop of the padded image": the image is padded by
``p`` pixels (reflected, as the per-image ``RandomCrop(padding=p, padding_mode="reflect")``
of :func:`emolib.transforms.face_train_transform`) and cropped back at a random integer offset.

The thesis's face augmentation on batches is ``BatchAugment(rotation=10, shift=0.1,
brightness=0.2, crop_padding=4, flip=0.5, fill="zeros")``. It has the same steps and ranges
as :func:`~emolib.transforms.face_train_transform`; what differs: the rotation and shift are
one bilinear resampling (torchvision's ``RandomAffine`` takes the nearest pixel, Keras
interpolated bilinearly), the shift is not rounded to whole pixels, the flip is done in the
same warp (before the crop rather than after: the crop offsets are symmetric, so the
distribution is the same), and pixel values stay floats between the steps (the per-image
path rounds to ``uint8`` after each one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["BatchAugment", "batch_normalize"]


def batch_normalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``uint8`` (or ``[0, 1]`` float) batch ``(N, C, H, W)`` -> normalised ``float32``."""
    x = images.float()
    if not images.is_floating_point():
        x = x / 255
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


class BatchAugment(torch.nn.Module):
    """Random affine + photometric augmentation of a whole batch, then normalisation.

    ``rotation`` in degrees (uniform in ``±rotation``), ``scale`` a ``(low, high)`` zoom
    range, ``shift`` a fraction of the side (uniform in ``±shift`` on each axis), ``flip``
    the probability of a horizontal flip, ``brightness`` / ``contrast`` the jitter of
    ``ColorJitter`` (factors uniform in ``[1 - b, 1 + b]``), ``erase`` the probability of
    erasing one rectangle of 2-20 % of the image (Zhong et al. 2020) with noise,
    ``crop_padding`` the largest extra shift in whole pixels (reflect-padded random crop).
    Randomness comes from ``generator`` when given (reproducible), else torch's global one.
    """

    def __init__(
        self,
        mean: Sequence[float] = (0.5,),
        std: Sequence[float] = (0.5,),
        rotation: float = 10.0,
        scale: tuple[float, float] = (1.0, 1.0),
        shift: float = 0.1,
        flip: float = 0.5,
        brightness: float = 0.2,
        contrast: float = 0.0,
        erase: float = 0.0,
        fill: str = "border",
        crop_padding: int = 0,
    ) -> None:
        super().__init__()
        if fill not in ("border", "zeros", "reflection"):
            raise ValueError(f"fill must be 'border', 'zeros' or 'reflection', got {fill!r}")
        self.mean, self.std = tuple(mean), tuple(std)
        self.rotation, self.scale, self.shift, self.flip = rotation, tuple(scale), shift, flip
        self.brightness, self.contrast, self.erase, self.fill = brightness, contrast, erase, fill
        if int(crop_padding) != crop_padding or crop_padding < 0:
            raise ValueError(f"crop_padding must be a whole number of pixels >= 0, got {crop_padding!r}")
        self.crop_padding = int(crop_padding)

    def extra_repr(self) -> str:
        return (f"rotation={self.rotation}, scale={self.scale}, shift={self.shift}, flip={self.flip}, "
                f"brightness={self.brightness}, contrast={self.contrast}, erase={self.erase}, fill={self.fill!r}, "
                f"crop_padding={self.crop_padding}")

    def _uniform(self, n: int, low: float, high: float, like: torch.Tensor, generator) -> torch.Tensor:
        u = torch.rand(n, generator=generator, device=generator.device if generator else like.device)
        return (low + (high - low) * u).to(like.device, torch.float32)

    def matrices(self, n: int, like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The ``(n, 2, 3)`` affine matrices (output -> input, normalised coordinates) for ``n`` images."""
        angle = self._uniform(n, -self.rotation, self.rotation, like, generator) * (math.pi / 180)
        zoom = self._uniform(n, self.scale[0], self.scale[1], like, generator)
        tx = self._uniform(n, -self.shift, self.shift, like, generator) * 2  # normalised coords span 2
        ty = self._uniform(n, -self.shift, self.shift, like, generator) * 2
        flip = self._uniform(n, 0, 1, like, generator) < self.flip
        sx = torch.where(flip, -1.0, 1.0).to(like.device)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.zeros(n, 2, 3, device=like.device)
        # Sample the input at R(-angle) / zoom of the output position, mirrored in x when flipped.
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cos * sx, -sin, tx
        theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sin * sx, cos, ty
        return theta

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if images.dim() != 4:
            raise ValueError(f"BatchAugment takes a batch (N, C, H, W), got shape {tuple(images.shape)}")
        x = images.float()
        if not images.is_floating_point():
            x = x / 255
        n = x.shape[0]
        theta = self.matrices(n, x, generator)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode=self.fill, align_corners=False)
        if self.brightness:
            x = x * self._uniform(n, 1 - self.brightness, 1 + self.brightness, x, generator).view(n, 1, 1, 1)
        if self.contrast:
            c = self._uniform(n, 1 - self.contrast, 1 + self.contrast, x, generator).view(n, 1, 1, 1)
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - m) * c + m
        x = x.clamp(0, 1)
        if self.crop_padding:
            x = self._pad_crop(x, generator)
        if self.erase:
            x = self._erase(x, generator)
        if all(m == 0 for m in self.mean) and all(sd == 1 for sd in self.std):
            return x  # fit's use: the eval transform normalises next; (x - 0) / 1 is x, two passes saved
        return batch_normalize(x, self.mean, self.std)

    def _pad_crop(self, x: torch.Tensor, generator) -> torch.Tensor:
        """Pad by ``crop_padding`` (reflect) and crop each image back at a random integer offset."""
        n, c, h, w = x.shape
        p = self.crop_padding
        if p >= min(h, w):
            raise ValueError(f"crop_padding {p} must be smaller than the image ({h}x{w}) for a reflect pad")
        xp = F.pad(x, (p, p, p, p), mode="reflect")
        oy = (self._uniform(n, 0, 1, x, generator) * (2 * p + 1)).long().clamp_max(2 * p)
        ox = (self._uniform(n, 0, 1, x, generator) * (2 * p + 1)).long().clamp_max(2 * p)
        rows = (oy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * p)
        xp = xp.gather(2, rows)
        cols = (ox.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
        return xp.gather(3, cols)

    def _erase(self, x: torch.Tensor, generator) -> torch.Tensor:
        n, _, h, w = x.shape
        area = self._uniform(n, 0.02, 0.2, x, generator) * h * w
        ratio = torch.exp(self._uniform(n, math.log(0.3), math.log(3.3), x, generator))
        eh = (area * ratio).sqrt().clamp(1, h)
        ew = (area / ratio).sqrt().clamp(1, w)
        y0 = self._uniform(n, 0, 1, x, generator) * (h - eh)
        x0 = self._uniform(n, 0, 1, x, generator) * (w - ew)
        ys = torch.arange(h, device=x.device).view(1, h, 1)
        xs = torch.arange(w, device=x.device).view(1, 1, w)
        box = ((ys >= y0.view(n, 1, 1)) & (ys < (y0 + eh).view(n, 1, 1))
               & (xs >= x0.view(n, 1, 1)) & (xs < (x0 + ew).view(n, 1, 1)))
        box &= (self._uniform(n, 0, 1, x, generator) < self.erase).view(n, 1, 1)
        noise = torch.rand(x.shape, generator=generator, device=generator.device if generator else x.device)
        return torch.where(box.unsqueeze(1), noise.to(x.device), x)
