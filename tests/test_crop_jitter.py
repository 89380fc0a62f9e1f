"""benchmarks/crop_jitter.py moves and zooms faces the way its record says."""

import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("crop_jitter", ROOT / "benchmarks" / "crop_jitter.py")
crop_jitter = importlib.util.module_from_spec(spec)
spec.loader.exec_module(crop_jitter)


def test_no_move_keeps_the_image():
    x = torch.rand(3, 1, 48, 48)
    assert torch.allclose(crop_jitter.warp(x), x, atol=1e-5)


def test_a_shift_moves_the_content_right_and_down_by_whole_pixels():
    x = torch.zeros(1, 1, 48, 48)
    x[0, 0, 20, 10] = 1.0
    moved = crop_jitter.warp(x, dx=2, dy=-3)
    assert moved[0, 0, 17, 12].item() > 0.999
    assert abs(moved.sum().item() - 1.0) < 1e-4


def test_a_zoom_above_one_makes_the_face_larger_and_the_border_repeats():
    x = torch.zeros(1, 1, 48, 48)
    x[0, 0, 20:28, 20:28] = 1.0  # an 8-pixel square at the centre
    assert crop_jitter.warp(x, zoom=2.0).sum().item() > 4 * 64 * 0.95
    edge = torch.zeros(1, 1, 48, 48)
    edge[..., :, 0] = 1.0  # the left column
    shifted = crop_jitter.warp(edge, dx=3)  # pixels come in from outside the left border
    assert torch.allclose(shifted[..., :, :3], torch.ones(1, 1, 48, 3), atol=1e-5)


def test_every_move_is_named_once_in_its_group():
    moves = crop_jitter.moves()
    assert len(moves) == 4 * len(crop_jitter.SHIFTS) + len(crop_jitter.ZOOMS)
    groups = {m["group"] for m in moves.values()}
    assert groups == {f"shift {d} px" for d in crop_jitter.SHIFTS} | {"zoom 0.9-1.1"}
