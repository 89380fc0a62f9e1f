"""Hand gestures on this CPU: accuracy, training time and speed of every approach, on one validation split.

Everything the hand chapter (book/06_hand_gestures.ipynb) shows is computed here, so the
chapter only reads and draws the results (it runs where MediaPipe is not installed):

1. the split: stratified 20 % of ``asl/train`` for validation, seed 0
   (:func:`emolib.gestures.asl_split`, the same photos as ``train_val_split`` gives the
   image models);
2. MediaPipe landmarks of every photo, cached under ``$EMOLIB_CACHE``;
3. the landmark MLP (recipe ``landmark_mlp-asl``) and, beside it, scikit-learn's
   gradient-boosted trees on the same features;
4. the small image CNN (recipe ``emonet-asl``; trained by ``emolib train``, resumed here
   if its run folder is complete), on the validation photos and on crops around the
   hands MediaPipe finds in them (what the photo pipeline would give it);
5. the thesis's model, ``resnetv2_50`` with the thesis's recipe, at **smoke scale only**
   (a few batches, no ImageNet weights: there are neither here);
6. speed: milliseconds per hand and hands per second on this CPU, MediaPipe included;
7. files: ``results/06_hand_gestures/{comparison,val_predictions,samples}.json``,
   ``results/benchmarks/hands.json``, and with ``--ship`` the shipped model
   ``gestures-asl`` with its card.

Needs the hand detector (onnxruntime: ``pip install "emolib[hands]"``, in the main environment;
the shipped ``gestures-asl`` was trained on landmarks of mediapipe 0.10.21 itself, which
``benchmarks/hands_vs_mediapipe.py`` shows the ONNX detector reproduces)::

    emolib train --recipe emonet-asl --data $EMOLIB_DATA/asl --out runs/hands/emonet-asl   # ~20 min
    OMP_NUM_THREADS=1 python benchmarks/bench_hands.py --ship
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emolib import data as D  # noqa: E402
from emolib import gestures as G  # noqa: E402
from emolib import hands as H  # noqa: E402
from emolib import models as M  # noqa: E402
from emolib.experiment import run_recipe  # noqa: E402
from emolib.experiment import ship as ship_run  # noqa: E402
from emolib.recipes import get_recipe  # noqa: E402

THESIS_VAL_ACC = 0.9991  # the thesis's validation accuracy of ResNet50v2 on its ASL photos
VAL_FRACTION, SEED = 0.2, 0


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def _machine() -> dict:
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "torch_threads": torch.get_num_threads(),
            "mediapipe": __import__("mediapipe").__version__}


def _median_ms(fn, repeats: int, cpu: bool = False):
    """Median wall-clock milliseconds of ``fn()``; with ``cpu``, also the median CPU milliseconds (all threads)."""
    times, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        times.append(1000 * (time.perf_counter() - t0))
        cpus.append(1000 * (time.process_time() - c0))
    return (statistics.median(times), statistics.median(cpus)) if cpu else statistics.median(times)


def _preds(probs: np.ndarray, found: np.ndarray) -> dict:
    return {"y_pred": np.where(found, probs.argmax(1), -1).tolist(), "probs": np.round(probs, 4).tolist()}


# --------------------------------------------------------------------------- the approaches


def landmark_runs(root, runs: Path, lm: dict, split: dict, smoke: bool) -> tuple[dict, dict]:
    recipe = get_recipe("landmark_mlp-asl", epochs=3 if smoke else None)
    res = run_recipe(recipe, runs / "landmark_mlp-asl", root, landmarks=G.landmark_source(precomputed=lm),
                     resume=False, progress=False, limit=200 if smoke else None)
    return res, json.loads((runs / "landmark_mlp-asl" / "val_predictions.json").read_text())


def trees(lm: dict, split: dict) -> tuple[dict, np.ndarray, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    found = lm["found"].astype(bool)
    feats = H.landmark_features(np.nan_to_num(lm["landmarks"]), np.where(found, lm["handedness"], "right"))
    tr, va = split["train_idx"], split["val_idx"]
    a = tr[found[tr]]
    t0 = time.perf_counter()
    clf = HistGradientBoostingClassifier(random_state=SEED).fit(feats[a], split["labels"][a])
    seconds = time.perf_counter() - t0
    probs = clf.predict_proba(feats[va])
    metrics = G.gesture_metrics(split["labels"][va], probs, found[va], split["classes"])
    one = feats[va[:1]]
    ms = _median_ms(lambda: clf.predict_proba(one), 50)
    return {"val": metrics, "train_seconds": seconds, "classifier_ms_per_hand": ms}, probs, seconds


def cnn(root, runs: Path, split: dict, lm: dict, smoke: bool) -> tuple[dict, dict]:
    from emolib.experiment import run_recipe
    from emolib.train import predict
    from emolib.transforms import eval_transform

    recipe = get_recipe("emonet-asl", epochs=1 if smoke else None, max_batches=2 if smoke else None)
    out = runs / ("emonet-asl-smoke" if smoke else "emonet-asl")
    result = run_recipe(recipe, out, root=root, progress=False, limit=80 if smoke else None)
    model = M.load_model(out / "model.pt")
    cfg = model.input_config
    full = D.ASLGestures(root, size=cfg.size)
    _, val = D.train_val_split(full, recipe.val_fraction, recipe.config.seed, None,
                               eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std))
    val_paths = [split["paths"][i] for i in split["val_idx"]]
    assert val.paths == val_paths, "the CNN's validation photos differ from the landmark models'"
    probs, targets = predict(model, val, progress=False)
    metrics = G.gesture_metrics(targets.numpy(), probs.numpy(), np.ones(len(targets), bool), full.classes)
    # the same photos as the photo pipeline would give the CNN: a crop around the hand MediaPipe finds
    clf = G.GestureClassifier(model)
    va = split["val_idx"]
    found = lm["found"][va].astype(bool)
    crop_probs = np.full((len(va), 4), 0.25)
    from PIL import Image

    for j, i in enumerate(va):
        if not found[j]:
            continue
        w, h = lm["size"][i]
        box, _ = H.hand_box(lm["landmarks"][i], int(w), int(h), 0.1)
        hand = H.Hand(box=box, handedness=str(lm["handedness"][i]), score=1.0, landmarks=lm["landmarks"][i])
        rgb = np.asarray(Image.open(split["paths"][i]).convert("RGB"))
        crop_probs[j] = clf.predict_images(clf._crops(rgb, [hand]))[0]
    crops = G.gesture_metrics(split["labels"][va], crop_probs, found, full.classes)
    x1 = torch.stack([val[0][0]])
    with torch.no_grad():
        ms1, cpu1 = _median_ms(lambda: model(x1), 30, cpu=True)
        xb = torch.stack([val[i][0] for i in range(64)])
        ms64 = _median_ms(lambda: model(xb), 5) / 64
    return ({"result": {k: result[k] for k in ("parameters", "train_images", "val_images", "epochs_run", "best_epoch",
                                               "best_val_acc", "train_seconds", "device", "torch_threads")},
             "val": metrics, "val_on_hand_crops": crops, "classifier_ms_per_hand": ms1, "classifier_cpu_ms_per_hand": cpu1,
             "classifier_ms_per_hand_batched": ms64, "size_bytes": (out / "model.pt").stat().st_size,
             "recipe": {**asdict(recipe), "config": asdict(recipe.config)}},
            {"whole_photo": _preds(probs.numpy(), np.ones(len(va), bool)), "hand_crops": _preds(crop_probs, found)})


def cnn_on_split(split: dict, runs: Path, name: str, smoke: bool = False) -> tuple[dict, np.ndarray]:
    """Train the recipe ``emonet-asl`` on another split (resumable run folder ``runs/name``); val probabilities."""
    from emolib import transforms as T
    from emolib.train import fit, predict

    recipe = get_recipe("emonet-asl", epochs=1 if smoke else None, max_batches=2 if smoke else None)
    cfg = M.input_config("emonet", size=recipe.size)
    full = D.ASLGestures(Path(split["paths"][0]).parents[1], size=cfg.size)
    assert full.paths == split["paths"]
    train = full.subset(split["train_idx"], T.hand_train_transform(cfg.size, cfg.channels, cfg.mean, cfg.std,
                                                                   **recipe.augment))
    val = full.subset(split["val_idx"], T.eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std))
    model = M.create_model("emonet", num_classes=4, in_chans=cfg.channels)
    model.input_config = cfg
    history = fit(model, train, val, recipe.config, runs / name, progress=False)
    probs, targets = predict(model, val, progress=False)
    metrics = G.gesture_metrics(targets.numpy(), probs.numpy(), np.ones(len(targets), bool), full.classes)
    return {"val": metrics, "train_seconds": sum(h["seconds"] for h in history), "epochs_run": len(history),
            "best_epoch": max(history, key=lambda h: h["val_acc"])["epoch"]}, probs.numpy()


def thesis_smoke(split: dict, runs: Path) -> dict:
    """The thesis's model and recipe at smoke scale: a few batches of 224x224 photos, no ImageNet weights.

    48 training and 16 validation photos of the split (stratified), decoded at 224x224,
    the recipe's trainer settings and the thesis's hand augmentation; 1 epoch of 3 batches of 8.
    """
    from emolib import transforms as T
    from emolib.train import fit

    recipe = replace(get_recipe("resnetv2_50-asl", epochs=1, max_batches=3, batch_size=8, num_workers=0),
                     val_fraction=VAL_FRACTION)
    rng = np.random.default_rng(SEED)
    labels = split["labels"]
    pick = lambda idx, n: [int(i) for k in range(4) for i in rng.choice(idx[labels[idx] == k], n, replace=False)]
    tr, va = pick(split["train_idx"], 12), pick(split["val_idx"], 4)
    images, targets, _, _ = D.load_images([split["paths"][i] for i in tr + va], labels[tr + va].tolist(), "RGB", 224)
    ds = D.ImageDataset(images, targets, split["classes"])
    cfg = M.input_config("resnetv2_50")
    train = ds.subset(range(len(tr)), T.hand_train_transform(224, 3, cfg.mean, cfg.std))
    val = ds.subset(range(len(tr), len(ds)), T.eval_transform(224, 3, cfg.mean, cfg.std))
    model = M.create_model("resnetv2_50", num_classes=4)
    t0 = time.time()
    history = fit(model, train, val, recipe.config, runs / "resnetv2_50-asl-smoke", resume=False, progress=False)
    wall = time.time() - t0
    model.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        model(x)
        ms = _median_ms(lambda: model(x), 5)
    return {"smoke": True, "what": "1 epoch of 3 batches of 8 photos (224x224) from random weights (no ImageNet "
            "weights and no GPU here): shows that the code runs, says nothing about accuracy",
            "recipe": {**asdict(recipe), "config": asdict(recipe.config)}, "parameters": M.count_parameters(model),
            "train_images": len(tr), "val_images": len(va), "val_acc": history[-1]["val_acc"],
            "train_seconds": sum(h["seconds"] for h in history), "wall_seconds": wall,
            "ms_per_image_batch1": ms, "thesis_val_acc": THESIS_VAL_ACC}


def speed(split: dict, clf: G.GestureClassifier, n: int, model_complexity: int, threads: int = 0) -> dict:
    """Photos decoded beforehand; the hand detector (detection + landmarks) and the classifier, per photo and
    per hand. ``threads``: onnxruntime's intra-op threads (0: its default)."""
    from PIL import Image

    va = split["val_idx"][:: max(1, len(split["val_idx"]) // n)][:n]
    photos = [np.asarray(Image.open(split["paths"][i]).convert("RGB")) for i in va]
    settings = {**H.DEFAULT_DETECTOR, "model_complexity": model_complexity}
    with H.HandDetector(**settings, threads=threads) as det:
        for rgb in photos[:5]:  # warm-up
            det(rgb)
        hands_total, t_det, t_cls = 0, 0.0, 0.0
        per_photo = []
        cpu0 = time.process_time()
        for rgb in photos:
            t0 = time.perf_counter()
            hands = det(rgb)
            t1 = time.perf_counter()
            clf.classify(rgb, hands)
            t2 = time.perf_counter()
            t_det += t1 - t0
            t_cls += t2 - t1
            hands_total += len(hands)
            per_photo.append(1000 * (t2 - t0))
        cpu = time.process_time() - cpu0  # CPU time of all of this process's threads: what an idle machine would take
    total = t_det + t_cls
    return {"photos": len(photos), "photo_size": list(photos[0].shape[:2]), "hands": hands_total,
            "model_complexity": model_complexity, "threads": threads, "ms_per_photo_median": statistics.median(per_photo),
            "detect_ms_per_photo": 1000 * t_det / len(photos), "classify_ms_per_hand": 1000 * t_cls / max(hands_total, 1),
            "hands_per_second": hands_total / total, "cpu_seconds": cpu, "cpu_ms_per_photo": 1000 * cpu / len(photos),
            "hands_per_cpu_second": hands_total / cpu, "loadavg_after": _load()}


# --------------------------------------------------------------------------- main


def ship(args, comparison: dict, mlp_ms: float) -> dict:
    """Ship the landmark run as ``gestures-asl`` with its card (the speed measured by this benchmark)."""
    s1, s0 = comparison["speed"]["model_complexity_1"], comparison["speed"]["model_complexity_0"]
    command = ('OMP_NUM_THREADS=1 python benchmarks/bench_hands.py --ship   # with emolib[hands]: trains the recipe '
               'landmark_mlp-asl (emolib.experiment.run_recipe) on $EMOLIB_DATA/asl and ships it (emolib.experiment.ship)')
    text = (f"On this {comparison['machine']['cpus']}-core CPU (1 thread; load average about "
            f"{s1['loadavg_after'][0]:.0f} from other jobs): MediaPipe's detection and landmarks take "
            f"{s1['detect_ms_per_photo']:.1f} ms per {s1['photo_size'][1]}x{s1['photo_size'][0]} photo, the MLP "
            f"{mlp_ms:.2f} ms per hand: {s1['hands_per_second']:.1f} hands per second end to end. With the lite "
            f"landmark network (HandDetector(model_complexity=0)): {s0['detect_ms_per_photo']:.1f} ms, "
            f"{s0['hands_per_second']:.1f} hands per second; on the validation photos it finds "
            f"{comparison['lite_landmarks_val']['hands_found']} hands (the full network "
            f"{comparison['rows'][0]['val']['hands_found']}) and the MLP reads "
            f"{100 * comparison['lite_landmarks_val']['accuracy_with_hand']:.2f} % of them right.")
    card = ship_run(args.runs / "landmark_mlp-asl", "gestures-asl", command, results_dir=args.out, half=False,
                    extra={"speed": {**s1, "classifier_ms_per_hand": mlp_ms, "lite": s0, "text": text},
                           "landmark_seconds": comparison["landmarks"]["seconds_total"],
                           "landmarks": comparison["landmarks"]})
    print("shipped gestures-asl:", card["val"]["accuracy"], card["size_bytes"], "bytes", flush=True)
    return card


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="the ASL folder (default: $EMOLIB_DATA/asl)")
    p.add_argument("--runs", type=Path, default=REPO / "runs" / "hands")
    p.add_argument("--out", type=Path, default=REPO / "results" / "06_hand_gestures")
    p.add_argument("--bench", type=Path, default=REPO / "results" / "benchmarks" / "hands.json")
    p.add_argument("--speed-photos", type=int, default=100)
    p.add_argument("--ship", action="store_true", help="ship the landmark model as gestures-asl")
    p.add_argument("--ship-only", action="store_true",
                   help="only ship the finished landmark run, with the speed of the last comparison.json")
    p.add_argument("--smoke", action="store_true", help="a tiny run into a temporary folder (checks the script)")
    args = p.parse_args(argv)
    root = args.data or D.data_root() / "asl"
    if args.smoke:
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="bench-hands-"))
        args.runs, args.out, args.bench = tmp / "runs", tmp / "out", tmp / "hands.json"
        args.speed_photos = min(args.speed_photos, 10)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.ship_only:
        comparison = json.loads((args.out / "comparison.json").read_text())
        mlp_row = next(r for r in comparison["rows"] if r["key"] == "landmark_mlp")
        ship(args, comparison, mlp_row["classifier_ms_per_hand"])
        return 0
    t_start, load_before = time.time(), _load()

    split = G.asl_split(root, VAL_FRACTION, SEED)
    paths, labels, classes = split["paths"], split["labels"], split["classes"]
    print(f"{len(paths)} photos; validation {len(split['val_idx'])}", flush=True)

    lm = H.extract_landmarks(paths, progress=True)
    found = lm["found"].astype(bool)
    extraction = {"photos": len(paths), "hands_found": int(found.sum()), "found_rate": float(found.mean()),
                  "seconds_total": float(lm["seconds"].sum()), "ms_per_photo_median": 1000 * float(np.median(lm["seconds"])),
                  "handedness": {h: int((lm["handedness"] == h).sum()) for h in ("left", "right")},
                  "truncated": int(lm["truncated"].sum()), "several_hands": int((lm["n_hands"] > 1).sum()),
                  "no_hand_per_class": {c: int((~found & (labels == k)).sum()) for k, c in enumerate(classes)},
                  "detector": H.DEFAULT_DETECTOR}
    print("landmarks:", json.dumps(extraction), flush=True)

    mlp, mlp_preds = landmark_runs(root, args.runs, lm, split, args.smoke)
    print(f"landmark MLP: val {mlp['val']['accuracy']:.4f} ({mlp['train_seconds']:.0f} s)", flush=True)
    hgb, hgb_probs, _ = trees(lm, split)
    print(f"trees: val {hgb['val']['accuracy']:.4f} ({hgb['train_seconds']:.0f} s)", flush=True)
    cnn_res, cnn_preds = cnn(root, args.runs, split, lm, args.smoke)
    print(f"CNN: val {cnn_res['val']['accuracy']:.4f}, on hand crops {cnn_res['val_on_hand_crops']['accuracy']:.4f}",
          flush=True)
    # the harder split: whole video sequences held out (the highest file numbers of each letter)
    block = G.asl_block_split(root, VAL_FRACTION)
    blk_mlp = run_recipe(get_recipe("landmark_mlp-asl", epochs=3 if args.smoke else None),
                         args.runs / "landmark_mlp-asl-block", root, landmarks=G.landmark_source(precomputed=lm),
                         resume=False, progress=False, split=block)
    blk_trees, _, _ = trees(lm, block)
    blk_cnn, _ = cnn_on_split(block, args.runs, "emonet-asl-block", args.smoke)
    block_rows = [
        {"name": "landmarks + MLP", "key": "landmark_mlp", "val": blk_mlp["val"], "train_seconds": blk_mlp["train_seconds"]},
        {"name": "landmarks + gradient-boosted trees", "key": "landmark_trees", "val": blk_trees["val"],
         "train_seconds": blk_trees["train_seconds"]},
        {"name": "image CNN (EmoNet, 64x64 gray)", "key": "emonet", "val": blk_cnn["val"],
         "train_seconds": blk_cnn["train_seconds"]},
    ]
    print("block split:", [(r["key"], round(r["val"]["accuracy"], 4)) for r in block_rows], flush=True)
    thesis = thesis_smoke(split, args.runs)
    print(f"resnetv2_50 smoke: {thesis['wall_seconds']:.0f} s", flush=True)

    run_model = args.runs / "landmark_mlp-asl" / "model.pt"
    clf = G.GestureClassifier(run_model)
    one = lm["landmarks"][split["val_idx"][found[split["val_idx"]]][:1]]
    mlp_ms, mlp_cpu = _median_ms(lambda: clf.predict_landmarks(one, ["right"]), 200, cpu=True)
    speeds = {f"model_complexity_{mc}": speed(split, clf, args.speed_photos, mc) for mc in (1, 0)}
    # accuracy with the lite landmark network (the shipped MLP was trained on the full network's landmarks)
    va = split["val_idx"]
    lite = H.extract_landmarks([paths[i] for i in va], progress=False, model_complexity=0)
    lf = lite["found"].astype(bool)
    lite_probs = np.full((len(va), 4), 0.25)
    if lf.any():
        lite_probs[lf] = clf.predict_landmarks(lite["landmarks"][lf], lite["handedness"][lf])
    lite_val = G.gesture_metrics(labels[va], lite_probs, lf, classes)
    print("speed:", json.dumps(speeds), flush=True)

    s1 = speeds["model_complexity_1"]
    rows = [
        {"name": "landmarks + MLP", "key": "landmark_mlp", "recipe": "landmark_mlp-asl", "input": "21 MediaPipe landmarks",
         "parameters": mlp["parameters"], "size_bytes": run_model.stat().st_size, "val": mlp["val"],
         "train_seconds": mlp["train_seconds"], "landmark_seconds": extraction["seconds_total"],
         "classifier_ms_per_hand": mlp_ms, "end_to_end_ms_per_hand": 1000 / s1["hands_per_second"],
         "hands_per_second": s1["hands_per_second"], "hands_per_cpu_second": s1["hands_per_cpu_second"],
         "needs": 'mediapipe (pip install "emolib[hands]")', "ships": True},
        {"name": "landmarks + gradient-boosted trees", "key": "landmark_trees", "recipe": "HistGradientBoostingClassifier()",
         "input": "21 MediaPipe landmarks", "parameters": None, "size_bytes": None, "val": hgb["val"],
         "train_seconds": hgb["train_seconds"], "landmark_seconds": extraction["seconds_total"],
         "classifier_ms_per_hand": hgb["classifier_ms_per_hand"],
         "end_to_end_ms_per_hand": s1["detect_ms_per_photo"] + hgb["classifier_ms_per_hand"],
         "hands_per_second": 1000 / (s1["detect_ms_per_photo"] + hgb["classifier_ms_per_hand"]),
         "hands_per_cpu_second": 1000 / (s1["cpu_ms_per_photo"] + hgb["classifier_ms_per_hand"]),
         "needs": "mediapipe, scikit-learn", "ships": False},
        {"name": "image CNN (EmoNet, 64x64 gray)", "key": "emonet", "recipe": "emonet-asl", "input": "whole photo",
         "parameters": cnn_res["result"]["parameters"], "size_bytes": cnn_res["size_bytes"], "val": cnn_res["val"],
         "train_seconds": cnn_res["result"]["train_seconds"], "landmark_seconds": None,
         "classifier_ms_per_hand": cnn_res["classifier_ms_per_hand"], "end_to_end_ms_per_hand": cnn_res["classifier_ms_per_hand"],
         "hands_per_second": 1000 / cnn_res["classifier_ms_per_hand"],
         "hands_per_cpu_second": 1000 / cnn_res["classifier_cpu_ms_per_hand"], "needs": "nothing more", "ships": False},
        {"name": "image CNN on MediaPipe hand crops", "key": "emonet_crops", "recipe": "emonet-asl",
         "input": "crop around the detected hand", "parameters": cnn_res["result"]["parameters"],
         "size_bytes": cnn_res["size_bytes"], "val": cnn_res["val_on_hand_crops"],
         "train_seconds": cnn_res["result"]["train_seconds"], "landmark_seconds": None,
         "classifier_ms_per_hand": cnn_res["classifier_ms_per_hand"],
         "end_to_end_ms_per_hand": s1["detect_ms_per_photo"] + cnn_res["classifier_ms_per_hand"],
         "hands_per_second": 1000 / (s1["detect_ms_per_photo"] + cnn_res["classifier_ms_per_hand"]),
         "hands_per_cpu_second": 1000 / (s1["cpu_ms_per_photo"] + cnn_res["classifier_cpu_ms_per_hand"]),
         "needs": "mediapipe to find the hand", "ships": False},
    ]
    comparison = {
        "what": "hand-gesture models on one validation split of the ASL photos (stratified 20 % of train/, seed 0); "
                "photos where MediaPipe finds no hand count as errors for the landmark models",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "smoke": args.smoke, "machine": _machine(),
        "loadavg_before": load_before, "loadavg_after": _load(),
        "split": {"val_fraction": VAL_FRACTION, "seed": SEED, "train": len(split["train_idx"]),
                  "val": len(split["val_idx"]), "classes": list(classes)},
        "landmarks": extraction, "rows": rows, "mlp_result": mlp, "cnn": cnn_res, "thesis_smoke": thesis,
        "thesis_reference": {"model": "resnetv2_50 (ImageNet weights, fine-tuned)", "val_acc": THESIS_VAL_ACC,
                             "data": "Kaggle ASL Alphabet (grassknotted/asl-alphabet), 3,000 photos per letter",
                             "cite": "thesis2024"},
        "speed": speeds, "lite_landmarks_val": lite_val,
        "block_split": {"what": "validation = the last 20 % of each letter's photos in file-number order (whole video "
                                "sequences unseen in training; emolib.gestures.asl_block_split)",
                        "train": len(block["train_idx"]), "val": len(block["val_idx"]), "rows": block_rows},
    }
    (args.out / "comparison.json").write_text(json.dumps(comparison, indent=1))
    (args.out / "val_predictions.json").write_text(json.dumps({
        "classes": list(classes), "root": mlp_preds["root"], "paths": mlp_preds["paths"], "y_true": mlp_preds["y_true"],
        "handedness": mlp_preds["handedness"],
        "approaches": {"landmark_mlp": {"y_pred": mlp_preds["y_pred"], "probs": mlp_preds["probs"]},
                       "landmark_trees": _preds(hgb_probs, found[va]),
                       "emonet": cnn_preds["whole_photo"], "emonet_crops": cnn_preds["hand_crops"]},
    }))
    # landmarks of a few validation photos, to draw them where MediaPipe is not installed
    rng = np.random.default_rng(SEED)
    picks = [int(i) for k in range(len(classes)) for i in rng.choice(va[found[va] & (labels[va] == k)], 3, replace=False)]
    samples = []
    for i in picks:
        w, h = lm["size"][i]
        box, truncated = H.hand_box(lm["landmarks"][i], int(w), int(h), H.DEFAULT_DETECTOR["margin"])
        samples.append({"path": os.path.relpath(paths[i], mlp_preds["root"]), "label": classes[labels[i]],
                        "handedness": str(lm["handedness"][i]), "score": float(lm["score"][i]), "box": box,
                        "truncated": truncated, "landmarks": np.round(lm["landmarks"][i], 2).tolist()})
    (args.out / "samples.json").write_text(json.dumps({"root": mlp_preds["root"], "samples": samples}))

    # hands and gestures in two photos of the pipeline chapter, to draw them where MediaPipe is not installed
    demo = {"photos": {}}
    photos = D.data_root() / "photos"
    for name in ("ivan.jpg", "obama.jpg"):
        if (photos / name).is_file():
            demo["photos"][name] = [h.to_dict() for h in clf(str(photos / name))]
    (args.out / "demo.json").write_text(json.dumps(demo))

    bench = {
        "benchmark": "hand gestures: validation accuracy, training time, inference speed on this CPU (MediaPipe included)",
        "when": comparison["when"], "machine": comparison["machine"], "loadavg_before": load_before,
        "loadavg_after": _load(), "smoke": args.smoke,
        "goal_hands_per_second": 30,
        "approaches": {r["key"]: {k: r[k] for k in ("name", "parameters", "size_bytes", "train_seconds",
                                                     "classifier_ms_per_hand", "end_to_end_ms_per_hand",
                                                     "hands_per_second", "hands_per_cpu_second")}
                       | {"val_accuracy": r["val"]["accuracy"], "val_macro_f1": r["val"]["macro_f1"],
                          "no_hand": r["val"]["no_hand"]} for r in rows},
        "thesis_resnetv2_50_smoke": {k: thesis[k] for k in ("what", "train_seconds", "ms_per_image_batch1",
                                                            "parameters", "thesis_val_acc")},
        "landmark_extraction": extraction, "speed": speeds,
        "lite_landmarks": {"val_accuracy": lite_val["accuracy"], "no_hand": lite_val["no_hand"]},
        "block_split_val_accuracy": {r["key"]: r["val"]["accuracy"] for r in block_rows},
        "total_seconds": time.time() - t_start,
    }
    args.bench.parent.mkdir(parents=True, exist_ok=True)
    args.bench.write_text(json.dumps(bench, indent=1))
    print(f"wrote {args.out}/comparison.json, val_predictions.json, samples.json and {args.bench}", flush=True)

    if args.ship:
        ship(args, comparison, mlp_ms)
    return 0


if __name__ == "__main__":
    sys.exit(main())
