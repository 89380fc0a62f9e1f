"""The files of the in-browser engine, for the book's live page and the webcam widget's ``engine="browser"``.

The engine (``emolib/web/engine.js``, with ``face.js`` and ``mtcnn.js``) runs in ONNX Runtime
Web (the ``onnxruntime-web`` npm package, MIT licence) on these ONNX files:

* BlazeFace, MediaPipe's short-range face detector (Apache-2.0), converted once by
  ``tools/convert_mediapipe_face.py`` and shipped in ``emolib/web/models/``;
* MTCNN's three networks (facenet-pytorch's weights, MIT) and the emotion model, exported by
  :mod:`emolib.onnx_export` (the emotion model again whenever its checkpoint is newer);
* ``models/manifest.json``: which file is which, the emotion model's classes and input size,
  the calibration from BlazeFace's boxes to MTCNN's (``tools/calibrate_face_boxes.py``).

:func:`export_models` writes them into a folder (the live page's ``_static/live/models``:
:func:`emolib.livepage.stage`); :func:`engine_files` gathers everything the widget sends to the
notebook's page once, over the widget's comm: the models, ONNX Runtime Web's single-file ES module
(``ort.wasm.bundle.min.mjs``) and its WebAssembly binary, and our three modules. The npm files are
not in emolib's wheel (the WebAssembly file alone is 14 MB): :func:`ort_dist` finds them in
``$EMOLIB_ORT_DIR``, or in ``web/node_modules`` of the checkout (``npm ci`` in ``web/``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import __version__
from ..fileio import cache_dir, files_key
from ..models import CHECKPOINT_DIR
from ..onnx_export import BLAZEFACE_FILE, WEB_MODELS, export_blazeface, export_emotion, export_mtcnn
from ..utils import repo_root

__all__ = ["ORT_ENV", "ORT_MODULE", "ORT_WASM", "ENGINE_MODULES", "REFINER_FILES", "ort_dist",
           "export_models", "engine_files"]

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
ORT_ENV = "EMOLIB_ORT_DIR"
ORT_MODULE = "ort.wasm.bundle.min.mjs"  # ONNX Runtime Web (WebAssembly only) as one ES module
ORT_WASM = "ort-wasm-simd-threaded.wasm"
ENGINE_MODULES = ("face.js", "mtcnn.js", "engine.js")  # in import order: each imports only those before it
REFINER_FILES = ("mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx")


def ort_dist(root: str | os.PathLike | None = None, files: tuple[str, ...] = (ORT_MODULE, ORT_WASM)) -> Path:
    """The folder of onnxruntime-web's ``dist`` files that holds all of ``files``.

    Looked for in ``$EMOLIB_ORT_DIR`` (that folder, or an npm project folder holding
    ``node_modules/onnxruntime-web``), then in ``web/node_modules/onnxruntime-web/dist`` of
    ``root`` (default: the checkout around the current folder) and of the checkout this emolib
    was imported from. Raises ``FileNotFoundError`` saying how to install it.
    """
    sub = Path("node_modules") / "onnxruntime-web" / "dist"
    places = []
    if os.environ.get(ORT_ENV):
        env = Path(os.environ[ORT_ENV]).expanduser()
        places += [env, env / sub]
    places += [Path(root or repo_root()) / "web" / sub, Path(__file__).resolve().parents[2] / "web" / sub]
    for place in places:
        if all((place / f).is_file() for f in files):
            return place
    raise FileNotFoundError(
        f"onnxruntime-web is not installed ({places[-2] / files[0]} is missing): run `npm ci` in "
        f"{places[-2].parents[2]}, or `npm install onnxruntime-web@1.30.0` in a folder and set "
        f"${ORT_ENV} to it")


def _checkpoint(model: str | os.PathLike) -> Path:
    path = Path(model)
    if path.is_file():
        return path
    shipped = CHECKPOINT_DIR / f"{model}.pt"
    if shipped.is_file():
        return shipped
    raise ValueError(f"the browser engine runs a shipped emotion model or a checkpoint file; {model!r} is "
                     "neither (engine='kernel' runs any model in Python)")


def export_models(out: str | os.PathLike, model: str | os.PathLike) -> dict:
    """Write the engine's ONNX files and ``manifest.json`` into ``out``; returns the manifest.

    BlazeFace is copied, MTCNN exported once, the emotion model exported when its ONNX file is
    missing or older than its checkpoint (``model``: a shipped name or a checkpoint path).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = _checkpoint(model)
    export_blazeface(out)
    if not all((out / f).is_file() for f in REFINER_FILES):
        export_mtcnn(out)
    onnx = out / f"{Path(model).stem}.onnx"
    if not onnx.is_file() or ckpt.stat().st_mtime > onnx.stat().st_mtime:
        export_emotion(model, out)
    info = json.loads(onnx.with_suffix(".json").read_text())
    calibration = json.loads((WEB_MODELS / "blazeface_to_mtcnn.json").read_text())
    sizes = {p.name: p.stat().st_size for p in sorted(out.glob("*.onnx"))}
    manifest = {"detector": BLAZEFACE_FILE, "refiners": list(REFINER_FILES), "emotion": info,
                "calibration": calibration, "bytes": sizes}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def engine_files(model: str | os.PathLike, ort_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Everything the widget's browser engine needs, for ``model`` (a shipped name or a checkpoint):

    ``manifest`` (as :func:`export_models`), ``modules`` (``[name, source]`` of ``face.js``,
    ``mtcnn.js``, ``engine.js`` in import order, then ``ort.wasm.bundle.min.mjs``) and ``binaries``
    (``{name: bytes}``: the WebAssembly binary and the ONNX files). The ONNX files are exported
    into ``$EMOLIB_CACHE/web/<key>`` (one folder per checkpoint file and version), once.
    """
    dist = Path(ort_dir) if ort_dir is not None else ort_dist()
    for name in (ORT_MODULE, ORT_WASM):
        if not (dist / name).is_file():
            raise FileNotFoundError(f"{dist / name} is missing (onnxruntime-web's dist folder)")
    ckpt = _checkpoint(model)
    key = files_key([ckpt.resolve()], settings=f"emolib {__version__}")  # a new emolib exports afresh
    folder = cache_dir() / "web" / f"{Path(model).stem}-{key}"
    manifest = export_models(folder, model)
    models = [manifest["detector"], *manifest["refiners"], manifest["emotion"]["file"]]
    modules = [[name, (WEB_DIR / name).read_text()] for name in ENGINE_MODULES]
    modules.append([ORT_MODULE, (dist / ORT_MODULE).read_text()])
    binaries = {ORT_WASM: (dist / ORT_WASM).read_bytes()}
    binaries.update({name: (folder / name).read_bytes() for name in models})
    return {"manifest": manifest, "modules": modules, "binaries": binaries}
