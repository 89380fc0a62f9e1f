"""Throughput of :class:`emolib.pipeline.EmotionPipeline` on real photos, next to the ``fer`` package.

Times the whole pipeline (detection, crops, contrast, one classifier batch per image)
on photos with 1, 6 and 24 faces: milliseconds per image and faces per second, median
of ``--repeats`` runs after ``--warmup`` runs, images decoded beforehand (both tools get
an in-memory array). With ``--ablation`` it also times the pipeline with
facenet-pytorch's own settings (its ``MTCNN.detect``, thresholds 0.6/0.7/0.7, no
downscaling), which is the detector ``fer`` uses, to show where the speed comes from. With
``--also NAME ...`` it times the pipeline with other face models in the same rounds (the same
detector, a costlier classifier): issue 16 lets the pipeline's default model cost more than twice
the baseline's multiply-adds per face only if the pipeline stays at least twice as fast as ``fer``.
Each model's multiply-adds per face are recorded (``macs_per_face``).

The peer, ``fer`` (``FER(mtcnn=True).detect_emotions``), needs TensorFlow and lives in
its own venv (see ``benchmarks/fer_peer.py`` for the set-up); it is run as a subprocess
with that venv's python when ``$FER_VENV`` (default ``/tmp/fervenv``) exists. With
``--rounds 2`` or more the two alternate, and each keeps its best round, which evens out
a machine whose load changes during the run.

    python benchmarks/bench_pipeline.py                      # writes results/benchmarks/pipeline.json
    FER_VENV=/tmp/fervenv python benchmarks/bench_pipeline.py --rounds 2 --ablation
    FER_VENV=/tmp/fervenv python benchmarks/bench_pipeline.py --rounds 2 --also baseline-fer2013
    python benchmarks/bench_pipeline.py --no-peer --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emolib.pipeline import EmotionPipeline, load_image  # noqa: E402

DEFAULT_IMAGES = ("obama.jpg", "multiface.jpg", "bald_guys.jpg")  # 1, 6 and 24 faces
ABLATION = {
    # the detector as fer (and facenet-pytorch's MTCNN.detect) runs it, with our crops and classifier
    "facenet_settings": dict(vectorized=False, thresholds=(0.6, 0.7, 0.7), max_side=None, min_face_size=20,
                             min_score=0.0),
}


def _model(name: str | None):
    from emolib.data import EMOTIONS
    from emolib.models import create_model, list_pretrained
    from emolib.pipeline import DEFAULT_MODEL
    from emolib.recipes import get_recipe

    if name:
        return name, name
    if DEFAULT_MODEL in list_pretrained():
        return DEFAULT_MODEL, DEFAULT_MODEL
    arch = get_recipe(DEFAULT_MODEL).model  # the default, untrained: weights do not change the speed
    model = create_model(arch).eval()
    model.classes = EMOTIONS
    return model, f"{arch} (untrained weights: {DEFAULT_MODEL} not shipped yet; same cost)"


def macs_per_face(pipe: EmotionPipeline) -> int | None:
    """The multiply-adds of the pipeline's face model on one face, over its convolutions and dense layers
    (:func:`emolib.book.tables.layer_summary`, as chapter 3 counts them); ``None`` without a model."""
    from emolib.book.tables import layer_summary

    if pipe.model is None:
        return None
    cfg = pipe.input_config
    return sum(row["macs"] for row in layer_summary(pipe.model, (1, cfg.channels, cfg.size, cfg.size)))


def time_pipeline(pipe: EmotionPipeline, arrays: dict, repeats: int, warmup: int) -> dict:
    out = {}
    for name, arr in arrays.items():
        for _ in range(warmup):
            pipe(arr)
        totals, detects = [], []
        faces = 0
        for _ in range(repeats):
            t0 = time.perf_counter()
            img = load_image(arr)
            boxes, _, _ = pipe.detect(img)
            t1 = time.perf_counter()
            if len(boxes) and pipe.model is not None:
                pipe.classify(pipe.preprocess(img, boxes))
            t2 = time.perf_counter()
            totals.append(t2 - t0)
            detects.append(t1 - t0)
            faces = len(boxes)
        med = statistics.median(totals)
        out[name] = {
            "size": [int(arr.shape[1]), int(arr.shape[0])],
            "faces": faces,
            "ms_median": round(1000 * med, 2),
            "ms_min": round(1000 * min(totals), 2),
            "ms_all": [round(1000 * t, 2) for t in totals],
            "detect_ms_median": round(1000 * statistics.median(detects), 2),
            "classify_ms_median": round(1000 * statistics.median(np.subtract(totals, detects)), 2),
            "faces_per_s": round(faces / med, 2) if med > 0 else None,
        }
        print(f"emolib {name}: {faces} faces, {1000 * med:.0f} ms (detect {out[name]['detect_ms_median']:.0f} ms)",
              file=sys.stderr)
    return out


def run_peer(venv: Path, paths: list[Path], repeats: int, warmup: int, threads: int | None) -> dict:
    python = venv / "bin" / "python"
    cmd = [str(python), str(REPO / "benchmarks" / "fer_peer.py"), "--repeats", str(repeats),
           "--warmup", str(warmup), *map(str, paths)]
    if threads:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after 1800 s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"exit {proc.returncode}", "stderr_tail": proc.stderr[-2000:]}
    return json.loads(lines[-1])


def _speedups(peer: dict, ours: dict) -> dict:
    """Per image both timed: fer's median over ours."""
    return {n: round(peer[n]["ms_median"] / v["ms_median"], 2) for n, v in ours.items() if n in peer}


def _best(rounds: list[dict]) -> dict:
    """Per image, the round with the lowest median."""
    best: dict = {}
    for r in rounds:
        for name, v in r.items():
            if "ms_median" in v and (name not in best or v["ms_median"] < best[name]["ms_median"]):
                best[name] = v
    return best


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="EmotionPipeline throughput, optionally next to fer.")
    p.add_argument("--photos", type=Path,
                   default=Path(os.environ.get("EMOLIB_DATA", REPO.parent / "shared" / "data")) / "photos")
    p.add_argument("--images", nargs="+", default=list(DEFAULT_IMAGES))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1, help="alternate emolib and fer this many times; keep the best")
    p.add_argument("--threads", type=int, help="torch (and TensorFlow) threads for both tools")
    p.add_argument("--model", help="checkpoint name or path (default: the pipeline's DEFAULT_MODEL, else the "
                                   "same architecture untrained)")
    p.add_argument("--also", nargs="+", default=[], metavar="MODEL",
                   help="also time the pipeline with these face models (checkpoint names or paths)")
    p.add_argument("--ablation", action="store_true", help="also time the pipeline with facenet-pytorch's settings")
    p.add_argument("--no-peer", action="store_true", help="do not run fer even if its venv exists")
    p.add_argument("--fer-venv", type=Path, default=Path(os.environ.get("FER_VENV", "/tmp/fervenv")))
    p.add_argument("--out", type=Path, default=REPO / "results" / "benchmarks" / "pipeline.json")
    args = p.parse_args(argv)

    paths = [args.photos / name for name in args.images]
    missing = [str(x) for x in paths if not x.is_file()]
    if missing:
        print(f"bench_pipeline: missing photos {missing} (set EMOLIB_DATA or --photos)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    model, model_desc = _model(args.model)
    arrays = {x.name: np.asarray(load_image(x)) for x in paths}
    pipe = EmotionPipeline(model, device="cpu")
    ablations = {k: EmotionPipeline(model, device="cpu", **v) for k, v in ABLATION.items()} if args.ablation else {}
    # the same detector object (only the face model differs); no hand stage: the timing never runs it
    also = {name: EmotionPipeline(name, device="cpu", detector=pipe.detector, hands=False) for name in args.also}
    peer_ok = not args.no_peer and (args.fer_venv / "bin" / "python").exists()

    ours_rounds, peer_rounds, ablation_rounds = [], [], {k: [] for k in ablations}
    also_rounds: dict = {k: [] for k in also}
    peer_meta: dict = {}
    load = [os.getloadavg()[0]]
    for r in range(args.rounds):
        print(f"round {r + 1}/{args.rounds}", file=sys.stderr)
        ours_rounds.append(time_pipeline(pipe, arrays, args.repeats, args.warmup))
        for k, ab in ablations.items():
            ablation_rounds[k].append(time_pipeline(ab, arrays, args.repeats, args.warmup))
        for k, other in also.items():
            also_rounds[k].append(time_pipeline(other, arrays, args.repeats, args.warmup))
        if peer_ok:
            res = run_peer(args.fer_venv, paths, args.repeats, args.warmup, args.threads)
            if "error" in res:
                peer_meta = res
                peer_ok = False
            else:
                peer_meta = {k: v for k, v in res.items() if k != "images"}
                peer_rounds.append(res["images"])
        load.append(os.getloadavg()[0])

    ours = _best(ours_rounds)
    result = {
        "benchmark": "EmotionPipeline throughput on real photos (in-memory RGB arrays; median of repeats)",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                    "loadavg_1min_during": [round(x, 2) for x in load]},
        "settings": {"repeats": args.repeats, "warmup": args.warmup, "rounds": args.rounds,
                     "model": model_desc, "pipeline": repr(pipe)},
        "emolib": ours,
        "emolib_rounds": ours_rounds,
        "macs_per_face": macs_per_face(pipe),
    }
    for k in ablations:
        result[f"emolib_{k}"] = {"settings": ABLATION[k] | {"thresholds": list(ABLATION[k]["thresholds"])},
                                 "images": _best(ablation_rounds[k])}
    if also:
        result["also"] = {k: {"macs_per_face": macs_per_face(other), "images": _best(also_rounds[k]),
                              "rounds": also_rounds[k]} for k, other in also.items()}
    if peer_rounds:
        peer = _best(peer_rounds)
        result["fer"] = {**peer_meta, "images": peer, "rounds": peer_rounds}
        result["speedup_vs_fer"] = _speedups(peer, ours)
        for entry in result.get("also", {}).values():
            entry["speedup_vs_fer"] = _speedups(peer, entry["images"])
    else:
        result["fer"] = peer_meta or {"skipped": f"no venv at {args.fer_venv} (see benchmarks/fer_peer.py)"
                                      if not args.no_peer else "--no-peer"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'image':16s} {'faces':>5s} {'emolib ms':>10s} {'faces/s':>8s}"
          + (f" {'fer ms':>8s} {'fer faces':>9s} {'speed-up':>8s}" if peer_rounds else ""))
    for n, v in ours.items():
        line = f"{n:16s} {v['faces']:5d} {v['ms_median']:10.0f} {v['faces_per_s']:8.1f}"
        if peer_rounds and n in result["fer"]["images"]:
            f = result["fer"]["images"][n]
            line += f" {f['ms_median']:8.0f} {f['faces']:9d} {result['speedup_vs_fer'][n]:7.2f}x"
        print(line)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
