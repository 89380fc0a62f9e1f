"""The files of the book's live page ("Try it", next to chapter 8), staged for a static web server.

``python -m emolib.livepage stage DIR`` (``make book`` runs it for ``_static/live``) puts
into ``DIR``:

* ``ort/``: ONNX Runtime Web's single-threaded-capable WebAssembly build from the npm
  package in ``web/`` (``npm ci`` there first; MIT licence): ``ort.wasm.min.js`` and
  ``ort-wasm-simd-threaded.{mjs,wasm}``, and its ES module build ``ort.wasm.bundle.min.mjs``
  for the hand worker (``hands_worker.js``). GitHub Pages cannot send the COOP/COEP headers
  that WebAssembly threads need, so the page runs one thread with SIMD (and the hands in a
  Web Worker, a second one);
* ``models/``: (:func:`emolib.webengine.export_models`, which the webcam widget's
  browser engine uses too) the face detector (MediaPipe's BlazeFace, Apache-2.0, converted by
  ``tools/convert_mediapipe_face.py``), MTCNN's three networks (facenet-pytorch's weights, MIT), which
  run around BlazeFace's boxes to put them where the Python pipeline's MTCNN does, and the default
  emotion model (the Python pipeline's, ``emolib.pipeline.DEFAULT_MODEL``), exported by
  :mod:`emolib.onnx_export` from the shipped checkpoint (``models/manifest.json`` lists
  them with their classes and the box calibration of ``tools/calibrate_face_boxes.py``);
* ``models/`` also holds the hands: MediaPipe's lite palm detector and lite hand-landmark
  network (Apache-2.0, the ONNX files of ``emolib/assets/hands``, weights stored as float16,
  which loses nothing: :func:`emolib.onnx_export.export_hands`) and the gesture MLP
  ``gestures-asl`` (:func:`emolib.onnx_export.export_gestures`); the manifest's ``hands``
  entry names them, with the gesture classes and the detector settings ``hands.js`` uses;
* our JavaScript and CSS from ``emolib/web/`` (``live.js``, ``engine.js``, ``draw.js``, ``face.js``,
  ``mtcnn.js``, ``live.css``, ``hands.js``, ``hands_worker.js``).

Nothing is fetched from another site when the page runs: it loads these files only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .onnx_export import HAND_FILES, export_gestures, export_hands
from .pipeline import DEFAULT_MODEL
from .webengine import REFINER_FILES, export_models, ort_dist

__all__ = ["ORT_FILES", "WEB_DIR", "stage", "page_files", "ort_dist", "DEFAULT_LIVE_MODEL", "REFINER_FILES", "DEFAULT_LIVE_GESTURES",
           "stage_hands", "LIVE_HAND_SETTINGS"]

WEB_DIR = Path(__file__).parent / "web"
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
             "ort.wasm.bundle.min.mjs")
OUR_FILES = ("live.js", "engine.js", "draw.js", "face.js", "mtcnn.js", "live.css")
DEFAULT_LIVE_MODEL = DEFAULT_MODEL  # the page runs the Python pipeline's default emotion model
HANDS_JS = ("hands.js", "hands_worker.js")
DEFAULT_LIVE_GESTURES = "gestures-asl"
#: The page's hand detector: HandDetector's defaults with the lite networks (model_complexity 0).
LIVE_HAND_SETTINGS = {"max_num_hands": 2, "model_complexity": 0, "min_detection_confidence": 0.5,
                      "min_presence": 0.5, "margin": 0.1, "pad_retry": 0.25, "hand_distance": 4.0}


def _fresh(src: Path, dst: Path) -> None:
    if not dst.is_file() or dst.stat().st_size != src.stat().st_size or dst.stat().st_mtime < src.stat().st_mtime:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def stage(out: str | Path, model: str = DEFAULT_LIVE_MODEL, root: Path | None = None) -> dict:
    """Copy the runtime, the models and our scripts into ``out``; returns the manifest written there.

    ``out/models`` ends up holding the models the manifest names and nothing else: the ONNX
    files (and their ``.json`` sidecars) of another model staged there before, e.g. the emotion
    model of an earlier build, are removed, so the published page carries no file it never loads
    and ``total_bytes`` is what it loads."""
    out = Path(out)
    dist = ort_dist(root, ORT_FILES)
    for name in ORT_FILES:
        _fresh(dist / name, out / "ort" / name)
    for name in OUR_FILES + HANDS_JS:
        _fresh(WEB_DIR / name, out / name)
    models = out / "models"
    manifest = export_models(models, model, write_manifest=False)
    manifest["hands"] = stage_hands(models)
    loads = page_files(manifest)
    for stale in sorted(models.glob("*.onnx")):
        if stale.name not in loads:
            stale.unlink()
            stale.with_suffix(".json").unlink(missing_ok=True)
    manifest["bytes"] = {name: (models / name).stat().st_size for name in sorted(loads)}
    manifest["total_bytes"] = sum(manifest["bytes"].values())
    (models / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def page_files(manifest: dict) -> set[str]:
    """The names of the ONNX files the page loads, as ``manifest`` names them."""
    hands = manifest.get("hands") or {}
    names = {manifest["detector"], *manifest["refiners"], manifest["emotion"]["file"]}
    if hands:
        names |= {hands["palm"], hands["landmark"], hands["gestures"]["file"]}
    return names


def stage_hands(models: Path, gestures: str = DEFAULT_LIVE_GESTURES) -> dict:
    """The hand networks and the gesture model in ``models`` (made when missing); the manifest's ``hands``."""
    if not all((models / f).is_file() for f in HAND_FILES):
        export_hands(models)
    onnx = models / f"{Path(gestures).stem}.onnx"
    if not onnx.is_file():
        export_gestures(gestures, models)
    return {"palm": HAND_FILES[0], "landmark": HAND_FILES[1], "settings": dict(LIVE_HAND_SETTINGS),
            "gestures": json.loads(onnx.with_suffix(".json").read_text())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m emolib.livepage", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("stage", help="copy the live page's files into a folder")
    s.add_argument("out", type=Path)
    s.add_argument("--model", default=DEFAULT_LIVE_MODEL,
                   help="the emotion model (shipped name or checkpoint; default: the pipeline's, %(default)s)")
    args = p.parse_args(argv)
    try:
        manifest = stage(args.out, args.model)
    except (FileNotFoundError, ValueError) as err:
        print(f"emolib.livepage: {err}", file=sys.stderr)
        return 2
    print(json.dumps(manifest["bytes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
