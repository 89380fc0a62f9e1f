"""The webcam widget's browser engine, kernel side: which files it gathers and how they travel.

The browser side (the engine running in JupyterLab's page on a fake camera, with the kernel stopped)
is ``test_browser_engine_in_jupyterlab`` in ``tests/test_webcam_browser.py``.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from emolib import webengine as be

WASM = bytes(range(256)) * 40_000  # 10 MB: more than two of the widget's parts


@pytest.fixture(scope="module")
def ort_dir(tmp_path_factory):
    """A stand-in for onnxruntime-web's dist folder: the two files the widget sends, with known bytes."""
    folder = tmp_path_factory.mktemp("ort")
    (folder / be.ORT_MODULE).write_text("export const env = {};\n")
    (folder / be.ORT_WASM).write_bytes(WASM)
    return folder


def test_engine_modules_import_only_those_before_them():
    # the widget turns each module's `from "./x.js"` into the blob URL of x.js, made before it
    for k, name in enumerate(be.ENGINE_MODULES):
        deps = re.findall(r'from\s*"\./([\w.]+)"', (be.WEB_DIR / name).read_text())
        assert set(deps) <= set(be.ENGINE_MODULES[:k]), (name, deps)
    live = (be.WEB_DIR / "live.js").read_text()
    assert 'from "./engine.js"' in live and "detectInRegions" not in live, "live.js runs the shared engine.js"


def test_ort_dist_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv(be.ORT_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="npm ci.*npm install onnxruntime-web"):
        be.ort_dist(tmp_path, files=("no-such-file.wasm",))
    (tmp_path / "x.wasm").write_bytes(b"\0asm")
    assert be.ort_dist(files=("x.wasm",)) == tmp_path


def test_engine_files_gathers_models_runtime_and_modules(ort_dir):
    from emolib.fileio import cache_dir
    files = be.engine_files("baseline-fer2013", ort_dir)
    m = files["manifest"]
    assert m["detector"] == "blazeface_short_range.onnx" and m["refiners"] == list(be.REFINER_FILES)
    assert m["emotion"]["file"] == "baseline-fer2013.onnx" and len(m["emotion"]["classes"]) == 7
    assert set(m["calibration"]) and set(files["binaries"]) == {be.ORT_WASM, *m["bytes"]}
    assert files["binaries"][be.ORT_WASM] == WASM
    for name, size in m["bytes"].items():
        data = files["binaries"][name]
        assert len(data) == size and data[:1] == b"\x08"  # an ONNX protobuf: ir_version first
    assert [n for n, _ in files["modules"]] == [*be.ENGINE_MODULES, be.ORT_MODULE]
    exported = sorted(cache_dir().glob("web/*/baseline-fer2013.onnx"))
    assert len(exported) == 1
    mtime = exported[0].stat().st_mtime_ns
    be.engine_files("baseline-fer2013", ort_dir)  # cached: not exported again
    assert exported[0].stat().st_mtime_ns == mtime


def test_engine_files_refuses_what_it_cannot_run(ort_dir, tmp_path):
    with pytest.raises(ValueError, match="shipped emotion model or a checkpoint file.*engine='kernel'"):
        be.engine_files("no-such-model", ort_dir)
    with pytest.raises(FileNotFoundError, match=f"{be.ORT_MODULE} is missing"):
        be.engine_files("baseline-fer2013", tmp_path)


def _received(sent: list) -> tuple[dict, dict]:
    """The files as the browser puts them together (webcam.js onEngineMessage), and the final message."""
    files = {}
    for content, buffers in sent[:-1]:
        assert content["type"] == "engine_file" and content["view"] == "v"
        data = base64.b64decode(content["b64"]) if "b64" in content else bytes(buffers[0])
        assert len(data) <= 4 << 20
        buf = files.setdefault(content["name"], bytearray(content["size"]))
        buf[content["offset"]:content["offset"] + len(data)] = data
    return files, sent[-1][0]


@pytest.mark.parametrize("transport", ["binary", "base64"])
def test_widget_sends_the_engine_once_asked_and_takes_the_browsers_counts(ort_dir, transport):
    from emolib.widgets import WebcamWidget

    w = WebcamWidget("baseline-fer2013", engine="browser", ort_dir=ort_dir)
    w.transport = transport  # base64: as on Colab
    sent = []
    w.send = lambda content, buffers=None: sent.append((content, buffers))
    w._handle_message(w, {"type": "engine_request", "view": "v"}, [])
    files, ready = _received(sent)
    assert ready["type"] == "engine_ready" and ready["manifest"]["emotion"]["name"] == "baseline-fer2013"
    expected = be.engine_files("baseline-fer2013", ort_dir)
    assert {k: bytes(v) for k, v in files.items()} == expected["binaries"]
    assert ready["modules"] == expected["modules"]
    assert ready["options"] == {}  # engine.js's own defaults (it follows the faces, detectEvery 30)
    assert sum(1 for c, _ in sent if c.get("name") == be.ORT_WASM) == 3  # 10 MB in 4 MB parts
    json.dumps([c for c, _ in sent])
    # the browser's summary, once a second: the kernel's counters follow, no frame came to the kernel
    face = {"box": [100.5, 80, 220, 230], "emotion": "happy", "p": 0.8, "score": 0.99,
            "probabilities": {"happy": 0.8, "neutral": 0.2}}
    w._handle_message(w, {"type": "engine_stats", "view": "v", "frames": 57, "fps": 28.6, "camera_frames": 60,
                          "frame_ms": 21.5, "load_ms": 900, "faces": [face], "size": [640, 480]}, [])
    s = w.stats()
    counts = (s["frames_processed"], s["frames_received"], s["frames_dropped"], s["camera_frames"])
    assert counts == (57, 0, 3, 60)
    assert s["fps"] == 28.6 and s["engine"] == "browser" and s["engine_load_ms"] == 900
    assert s["last_faces"] == [face] and s["last_size"] == [640, 480] and w.inference_ms == 21.5


def test_widget_tells_the_browser_engine_how_to_follow_faces(ort_dir):
    """track=False: the full detection on every frame; detect_every=N: every N-th; the kernel's tracker
    keeps 5 unless asked."""
    from emolib.widgets import WebcamWidget

    for kwargs, options, kernel in (({"track": False}, {"detectEvery": 1}, None),
                                    ({"detect_every": 12}, {"detectEvery": 12}, 12), ({}, {}, 5)):
        w = WebcamWidget("baseline-fer2013", engine="browser", ort_dir=ort_dir, **kwargs)
        sent = []
        w.send = lambda content, buffers=None: sent.append((content, buffers))
        w._handle_message(w, {"type": "engine_request", "view": "v"}, [])
        assert sent[-1][0]["options"] == options, kwargs
        assert (w.tracker.detect_every if w.tracker is not None else None) == kernel


def test_widget_engine_choice_is_checked(ort_dir, monkeypatch):
    from emolib.pipeline import EmotionPipeline
    from emolib.widgets import ENGINES, WebcamWidget, webcam

    assert ENGINES == ("kernel", "browser")
    with pytest.raises(ValueError, match="engine must be one of"):
        WebcamWidget("baseline-fer2013", engine="gpu")
    with pytest.raises(ValueError, match="engine='kernel' for a custom pipeline"):
        WebcamWidget(pipeline=EmotionPipeline("baseline-fer2013", hands=False), engine="browser")
    kernel = WebcamWidget("baseline-fer2013")
    assert kernel.engine == "kernel"
    kernel.send = lambda content, buffers=None: None
    kernel._handle_message(kernel, {"type": "engine_request", "view": "v"}, [])
    assert kernel.status.startswith("error: RuntimeError") and "engine='kernel'" in kernel.status
    # headless (papermill, CI): one annotated frame from the Python pipeline, no engine files needed
    monkeypatch.setenv(be.ORT_ENV, "/nonexistent")
    from PIL import Image

    cam = webcam("baseline-fer2013", engine="browser", headless=True, fallback=Image.new("RGB", (64, 48)))
    assert cam.headless and cam.engine == "browser" and cam.snapshot.size == (64, 48)


# ------------------------------------------------------------------ onnxruntime-web without npm (Colab)

NPM_DIST = be.CHECKOUT_DIST


def test_pin_is_the_lock_files():
    """emolib/web/onnxruntime-web.json (in the wheel) pins the version and sha512 of web/package-lock.json."""
    lock = json.loads((be.WEB_DIR.parents[1] / "web" / "package-lock.json").read_text())
    entry = lock["packages"]["node_modules/onnxruntime-web"]
    pin = be.ort_pin()
    assert (pin["version"], pin["integrity"]) == (entry["version"], entry["integrity"])
    assert pin["integrity"].startswith("sha512-")
    name = f"onnxruntime-web-{entry['version']}.tgz"
    assert be.ort_url() == f"https://registry.npmjs.org/onnxruntime-web/-/{name}"
    from emolib.livepage import ORT_FILES

    assert {be.ORT_MODULE, be.ORT_WASM, *ORT_FILES} == set(pin["files"])


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A local stand-in for the npm registry: a tarball built from web/node_modules/onnxruntime-web (its
    package.json, the dist files emolib uses and a source map it does not), served on 127.0.0.1; yields
    (url, its sha512 integrity as npm writes it, the folder served)."""
    import functools
    import hashlib
    import http.server
    import io
    import tarfile
    import threading

    if not all((NPM_DIST / f).is_file() for f in be.ort_pin()["files"]):
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in web/ (the test tarball is made of it)")
    folder = tmp_path_factory.mktemp("registry")
    tgz = folder / "onnxruntime-web.tgz"
    with tarfile.open(tgz, "w:gz", compresslevel=1) as tar:
        tar.add(NPM_DIST.parent / "package.json", "package/package.json")
        for name in [*be.ort_pin()["files"], "ort.wasm.bundle.min.mjs.map"]:
            tar.add(NPM_DIST / name, f"package/dist/{name}")
        info = tarfile.TarInfo("package/dist/evil.sh")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"boo\n"))
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{tgz.name}", integrity, folder
    finally:
        server.shutdown()
        server.server_close()


def test_download_ort_keeps_the_checked_dist_files(registry, tmp_path, monkeypatch, capsys):
    url, integrity, _ = registry
    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    dest = be.download_ort(url, integrity)
    assert dest == be.ort_cache() == tmp_path / "cache" / "ort" / f"onnxruntime-web-{be.ort_pin()['version']}"
    assert sorted(p.name for p in dest.iterdir()) == sorted(be.ort_pin()["files"])  # no map, no .sh
    for name in be.ort_pin()["files"]:
        assert (dest / name).read_bytes() == (NPM_DIST / name).read_bytes(), name
    assert "onnxruntime-web" in capsys.readouterr().err  # the progress bar
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # no temporary folder left
    # found there from now on, without npm and without the network
    monkeypatch.delenv(be.ORT_ENV, raising=False)
    monkeypatch.setattr(be, "CHECKOUT_DIST", tmp_path / "no-checkout")
    assert be.ort_dist(tmp_path, download=False) == dest
    assert be.download_ort("http://127.0.0.1:9/unused.tgz", integrity) == dest  # already there: no download


def test_ort_dist_downloads_when_asked(registry, tmp_path, monkeypatch):
    url, integrity, _ = registry
    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(be.ORT_ENV, raising=False)
    monkeypatch.setattr(be, "CHECKOUT_DIST", tmp_path / "no-checkout")
    monkeypatch.setattr(be, "ort_url", lambda pin=None: url)
    monkeypatch.setattr(be, "ORT_PIN", tmp_path / "pin.json")
    pin = json.loads((be.WEB_DIR / "onnxruntime-web.json").read_text())
    (tmp_path / "pin.json").write_text(json.dumps({**pin, "integrity": integrity}))
    with pytest.raises(FileNotFoundError, match="npm ci.*downloads it by itself"):
        be.ort_dist(tmp_path)
    assert be.ort_dist(tmp_path, download=True) == be.ort_cache()
    files = be.engine_files("baseline-fer2013")  # the widget's engine="browser" on a fresh Colab
    assert files["binaries"][be.ORT_WASM] == (NPM_DIST / be.ORT_WASM).read_bytes()


def test_download_ort_refuses_a_wrong_digest_and_keeps_nothing(registry, tmp_path, monkeypatch):
    url, integrity, _ = registry
    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    wrong = "sha512-" + base64.b64encode(bytes(64)).decode()
    with pytest.raises(be.OrtDownloadError, match=f"{re.escape(url)} is not the pinned onnxruntime-web.*sha"):
        be.download_ort(url, wrong, progress=False)
    assert not be.ort_cache().exists() and list((tmp_path / "cache" / "ort").iterdir()) == []
    with pytest.raises(ValueError, match="integrity must be"):
        be.download_ort(url, "md5-abc", progress=False)


def test_download_ort_offline_names_the_url(tmp_path, monkeypatch):
    from tests.browser_page import free_port

    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    url = f"http://127.0.0.1:{free_port()}/onnxruntime-web-1.30.0.tgz"  # nothing listens there
    expected = f"could not download onnxruntime-web 1.30.0 from {re.escape(url)}.*npm install onnxruntime-web@"
    with pytest.raises(be.OrtDownloadError, match=f"{expected}.*{be.ORT_ENV}"):
        be.download_ort(url, progress=False)
    assert list((tmp_path / "cache" / "ort").iterdir()) == []



def test_download_ort_refuses_a_link_in_place_of_a_dist_file(tmp_path, monkeypatch):
    """A tarball whose pinned file is a symbolic link (here to a file outside the package) is refused
    even when its digest is the one asked for; nothing is kept."""
    import hashlib
    import io
    import tarfile

    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    tgz = tmp_path / "linked.tgz"
    files = be.ort_pin()["files"]
    with tarfile.open(tgz, "w:gz") as tar:
        for name in files:
            info = tarfile.TarInfo(f"package/dist/{name}")
            if name == files[0]:
                info.type, info.linkname = tarfile.SYMTYPE, "../../../../etc/passwd"
                tar.addfile(info)
            else:
                info.size = 3
                tar.addfile(info, io.BytesIO(b"abc"))
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz.read_bytes()).digest()).decode()
    with pytest.raises(be.OrtDownloadError, match=f"package/dist/{re.escape(files[0])} is not a file"):
        be.download_ort(tgz.as_uri(), integrity, progress=False)
    assert list((tmp_path / "cache" / "ort").iterdir()) == []


def test_download_ort_cut_off_transfer_names_the_url(tmp_path, monkeypatch):
    """A server that closes the connection before the announced length: the error names the URL."""
    import socket
    import threading

    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    server = socket.create_server(("127.0.0.1", 0))

    def serve_half():
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + bytes(1000))

    threading.Thread(target=serve_half, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/onnxruntime-web-1.30.0.tgz"
    try:
        with pytest.raises(be.OrtDownloadError, match=f"could not download onnxruntime-web .* from {re.escape(url)}.*stopped after 1,000 of 100,000"):
            be.download_ort(url, progress=False)
    finally:
        server.close()
    assert list((tmp_path / "cache" / "ort").iterdir()) == []

def test_missing_widget_packages_say_what_to_install(tmp_path, monkeypatch):
    """A fresh Colab without the widgets extra: anywidget, and onnx for the browser engine's exports."""
    import importlib
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ModuleNotFoundError, match=r"needs the onnx package: pip install 'emolib\[widgets\]'"):
        be.export_models(tmp_path, "baseline-fer2013")
    monkeypatch.setitem(sys.modules, "anywidget", None)
    monkeypatch.delitem(sys.modules, "emolib.widgets.camera", raising=False)
    with pytest.raises(ModuleNotFoundError, match=r"anywidget and ipywidgets \(anywidget is missing\): "
                                                  r"pip install 'emolib\[widgets\]'"):
        importlib.import_module("emolib.widgets.camera")


def test_export_models_leaves_the_manifest_to_the_live_page(tmp_path):
    """``livepage.stage`` writes manifest.json once, with the hands: export_models then writes none."""
    manifest = be.export_models(tmp_path / "page", "baseline-fer2013", write_manifest=False)
    assert not (tmp_path / "page" / "manifest.json").exists() and manifest["emotion"]["name"] == "baseline-fer2013"
    written = be.export_models(tmp_path / "page", "baseline-fer2013")
    assert json.loads((tmp_path / "page" / "manifest.json").read_text()) == written == manifest
