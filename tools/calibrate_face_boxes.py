"""Where MTCNN puts its box, relative to BlazeFace's, on the same faces: the live page's box calibration.

The live page finds faces with BlazeFace (cheap enough for every frame in the browser), but
emolib's emotion models were evaluated on crops around MTCNN's boxes (the Python pipeline's
detector), and BlazeFace's box is tighter and sits lower on the face. This script runs both
detectors on the frames of the shared video (640x480, as the test's fake camera) and on the
photos with one face, pairs each MTCNN face with the BlazeFace box that overlaps it most, and
writes the medians of the centre shift (in box widths and heights) and of the size ratios to
``emolib/web/models/blazeface_to_mtcnn.json``; the page applies them (``face.js``,
``toFrameBox``)::

    EMOLIB_DATA=../shared/data python tools/calibrate_face_boxes.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "emolib" / "web" / "models" / "blazeface_to_mtcnn.json"


def anchors() -> np.ndarray:
    """MediaPipe's 896 short-range anchors (as ``face.js`` makes them)."""
    out = []
    for stride, repeats in ((8, 2), (16, 6)):
        cells = 128 // stride
        for y in range(cells):
            for x in range(cells):
                out += [((x + 0.5) / cells, (y + 0.5) / cells)] * repeats
    return np.asarray(out, np.float32)


def blazeface_boxes(sess, rgb: Image.Image, min_score: float = 0.5) -> np.ndarray:
    """BlazeFace's candidate boxes above ``min_score`` in frame pixels (no NMS: the best is used), best first."""
    w, h = rgb.size
    scale = 128 / max(w, h)
    sw, sh = round(w * scale), round(h * scale)
    canvas = Image.new("RGB", (128, 128))
    ox, oy = (128 - w * scale) / 2, (128 - h * scale) / 2
    canvas.paste(rgb.resize((sw, sh), Image.BILINEAR), (int(round(ox)), int(round(oy))))
    x = np.asarray(canvas, np.float32)[None] / 255.0
    reg, cls = sess.run(["regressors", "classificators"], {"image": x})
    reg, score = reg[0], 1 / (1 + np.exp(-np.clip(cls[0, :, 0], -100, 100)))
    keep = np.argsort(-score)
    keep = keep[score[keep] >= min_score]
    a = anchors()[keep]
    cx, cy = reg[keep, 0] / 128 + a[:, 0], reg[keep, 1] / 128 + a[:, 1]
    bw, bh = reg[keep, 2] / 128, reg[keep, 3] / 128
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * 128
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - ox) / scale
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - oy) / scale
    return boxes


def iou(a, b) -> float:
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def frames(data: Path, every: int = 3):
    from emolib.book import camera_frames

    yield from camera_frames(data / "video" / "short_hamilton_clip.mp4", n=400, every=every)
    faces = json.loads((data / "photos" / "faces.json").read_text())
    for name, n in faces.items():
        if n == 1:
            yield Image.open(data / "photos" / name).convert("RGB")


def main(argv=None) -> int:
    import onnxruntime as ort

    from emolib.onnx_export import BLAZEFACE_FILE, WEB_MODELS
    from emolib.pipeline import EmotionPipeline

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path(os.environ.get("EMOLIB_DATA", ROOT.parent / "shared" / "data")))
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    sess = ort.InferenceSession(str(WEB_MODELS / BLAZEFACE_FILE), providers=["CPUExecutionProvider"])
    pipe = EmotionPipeline(model=None, hands=False)
    dx, dy, sw, sh, ious = [], [], [], [], []
    for img in frames(args.data):
        mt, _, _ = pipe.detect(img)
        if len(mt) != 1:
            continue
        bf = blazeface_boxes(sess, img)
        if not len(bf):
            continue
        m = mt[0]
        b = max(bf[:20], key=lambda c: iou(c, m))  # the best candidates, the one on MTCNN's face
        if iou(b, m) < 0.3:
            continue
        bw, bh = b[2] - b[0], b[3] - b[1]
        dx.append(((m[0] + m[2]) - (b[0] + b[2])) / 2 / bw)
        dy.append(((m[1] + m[3]) - (b[1] + b[3])) / 2 / bh)
        sw.append((m[2] - m[0]) / bw)
        sh.append((m[3] - m[1]) / bh)
        ious.append(iou(b, m))
    if len(dx) < 10:
        raise SystemExit(f"only {len(dx)} faces found by both detectors: is the data at {args.data}?")
    med = lambda v: round(float(statistics.median(v)), 4)  # noqa: E731
    cal = {"dx": med(dx), "dy": med(dy), "sw": med(sw), "sh": med(sh), "faces": len(dx),
           "median_iou_before": med(ious),
           "made_by": "tools/calibrate_face_boxes.py",
           "data": "frames of video/short_hamilton_clip.mp4 (640x480) and photos with one face"}
    args.out.write_text(json.dumps(cal, indent=1) + "\n")
    print(json.dumps(cal, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
