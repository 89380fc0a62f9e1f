"""How far each shipped face model's emotion moves when its 48x48 crop moves by a few pixels.

A face detector never returns the same box twice: between two video frames, or between the full
detection and the page's followed box (``benchmarks/track_variants.py``), the crop moves by a pixel
or two and grows or shrinks a little. A model whose label jumps with such moves flickers on video.
On FER2013's PublicTest (3,589 faces), every face is moved by 1, 2 and 3 pixels left, right, up and
down, and zoomed by 0.9, 0.95, 1.05 and 1.1 (the border pixels repeated where the crop leaves the
image). For each model and each kind of move: the accuracy, and on how many faces the label is
the one the unmoved face gets. Writes ``results/benchmarks/crop_jitter.json``::

    flock /tmp/heavy.lock python benchmarks/crop_jitter.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import commit, write_record  # noqa: E402

MODELS = ("baseline-fer2013", "emonet-fer2013", "vgg_cpu-fer2013", "vgg_large-fer2013")
SHIFTS = (1, 2, 3)
ZOOMS = (0.9, 0.95, 1.05, 1.1)


def warp(images: torch.Tensor, dx: float = 0.0, dy: float = 0.0, zoom: float = 1.0) -> torch.Tensor:
    """``images`` (N, C, H, W, float) moved by ``dx``, ``dy`` pixels (right, down) and zoomed by ``zoom``
    (above 1: the face larger) about the centre; pixels from outside repeat the border."""
    n, _, h, w = images.shape
    theta = torch.tensor([[1 / zoom, 0.0, -2 * dx / w], [0.0, 1 / zoom, -2 * dy / h]],
                         dtype=images.dtype, device=images.device).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def moves() -> dict[str, dict]:
    out = {}
    for d in SHIFTS:
        for dx, dy in ((d, 0), (-d, 0), (0, d), (0, -d)):
            out[f"shift {d} px ({dx:+d}, {dy:+d})"] = {"group": f"shift {d} px", "dx": dx, "dy": dy}
    for z in ZOOMS:
        out[f"zoom {z}"] = {"group": "zoom 0.9-1.1", "zoom": z}
    return out


def labels(model, test, move: dict | None = None) -> torch.Tensor:
    """The labels ``model`` gives the faces of ``test`` (raw ``uint8`` images), prepared by its eval
    transform and then moved by ``move`` (``warp``'s arguments) on the whole batch."""
    from emolib import transforms as T
    from emolib.train import predict

    cfg = model.input_config
    prepare = T.eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std)
    probs, _ = predict(model, test, batch_size=512, device="cpu", progress=False,
                       batch_transform=lambda x: warp(prepare(x), **(move or {})))
    return probs.argmax(1)


def public_test(test):
    """Only the PublicTest faces of a FER2013 test set: Kaggle's ``test/`` folder holds PublicTest and
    PrivateTest together (the file names say which); a set without file names is kept whole."""
    names = [Path(p).name for p in test.paths or []]
    if any(n.startswith("PrivateTest") for n in names):
        test = test.subset([i for i, n in enumerate(names) if n.startswith("PublicTest")])
    return test


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=None,
                   help="the fer2013 folder (default: $EMOLIB_DATA/fer2013)")
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "crop_jitter.json")
    args = p.parse_args(argv)
    from emolib import data as D
    from emolib import models as M

    torch.set_num_threads(args.threads)
    test = public_test(D.FER2013(args.data or D.data_root() / "fer2013", "test"))
    truth = torch.as_tensor(test.targets)
    load_before = [round(v, 2) for v in os.getloadavg()]
    started = time.time()
    record = {"what": __doc__.split("\n")[0], "data": f"FER2013 PublicTest, {len(truth):,} faces",
              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                          "threads": args.threads, "torch": torch.__version__},
              "loadavg_before": load_before, "models": {}}
    table = moves()
    for name in args.models:
        model = M.load_model(name)
        plain = labels(model, test)
        rows = {}
        for key, move in table.items():
            got = labels(model, test, {k: v for k, v in move.items() if k != "group"})
            rows[key] = {"group": move["group"], "accuracy": (got == truth).float().mean().item(),
                         "same_label": (got == plain).float().mean().item()}
        groups = {}
        for g in dict.fromkeys(r["group"] for r in rows.values()):
            mine = [r for r in rows.values() if r["group"] == g]
            groups[g] = {k: sum(r[k] for r in mine) / len(mine) for k in ("accuracy", "same_label")}
        record["models"][name] = {"accuracy": (plain == truth).float().mean().item(), "groups": groups,
                                  "moves": rows}
        print(f"{name}: {100 * record['models'][name]['accuracy']:.2f} %; " + "; ".join(
            f"{g} {100 * r['accuracy']:.2f} % right, {100 * r['same_label']:.1f} % same label"
            for g, r in groups.items()), flush=True)
    record["seconds"] = round(time.time() - started, 1)
    record["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    record["commit"] = commit()
    record["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
