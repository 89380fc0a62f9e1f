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
``$EMOLIB_ORT_DIR``, in ``web/node_modules`` of the checkout (``npm ci`` in ``web/``) or in emolib's
cache; where none has them (a pip install, Colab), :func:`download_ort` fetches the version pinned in
``web/package-lock.json`` (``emolib/web/onnxruntime-web.json``: version and sha512 ``integrity``) from the
npm registry, checks it and keeps only the ``dist`` files the engine and the live page load.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import __version__
from .fileio import cache_dir, files_key
from .models import CHECKPOINT_DIR
from .onnx_export import BLAZEFACE_FILE, WEB_MODELS, export_blazeface, export_emotion, export_mtcnn
from .utils import repo_root

__all__ = ["ORT_ENV", "ORT_MODULE", "ORT_WASM", "ORT_PIN", "ENGINE_MODULES", "REFINER_FILES", "CHECKOUT_DIST",
           "OrtDownloadError", "ort_pin", "ort_url", "ort_cache", "download_ort", "ort_dist", "export_models",
           "engine_files"]

WEB_DIR = Path(__file__).resolve().parent / "web"
ORT_ENV = "EMOLIB_ORT_DIR"
ORT_MODULE = "ort.wasm.bundle.min.mjs"  # ONNX Runtime Web (WebAssembly only) as one ES module
ORT_WASM = "ort-wasm-simd-threaded.wasm"
ENGINE_MODULES = ("face.js", "mtcnn.js", "engine.js")  # in import order: each imports only those before it
REFINER_FILES = ("mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx")
#: onnxruntime-web's version and sha512 as web/package-lock.json pins them, and the dist files to keep
ORT_PIN = WEB_DIR / "onnxruntime-web.json"
_DIST = Path("node_modules") / "onnxruntime-web" / "dist"
#: onnxruntime-web's dist folder in the checkout this emolib was imported from (``npm ci`` in ``web/``)
CHECKOUT_DIST = Path(__file__).resolve().parents[1] / "web" / _DIST


class OrtDownloadError(RuntimeError):
    """onnxruntime-web could not be downloaded, or the download is not the pinned package."""


def ort_pin() -> dict:
    """``emolib/web/onnxruntime-web.json``: ``name``, ``version``, ``integrity`` (npm's ``sha512-<base64>``),
    ``registry`` and the ``files`` of its ``dist`` folder that emolib uses."""
    return json.loads(ORT_PIN.read_text())


def ort_url(pin: dict | None = None) -> str:
    """The npm registry's tarball of the pinned onnxruntime-web."""
    pin = pin or ort_pin()
    return f"{pin['registry']}/{pin['name']}/-/{pin['name']}-{pin['version']}.tgz"


def ort_cache(pin: dict | None = None) -> Path:
    """Where :func:`download_ort` keeps the pinned version's files:
    ``<cache_dir>/ort/onnxruntime-web-<version>``."""
    pin = pin or ort_pin()
    return cache_dir() / "ort" / f"{pin['name']}-{pin['version']}"


def _fetch(url: str, dest: Path, algorithm: str, progress: bool, what: str) -> str:
    """Download ``url`` into ``dest`` with a progress bar; returns the base64 digest of its bytes."""
    from tqdm.auto import tqdm

    digest = hashlib.new(algorithm)

    def unreachable(err: BaseException) -> OrtDownloadError:
        reason = getattr(err, "reason", None) or err
        return OrtDownloadError(
            f"could not download {what} from {url} ({reason}). Without network, install it with npm "
            f"(`npm install {what.replace(' ', '@')}` in a folder) and set ${ORT_ENV} to that folder")

    try:  # HTTPError is a URLError; a timeout an OSError; a cut transfer an http.client.HTTPException
        resp = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        raise unreachable(err) from err
    received = 0
    with resp, open(dest, "wb") as fh:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=what, disable=not progress) as bar:
            while True:
                try:
                    chunk = resp.read(1 << 16)
                except (http.client.HTTPException, OSError) as err:
                    raise unreachable(err) from err
                if not chunk:
                    break
                digest.update(chunk)
                received += len(chunk)
                try:
                    fh.write(chunk)
                except OSError as err:  # a full disk is not a network problem
                    raise OrtDownloadError(f"could not write {what} to {dest}: {err}") from err
                bar.update(len(chunk))
    if total is not None and received < total:  # http.client returns a cut transfer's bytes without an error
        raise unreachable(ConnectionError(f"the transfer stopped after {received:,} of {total:,} bytes"))
    return base64.b64encode(digest.digest()).decode()


def download_ort(url: str | None = None, integrity: str | None = None, dest: str | os.PathLike | None = None,
                 progress: bool = True) -> Path:
    """Download onnxruntime-web's npm tarball, check it, keep the ``dist`` files emolib uses; returns where.

    ``url`` defaults to the registry's tarball of the version pinned in ``web/package-lock.json``
    (:func:`ort_url`), ``integrity`` to that version's ``sha512-...`` from the lock file, ``dest`` to
    :func:`ort_cache`. A download whose digest differs is refused (:class:`OrtDownloadError`, as is a
    failed download: the message names the URL); everything is written in a temporary folder beside
    ``dest`` that becomes ``dest`` in one rename, so an interrupted or refused download leaves nothing.
    Returns at once when ``dest`` already holds the files.
    """
    pin = ort_pin()
    url, integrity = url or ort_url(pin), integrity or pin["integrity"]
    dest = Path(dest) if dest is not None else ort_cache(pin)
    files = pin["files"]
    if all((dest / f).is_file() for f in files):
        return dest
    algorithm, _, want = integrity.partition("-")
    if algorithm not in ("sha512", "sha384", "sha256", "sha1") or not want:
        raise ValueError(f"integrity must be npm's '<algorithm>-<base64 digest>', got {integrity!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    what = f"{pin['name']} {pin['version']}"
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}.") as tmp:
        tgz, out = Path(tmp) / "package.tgz", Path(tmp) / "dist"
        got = _fetch(url, tgz, algorithm, progress, what)
        if got != want:
            raise OrtDownloadError(f"{url} is not the pinned {what}: its {algorithm} is {got}, the lock "
                                   f"file's {want} (web/package-lock.json); nothing was kept")
        out.mkdir()
        with tarfile.open(tgz, "r:gz") as tar:
            for name in files:  # only these, by name: nothing else of the archive is written
                try:
                    member = tar.getmember(f"package/dist/{name}")
                except KeyError:
                    raise OrtDownloadError(f"{url} has no package/dist/{name}") from None
                src = tar.extractfile(member) if member.isfile() else None
                if src is None:
                    raise OrtDownloadError(f"{url}: package/dist/{name} is not a file")
                with src, open(out / name, "wb") as fh:
                    shutil.copyfileobj(src, fh)
        if dest.is_dir() and not any(dest.iterdir()):
            dest.rmdir()
        try:
            os.replace(out, dest)
        except OSError as err:  # another process put the files there first, or dest holds something else
            if not all((dest / f).is_file() for f in files):
                raise OrtDownloadError(f"could not put {what}'s files in {dest}: {err} (remove that folder "
                                       "and try again)") from err
    return dest


def ort_dist(root: str | os.PathLike | None = None, files: tuple[str, ...] = (ORT_MODULE, ORT_WASM),
             download: bool = False) -> Path:
    """The folder of onnxruntime-web's ``dist`` files that holds all of ``files``.

    Looked for in ``$EMOLIB_ORT_DIR`` (that folder, or an npm project folder holding
    ``node_modules/onnxruntime-web``), then in ``web/node_modules/onnxruntime-web/dist`` of
    ``root`` (default: the checkout around the current folder) and of the checkout this emolib
    was imported from (:data:`CHECKOUT_DIST`), then in emolib's cache (:func:`ort_cache`). With
    ``download``, the pinned version is downloaded there (:func:`download_ort`) when none has them;
    else a ``FileNotFoundError`` says how to install it.
    """
    places = []
    if os.environ.get(ORT_ENV):
        env = Path(os.environ[ORT_ENV]).expanduser()
        places += [env, env / _DIST]
    here = Path(root or repo_root()) / "web" / _DIST
    pin = ort_pin()
    places += [here, CHECKOUT_DIST, ort_cache(pin)]
    for place in places:
        if all((place / f).is_file() for f in files):
            return place
    if download and set(files) <= set(pin["files"]):
        return download_ort()
    raise FileNotFoundError(
        f"onnxruntime-web is not installed ({here / files[0]} is missing): run `npm ci` in "
        f"{here.parents[2]}, or `npm install onnxruntime-web@{pin['version']}` in a folder and set "
        f"${ORT_ENV} to it (the webcam widget's engine='browser' downloads it by itself)")


def _checkpoint(model: str | os.PathLike) -> Path:
    path = Path(model)
    if path.is_file():
        return path
    shipped = CHECKPOINT_DIR / f"{model}.pt"
    if shipped.is_file():
        return shipped
    raise ValueError(f"the browser engine runs a shipped emotion model or a checkpoint file; {model!r} is "
                     "neither (engine='kernel' runs any model in Python)")


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401  (the exports write their metadata with it)
    except ImportError as err:
        raise ModuleNotFoundError(
            "the browser engine exports its models to ONNX, which needs the onnx package: "
            "pip install 'emolib[widgets]' (or pip install onnx)", name="onnx") from err


def export_models(out: str | os.PathLike, model: str | os.PathLike, write_manifest: bool = True) -> dict:
    """Write the engine's ONNX files and ``manifest.json`` into ``out``; returns the manifest.

    BlazeFace is copied, MTCNN exported once, the emotion model exported when its ONNX file is
    missing or older than its checkpoint (``model``: a shipped name or a checkpoint path).
    ``write_manifest=False`` leaves ``manifest.json`` to the caller (the live page adds the hands to it).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = _checkpoint(model)
    export_blazeface(out)
    onnx = out / f"{Path(model).stem}.onnx"
    stale = not onnx.is_file() or ckpt.stat().st_mtime > onnx.stat().st_mtime
    if stale or not all((out / f).is_file() for f in REFINER_FILES):
        _need_onnx()
    if not all((out / f).is_file() for f in REFINER_FILES):
        export_mtcnn(out)
    if stale:
        export_emotion(model, out)
    info = json.loads(onnx.with_suffix(".json").read_text())
    calibration = json.loads((WEB_MODELS / "blazeface_to_mtcnn.json").read_text())
    sizes = {p.name: p.stat().st_size for p in sorted(out.glob("*.onnx"))}
    manifest = {"detector": BLAZEFACE_FILE, "refiners": list(REFINER_FILES), "emotion": info,
                "calibration": calibration, "bytes": sizes}
    if write_manifest:
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def engine_files(model: str | os.PathLike, ort_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Everything the widget's browser engine needs, for ``model`` (a shipped name or a checkpoint):

    ``manifest`` (as :func:`export_models`), ``modules`` (``[name, source]`` of ``face.js``,
    ``mtcnn.js``, ``engine.js`` in import order, then ``ort.wasm.bundle.min.mjs``) and ``binaries``
    (``{name: bytes}``: the WebAssembly binary and the ONNX files). The ONNX files are exported
    into ``$EMOLIB_CACHE/web/<key>`` (one folder per checkpoint file and version), once. Without
    ``ort_dir``, onnxruntime-web is found by :func:`ort_dist`, or downloaded (:func:`download_ort`).
    """
    dist = Path(ort_dir) if ort_dir is not None else ort_dist(download=True)
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
