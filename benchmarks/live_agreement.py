"""How often the live page's faces and emotions are the Python pipeline's, on the fake camera, repeated.

Each repeat runs the book's *Try it* page twice in a fresh headless Chromium (static file server,
fake camera playing the test's 2 s of ``short_hamilton_clip.mp4`` at 640x480, no Python behind the
page), as ``tests/test_live_page.py`` does, and compares its logged frames with Python on the very
same pixels (``tests/test_live_page.py``'s ``_agreement``):

* ``per frame``: ``?detectEvery=1&hands=0``, the full face detection on every frame, against
  :class:`emolib.pipeline.EmotionPipeline` on each frame: issue 15's 90 %;
* ``followed``: the page as it opens (faces followed by O-Net between full detections, hands on),
  against :class:`emolib.faces.FaceTracker` (the kernel widget's) fed the same frames in the same
  order: the same step, box (within 0.1 px) and emotion, the tracker following its own boxes and
  (``_resynced``) given the page's state before each frame; and how often its emotion is still the
  per-frame pipeline's. The camera hands of this run against :class:`emolib.hands.HandTracker` fed the
  frames the page read hands on, in the order it read them (``tests/test_live_page.py``'s
  ``camera_hand_agreement``: the same step, hands, sides and gestures), both with the tracker following
  its own hands (``free``) and given the page's state before each read (``resynced``).

Writes ``results/benchmarks/live_page_agreement.json`` (every run with its load average before and
after). Run it on a quiet machine::

    flock /tmp/heavy.lock python benchmarks/live_agreement.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_page import build_live_page, write_y4m  # noqa: E402
from tests.test_live_page import (AGREEMENT, BOX_TOL_PX, CLIP, CLIP_SECONDS, CLIP_START_S, _agreement,  # noqa: E402
                                  camera_hand_agreement, camera_run)


def _loads() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def one_run(tmp: Path, y4m: Path, n: int, query: str) -> dict:
    before = _loads()
    run = camera_run(tmp, y4m, query=query)
    after = _loads()
    a = _agreement(run, y4m, n)
    rec = {"query": query, "fps": round(run["measured_fps"], 2), "detect_every": run["options"]["detectEvery"],
           **a, "rate": round(a["agree"] / a["compared"], 4) if a["compared"] else None,
           "loadavg_before": before, "loadavg_after": after}
    if "hands=0" not in query:
        rec["hands"] = camera_hand_agreement(run, y4m)
    return rec


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "live_page_agreement.json")
    args = p.parse_args(argv)
    build_live_page()
    runs: dict[str, list[dict]] = {"per frame": [], "followed": []}
    with tempfile.TemporaryDirectory() as tmp:
        y4m = Path(tmp) / "camera.y4m"
        n = write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)
        for k in range(args.repeats):
            for name, query in (("per frame", "detectEvery=1&hands=0"), ("followed", "")):
                work = Path(tmp) / f"{name.replace(' ', '_')}{k}"
                work.mkdir()
                rec = one_run(work, y4m, n, query)
                runs[name].append(rec)
                print(f"round {k + 1}/{args.repeats}, {name}: emotion as the per-frame pipeline's on "
                      f"{rec['agree']} of {rec['compared']}, the tracker's box on {rec['same_box']}, "
                      f"{rec['tracked']} of {rec['frames']} frames followed, {rec['fps']:.1f} fps "
                      f"(load {rec['loadavg_before'][0]:.2f} before)", flush=True)
    version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    record = {
        "what": "the live page's faces and emotions against Python's on the fake camera's frames where the "
                "per-frame Python pipeline finds exactly one face (benchmarks/live_agreement.py)",
        "modes": {"per frame": "?detectEvery=1&hands=0: full detection on every frame, against "
                               "EmotionPipeline on each frame (issue 15's 90 %)",
                  "followed": "the page as it opens: faces followed by O-Net between full detections, hands on; "
                              "same_box, agree_tracker and same_step against FaceTracker fed the same "
                              "frames (following its own boxes; _resynced: given the page's boxes and "
                              "frames since a full detection before each frame); its camera hands against "
                              "HandTracker fed the frames the page read hands on (free; resynced: given "
                              "the page's tracker state before each read)"},
        "goal": AGREEMENT, "box_within_px": BOX_TOL_PX,
        "runs": runs,
        "min_rate": {name: min((r["rate"] for r in rs if r["rate"] is not None), default=None)
                     for name, rs in runs.items()},
        "chromium": version, "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record["min_rate"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
