"""Plant realistic one-line bugs in emolib, one at a time, and see whether the fast tests catch them.

    python benchmarks/planted_bugs.py [--only ID ...] [--out results/mutation/planted_bugs.json]

An independent check beside the mutation tool (``make mutate``): each bug below is a
single-line change a person could plausibly make (the 18 kinds of issue 17 and more).
The repository's ``emolib/``, ``tests/`` and ``pyproject.toml`` are copied to a
temporary folder, the line is patched there (the working tree is never touched),
and the listed test files run with ``-m "not slow"``. A bug is *caught* when pytest
fails; *missed* when every test passes. A patch whose line is no longer in the
source (the code moved on) is reported as ``stale``, and one whose test files are
missing (or for which pytest itself fails) as ``no-tests``/``error``: none of these
are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

DATA_TESTS = ["tests/test_data.py"]
TRANSFORM_TESTS = ["tests/test_transforms.py"]
METRIC_TESTS = ["tests/test_metrics.py", "tests/test_cli.py"]
TRAIN_TESTS = ["tests/test_train.py"]
PIPE_TESTS = ["tests/test_pipeline.py", "tests/test_geometry.py"]
GEOMETRY_TESTS = ["tests/test_geometry.py", "tests/test_pipeline.py"]
LABEL_TESTS = ["tests/test_labels.py", "tests/test_data.py"]
# faces.py (MTCNN, CLAHE, square crop), video.py and fileio.py's decoder are exercised through the pipeline
FACE_TESTS = PIPE_TESTS
VIDEO_TESTS = PIPE_TESTS
FILEIO_TESTS = PIPE_TESTS

# id, file, description, old text, new text, tests (and the occurrence to patch when the text repeats)
BUGS: list[dict] = [
    dict(id="csv-test-is-private", file="emolib/data.py",
         what="FER2013 CSV: split='test' reads the PrivateTest rows",
         old='"test": "PublicTest", "private_test": "PrivateTest"}',
         new='"test": "PrivateTest", "private_test": "PublicTest"}', tests=DATA_TESTS),
    dict(id="csv-transposed", file="emolib/data.py",
         what="FER2013 CSV: every image transposed",
         old="images = torch.from_numpy(np.stack(pixels)).view(-1, 1, 48, 48)",
         new="images = torch.from_numpy(np.stack(pixels)).view(-1, 1, 48, 48).transpose(-1, -2).contiguous()",
         tests=DATA_TESTS),
    dict(id="decode-mirrored", file="emolib/data.py",
         what="image files decoded mirrored left-right",
         old="arr = np.asarray(im, dtype=np.uint8)", new="arr = np.asarray(im, dtype=np.uint8)[:, ::-1]",
         tests=DATA_TESTS),
    dict(id="rafdb-fear-disgust", file="emolib/labels.py",
         what="RAF-DB label 3 read as fear (it is disgust)",
         old='    3: "disgust",', new='    3: "fear",', tests=LABEL_TESTS),
    dict(id="asl-f-l-swapped", file="emolib/labels.py",
         what="ASL letters F and L swapped (F super, L loser in the thesis)",
         old='{"A": "punch", "F": "super", "L": "loser", "V": "victory"}',
         new='{"A": "punch", "F": "loser", "L": "super", "V": "victory"}', tests=LABEL_TESTS),
    dict(id="gray-red-channel", file="emolib/transforms.py",
         what="RGB to gray takes the red channel",
         old="v2.Grayscale(1) if channels == 1 else v2.RGB(),",
         new="v2.Lambda(lambda im: im[..., :1, :, :]) if channels == 1 else v2.RGB(),", tests=TRANSFORM_TESTS),
    dict(id="hand-shear-degrees", file="emolib/transforms.py",
         what="hand shear given in radians to a parameter in degrees (57x too small)",
         old="shear_deg = math.degrees(shear)", new="shear_deg = shear", tests=TRANSFORM_TESTS),
    dict(id="hand-rotation-radians", file="emolib/transforms.py",
         what="hand rotation converted to radians (30 deg becomes 0.52 deg)",
         old="            degrees=rotation,", new="            degrees=math.radians(rotation),",
         tests=TRANSFORM_TESTS),
    dict(id="face-brightness-gone", file="emolib/transforms.py",
         what="face brightness jitter never added",
         old="    if brightness:", new="    if brightness is None:", tests=TRANSFORM_TESTS),
    dict(id="face-flip-vertical", file="emolib/transforms.py",
         what="face flip is vertical",
         old="steps.append(v2.RandomHorizontalFlip(flip))", new="steps.append(v2.RandomVerticalFlip(flip))",
         occurrence=0, tests=TRANSFORM_TESTS),
    dict(id="face-rotation-positive", file="emolib/transforms.py",
         what="face rotation only counter-clockwise (0..10 instead of -10..10)",
         old="steps.append(v2.RandomAffine(degrees=rotation,", new="steps.append(v2.RandomAffine(degrees=(0, rotation),",
         tests=TRANSFORM_TESTS),
    dict(id="normalize-swapped", file="emolib/transforms.py",
         what="Normalize given std and mean in the wrong order",
         old="v2.Normalize(list(mean), list(std))", new="v2.Normalize(list(std), list(mean))",
         tests=TRANSFORM_TESTS),
    dict(id="confusion-transposed", file="emolib/metrics.py",
         what="evaluate_probs' confusion matrix transposed",
         old='"confusion": confusion(y_true, y_pred, len(classes)).tolist(),',
         new='"confusion": confusion(y_pred, y_true, len(classes)).tolist(),', tests=METRIC_TESTS),
    dict(id="macro-f1-weighted", file="emolib/metrics.py",
         what="macro F1 reports the weighted average",
         old='"macro_f1": float(report["macro avg"]["f1-score"]),',
         new='"macro_f1": float(report["weighted avg"]["f1-score"]),', tests=METRIC_TESTS),
    dict(id="auc-one-column", file="emolib/metrics.py",
         what="one-vs-rest AUC scores every class with column 0",
         old="skm.roc_auc_score(onehot[:, scored], probs[:, scored], average=None)",
         new="skm.roc_auc_score(onehot[:, scored], np.repeat(probs[:, :1], scored.sum(), axis=1), average=None)",
         tests=METRIC_TESTS),
    dict(id="resume-loses-best-acc", file="emolib/train.py",
         what="resume forgets the best validation accuracy",
         old='best_acc, stale = ckpt["best_acc"], ckpt["stale"]', new='stale = ckpt["stale"]', tests=TRAIN_TESTS),
    dict(id="resume-loses-best-weights", file="emolib/train.py",
         what="resume forgets the best epoch's weights",
         old='best_state = ckpt.get("best_state")', new="best_state = None", tests=TRAIN_TESTS),
    dict(id="resume-loses-stale", file="emolib/train.py",
         what="resume resets the early-stopping counter",
         old='best_acc, stale = ckpt["best_acc"], ckpt["stale"]', new='best_acc, stale = ckpt["best_acc"], 0',
         tests=TRAIN_TESTS),
    dict(id="final-weights-not-best", file="emolib/train.py",
         what="fit ends with the last epoch's weights instead of the best",
         old="    if best_state is not None:\n        model.load_state_dict(best_state)",
         new="    if best_state is None:\n        model.load_state_dict(best_state)", tests=TRAIN_TESTS),
    dict(id="preprocess-no-normalize", file="emolib/pipeline.py",
         what="the pipeline's preprocessing loses its mean/std normalisation",
         old="batch = (batch / 255.0 - mean) / std", new="batch = batch / 255.0", tests=PIPE_TESTS),
    dict(id="preprocess-gray-red", file="emolib/pipeline.py",
         what="the pipeline's crops go to gray through the red channel",
         old='crop = crop.convert("L")  # ITU-R 601 luma', new='crop = crop.getchannel("R")  # ITU-R 601 luma',
         tests=PIPE_TESTS),
    dict(id="crop-width-only", file="emolib/faces.py",
         what="the square crop's side from the box width only",
         old="side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + margin)", new="side = max(x2 - x1, 1.0) * (1.0 + margin)",
         tests=FACE_TESTS),
    dict(id="assign-face-widths", file="emolib/pipeline.py",
         what="assign_hands measures distance in face widths",
         old="/ max(y2 - y1, 1.0)", new="/ max(x2 - x1, 1.0)", tests=GEOMETRY_TESTS),
    dict(id="assign-box-centre", file="emolib/pipeline.py",
         what="assign_hands measures from the hand box centre, not the wrist",
         old='lm = getattr(hand, "landmarks", None)', new="lm = None", tests=GEOMETRY_TESTS),
    dict(id="person-region-widths", file="emolib/pipeline.py",
         what="person region reaches 4 face widths down instead of 4 heights",
         old="y2 + 4 * fh)]", new="y2 + 4 * fw)]", tests=GEOMETRY_TESTS),
    dict(id="detect-scale-height", file="emolib/faces.py",
         what="boxes of a downscaled image mapped back with the height's scale",
         old="scale = small[0] / w", new="scale = small[1] / w", tests=FACE_TESTS),
]


# A second set, written after the tests above and before looking for a test that would catch
# them ("targeted": False in the results): an honest sample of what the suite was not built for.
UNTARGETED: list[dict] = [
    dict(id="tta-flip-vertical", file="emolib/train.py", what="test-time augmentation flips upside down",
         old="views.append(torch.flip(x, dims=[-1]))", new="views.append(torch.flip(x, dims=[-2]))",
         tests=TRAIN_TESTS + ["tests/test_cli.py"]),
    dict(id="sampler-same-order", file="emolib/train.py", what="every epoch shuffles in the same order",
         # the sampler is now a DistributedSampler subclass: the same bug is the classic forgotten set_epoch
         old="        sampler.set_epoch(epoch)\n", new="", tests=TRAIN_TESTS),
    dict(id="plateau-mode-min", file="emolib/train.py", what="ReduceLROnPlateau watches accuracy as a loss",
         old='opt, mode="max", factor=cfg.plateau_factor', new='opt, mode="min", factor=cfg.plateau_factor',
         tests=TRAIN_TESTS),
    dict(id="best-on-ties", file="emolib/train.py", what="a later epoch with equal accuracy replaces the best",
         old="if val_acc > best_acc:", new="if val_acc >= best_acc:", tests=TRAIN_TESTS),
    dict(id="label-smoothing-ignored", file="emolib/train.py", what="label smoothing never applied",
         old="loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)", new="loss_fn = nn.CrossEntropyLoss()",
         tests=TRAIN_TESTS),
    dict(id="labels-shift-after-skip", file="emolib/data.py", what="labels shift after an unreadable file",
         old="targets = torch.as_tensor([labels[i] for i in kept], dtype=torch.long)",
         new="targets = torch.as_tensor(labels[: len(kept)], dtype=torch.long)", tests=DATA_TESTS),
    dict(id="suffix-case", file="emolib/data.py", what="image files with upper-case suffixes (.JPG) ignored",
         old="if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())", new="if p.suffix in IMAGE_EXTENSIONS and p.is_file())",
         tests=DATA_TESTS),
    dict(id="padcrop-constant", file="emolib/transforms.py", what="crop padding with black instead of reflection",
         old='padding_mode="reflect"', new='padding_mode="constant"', tests=TRANSFORM_TESTS),
    dict(id="rgba-drops-red", file="emolib/transforms.py", what="an RGBA image loses its red channel, not alpha",
         old="return image[..., :3, :, :] if", new="return image[..., 1:, :, :] if",
         tests=TRANSFORM_TESTS),
    dict(id="confusion-normalize-columns", file="emolib/metrics.py", what="normalised confusion divides by columns",
         old='normalize="true" if normalize else None', new='normalize="pred" if normalize else None',
         tests=METRIC_TESTS),
    dict(id="clahe-drops-excess", file="emolib/faces.py", what="CLAHE drops the clipped excess",
         old="hist = np.minimum(hist, limit) + excess / 256.0", new="hist = np.minimum(hist, limit)", tests=FACE_TESTS),
    dict(id="bgr-not-swapped", file="emolib/fileio.py", what="bgr=True leaves the channels as they are",
         old="arr = arr[:, :, [2, 1, 0, 3][: arr.shape[2]]]", new="arr = arr[:, :, [0, 1, 2, 3][: arr.shape[2]]]",
         tests=FILEIO_TESTS),
    dict(id="person-region-left-heights", file="emolib/pipeline.py",
         what="person region reaches 2.5 face heights to the left",
         old="max(0.0, x1 - 2.5 * fw)", new="max(0.0, x1 - 2.5 * fh)", tests=GEOMETRY_TESTS),
    dict(id="csv-empty-emotion", file="emolib/video.py", what="the video CSV reads empty emotions as ''",
         old="parsed[k] = v or None", new="parsed[k] = v", tests=VIDEO_TESTS),
]
for _bug in BUGS:
    _bug["targeted"] = True
for _bug in UNTARGETED:
    _bug["targeted"] = False
BUGS = BUGS + UNTARGETED


def _patch(root: Path, bug: dict) -> bool:
    path = root / bug["file"]
    text = path.read_text()
    count = text.count(bug["old"])
    occurrence = bug.get("occurrence")
    if count == 0 or (count > 1 and occurrence is None):
        return False
    start = -1
    for _ in range((occurrence or 0) + 1):
        start = text.index(bug["old"], start + 1)
    path.write_text(text[:start] + bug["new"] + text[start + len(bug["old"]):])
    return True


def run_bug(bug: dict, timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="planted-") as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "emolib", root / "emolib", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(REPO / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
        tests = [t for t in bug["tests"] if (root / t).exists()]
        if not tests:
            return {"status": "no-tests", "tests": bug["tests"]}
        if not _patch(root, bug):
            return {"status": "stale", "tests": tests}
        env = {**os.environ, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider", *tests],
                cwd=root, env=env, capture_output=True, text=True, timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"status": "caught", "why": f"timeout after {timeout} s", "tests": tests}
        seconds = time.perf_counter() - t0
        lines = proc.stdout.strip().splitlines()
        failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
        # pytest: 0 all passed, 1 tests failed, 2 interrupted (e.g. an import error the bug caused),
        # 3 internal error, 4 usage error, 5 no tests collected
        status = {0: "missed", 1: "caught", 2: "caught"}.get(proc.returncode, "error")
        return {
            "status": status,
            "pytest_exit": proc.returncode,
            "failed": failed[:3],
            "summary": lines[-1] if lines else "",
            "tests": tests,
            "seconds": round(seconds, 1),
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", help="bug ids to run (default: all)")
    p.add_argument("--out", default=str(REPO / "results" / "mutation" / "planted_bugs.json"))
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--list", action="store_true", help="list the bugs and exit")
    args = p.parse_args()
    bugs = [b for b in BUGS if not args.only or b["id"] in args.only]
    if args.list:
        for b in bugs:
            print(f"{b['id']:28s} {b['file']:22s} {b['what']}")
        return
    results = []
    for bug in bugs:
        r = {"id": bug["id"], "file": bug["file"], "what": bug["what"], "targeted": bug["targeted"],
             **run_bug(bug, args.timeout)}
        results.append(r)
        print(f"{r['status']:7s} {bug['id']:28s} {r.get('summary', '')}", flush=True)
    counted = [r for r in results if r["status"] in ("caught", "missed")]
    caught = sum(r["status"] == "caught" for r in counted)
    untargeted = [r for r in counted if not r["targeted"]]
    report = {
        "caught": caught,
        "planted": len(counted),
        "score": caught / len(counted) if counted else None,
        "untargeted": {"caught": sum(r["status"] == "caught" for r in untargeted), "planted": len(untargeted)},
        "missed": [r["id"] for r in counted if r["status"] == "missed"],
        "not_counted": {r["id"]: r["status"] for r in results if r["status"] not in ("caught", "missed")},
        "loadavg_after": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None,
        "python": platform.python_version(),
        "bugs": results,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"caught {caught} of {len(counted)} planted bugs; missed: {report['missed']}; written to {out}")


if __name__ == "__main__":
    main()
