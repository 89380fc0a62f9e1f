"""Following a face with O-Net alone: how far its box lands from the full detection's, and what that does
to the emotion, on every frame of the live page's test clip.

The live page and the kernel widget follow faces between full detections as
:class:`emolib.faces.FaceTracker` does: O-Net alone on the last frame's box, grown by ``grow`` on every
side. Against the Python pipeline's full detection on each frame, the followed page's emotion agreed on
82.5-86.5 % of the frames (``benchmarks/live_agreement.py``). This script asks whether another way of
following would do better. On the 60 frames of the test clip (``tests/test_live_page.py``'s 2 s of
``short_hamilton_clip.mp4``, decoded as Chromium decodes the fake camera), each frame in turn, starting
from the full detection's box on the first, it follows the face with:

* ``grow=G``: FaceTracker's step, the box grown by G (0 to 0.25; the default is 0.05);
* ``twice``: that step, then O-Net again on its own result;
* ``grid9`` / ``grid27``: O-Net on 9 squares shifted by ±6 % of the side (and at 0.9, 1 and 1.1 times
  the size: 27), keeping the one O-Net scores highest, as the full detection keeps its best candidate;
* ``scales3``: 3 squares at 0.85, 1 and 1.15 times the size, the best kept.

For each: on how many frames the emotion is the full detection's, and the largest of the four box
coordinates' differences from the full detection's box (median and maximum, pixels). Writes
``results/benchmarks/track_variants.json``::

    flock /tmp/heavy.lock python benchmarks/track_variants.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_page import write_y4m  # noqa: E402
from tests.test_live_page import CLIP, CLIP_SECONDS, CLIP_START_S, read_y4m  # noqa: E402

VARIANTS = {**{f"grow={g}": {"grow": g} for g in (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)},
            "twice": {"twice": True},
            "grid9": {"shifts": (-0.06, 0.0, 0.06)},
            "grid27": {"shifts": (-0.06, 0.0, 0.06), "scales": (0.9, 1.0, 1.1)},
            "scales3": {"scales": (0.85, 1.0, 1.15)}}


def squares(box, grow=0.05, shifts=(0.0,), scales=(1.0,)) -> np.ndarray:
    """The followed box grown by ``grow`` and made square (FaceTracker's step), then shifted and scaled."""
    from facenet_pytorch.models.utils.detect_face import rerec

    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = x2 - x1, y2 - y1
    base = rerec(torch.tensor([[x1 - grow * w, y1 - grow * h, x2 + grow * w, y2 + grow * h, 1.0]]))[0, :4].numpy()
    side, cx, cy = base[2] - base[0], (base[0] + base[2]) / 2, (base[1] + base[3]) / 2
    return np.array([[cx + dx * side - side * s / 2, cy + dy * side - side * s / 2,
                      cx + dx * side + side * s / 2, cy + dy * side + side * s / 2, 1.0]
                     for s in scales for dx in shifts for dy in shifts], np.float32)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "track_variants.json")
    args = p.parse_args(argv)
    from emolib.faces import onet_stage
    from emolib.pipeline import EmotionPipeline

    with tempfile.TemporaryDirectory() as tmp:
        y4m = Path(tmp) / "camera.y4m"
        write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)
        frames = read_y4m(y4m)
    load_before = [round(v, 2) for v in os.getloadavg()]
    pipe = EmotionPipeline(hands=False)
    full = [pipe(f) for f in frames]

    def onet(img, cand):
        rgb = torch.from_numpy(np.array(img)).permute(2, 0, 1).unsqueeze(0).float()
        with torch.inference_mode():
            b, _ = onet_stage(pipe.detector, rgb, torch.as_tensor(cand), 0.9, pipe.detection.crop_sampling)
        return b.numpy()

    results = {}
    for name, v in VARIANTS.items():
        prev, offs, agree, compared, lost = None, [], 0, 0, 0
        for k, frame in enumerate(frames):
            img = Image.fromarray(frame)
            if prev is None:  # the first frame, or the face was lost: the full detection's box
                prev = np.asarray(full[k].faces[0].box, np.float32) if len(full[k].faces) == 1 else None
                continue
            found = onet(img, squares(prev, v.get("grow", 0.05), v.get("shifts", (0.0,)), v.get("scales", (1.0,))))
            if len(found) and v.get("twice"):
                again = onet(img, squares(found[np.argmax(found[:, 4])]))
                found = again if len(again) else found
            if not len(found):
                lost += 1
                prev = None
                continue
            best = found[np.argmax(found[:, 4])]
            prev = best[:4]
            if len(full[k].faces) == 1:
                read = pipe.read_faces(img, best[None, :4], best[4:5], np.zeros((1, 5, 2), np.float32))
                compared += 1
                agree += read.faces[0].emotion == full[k].faces[0].emotion
                offs.append(float(np.abs(best[:4] - np.asarray(full[k].faces[0].box)).max()))
        results[name] = {"compared": compared, "agree": agree, "rate": round(agree / compared, 4) if compared else None,
                         "box_off_px_median": round(float(np.median(offs)), 2) if offs else None,
                         "box_off_px_max": round(float(np.max(offs)), 2) if offs else None, "lost": lost}
        print(name, results[name], flush=True)
    widths = [f.faces[0].box[2] - f.faces[0].box[0] for f in full if len(f.faces) == 1]
    record = {"what": "following the test clip's face with O-Net alone, frame after frame, against the full "
                      "detection on each frame (benchmarks/track_variants.py)",
              "frames": len(frames), "face_width_px_median": round(float(np.median(widths)), 1),
              "variants": results, "loadavg_before": load_before,
              "loadavg_after": [round(v, 2) for v in os.getloadavg()],
              "when": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
