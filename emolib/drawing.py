"""Drawing the pipeline's results on the image: boxes, emotions, probability bars and hands.

::

    from emolib.drawing import draw

    draw("party.jpg", pipe("party.jpg")).save("party-annotated.jpg")

:func:`draw` works on any result with the shape of :class:`emolib.pipeline.PipelineResult`
(``image_size``, ``faces`` with ``box``, ``score``, ``landmarks``, ``emotion``,
``probabilities`` and ``hands``, and the unattached ``hands``); it does not need the
pipeline itself. :data:`PALETTE` gives each face its colour (and each class its line in
:func:`emolib.video.plot_emotions_over_time`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .fileio import load_image

__all__ = ["draw", "PALETTE"]

PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
            (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128)]


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def draw(image: Any, result: Any, bars: bool = True, landmarks: bool = False,
         font_size: int | None = None, bgr: bool = False, hands: bool = True) -> Image.Image:
    """The image with each face's box, top emotion and (``bars=True``) its probabilities as bars.

    Like the thesis's Figure 5.11. With ``hands=True`` each hand found is drawn too: its
    box in the colour of its person's face, labelled with the side (L/R, the person's own)
    and the gesture; hands attached to no face in gray. ``image`` is what was given to the
    pipeline (path, PIL image or array; EXIF orientation is applied the same way);
    returns a new RGB image of the same size.
    """
    img = load_image(image, bgr=bgr).copy()
    if img.size != tuple(result.image_size):
        raise ValueError(f"the result is for a {result.image_size} image, this one is {img.size}")
    W, H = img.size
    canvas = ImageDraw.Draw(img, "RGBA")
    line = max(1, round(min(W, H) / 300))
    for i, face in enumerate(result.faces):
        color = PALETTE[i % len(PALETTE)]
        x1, y1, x2, y2 = face.box
        bw = max(x2 - x1, 1.0)
        canvas.rectangle([x1, y1, x2, y2], outline=color, width=line)
        if landmarks:
            r = max(1.5, bw / 40)
            for px, py in face.landmarks:
                canvas.ellipse([px - r, py - r, px + r, py + r], fill=color)
        fs = font_size or int(np.clip(bw / 7, 9, max(9, min(W, H) / 20)))
        font = _font(fs)
        label = f"{face.emotion} {face.probabilities[face.emotion]:.0%}" if face.emotion else f"face {face.score:.2f}"
        tb = canvas.textbbox((0, 0), label, font=font)
        tw, th = tb[2] - tb[0], tb[3] - tb[1]
        ty = y1 - th - 2 * line - 2 if y1 - th - 2 * line - 2 >= 0 else y1 + line
        canvas.rectangle([x1, ty, x1 + tw + 4, ty + th + 4], fill=color + (200,))
        canvas.text((x1 + 2 - tb[0], ty + 2 - tb[1]), label, fill=(255, 255, 255), font=font)
        if bars and face.probabilities:
            _draw_bars(canvas, face, (x1, y1, x2, y2), color, W, H, max(8, round(fs * 0.7)))
        if hands:
            for hand in face.hands.values():
                if hand is not None:
                    _draw_hand(canvas, hand, color, max(8, round(fs * 0.8)), line, face.box, H)
    if hands:
        for hand in result.hands:
            _draw_hand(canvas, hand, (160, 160, 160), max(9, round(min(W, H) / 40)), line, None, H)
    return img


def _draw_hand(canvas: ImageDraw.ImageDraw, hand: Any, color, fs: int, line: int, face_box, H: int) -> None:
    get = (lambda k: hand.get(k)) if isinstance(hand, Mapping) else (lambda k: getattr(hand, k, None))
    box = get("box")
    if box is None:
        return
    x1, y1, x2, y2 = box
    canvas.rectangle([x1, y1, x2, y2], outline=color, width=line)
    if face_box is not None:  # a thin line from the face to its hand
        fx, fy = (face_box[0] + face_box[2]) / 2, face_box[3]
        canvas.line([fx, fy, (x1 + x2) / 2, (y1 + y2) / 2], fill=color + (140,), width=max(1, line // 2))
    side = {"left": "L", "right": "R"}.get(get("handedness"), "?")
    label = f"{side} {get('gesture') or 'hand'}"
    font = _font(fs)
    tb = canvas.textbbox((0, 0), label, font=font)
    tw, th = tb[2] - tb[0], tb[3] - tb[1]
    ty = y2 + line if y2 + line + th + 4 <= H else max(0, y1 - th - 4)
    canvas.rectangle([x1, ty, x1 + tw + 4, ty + th + 4], fill=color + (200,))
    canvas.text((x1 + 2 - tb[0], ty + 2 - tb[1]), label, fill=(255, 255, 255), font=font)


def _draw_bars(canvas: ImageDraw.ImageDraw, face: Any, box, color, W: int, H: int, fs: int) -> None:
    font = _font(fs)
    names = list(face.probabilities)
    name_w = max(canvas.textbbox((0, 0), n, font=font)[2] for n in names)
    row = fs + 3
    bar_len = 3 * fs
    panel_w, panel_h = name_w + bar_len + 8, row * len(names) + 4
    x1, y1, x2, y2 = box
    px = x2 + 4 if x2 + 4 + panel_w <= W else (x1 - 4 - panel_w if x1 - 4 - panel_w >= 0 else max(0, x2 - panel_w))
    py = min(max(0, y1), max(0, H - panel_h))
    canvas.rectangle([px, py, px + panel_w, py + panel_h], fill=(0, 0, 0, 140))
    top = max(face.probabilities.values())
    for k, name in enumerate(names):
        p = face.probabilities[name]
        ry = py + 2 + k * row
        canvas.text((px + 3, ry), name, fill=(255, 255, 255), font=font)
        bx = px + name_w + 6
        canvas.rectangle([bx, ry + 2, bx + bar_len, ry + row - 2], outline=(255, 255, 255, 90))
        if p > 0:
            canvas.rectangle([bx, ry + 2, bx + max(1, p * bar_len), ry + row - 2],
                             fill=color + (255,) if p == top else (220, 220, 220, 220))
