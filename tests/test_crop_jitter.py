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


class _Constant(torch.nn.Module):
    """Says class 0 whatever it sees."""

    def __init__(self):
        super().__init__()
        from emolib.models import InputConfig

        self.input_config = InputConfig(48, 1, (0.5,), (0.5,))

    def forward(self, x):
        out = torch.zeros(len(x), 7)
        out[:, 0] = 1.0
        return out


class _LeftEdge(_Constant):
    """Class 1 when the left column is bright, else class 0: a move to the right copies the border
    into the crop, a move to the left brings in what was beside it."""

    def forward(self, x):
        out = torch.zeros(len(x), 7)
        bright = x[:, 0, :, 0].mean(1) > 0
        out[bright, 1] = 1.0
        out[~bright, 0] = 1.0
        return out


def test_the_record_counts_right_labels_and_unchanged_labels(tmp_path, monkeypatch):
    import json

    from emolib import data as D
    from emolib import models as M

    images = torch.zeros(8, 1, 48, 48, dtype=torch.uint8)
    images[:4, :, :, :3] = 255  # four faces with a bright band 3 px wide on the left
    targets = [1, 1, 0, 0, 0, 0, 0, 0]
    paths = [f"PublicTest_{i}.jpg" for i in range(8)] + ["PrivateTest_0.jpg", "PrivateTest_1.jpg"]
    full = D.ImageDataset(torch.cat([images, images[:2]]), targets + [3, 3], D.EMOTIONS, paths=paths)
    monkeypatch.setattr(D, "FER2013", lambda root, split: full)
    models = {"constant": _Constant(), "left": _LeftEdge()}
    monkeypatch.setattr(M, "load_model", lambda name: models[name])
    out = tmp_path / "jitter.json"
    assert crop_jitter.main(["--data", str(tmp_path), "--models", "constant", "left", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["data"].endswith("8 faces"), "the PrivateTest files are left out"
    const = record["models"]["constant"]
    assert const["accuracy"] == 6 / 8
    assert all(m["same_label"] == 1.0 and m["accuracy"] == 6 / 8 for m in const["moves"].values())
    left = record["models"]["left"]
    assert left["accuracy"] == 6 / 8  # faces 0-1 right (class 1), 4-7 right (class 0), 2-3 wrong
    moved_left = left["moves"]["shift 3 px (-3, +0)"]  # the 3-px band leaves the crop
    assert moved_left["same_label"] == 4 / 8 and moved_left["accuracy"] == 6 / 8  # 0-1 now wrong, 2-3 right
    moved_right = left["moves"]["shift 3 px (+3, +0)"]  # the border repeats: the band stays
    assert moved_right["same_label"] == 1.0
    group = left["groups"]["shift 3 px"]
    mine = [m for k, m in left["moves"].items() if m["group"] == "shift 3 px"]
    assert group["same_label"] == sum(m["same_label"] for m in mine) / 4
