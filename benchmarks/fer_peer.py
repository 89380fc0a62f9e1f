"""Time the ``fer`` package (Shenk et al., github.com/justinshenk/fer) on the same photos.

This script runs in its **own** virtual environment, never in the project's: ``fer``
needs TensorFlow (and pulls OpenCV, moviepy and a CUDA build of torch), none of which
is an emolib dependency. ``benchmarks/bench_pipeline.py`` starts it with that venv's
python when ``$FER_VENV`` (default ``/tmp/fervenv``) exists, and puts both timings side
by side in ``results/benchmarks/pipeline.json``.

Set-up (about 8 GB, mostly TensorFlow and CUDA wheels; CPU is enough)::

    python3 -m venv /tmp/fervenv
    /tmp/fervenv/bin/pip install fer "setuptools<81" tensorflow-cpu
    /tmp/fervenv/bin/pip uninstall -y triton      # see the traps below

Known traps (fer 25.10.3, TensorFlow 2.21, Python 3.11):

* ``fer`` imports ``pkg_resources``, which setuptools 81 removed: pin ``setuptools<81``.
* Its MTCNN is facenet-pytorch's, so torch comes along; with the ``triton`` wheel
  installed next to TensorFlow the process can crash on import: uninstall ``triton``.
* The class moved: ``from fer import FER`` fails in 25.x; it is ``fer.fer.FER``.
* ``FER.detect_emotions`` expects OpenCV's BGR order (it hands that array to MTCNN,
  which was trained on RGB; we time fer as its users call it).

Usage (prints one JSON object on the last line of stdout)::

    /tmp/fervenv/bin/python benchmarks/fer_peer.py --repeats 5 --warmup 1 PHOTO...
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("images", nargs="+")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, help="torch and TensorFlow threads (default: the libraries' own)")
    args = p.parse_args(argv)

    import cv2
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    try:
        from fer import FER
    except ImportError:  # fer >= 25 keeps it in fer.fer
        from fer.fer import FER
    import fer as fer_pkg

    t0 = time.perf_counter()
    detector = FER(mtcnn=True)
    init_s = time.perf_counter() - t0
    out = {"tool": "fer", "version": getattr(fer_pkg, "__version__", "?"), "python": platform.python_version(),
           "torch_threads": torch.get_num_threads(), "init_s": round(init_s, 3), "repeats": args.repeats,
           "warmup": args.warmup, "images": {}}
    for path in args.images:
        img = cv2.imread(path)  # BGR, as fer expects
        if img is None:
            out["images"][os.path.basename(path)] = {"error": "unreadable"}
            continue
        faces = None
        for _ in range(args.warmup):
            faces = detector.detect_emotions(img)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            faces = detector.detect_emotions(img)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        n = len(faces)
        out["images"][os.path.basename(path)] = {
            "size": [int(img.shape[1]), int(img.shape[0])],
            "faces": n,
            "ms_median": round(1000 * med, 2),
            "ms_min": round(1000 * min(times), 2),
            "ms_all": [round(1000 * t, 2) for t in times],
            "faces_per_s": round(n / med, 2) if med > 0 else None,
        }
        print(f"fer {os.path.basename(path)}: {n} faces, {1000 * med:.0f} ms", file=sys.stderr)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
