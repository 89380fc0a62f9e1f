"""Hand-gesture speed alone: ``gestures-asl`` with MediaPipe's full and lite landmark networks.

The same measurement as ``benchmarks/bench_hands.py``'s speed step (photos decoded
beforehand; per photo MediaPipe's palm detection and landmarks, then the landmark MLP;
one thread), without the training runs around it, so it can be repeated on an idle
machine. Writes ``results/benchmarks/hands_speed.json``. Needs MediaPipe::

    .venv-hands/bin/python benchmarks/bench_hands_speed.py --photos 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_hands import SEED, VAL_FRACTION, speed  # noqa: E402

from emolib import gestures as G  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="the asl folder (default: $EMOLIB_DATA/asl)")
    p.add_argument("--photos", type=int, default=200, help="validation photos to time")
    p.add_argument("--out", type=Path, default=REPO / "results/benchmarks/hands_speed.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    split = G.asl_split(args.data, VAL_FRACTION, SEED)
    clf = G.GestureClassifier("gestures-asl")
    record = {"what": "gestures-asl per photo: MediaPipe Hands (detection + landmarks) and the landmark MLP, "
                      "1 thread, photos of the validation split decoded beforehand",
              "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "cpus": os.cpu_count(),
              "loadavg_before": [round(v, 2) for v in os.getloadavg()], "speed": {}}
    for complexity in (1, 0):
        sp = speed(split, clf, args.photos, complexity)
        record["speed"][f"model_complexity_{complexity}"] = sp
        print(f"model_complexity={complexity}: {sp['hands_per_second']:.1f} hands/s, "
              f"{sp['ms_per_photo_median']:.1f} ms per photo (median), load {sp['loadavg_after']}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
