"""Hand-gesture speed: ``gestures-asl`` with emolib's ONNX hand detector (full and lite networks).

Per photo of the ASL validation split (decoded beforehand): MediaPipe's palm detection and
landmarks, run by onnxruntime with emolib's numpy graph (:class:`emolib.hands.HandDetector`),
then the landmark MLP (torch, 1 thread). onnxruntime runs with ``intra_op_num_threads`` 2 (this
machine's cores) and all graph optimisations, and once more with 1 thread, the set-up of the
MediaPipe numbers recorded before (mediapipe 0.10.21, ``results/benchmarks/hands_speed.json``
as it was on 2026-11-26: 29.0 and 41.6 hands/s for the full and lite networks), which are kept
beside the new ones in the output. With ``--mediapipe-python`` (a throwaway venv with
mediapipe 0.10.21, see ``benchmarks/hands_vs_mediapipe.py``) it also times detection alone,
emolib's then mediapipe's, on the same photos one right after the other (1 thread for
onnxruntime), so that both see the same load. Run it on a quiet machine, one heavy job at a time::

    flock /tmp/heavy.lock python benchmarks/bench_hands_speed.py --photos 200 \\
        --mediapipe-python /work/venvs/mediapipe/bin/python

Writes ``results/benchmarks/hands_speed.json`` (with the load average before and after each run).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import onnxruntime
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_hands import SEED, VAL_FRACTION, speed  # noqa: E402

from emolib import gestures as G  # noqa: E402

GOAL_HANDS_PER_SECOND = 30.0

#: Run by ``--mediapipe-python`` (a venv with mediapipe 0.10.21): detection alone on the same photos.
MEDIAPIPE_TIMER = r"""
import json, sys, time
import numpy as np
import mediapipe as mp
from PIL import Image
paths, complexity = json.loads(sys.argv[1]), int(sys.argv[2])
photos = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=complexity,
                              min_detection_confidence=0.5, min_tracking_confidence=0.5) as hands:
    for rgb in photos[:5]:
        hands.process(rgb)
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for rgb in photos:
        n += len(hands.process(rgb).multi_hand_landmarks or [])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"photos": len(photos), "hands": n, "ms_per_photo": 1000 * wall / len(photos),
                  "cpu_ms_per_photo": 1000 * cpu / len(photos)}))
"""


def detection_side_by_side(paths: list[str], mediapipe_python: str, threads: int) -> dict:
    """Detection alone (no classifier), emolib's ONNX detector then mediapipe 0.10.21 in its own venv, on
    the same photos one right after the other, so that both see the same load."""
    import subprocess

    import numpy as np
    from PIL import Image

    from emolib.hands import HandDetector

    photos = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    out = {}
    for complexity in (1, 0):
        with HandDetector(model_complexity=complexity, threads=threads) as det:
            for rgb in photos[:5]:
                det(rgb)
            n, t0, c0 = 0, time.perf_counter(), time.process_time()
            for rgb in photos:
                n += len(det(rgb))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        onnx = {"photos": len(photos), "hands": n, "ms_per_photo": 1000 * wall / len(photos),
                "cpu_ms_per_photo": 1000 * cpu / len(photos), "loadavg_after": [round(v, 2) for v in os.getloadavg()]}
        proc = subprocess.run([mediapipe_python, "-c", MEDIAPIPE_TIMER, json.dumps(paths), str(complexity)],
                              capture_output=True, text=True, check=True)
        mp = json.loads(proc.stdout.strip().splitlines()[-1])
        mp["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
        out[f"model_complexity_{complexity}"] = {"onnx_threads": threads, "onnx": onnx, "mediapipe_0.10.21": mp}
        print(f"detection alone, model_complexity={complexity}: ONNX {onnx['ms_per_photo']:.1f} ms/photo "
              f"(CPU {onnx['cpu_ms_per_photo']:.1f}), mediapipe {mp['ms_per_photo']:.1f} ms/photo "
              f"(CPU {mp['cpu_ms_per_photo']:.1f}), load {mp['loadavg_after']}", flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="the asl folder (default: $EMOLIB_DATA/asl)")
    p.add_argument("--photos", type=int, default=200, help="validation photos to time")
    p.add_argument("--threads", type=int, nargs="+", default=[2, 1], help="onnxruntime intra-op threads to time")
    p.add_argument("--out", type=Path, default=REPO / "results/benchmarks/hands_speed.json")
    p.add_argument("--mediapipe-python", default=os.environ.get("EMOLIB_MEDIAPIPE_PYTHON"),
                   help="python of a venv with mediapipe==0.10.21 (e.g. /work/venvs/mediapipe/bin/python): also "
                        "time its detection on the same photos, right after emolib's (default: $EMOLIB_MEDIAPIPE_PYTHON)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    mediapipe = old.get("mediapipe_0.10.21") or (
        {"what": old["what"], "when": old["when"], "speed": old["speed"]} if "speed" in old and "MediaPipe" in old.get("what", "") else None)
    split = G.asl_split(args.data, VAL_FRACTION, SEED)
    clf = G.GestureClassifier("gestures-asl")
    record = {"what": "gestures-asl per photo: emolib.hands.HandDetector (MediaPipe 0.10.21's networks as ONNX, "
                      "onnxruntime, numpy graph; detection + landmarks) and the landmark MLP (torch, 1 thread), "
                      "photos of the validation split decoded beforehand",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(), "onnxruntime": onnxruntime.__version__,
              "goal_hands_per_second_full": GOAL_HANDS_PER_SECOND,
              "loadavg_before": [round(v, 2) for v in os.getloadavg()], "onnx": {}}
    for threads in args.threads:
        for complexity in (1, 0):
            sp = speed(split, clf, args.photos, complexity, threads)
            key = f"model_complexity_{complexity}_threads_{threads}"
            record["onnx"][key] = sp
            print(f"{key}: {sp['hands_per_second']:.1f} hands/s, {sp['ms_per_photo_median']:.1f} ms per photo "
                  f"(median), load {sp['loadavg_after']}", flush=True)
    if args.mediapipe_python:
        va = split["val_idx"][:: max(1, len(split["val_idx"]) // args.photos)][: args.photos]
        record["detection_side_by_side"] = detection_side_by_side([split["paths"][i] for i in va],
                                                                  args.mediapipe_python, threads=1)
    if mediapipe:
        record["mediapipe_0.10.21"] = mediapipe
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
