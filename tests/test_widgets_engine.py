"""The webcam widget's browser engine, kernel side: which files it gathers and how they travel.

The browser side (the engine running in JupyterLab's page on a fake camera, with the kernel stopped)
is ``test_browser_engine_in_jupyterlab`` in ``tests/test_webcam_browser.py``.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from emolib.widgets import browser_engine as be

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
