"""The webcam widget end to end: JupyterLab + headless Chromium with a fake camera.

What the browser test does (``test_webcam_in_jupyterlab``):

1. converts 2 s of ``$EMOLIB_DATA/video/short_hamilton_clip.mp4`` (one person facing the
   camera) to a 640x480 ``.y4m`` file with PyAV (centre crop to 4:3, I420 planes), the
   format Chromium's fake camera reads (``--use-file-for-fake-video-capture``; it loops);
2. starts JupyterLab on a free port of 127.0.0.1 (no token, ``--allow-root``, the app
   exposed as ``window.jupyterapp``) in a temporary folder holding a small notebook
   that shows ``emolib.widgets.webcam(model=CHECKPOINT, headless=False)`` and writes the
   widget's counters to a JSON file each time a frame has been processed;
3. opens the notebook in headless Chromium (``--use-fake-ui-for-media-stream
   --use-fake-device-for-media-stream``), driven over the DevTools protocol
   (``websocket-client``, a dependency of jupyter_server), and runs it;
4. checks that faces come back to the kernel and are drawn on the overlay canvas, presses
   the Snapshot button, measures annotated frames per second over ``MEASURE_S`` seconds,
   saves a screenshot of the widget to ``results/08_webcam/webcam.png``, then measures
   the same loop with a kernel that answers at once (``ECHO_S`` seconds: what the browser,
   the Jupyter server and the messages cost alone) and writes the numbers to
   ``results/08_webcam/fps.json``;
5. then makes the browser refuse the camera (``getUserMedia`` rejects with the
   ``NotAllowedError`` a user's "Block" gives), presses Stop and Start, and checks that
   the widget shows a message and that ``widget.status`` starts with
   ``"no camera: NotAllowedError"``.

The model is the pipeline's default (``emolib.pipeline.DEFAULT_MODEL``) when it is shipped, else an untrained
checkpoint of the same architecture (same cost; the labels are then meaningless, and
``fps.json`` says which). Skips with a reason without Chromium, JupyterLab or the data.
The other tests of this file check the kernel side without a browser.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser_page import CDP, CHROMIUM, SIZE, free_port, start_chromium, stop, wait_for, write_y4m

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("EMOLIB_DATA") or ROOT.parent / "shared" / "data")
CLIP = DATA / "video" / "short_hamilton_clip.mp4"
CLIP_START_S, CLIP_SECONDS = 3.3, 2.0  # one face, turned to the camera
WARMUP_FRAMES = 5
MEASURE_S = 15.0
ECHO_S = 8.0
# Variants of the measurement (the defaults: what a reader gets with the README's set-up):
# EMOLIB_TEST_INFLIGHT=N (frames in flight; default: the widget's default), EMOLIB_TEST_NODELAY=0 (a plain
# Jupyter server, without emolib.serverext), EMOLIB_TEST_REGIONS=0 (whole frames only). The record goes to
# $EMOLIB_WEBCAM_RESULTS (e.g. results/08_webcam, which the book shows) or else to the test's temporary folder,
# as fps.json, or fps_<variant>.json for a variant.
MAX_INFLIGHT = int(os.environ["EMOLIB_TEST_INFLIGHT"]) if os.environ.get("EMOLIB_TEST_INFLIGHT") else None
NODELAY = os.environ.get("EMOLIB_TEST_NODELAY", "1") != "0"
REGIONS = os.environ.get("EMOLIB_TEST_REGIONS", "1") != "0"


def _variant() -> str:
    parts = ([f"inflight{MAX_INFLIGHT}"] if MAX_INFLIGHT is not None else []) + ([] if NODELAY else ["nagle"]) \
        + ([] if REGIONS else ["wholeframes"])
    return "fps" + "".join("_" + p for p in parts) + ".json"


def _results_dir(tmp_path: Path) -> Path:
    target = os.environ.get("EMOLIB_WEBCAM_RESULTS")
    folder = (ROOT / target if not Path(target).is_absolute() else Path(target)) if target else tmp_path / "results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
def _test_model(folder: Path) -> tuple[str, str]:
    """The pipeline's default model when it is shipped, else an untrained checkpoint of its architecture
    written to ``folder``."""
    from emolib.data import EMOTIONS
    from emolib.models import create_model, list_pretrained, save_checkpoint
    from emolib.pipeline import DEFAULT_MODEL
    from emolib.recipes import get_recipe

    if DEFAULT_MODEL in list_pretrained():
        return DEFAULT_MODEL, f"{DEFAULT_MODEL} (shipped)"
    arch = get_recipe(DEFAULT_MODEL).model
    path = save_checkpoint(create_model(arch), folder / f"{arch}-untrained.pt", EMOTIONS)
    return str(path), (f"{arch}, UNTRAINED weights ({DEFAULT_MODEL} not shipped yet; same speed, "
                       "labels meaningless)")


def test_write_y4m(tmp_path):
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    pytest.importorskip("av", reason="PyAV is needed to decode the test video: pip install av")
    dst = tmp_path / "cam.y4m"
    n = write_y4m(CLIP, dst, 0.0, 0.2, size=(64, 48))
    data = dst.read_bytes()
    header, _, rest = data.partition(b"\n")
    assert header.startswith(b"YUV4MPEG2 W64 H48 F") and header.endswith(b"C420jpeg")
    assert 5 <= n <= 7 and len(rest) == n * (len(b"FRAME\n") + 64 * 48 * 3 // 2)


# --------------------------------------------------------------------------- the kernel side, no browser


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return _test_model(tmp_path_factory.mktemp("webcam-model"))[0]


def _jpeg(img: Image.Image, quality: int = 70) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_widget_reports_the_face_of_a_real_photo(checkpoint):
    from emolib.widgets import WebcamWidget

    photo = DATA / "photos" / "obama.jpg"
    if not photo.is_file():
        pytest.skip(f"the test photo {photo} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    sent = []
    w = WebcamWidget(checkpoint)
    w.send = lambda content, buffers=None: sent.append(content)
    data = _jpeg(Image.open(photo).convert("RGB").resize((512, 640)))
    w._handle_message(w, {"type": "frame", "view": "v", "id": 1, "camera_frames": 1, "sent": 1}, [data])
    assert [m["type"] for m in sent] == ["result"] and len(sent[0]["faces"]) == 1
    face = sent[0]["faces"][0]
    assert len(face["box"]) == 4 and face["emotion"] in face["probabilities"] and 0 < face["p"] <= 1
    assert face["p"] == pytest.approx(max(face["probabilities"].values()), abs=1e-3)
    assert face["hands"] == {"left": None, "right": None}


def test_widget_answers_frames_and_drops_stale_ones(checkpoint):
    from emolib.widgets import WebcamWidget

    img = Image.new("RGB", (512, 640), (90, 90, 90))  # no face: this test is about the frame protocol
    sent = []
    w = WebcamWidget(checkpoint)
    w.send = lambda content, buffers=None: sent.append(content)
    data = _jpeg(img)
    w._handle_message(w, {"type": "frame", "view": "v", "id": 1, "camera_frames": 4, "sent": 1}, [memoryview(data)])
    w._handle_message(w, {"type": "frame", "view": "v", "id": 1, "camera_frames": 6, "sent": 2}, [data])  # stale
    w._handle_message(w, {"type": "frame", "view": "v", "id": 2, "camera_frames": 9, "sent": 2, "rtt_ms": 50},
                      [data])
    assert [m["type"] for m in sent] == ["result", "result"] and [m["id"] for m in sent] == [1, 2]
    assert w.frames_received == 3 and w.frames_processed == 2
    assert w.frames_dropped == (9 - 2) + 1 and w.latency_ms == 50 and w.fps > 0
    assert sent[-1]["width"] == 512 and sent[-1]["height"] == 640 and sent[-1]["faces"] == []
    # a broken frame: an error message back, a status, no exception; the next good frame clears it
    w._handle_message(w, {"type": "frame", "view": "v", "id": 3}, [b"not a jpeg"])
    assert sent[-1]["type"] == "error" and w.status.startswith("error: ")
    w._handle_message(w, {"type": "frame", "view": "v", "id": 4}, [data])
    assert w.status == "running"
    # a snapshot (base64 transport, as on Colab)
    import base64

    got = []
    w.on_snapshot(lambda image, result: got.append((image.size, len(result.faces))))
    w._handle_message(w, {"type": "snapshot", "view": "v", "jpeg_b64": base64.b64encode(data).decode()}, [])
    assert sent[-1]["type"] == "snapshot_done" and w.snapshots == 1
    assert w.snapshot.size == w.snapshot_raw.size == (512, 640) and got == [((512, 640), 0)]
    json.dumps(w.stats())


def test_tracker_follows_faces_between_full_detections(checkpoint):
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    from emolib.pipeline import EmotionPipeline, iter_video_frames
    from emolib.widgets import FaceTracker

    pipe = EmotionPipeline(checkpoint, min_face_size=64, max_side=640, hands=False)
    tracker = FaceTracker(pipe, detect_every=5)
    start = round(CLIP_START_S * 30)
    frames = [Image.fromarray(rgb) for i, _, rgb in iter_video_frames(CLIP, max_frames=start + 10) if i >= start]
    followed = [tracker(f) for f in frames]
    full = [pipe(f) for f in frames]
    assert tracker.full_detections < len(frames), "the tracker never followed a face"
    assert [len(r) for r in followed] == [len(r) for r in full] == [1] * len(frames)
    for a, b in zip(followed, full):
        assert np.abs(np.subtract(a.faces[0].box, b.faces[0].box)).max() < 20  # pixels
        assert a.faces[0].emotion in a.faces[0].probabilities and len(a.faces[0].landmarks) == 5


def _clip_frames(n: int) -> list[Image.Image]:
    from emolib.book import camera_frames

    return camera_frames(CLIP, n, every=1, size=SIZE, start_s=CLIP_START_S)


def test_tracker_regions_give_the_whole_frame_results(checkpoint):
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    from emolib.pipeline import EmotionPipeline
    from emolib.widgets import FaceTracker

    pipe = EmotionPipeline(checkpoint, min_face_size=64, max_side=640, hands=False)
    frames = _clip_frames(12)
    whole, parts = FaceTracker(pipe, detect_every=5), FaceTracker(pipe, detect_every=5)
    region, used = None, 0
    for k, frame in enumerate(frames):
        a = whole(frame)
        if region is None:
            b = parts(frame)
        else:
            x, y, w, h = region
            b = parts(frame.crop((x, y, x + w, y + h)), offset=(x, y), frame_size=SIZE)
            used += 1
        assert b.image_size == SIZE and len(a) == len(b) == 1
        fa, fb = a.faces[0], b.faces[0]
        assert np.abs(np.subtract(fa.box, fb.box)).max() < 2  # the same O-Net on the same pixels
        assert np.abs(np.subtract(fa.landmarks, fb.landmarks)).max() < 2 and fa.emotion == fb.emotion
        region = parts.next_region(SIZE)
        if parts.since_full >= 4:  # the next frame is due a full detection: the whole frame
            assert region is None
        else:
            x, y, w, h = region
            x1, y1, x2, y2 = fb.box
            side = max(x2 - x1, y2 - y1)
            assert 0 <= x and 0 <= y and x + w <= SIZE[0] and y + h <= SIZE[1]
            assert w * h <= 0.6 * SIZE[0] * SIZE[1]
            # room for the crop margin (0.2 of the side) and for the face to move
            assert x <= max(0, x1 - 0.4 * side) + 1 and x + w >= min(SIZE[0], x2 + 0.4 * side) - 1
    assert used >= 6 and parts.full_detections == whole.full_detections


def test_tracker_region_without_the_face_asks_for_the_whole_frame(checkpoint):
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    from emolib.pipeline import EmotionPipeline
    from emolib.widgets import FaceTracker

    pipe = EmotionPipeline(checkpoint, min_face_size=64, max_side=640, hands=False)
    frame = _clip_frames(1)[0]
    tracker = FaceTracker(pipe, detect_every=5)
    assert len(tracker(frame)) == 1 and tracker.next_region(SIZE) is not None
    empty = Image.new("RGB", (100, 100), (40, 40, 40))  # the region came back without the face
    result = tracker(empty, offset=(0, 0), frame_size=SIZE)
    assert len(result) == 0 and result.image_size == SIZE
    assert tracker.next_region(SIZE) is None and tracker.full_detections == 1
    assert len(tracker(frame)) == 1 and tracker.full_detections == 2
    with pytest.raises(ValueError, match="region_grow"):
        FaceTracker(pipe, region_grow=0.05)


def test_widget_answers_a_face_region_in_frame_pixels(checkpoint):
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    from emolib.widgets import WebcamWidget

    frames = _clip_frames(2)
    sent = []
    w = WebcamWidget(checkpoint)
    w.send = lambda content, buffers=None: sent.append(content)
    w._handle_message(w, {"type": "frame", "view": "v", "id": 1, "width": 640, "height": 480}, [_jpeg(frames[0])])
    first = sent[-1]
    assert first["type"] == "result" and len(first["faces"]) == 1 and first["next_region"] is not None
    x, y, rw, rh = first["next_region"]
    crop = frames[1].crop((x, y, x + rw, y + rh))
    w._handle_message(w, {"type": "frame", "view": "v", "id": 2, "width": 640, "height": 480,
                          "region": [x, y, rw, rh], "encode_ms": 4.5}, [_jpeg(crop)])
    second = sent[-1]
    assert second["type"] == "result" and (second["width"], second["height"]) == SIZE
    assert w.region_frames == 1 and w.encode_ms == 4.5 and w.last_result.image_size == SIZE
    box = second["faces"][0]["box"]
    assert np.abs(np.subtract(box, first["faces"][0]["box"])).max() < 30 and box[0] > x  # frame pixels
    # a region that does not match its JPEG: an error message, no exception
    w._handle_message(w, {"type": "frame", "view": "v", "id": 3, "width": 640, "height": 480,
                          "region": [x, y, rw + 10, rh]}, [_jpeg(crop)])
    assert sent[-1]["type"] == "error" and "does not fit" in sent[-1]["message"]
    # regions=False: the kernel never asks for one
    plain = WebcamWidget(checkpoint, regions=False)
    plain.send = lambda content, buffers=None: sent.append(content)
    plain._handle_message(plain, {"type": "frame", "view": "v", "id": 1, "width": 640, "height": 480},
                          [_jpeg(frames[0])])
    assert sent[-1]["type"] == "result" and sent[-1]["next_region"] is None


def test_server_nodelay_and_the_advice(checkpoint, monkeypatch, capsys):
    import emolib.widgets as W

    monkeypatch.delenv("EMOLIB_NODELAY", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert W.server_nodelay() is None
    monkeypatch.setenv("JPY_SESSION_NAME", "webcam.ipynb")
    assert W.server_nodelay() is False
    monkeypatch.setattr(W.camera, "_NODELAY_ADVISED", False)
    W.webcam(checkpoint, headless=False)
    W.webcam(checkpoint, headless=False)
    out = capsys.readouterr().out
    assert out.count("emolib serverext enable") == 1
    monkeypatch.setenv("EMOLIB_NODELAY", "1")
    assert W.server_nodelay() is True


def test_serverext_installs_the_nodelay_connection(monkeypatch):
    pytest.importorskip("jupyter_server", reason="jupyter_server (dev extra) is needed")
    import logging
    from types import SimpleNamespace

    from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

    from emolib import serverext

    monkeypatch.delenv("EMOLIB_NODELAY", raising=False)
    app = SimpleNamespace(web_app=SimpleNamespace(settings={"kernel_websocket_connection_class":
                                                            ZMQChannelsWebsocketConnection}),
                          log=logging.getLogger("test"))
    serverext._load_jupyter_server_extension(app)
    assert app.web_app.settings["kernel_websocket_connection_class"] is serverext.NoDelayConnection
    assert os.environ["EMOLIB_NODELAY"] == "1"
    assert serverext._jupyter_server_extension_points() == [{"module": "emolib.serverext"}]

    class Custom(ZMQChannelsWebsocketConnection):
        pass

    monkeypatch.delenv("EMOLIB_NODELAY")
    other = SimpleNamespace(web_app=SimpleNamespace(settings={"kernel_websocket_connection_class": Custom}),
                            log=logging.getLogger("test"))
    serverext._load_jupyter_server_extension(other)  # somebody else's class: left alone, and said so
    assert other.web_app.settings["kernel_websocket_connection_class"] is Custom and "EMOLIB_NODELAY" not in os.environ

    # connect() turns TCP_NODELAY on before the usual connection
    calls = []
    monkeypatch.setattr(ZMQChannelsWebsocketConnection, "connect", lambda self: calls.append("connect"))
    conn = object.__new__(serverext.NoDelayConnection)
    conn._trait_values = {"websocket_handler": SimpleNamespace(set_nodelay=lambda on: calls.append(("nodelay", on)))}
    serverext.NoDelayConnection.connect(conn)
    assert calls == [("nodelay", True), "connect"]


@pytest.mark.slow  # starts Jupyter's server twice (about 20 s); make test runs it, the fast suite leaves it
def test_serverext_enable_command_makes_jupyter_load_it(tmp_path):
    pytest.importorskip("jupyter_server", reason="jupyter_server (dev extra) is needed")
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_PLATFORM_DIRS="1")
    run = lambda *args: subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)
    before = run("-m", "emolib", "serverext", "status")
    assert before.returncode == 0 and "not enabled" in before.stdout, before.stdout + before.stderr
    done = run("-m", "emolib", "serverext", "enable", "--user")
    assert done.returncode == 0 and "is enabled" in done.stdout, done.stdout + done.stderr
    written = tmp_path / "config" / "jupyter_server_config.d" / "emolib.json"
    assert json.loads(written.read_text()) == {"ServerApp": {"jpserver_extensions": {"emolib.serverext": True}}}
    listed = run("-m", "jupyter", "server", "extension", "list")
    text = listed.stdout + listed.stderr
    assert "emolib.serverext" in text and "OK" in text.split("emolib.serverext", 1)[1][:200], text
    off = run("-m", "emolib", "serverext", "disable", "--user")
    assert off.returncode == 0 and "not enabled" in off.stdout


def test_import_emolib_is_light():
    # the server extension lives in the package: importing it must not load PyTorch into the server
    code = ("import sys, emolib, emolib.serverext; assert 'torch' not in sys.modules, 'torch imported'; "
            "from emolib import data, models; assert models.create_model and emolib.list_models")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_is_headless_in_a_kernel_asks_which_frontend_started_it(monkeypatch):
    """A kernel of a Jupyter server, Colab or VS Code has a frontend; one that papermill or nbclient
    started (none of their marks) is headless; ``EMOLIB_HEADLESS`` overrides both."""
    import IPython

    from emolib.widgets import is_headless

    class Kernel:
        kernel = object()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Kernel())
    for name in ("EMOLIB_HEADLESS", "JPY_SESSION_NAME", "VSCODE_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert is_headless()  # papermill, nbclient, nbval: no server, no Colab, no VS Code
    monkeypatch.setenv("JPY_SESSION_NAME", "webcam.ipynb")
    assert not is_headless()
    monkeypatch.setenv("EMOLIB_HEADLESS", "1")
    assert is_headless()
    monkeypatch.delenv("EMOLIB_HEADLESS")
    monkeypatch.delenv("JPY_SESSION_NAME")
    monkeypatch.setenv("VSCODE_PID", "1234")
    assert not is_headless()
    monkeypatch.delenv("VSCODE_PID")
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    assert not is_headless()
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # a script
    assert is_headless()


def test_headless_webcam_shows_one_annotated_frame(checkpoint, monkeypatch):
    from emolib.widgets import is_headless, webcam

    monkeypatch.setenv("EMOLIB_HEADLESS", "1")
    assert is_headless()
    cam = webcam(checkpoint, fallback=Image.new("RGB", (320, 240), (90, 90, 90)))
    assert cam.headless and cam.status.startswith("headless: ") and not cam.active
    bundle = cam._repr_mimebundle_()
    assert set(bundle) == {"image/png", "text/plain"} and "application/vnd.jupyter.widget-view+json" not in bundle
    assert cam.snapshot.size == (320, 240) and len(cam.snapshot_result) == 0
    monkeypatch.setenv("EMOLIB_HEADLESS", "0")
    assert not is_headless()
    live = webcam(checkpoint)
    assert not live.headless and "application/vnd.jupyter.widget-view+json" in live._repr_mimebundle_()[0]


# --------------------------------------------------------------------------- JupyterLab and Chromium


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


NOTEBOOK_CELLS = [
    """\
import json, os, time
from pathlib import Path

import torch
torch.set_num_threads(1)
from emolib.widgets import webcam

from emolib.widgets import server_nodelay

STATS = Path({stats!r})
cam = webcam({model!r}, headless=False, regions={regions}{inflight})
history = []
settings = {{"server_nodelay": server_nodelay(), "max_inflight": cam.max_inflight, "regions": cam.regions}}

last_dump = [0.0]

def dump(change=None):
    now = time.time()
    if change is not None and change["name"] == "frames_processed":
        history.append([now, cam.frames_processed, len(cam.last_result.faces), cam.inference_ms,
                        cam.latency_ms, cam.encode_ms, cam.region_frames])
        if now - last_dump[0] < 0.2:  # the file at most 5 times a second: the test reads it, the kernel pays
            return
    last_dump[0] = now
    tmp = STATS.with_suffix(".tmp")
    tmp.write_text(json.dumps({{**cam.stats(), **settings, "history": history[-400:], "t": time.time()}}))
    os.replace(tmp, STATS)

cam.observe(dump, names=["frames_processed", "status", "snapshots"])
cam""",
    """\
# The test's second measurement: the same round trip with a kernel that answers at once (no detection,
# no model), which shows what the browser, the Jupyter server and the messages cost on their own.
from emolib.pipeline import PipelineResult

class Echo:
    full_detections = 0

    def reset(self):
        pass

    def __call__(self, image, offset=(0, 0), frame_size=None):
        return PipelineResult(frame_size or image.size, [])

    def next_region(self, frame_size):
        return None

cam.tracker = Echo()""",
]


def _notebook(path: Path, stats: Path, model: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    inflight = f", max_inflight={MAX_INFLIGHT}" if MAX_INFLIGHT is not None else ""
    nb.cells = [nbformat.v4.new_code_cell(src.format(stats=str(stats), model=model, inflight=inflight, regions=REGIONS))
                for src in NOTEBOOK_CELLS]
    nbformat.write(nb, path)


# JupyterLab settings of the test: no question about news, no update check.
LAB_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False}}


def _start_lab(workdir: Path, port: int, log) -> subprocess.Popen:
    for name, value in LAB_SETTINGS.items():
        path = workdir / ".settings" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", EMOLIB_HEADLESS="0",
               JUPYTER_RUNTIME_DIR=str(workdir / ".runtime"), EMOLIB_DATA=str(DATA),
               MPLBACKEND="module://matplotlib_inline.backend_inline")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
           f"--ServerApp.root_dir={workdir}", "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           f"--LabApp.user_settings_dir={workdir / '.settings'}", f"--LabApp.workspaces_dir={workdir / '.ws'}"]
    if NODELAY:  # as `emolib serverext enable` (README, chapter 8) sets it up
        cmd.append("--ServerApp.jpserver_extensions={'emolib.serverext': True}")
    return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _run_cell(cdp: "CDP", index: int) -> None:
    """Run cell ``index`` of the open notebook, as Shift+Enter would (without moving on)."""
    cdp.js(f"""(async () => {{
        const panel = {FIND_PANEL};
        jupyterapp.shell.activateById(panel.id);
        panel.content.activeCellIndex = {index};
        await jupyterapp.commands.execute('notebook:run-cell');
    }})()""", await_promise=True)


def _cpu_seconds(chrome: subprocess.Popen, lab: subprocess.Popen) -> dict[str, float]:
    """CPU seconds used so far by Chromium (all its processes), the Jupyter server and the kernel."""
    import psutil

    out = {"chromium": 0.0, "jupyter_server": 0.0, "kernel": 0.0}
    for key, root in (("chromium", chrome.pid), ("jupyter_server", lab.pid)):
        try:
            procs = [psutil.Process(root)] + psutil.Process(root).children(recursive=True)
        except psutil.Error:
            continue
        for proc in procs:
            try:
                t = proc.cpu_times()
                is_kernel = key == "jupyter_server" and "ipykernel" in " ".join(proc.cmdline())
                out["kernel" if is_kernel else key] += t.user + t.system
            except psutil.Error:
                pass
    return out


def _chromium_version() -> str:
    try:
        out = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30).stdout
        return out.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


# The notebook panel (the shell's "current widget" follows the focus, which headless Chromium may not give).
FIND_PANEL = "(() => { for (const w of jupyterapp.shell.widgets('main')) if (w.sessionContext && w.content) return w; " \
             "return null; })()"

OVERLAY_PIXELS = """(() => {
  const c = document.querySelector('.emolib-webcam-overlay');
  if (!c || !c.width) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
  return n;
})()"""

@contextlib.contextmanager
def _lab_with_notebook(tmp_path: Path, work: Path, y4m: Path):
    """JupyterLab serving ``work`` and headless Chromium (fake camera playing ``y4m``) with
    ``work/webcam.ipynb`` open and its kernel started; yields ``(cdp, chromium, jupyterlab)``."""
    lab = chrome = cdp = None
    lab_log = open(tmp_path / "jupyterlab.log", "w")
    chrome_log = open(tmp_path / "chromium.log", "w")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    try:
        lab = _start_lab(work, port, lab_log)

        def lab_up():
            if lab.poll() is not None:
                pytest.fail(f"jupyter lab exited with {lab.returncode}: {(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
            try:
                return urllib.request.urlopen(base + "/api/status", timeout=2).status == 200
            except OSError:
                return False

        wait_for(lab_up, 90, "JupyterLab to answer")
        chrome, devtools = start_chromium(tmp_path / "profile", y4m, chrome_log)
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{devtools}/json/list", timeout=10).read())
        page = next(tg for tg in targets if tg["type"] == "page")
        cdp = CDP(page["webSocketDebuggerUrl"])
        cdp.call("Page.enable")
        cdp.call("Page.navigate", url=f"{base}/lab/tree/webcam.ipynb")
        wait_for(lambda: cdp.js(f"!!(window.jupyterapp && {FIND_PANEL})"), 120, "JupyterLab to open the notebook")
        status = cdp.js(f"""(async () => {{
            const panel = {FIND_PANEL};
            jupyterapp.shell.activateById(panel.id);
            await panel.context.ready; await panel.sessionContext.ready;
            const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
            return kernel ? kernel.status : 'no kernel';
        }})()""", await_promise=True)
        assert status != "no kernel", "JupyterLab started no kernel for the notebook"
        yield cdp, chrome, lab
    finally:
        if cdp is not None:
            cdp.close()
        stop(chrome)
        stop(lab)
        lab_log.close()
        chrome_log.close()


WIDGET_RECT = """(() => {
  const r = document.querySelector('.emolib-webcam').getBoundingClientRect();
  return [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height];
})()"""


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium is missing: install it with `apt-get install -y chromium`")
def test_webcam_in_jupyterlab(tmp_path):
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    for module, package in (("jupyterlab", "jupyterlab"), ("websocket", "websocket-client"), ("av", "av")):
        pytest.importorskip(module, reason=f"{package} is not installed: pip install {package}")

    work = tmp_path / "lab"
    work.mkdir()
    y4m = tmp_path / "camera.y4m"
    n_frames = write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)
    assert n_frames > 30
    model, model_label = _test_model(tmp_path)
    stats_file = tmp_path / "stats.json"
    _notebook(work / "webcam.ipynb", stats_file, model)

    t_start = time.time()
    with _lab_with_notebook(tmp_path, work, y4m) as (cdp, chrome, lab):
        _run_cell(cdp, 0)

        # 1. faces arrive in the kernel and are drawn
        def progress():
            s = _read_json(stats_file)
            if s and s["status"].startswith(("no camera", "error")):
                pytest.fail(f"the widget reports: {s['status']}")
            return s if s and s["frames_processed"] >= WARMUP_FRAMES else None

        first = wait_for(progress, 180, f"{WARMUP_FRAMES} processed frames (see {tmp_path}/jupyterlab.log)")
        assert first["status"] == "running"
        assert first["last_size"] == list(SIZE), "frames are sent at 640x480"
        assert first["server_nodelay"] is NODELAY, "emolib.serverext is (not) on as the test asked"
        assert any(h[2] >= 1 for h in first["history"]), "no face found in the fake camera's frames"
        assert cdp.js("document.querySelector('.emolib-webcam video').videoWidth") == SIZE[0]
        wait_for(lambda: cdp.js(OVERLAY_PIXELS) > 0, 20, "boxes drawn on the overlay canvas")

        # 2. annotated frames per second, and who used the CPU meanwhile
        t0, n0 = first["t"], first["frames_processed"]
        cpu0, wall0 = _cpu_seconds(chrome, lab), time.time()
        time.sleep(MEASURE_S)
        cpu1, wall1 = _cpu_seconds(chrome, lab), time.time()
        last = _read_json(stats_file)
        hist = [h for h in last["history"] if h[0] > t0]
        elapsed = last["t"] - t0
        fps = (last["frames_processed"] - n0) / elapsed
        with_face = sum(1 for h in hist if h[2] >= 1)
        assert last["frames_processed"] - n0 >= 3, f"only {last['frames_processed'] - n0} frames in {elapsed:.0f} s"
        assert with_face >= 0.8 * len(hist), f"a face in only {with_face} of {len(hist)} frames"
        overlay = cdp.js(OVERLAY_PIXELS)
        assert overlay > 200, "the overlay canvas is (nearly) empty"

        kernel_ms = statistics.median(h[3] for h in hist)
        round_trip_ms = statistics.median(h[4] for h in hist)
        encode_ms = statistics.median(h[5] for h in hist)
        region_frames = last["region_frames"] - first["region_frames"]
        if REGIONS:
            assert region_frames > 0, "the browser never sent a face region between full detections"
        else:
            assert region_frames == 0

        # 3. the snapshot button: the annotated image reaches the kernel
        cdp.js("document.querySelector('.emolib-webcam-snap').click()")
        snap = wait_for(lambda: (s := _read_json(stats_file)) and s["snapshots"] >= 1 and s, 60, "the snapshot")

        # 4. a screenshot of the live widget
        results = _results_dir(tmp_path)
        cdp.js("document.querySelector('.emolib-webcam').scrollIntoView()")
        x, y, w, h = cdp.js(WIDGET_RECT)
        shot = cdp.call("Page.captureScreenshot", format="png",
                        clip={"x": max(0, x - 4), "y": max(0, y - 4), "width": w + 8, "height": h + 8, "scale": 1})
        import base64

        png = base64.b64decode(shot["data"])
        with Image.open(io.BytesIO(png)) as im:
            assert im.width > 400 and im.height > 400
            assert np.asarray(im.convert("L")).std() > 10, "the screenshot is blank"
        (results / _variant().replace("fps", "webcam").replace(".json", ".png")).write_bytes(png)

        # 5. the same with a kernel that answers at once: what the round trip costs without the pipeline
        _run_cell(cdp, 1)
        echo0 = wait_for(lambda: (s := _read_json(stats_file)) and s["last_faces"] == [] and s, 30, "the echo kernel")
        time.sleep(ECHO_S)
        echo1 = _read_json(stats_file)
        echo_hist = [h for h in echo1["history"] if h[0] > echo0["t"]]
        echo_fps = (echo1["frames_processed"] - echo0["frames_processed"]) / (echo1["t"] - echo0["t"])
        record = {
            "what": "annotated frames per second of emolib.widgets.WebcamWidget in JupyterLab, headless Chromium, "
                    "fake camera playing a real clip with one face (tests/test_webcam_browser.py)",
            "fps": round(fps, 2),
            "frames": last["frames_processed"] - n0, "seconds": round(elapsed, 2),
            "frames_with_a_face": with_face, "frame_size": list(SIZE), "jpeg_quality": 0.7,
            "cpu_percent": {k: round(100 * (cpu1.get(k, 0.0) - cpu0.get(k, 0.0)) / (wall1 - wall0), 1)
                            for k in cpu1},
            "frames_sent_as_face_regions": region_frames, "encode_ms_median": round(encode_ms, 1),
            "kernel_ms_median": round(kernel_ms, 1), "round_trip_ms_median": round(round_trip_ms, 1),
            "full_detections": last["full_detections"] - first["full_detections"],
            "camera_frames": last["camera_frames"], "frames_dropped": last["frames_dropped"],
            "kernel_fps_last30": last["fps"],
            "model": model_label, "min_face_size": 64, "max_inflight": last["max_inflight"],
            "regions": last["regions"], "server_nodelay": last["server_nodelay"], "tracking": "every 5th frame in full",
            "video": f"{CLIP.name}, {CLIP_SECONDS:.0f} s from {CLIP_START_S} s, centre-cropped to 4:3, looped",
            "snapshot_faces": len(snap["last_faces"]),
            "echo_kernel": {"what": "the same, with a kernel that answers at once (decodes the JPEG, nothing else)",
                            "fps": round(echo_fps, 2), "frames": echo1["frames_processed"] - echo0["frames_processed"],
                            "round_trip_ms_median": round(statistics.median(h[4] for h in echo_hist), 1)
                            if echo_hist else None},
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                        "torch_threads": 1, "loadavg_1min": round(os.getloadavg()[0], 2),
                        "chromium": _chromium_version()},
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "test_seconds": round(time.time() - t_start, 1),
        }
        (results / _variant()).write_text(json.dumps(record, indent=1) + "\n")
        print(f"recorded in {results / _variant()}")
        print(json.dumps(record, indent=1))

        # 6. camera refused: a message in the widget and a status in Python. The browser is made to
        # refuse as it does when the user says no (a NotAllowedError from getUserMedia); the
        # fake-UI flag would otherwise accept every request.
        cdp.js("navigator.mediaDevices.getUserMedia = () => "
               "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'))")
        cdp.js("document.querySelector('.emolib-webcam-toggle').click()")  # Stop
        wait_for(lambda: (_read_json(stats_file) or {}).get("status") == "stopped", 30, "the widget to stop")
        cdp.js("document.querySelector('.emolib-webcam-toggle').click()")  # Start again: refused
        denied = wait_for(lambda: (s := _read_json(stats_file)) and s["status"].startswith("no camera") and s, 30,
                       "the refused camera to be reported")
        assert denied["status"].startswith("no camera: NotAllowedError"), denied["status"]
        message = cdp.js("document.querySelector('.emolib-webcam-message').textContent")
        assert "NotAllowedError" in message and "Allow the camera" in message
        assert not cdp.js("document.querySelector('.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')")


ENGINE_CELL = """\
import json, os, time
from pathlib import Path

from emolib.widgets import webcam

STATS = Path({stats!r})
cam = webcam({model!r}, headless=False, engine="browser")

def dump(change=None):
    tmp = STATS.with_suffix(".tmp")
    tmp.write_text(json.dumps({{**cam.stats(), "t": time.time()}}))
    os.replace(tmp, STATS)

cam.observe(dump, names=["frames_processed", "status"])
cam"""

# The widget's state in the page (webcam.js keeps it on its root element, as the live page does).
WIDGET_STATE = """(() => { const e = document.querySelector('.emolib-webcam'); if (!e) return null;
  const d = e.dataset;
  return {frames: +(d.frames || 0), fps: +(d.fps || 0), faces: +(d.faces || 0), emotion: d.emotion || '',
          status: d.status || '', load_ms: d.loadMs ? +d.loadMs : null, engine: d.engine}; })()"""


def _kernel_process(lab: subprocess.Popen):
    """The notebook's kernel: the ipykernel process under the Jupyter server."""
    import psutil

    kernels = [p for p in psutil.Process(lab.pid).children(recursive=True)
               if "ipykernel" in " ".join(p.cmdline())]
    assert len(kernels) == 1, f"{len(kernels)} kernel processes"
    return kernels[0]


def _count_frames(cdp: "CDP", seconds: float) -> tuple[int, float]:
    """Annotated frames the page counted over ``seconds``, and the seconds measured."""
    n0, t0 = cdp.js(WIDGET_STATE)["frames"], time.time()
    time.sleep(seconds)
    n1, t1 = cdp.js(WIDGET_STATE)["frames"], time.time()
    return n1 - n0, t1 - t0


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="/usr/bin/chromium is missing: install it with `apt-get install -y chromium`")
def test_browser_engine_in_jupyterlab(tmp_path):
    """webcam(engine="browser") in JupyterLab: the kernel sends the engine's files once, the page then reads
    every camera frame itself (faces drawn with emotions), the kernel receives no frame, only a summary
    once a second, and the frames keep coming while the kernel process is stopped (SIGSTOP)."""
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    for module, package in (("jupyterlab", "jupyterlab"), ("websocket", "websocket-client"), ("av", "av"),
                            ("psutil", "psutil")):
        pytest.importorskip(module, reason=f"{package} is not installed: pip install {package}")
    from emolib.data import EMOTIONS
    from emolib.webengine import ort_dist

    try:
        ort_dist(ROOT)
    except FileNotFoundError as err:
        pytest.skip(str(err))
    work = tmp_path / "lab"
    work.mkdir()
    y4m = tmp_path / "camera.y4m"
    assert write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS) > 30
    model, model_label = _test_model(tmp_path)
    stats_file = tmp_path / "stats.json"
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(ENGINE_CELL.format(stats=str(stats_file), model=model))]
    nbformat.write(nb, work / "webcam.ipynb")

    with _lab_with_notebook(tmp_path, work, y4m) as (cdp, chrome, lab):
        t_run = time.time()
        _run_cell(cdp, 0)

        def running():
            st = cdp.js(WIDGET_STATE)
            if st and st["status"].startswith(("no camera", "error")):
                pytest.fail(f"the widget reports: {st['status']}")
            return st if st and st["frames"] >= WARMUP_FRAMES else None

        first = wait_for(running, 180, f"{WARMUP_FRAMES} frames of the browser engine")
        assert first["engine"] == "browser" and first["status"] == "running" and first["load_ms"] > 0
        wait_for(lambda: cdp.js(OVERLAY_PIXELS) > 200, 20, "boxes drawn on the overlay canvas")
        kernel_view = wait_for(lambda: (s := _read_json(stats_file)) and s["frames_processed"] >= 1 and s,
                               30, "the browser's summary in the kernel")
        assert kernel_view["engine"] == "browser" and kernel_view["frames_received"] == 0

        # 1. the frame rate with the kernel alive (it only gets a summary once a second)
        cpu0, wall0 = _cpu_seconds(chrome, lab), time.time()
        frames, seconds = _count_frames(cdp, MEASURE_S)
        cpu1, wall1 = _cpu_seconds(chrome, lab), time.time()
        state = cdp.js(WIDGET_STATE)
        assert state["faces"] >= 1 and state["emotion"] in EMOTIONS, state
        last = _read_json(stats_file)
        assert last["frames_received"] == 0, "a frame went to the kernel"
        assert last["frames_processed"] > kernel_view["frames_processed"]
        face = last["last_faces"][0]
        assert face["emotion"] in EMOTIONS and len(face["probabilities"]) == len(EMOTIONS)
        assert abs(sum(face["probabilities"].values()) - 1) < 0.01 and len(face["box"]) == 4

        # 2. the kernel process stopped: nothing waits for it, the faces keep coming
        kernel = _kernel_process(lab)
        kernel.suspend()
        try:
            frames_stopped, seconds_stopped = _count_frames(cdp, ECHO_S)
            assert frames_stopped >= 10, \
                f"only {frames_stopped} frames in {seconds_stopped:.0f} s without the kernel"
            assert cdp.js(OVERLAY_PIXELS) > 200 and cdp.js(WIDGET_STATE)["faces"] >= 1
        finally:
            kernel.resume()

        record = {
            "what": "annotated frames per second of webcam(engine='browser') in JupyterLab, headless "
                    "Chromium, fake camera playing a real clip with one face (tests/test_webcam_browser.py)",
            "fps": round(frames / seconds, 2), "frames": frames, "seconds": round(seconds, 2),
            "fps_kernel_stopped": round(frames_stopped / seconds_stopped, 2),
            "seconds_kernel_stopped": round(seconds_stopped, 2),
            "engine_load_ms": first["load_ms"], "frames_sent_to_kernel": last["frames_received"],
            "cpu_percent": {k: round(100 * (cpu1.get(k, 0.0) - cpu0.get(k, 0.0)) / (wall1 - wall0), 1)
                            for k in cpu1},
            "frame_size": list(SIZE), "model": model_label,
            "video": f"{CLIP.name}, {CLIP_SECONDS:.0f} s from {CLIP_START_S} s, centre-cropped to 4:3, "
                     "looped",
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "loadavg_1min": round(os.getloadavg()[0], 2), "chromium": _chromium_version()},
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"), "test_seconds": round(time.time() - t_run, 1),
        }
        results = _results_dir(tmp_path)
        (results / "engine_fps.json").write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps(record, indent=1))

# --------------------------------------------------------------------------- the chapters' helpers (emolib.book)


def test_pipeline_chapter_helpers(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from emolib import book
    from emolib import data as D
    from emolib.models import CheckpointError, list_pretrained
    from emolib.pipeline import DEFAULT_MODEL

    with pytest.raises(D.DatasetNotFoundError):
        book.pipeline_examples(tmp_path / "empty", smoke=False)
    photos, video, label = book.pipeline_examples(tmp_path / "empty", smoke=True, placeholder_dir=tmp_path / "ph")
    assert label.startswith("GENERATED PLACEHOLDER") and (photos / "faces.json").is_file()
    assert sorted(p.name for p in photos.glob("*.jpg")) == sorted(book.EXAMPLE_PHOTOS)
    model, text = book.pipeline_model(smoke=True)
    assert "UNTRAINED" in text and model.classes == D.EMOTIONS
    if DEFAULT_MODEL in list_pretrained():  # smoke: the default's architecture, untrained
        trained, trained_text = book.pipeline_model(smoke=False)
        assert type(model) is type(trained) and trained_text.startswith(DEFAULT_MODEL)
    else:
        with pytest.raises(CheckpointError):
            book.pipeline_model(smoke=False)
    if video is not None:
        jpegs = book.camera_jpegs(video, n=2, every=1, size=(64, 48))
        assert len(jpegs) == 2 and Image.open(io.BytesIO(jpegs[0])).size == (64, 48)
    fig = book.plot_contrast(Image.new("RGB", (120, 90), (100, 120, 140)))
    assert len(fig.axes) == 9
    table = book.pipeline_benchmark_table()
    assert table.startswith("| photo |") and "obama.jpg" in table
    shot, record = book.webcam_record(tmp_path)
    assert shot is None and record is None
    shot, record = book.webcam_record()
    if record is not None:
        assert "annotated frames per second" in book.webcam_record_table(record)
