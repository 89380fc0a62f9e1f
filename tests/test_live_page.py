"""The book's live page in headless Chromium: a static file server, a fake camera, no Python behind the page.

``test_live_page_agrees_with_the_python_pipeline`` builds the book when the page is missing
or stale (``tests/browser_page.py``, ``build_live_page``), serves ``_build/html`` with a plain
static file server on 127.0.0.1, starts headless Chromium with a fake camera fed from 2 s of
``$EMOLIB_DATA/video/short_hamilton_clip.mp4`` (640x480 y4m, as the widget's browser test),
opens the page with ``?log=1``, clicks *Start camera* and checks that faces are drawn with
emotions and that the DOM state is updated. Each logged frame carries the exact RGB of a grid of its
pixels (``probe``), which tells which frame of the y4m file it was (:func:`match_frames`); Python decodes
the y4m file as Chromium does (:func:`i420_to_rgb`), so both read the very same pixels (checked on every
frame). With ``?detectEvery=1`` (the full detection on every frame): on the frames where the Python
pipeline (:class:`emolib.pipeline.EmotionPipeline`, same model) finds exactly one face, the page's emotion
must be Python's on at least 90 % of them (issue 15), and its box within 0.1 px of Python's as often. As
the page opens (faces followed by O-Net between full detections, FaceTracker's method), it
must take the step :class:`emolib.faces.FaceTracker` takes on the same frames, and give its boxes and
emotions, each frame compared from the page's own state (FaceTracker given the page's boxes after the
frame before: see _agreement); against the per-frame pipeline the followed page agreed on 80.6-81.3 % of
the frames in three runs with ``vgg_cpu-fer2013`` (``benchmarks/live_agreement.py``): a followed box lies a
few pixels from the full detection's, and the model changes its label on some of those frames. Then a
photo is given to the upload input (no camera needed): one face, and a group of six.

What the 90 % needed (measured with a script that logged both boxes, both probability vectors and the
page's pixels): the page was right already. On the page's own pixels, Python's MTCNN over its whole pyramid
gave the page's boxes within 0.005 px and its probabilities within 5e-5, the same label on 75 of 75 frames:
BlazeFace only says where MTCNN looks. The test was wrong twice: it decoded the frames with PyAV (FFmpeg's
swscale), which rounds differently from Chromium's libyuv (1.2 levels off on average, up to 3), and that
flipped the unsure model's label (top probability often 0.35-0.5 on this clip) on 5-7 % of the frames; and
its 16x12 thumbnail paired 7 of 76 page frames with a near-identical neighbour frame. Agreement was then
89-96 % (the floor was 80 %); in one diagnostic run, the decoding alone flipped 4 of 57 frames. With both
fixed, the runs below.

``benchmarks/live_agreement.py`` repeats both runs and writes ``results/benchmarks/live_page_agreement.json``
(three rounds on 2026-11-28, load 0.1-1.9: full detection on every frame 100 % each time, every box within
0.1 px; followed, the tracker's step, box and emotion on every frame, both ways; the camera hands on every
read given the page's state, and on 137 of 146, 138 of 142 and 129 of 134 following their own).

Hands (``emolib/web/hands.js``): in Node, each JavaScript step is checked against emolib's Python on
a real ASL photo, then the whole hand reader runs with ONNX Runtime Web's Node build (the page's
WebAssembly) on 12 ASL photos against :class:`emolib.hands.HandDetector` with the page's files and
settings (``HAND_TOL_PX`` says why 0.1 px); in Chromium, one ASL photo per gesture goes through the
upload input, and the page's hands and gestures are compared with Python's. The page reads them in its Web
Worker (``hands_worker.js``); ``?handsWorker=0`` reads them on the main thread, with the same result. On the
camera the page follows hands from frame to frame (MediaPipe's video mode): in Node, the clip's frames in
order against :class:`emolib.hands.HandTracker`; in Chromium, the camera frames the page read hands on, fed to
HandTracker in the page's order.

Skips with a reason without Chromium, the video, PyAV or ``web/node_modules`` (``npm ci``); the hand
tests without Node or the ASL photos.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser_page import ROOT, build_live_page, chromium, open_live_page, run_camera, serve, wait_for, write_y4m

CHROMIUM = Path("/usr/bin/chromium")
DATA = Path(os.environ.get("EMOLIB_DATA") or ROOT.parent / "shared" / "data")
CLIP = DATA / "video" / "short_hamilton_clip.mp4"
PHOTOS = [DATA / "photos" / "obama.jpg", DATA / "photos" / "multiface.jpg"]  # 1 and 6 faces (faces.json)
HAND_PHOTOS = [DATA / "asl" / "train" / letter / f"{letter}0.jpg" for letter in "AFLV"]  # one per gesture
HAND_STATE = """(() => { const e = document.getElementById('emolib-live');
  return {hands: +e.dataset.hands, gesture: e.dataset.gesture, list: window.emolibLive.hands.map((h) =>
    ({handedness: h.handedness, gesture: h.gesture, landmarks: h.landmarks, box: h.box}))}; })()"""
CLIP_START_S, CLIP_SECONDS = 3.3, 2.0  # one face turned to the camera, as tests/test_webcam_browser.py
MEASURE_S = 8.0
AGREEMENT = 0.9  # issue 15's goal; see the module docstring for what was measured
#: Compared frame by frame, each from the page's own state (the trackers given the page's boxes, or hand
#: regions, before each frame), the page took Python's step and gave its boxes, emotions and hands on every
#: frame of every run on 2026-11-28; at most this many frames may differ (a score on its threshold).
RESYNCED_MISSES = 2
#: Left to follow their own boxes or hands, the two sides drift apart (see the comment on camera hands
#: above HAND_STEPS_JS): only a floor against gross divergence (the lowest seen: 126 of 141 hand reads, 218
#: of 238 face boxes).
FREE_FLOOR = 2 / 3
BOX_TOL_PX = 0.1  # the page's box against Python's on the same pixels: 0.005 px at most when measured


def read_y4m(path: Path) -> list[np.ndarray]:
    """The RGB frames of an I420 y4m file (as write_y4m writes it), converted as Chromium converts the fake
    camera's frames (:func:`i420_to_rgb`), so that the Python pipeline reads the page's very pixels."""
    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    fields = {f[:1]: f[1:] for f in header.split()[1:]}
    w, h = int(fields[b"W"]), int(fields[b"H"])
    size = w * h * 3 // 2
    frames, pos = [], 0
    while pos < len(rest):
        assert rest[pos:pos + 6] == b"FRAME\n"
        planes = np.frombuffer(rest[pos + 6:pos + 6 + size], np.uint8)
        y = planes[:w * h].reshape(h, w)
        u = planes[w * h:w * h * 5 // 4].reshape(h // 2, w // 2)
        v = planes[w * h * 5 // 4:].reshape(h // 2, w // 2)
        frames.append(i420_to_rgb(y, u, v))
        pos += 6 + size
    return frames


def i420_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """BT.601 limited-range YUV to RGB in libyuv's fixed point (``I420ToARGB``, ``kYuvI601Constants``:
    row_common.cc's ``YuvPixel``), each chroma sample used for its 2x2 pixels: what Chromium draws of the
    fake camera's I420 frames, bit for bit (the log's ``probe`` checks it on every frame). PyAV's
    ``to_ndarray("rgb24")`` (FFmpeg's swscale) rounds differently: 1.2 levels off on average, up to 3, and
    only 11 % of the values equal, which flipped the page's unsure labels against Python's on 5-7 % of
    the frames."""
    ui = np.repeat(np.repeat(u, 2, 0), 2, 1).astype(np.int64) - 128
    vi = np.repeat(np.repeat(v, 2, 0), 2, 1).astype(np.int64) - 128
    y1 = ((y.astype(np.int64) * 0x0101 * 18997) >> 16) - 1160  # YG, YB: 1.164 * (Y - 16), 6 fraction bits
    rgb = np.stack([y1 + vi * 102, y1 - (ui * 25 + vi * 52), y1 + ui * 128], -1) >> 6  # VR; UG, VG; UB
    return np.clip(rgb, 0, 255).astype(np.uint8)


def probe(rgb: np.ndarray, step: int = 20) -> np.ndarray:
    """The page's frame probe (live.js ``probe``): the RGB of every 20th pixel from the 10th, both ways."""
    return rgb[step // 2::step, step // 2::step].reshape(-1).astype(np.int16)


def match_frames(log: list[dict], frames: list[np.ndarray]) -> list[int]:
    """For each logged page frame, the index of the y4m frame whose pixels it is: the one whose probe the
    page's equals exactly (consecutive frames of the clip can be near-identical: the 16x12 thumbnail alone
    paired 7 of 76 page frames with a neighbour), the thumbnail breaking a tie between frames equal at
    every probe."""
    probes = np.stack([probe(f) for f in frames])
    thumbs = np.stack([thumbnail(f) for f in frames])
    out = []
    for entry in log:
        off = np.abs(probes - np.asarray(entry["probe"], np.int16)).max(1)
        exact = np.flatnonzero(off == 0)
        assert len(exact), (f"page frame {entry['frame']} has pixels of no frame of the y4m file as decoded "
                            f"here (closest: {off.min()} levels off): has Chromium's YUV to RGB changed? "
                            "(i420_to_rgb)")
        out.append(int(exact[np.argmin(((thumbs[exact] - np.asarray(entry["thumb"])) ** 2).mean(1))]))
    return out


def thumbnail(rgb: np.ndarray, tw: int = 16, th: int = 12) -> np.ndarray:
    """The page's frame thumbnail (live.js ``thumbnail``): mean luma of 16x12 blocks, every 2nd pixel."""
    h, w = rgb.shape[:2]
    sub = rgb[::2, ::2].astype(np.float64)
    luma = 0.299 * sub[..., 0] + 0.587 * sub[..., 1] + 0.114 * sub[..., 2]
    ys = np.minimum(th - 1, (np.arange(0, h, 2) * th) // h)
    xs = np.minimum(tw - 1, (np.arange(0, w, 2) * tw) // w)
    out = np.zeros((th, tw))
    np.add.at(out, (ys[:, None], xs[None, :]), luma)
    counts = np.zeros((th, tw))
    np.add.at(counts, (ys[:, None], xs[None, :]), 1)
    return (out / counts).ravel()


def _requirements() -> None:
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: install it with `apt-get install -y chromium`")
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    pytest.importorskip("av", reason="PyAV is needed to decode the test video: pip install av")
    if not (ROOT / "web" / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in web/ (make book does)")


def test_i420_to_rgb_is_bt601_limited_range_with_shared_chroma():
    """Video black (Y 16) and white (Y 235) with neutral chroma give 0 and 255; BT.601's red (Y 81, U 90,
    V 240) gives red; each chroma sample colours its 2x2 pixels; the probe is every 20th pixel from the 10th."""
    y = np.array([[16, 235, 81, 81], [16, 235, 81, 81]], np.uint8)
    u = np.array([[128, 90]], np.uint8)
    v = np.array([[128, 240]], np.uint8)
    rgb = i420_to_rgb(y, u, v).astype(int)
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[1, 1].tolist() == [255, 255, 255]
    assert np.abs(rgb[:, 2:] - [255, 0, 0]).max() <= 2 and (rgb[0, 2:] == rgb[1, 2:]).all()
    frame = np.arange(480 * 640 * 3, dtype=np.int64).reshape(480, 640, 3) % 251
    assert probe(frame.astype(np.uint8)).tolist() == frame[10::20, 10::20].ravel().tolist()
    assert len(probe(frame.astype(np.uint8))) == 24 * 32 * 3


def test_thumbnail_matches_frames():
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    thumbs = np.stack([thumbnail(f) for f in frames])
    assert thumbs.shape == (3, 192)
    assert np.argmin(((thumbs - thumbnail(frames[1])) ** 2).sum(1)) == 1


RESAMPLE_JS = """
import { resizeBilinear } from "%(web)s/face.js";
import { resizeBox } from "%(web)s/mtcnn.js";
const [gray, rgb, n, w, h] = JSON.parse(process.argv[2]);
const g = Uint8Array.from(gray), c = Uint8Array.from(rgb);
const out = { bilinear: Array.from(resizeBilinear(g, n, 13)), bilinearUp: Array.from(resizeBilinear(g, n, 50)),
              box: Array.from(resizeBox(c, w, h, 3, 17, 11)) };
console.log(JSON.stringify(out));
"""


def test_page_resampling_is_pillows(tmp_path):
    """The page's one Pillow resampling loop (face.js ``resampleCoeffs``) gives PIL's pixels for both of
    its filters: bilinear (the face crops) and box (MTCNN's pyramid, mtcnn.js ``resizeBox``)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the page's modules are checked in Node)")
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (31, 31), dtype=np.uint8)
    rgb = rng.integers(0, 256, (40, 57, 3), dtype=np.uint8)
    script = tmp_path / "resample.mjs"
    script.write_text(RESAMPLE_JS % {"web": (ROOT / "emolib" / "web").as_posix()})
    args = json.dumps([gray.ravel().tolist(), rgb.ravel().tolist(), 31, 57, 40])
    done = subprocess.run([node, str(script), args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    g = Image.fromarray(gray)
    assert out["bilinear"] == np.asarray(g.resize((13, 13), Image.BILINEAR)).ravel().tolist()
    assert out["bilinearUp"] == np.asarray(g.resize((50, 50), Image.BILINEAR)).ravel().tolist()
    assert out["box"] == np.asarray(Image.fromarray(rgb).resize((17, 11), Image.BOX)).ravel().tolist()


def _upload(cdp, photo: Path) -> str:
    """Give ``photo`` to the page's upload input; returns the page's status line once it has read it."""
    doc = cdp.call("DOM.getDocument")
    node = cdp.call("DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="#emolib-live-file")
    cdp.call("DOM.setFileInputFiles", files=[str(photo)], nodeId=node["nodeId"])
    return wait_for(lambda: (s := cdp.js("document.getElementById('emolib-live').dataset.status")).startswith(photo.name)
                    and s, 120, f"the result for {photo.name}")


def camera_run(tmp: Path, y4m: Path, query: str = "", then=None) -> dict:
    """The built page, opened with ``query`` in a fresh headless Chromium whose fake camera plays ``y4m``,
    measured for MEASURE_S (:func:`run_camera`: its state and frame log); ``then(cdp, url, run)`` runs in
    the same browser afterwards, and the page's hand log is read last (``run["hand_log"]``)."""
    with serve(ROOT / "_build" / "html") as url, chromium(tmp / "profile", y4m, tmp / "chromium.log") as cdp:
        open_live_page(cdp, url, query=query)
        run = run_camera(cdp, MEASURE_S)
        if then is not None:
            then(cdp, url, run)
        run["hand_log"] = cdp.js("window.emolibLive.handLog")
        run["hand_options"] = cdp.js("window.emolibLive.handOptions")
    return run


def toggle_every_frame(cdp, seconds: float = 1.5) -> dict:
    """Tick the page's *detect faces on every frame* box while the camera runs, then untick it: the
    detectEvery option and the steps (``timing.mode``: "full" or "tracked") of the frames logged after each
    click."""
    box = "document.getElementById('emolib-live-every')"
    out = {"present": cdp.js(f"{box} !== null")}
    if not out["present"]:
        return out
    out["checked_at_start"] = cdp.js(f"{box}.checked")
    for name in ("on", "off"):
        # the log's length and the click in one call: only the frame in flight can come from before it
        n = cdp.js(f"(() => {{ const n = window.emolibLive.log.length; {box}.click(); return n; }})()")
        out[f"detect_every_{name}"] = cdp.js("window.emolibLive.options.detectEvery")
        time.sleep(seconds)
        out[f"modes_{name}"] = cdp.js(f"window.emolibLive.log.slice({n}).map((e) => e.timing.mode)")
    return out


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """One run of the page on the fake camera (and a photo): its state, frame log and the y4m file."""
    _requirements()
    tmp = tmp_path_factory.mktemp("live")
    build_live_page()
    y4m = tmp / "camera.y4m"
    n = write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)

    def photos(cdp, url, run):
        run["hands_engine"] = cdp.js("document.getElementById('emolib-live').dataset.handsEngine")
        run["every_frame_box"] = toggle_every_frame(cdp)  # the camera still runs
        # the photo upload, without the camera
        run["photo_status"] = {}
        for photo in PHOTOS:
            run["photo_status"][photo.name] = _upload(cdp, photo)
        # hands: the ASL photos, one per gesture
        run["hand_photos"] = {}
        for photo in HAND_PHOTOS if all(p.is_file() for p in HAND_PHOTOS) else []:  # else the hand test skips
            _upload(cdp, photo)
            run["hand_photos"][photo.name] = cdp.js(HAND_STATE)
        run["hand_reads"] = cdp.js("window.emolibLive.handReads")
        run["worker_resources"] = cdp.js("window.emolibLive.workerResources()", await_promise=True)
        run["origin"] = url
        run["resources"] = cdp.js("performance.getEntriesByType('resource').map((e) => e.name)")

    run = camera_run(tmp, y4m, then=photos)
    assert run["options"]["detectEvery"] > 1, "the page's default is to follow the faces"
    return run, y4m, n


@pytest.fixture(scope="module")
def per_frame_run(tmp_path_factory):
    """The page with ``?detectEvery=1&hands=0``: the full face detection on every camera frame."""
    _requirements()
    tmp = tmp_path_factory.mktemp("live_per_frame")
    build_live_page()
    y4m = tmp / "camera.y4m"
    n = write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)
    def box(cdp, url, run):
        run["every_box_checked"] = cdp.js("document.getElementById('emolib-live-every').checked")

    run = camera_run(tmp, y4m, query="detectEvery=1&hands=0", then=box)
    assert run["options"]["detectEvery"] == 1
    return run, y4m, n


@pytest.mark.slow
def test_live_page_draws_faces_with_emotions(live_run):
    run, _, _ = live_run
    assert run["frames"] >= 10, run
    assert run["faces"] >= 1 and run["emotion"], f"no face with an emotion in the DOM state: {run}"
    assert run["overlay_pixels"] > 1000, "nothing drawn on the overlay"
    assert run["fps"] > 0 and run["first_ms"] is not None
    with_faces = [e for e in run["log"] if e["faces"]]
    assert len(with_faces) >= 0.8 * len(run["log"]), "the face of the clip is missed on many frames"
    probs = with_faces[0]["faces"][0]["probabilities"]
    assert len(probs) == 7 and abs(sum(probs.values()) - 1) < 1e-3
    # photos: MTCNN on the whole image, as the Python pipeline: the faces counted by eye in faces.json
    assert run["photo_status"]["obama.jpg"].startswith("obama.jpg: 1 face (happy)"), run["photo_status"]
    assert run["photo_status"]["multiface.jpg"].startswith("multiface.jpg: 6 faces"), run["photo_status"]
    # everything the page loaded came from the static server: no CDN, works offline once loaded
    assert any(r.endswith(".wasm") for r in run["resources"]) and any(r.endswith(".onnx") for r in run["resources"])
    elsewhere = [r for r in run["resources"] if not r.startswith(run["origin"])]
    assert not elsewhere, f"the page loaded files from elsewhere: {elsewhere}"


@pytest.mark.slow
def test_live_page_every_frame_checkbox(live_run, per_frame_run):
    """The *detect faces on every frame* box: unticked as the page opens (ticked with ``?detectEvery=1``);
    ticked while the camera runs, the full detection on every frame (the first frame after the click may
    have been under way); unticked again, the faces followed between full detections."""
    run, _, _ = live_run
    assert per_frame_run[0]["every_box_checked"], "?detectEvery=1 leaves the box unticked"
    box = run["every_frame_box"]
    assert box["present"], "the page has no #emolib-live-every checkbox"
    assert not box["checked_at_start"] and run["options"]["detectEvery"] > 1
    assert box["detect_every_on"] == 1 and box["detect_every_off"] == run["options"]["detectEvery"], box
    on, off = box["modes_on"][1:], box["modes_off"][1:]
    assert len(on) >= 5 and set(on) == {"full"}, f"ticked: {box['modes_on']}"
    assert len(off) >= 5 and off.count("tracked") >= len(off) / 2, f"unticked: {box['modes_off']}"


def _agreement(run: dict, y4m: Path, n: int) -> dict:
    """Over the logged frames where the Python pipeline (full detection on each frame) finds exactly one
    face: how many (``compared``), on how many the page's emotion is that pipeline's (``agree``), and on
    how many the page's box and emotion are those of Python's :class:`~emolib.faces.FaceTracker` (the
    kernel widget's), fed the page's frames in the page's order with the page's settings (``same_box``:
    within BOX_TOL_PX; ``agree_tracker``). Also over all logged frames: on how many the page and the
    tracker chose the same step (``same_step``: full detection or O-Net following the faces), and how
    many the page followed (``tracked``). With ``detectEvery`` 1 the tracker is the pipeline.

    The tracker follows its own boxes from frame to frame, as the page does, so a difference of 1e-5
    between onnxruntime-web and PyTorch can grow between two full detections. The same counts with
    ``_resynced`` come from a second tracker given the page's state before each frame (its boxes after
    the frame before, and the frames since its last full detection): each frame compared alone."""
    from emolib.faces import FaceTracker
    from emolib.pipeline import EmotionPipeline

    frames = read_y4m(y4m)
    assert len(frames) == n
    pipe = EmotionPipeline(hands=False)
    opt = run["options"]
    trackers = {way: FaceTracker(pipe, detect_every=opt["detectEvery"], grow=opt["trackGrow"],
                                 keep_score=opt["keepScore"]) for way in ("", "_resynced")}
    python = {}
    counts = {"compared": 0, "agree": 0, "tracked": 0}
    for way in trackers:
        counts.update({f"same_box{way}": 0, f"agree_tracker{way}": 0, f"same_step{way}": 0})
    since_full = 0  # the page's frames since its last full detection, after the frame before
    for i, (entry, k) in enumerate(zip(run["log"], match_frames(run["log"], frames))):
        if i:
            before = run["log"][i - 1]
            since_full = 0 if before["timing"]["mode"] == "full" else since_full + 1
            resync = trackers["_resynced"]
            resync.boxes = np.array([f["box"] for f in before["faces"]], np.float32).reshape(-1, 4)
            resync.since_full, resync.need_full = since_full, False
        followed = {}
        for way, tracker in trackers.items():
            full_before = tracker.full_detections
            followed[way] = tracker(Image.fromarray(frames[k])).faces
            counts[f"same_step{way}"] += (entry["timing"]["mode"] == "full") == (tracker.full_detections > full_before)
        counts["tracked"] += entry["timing"]["mode"] == "tracked"
        if k not in python:
            python[k] = pipe(frames[k])
        if len(python[k].faces) != 1 or not entry["faces"]:
            continue
        counts["compared"] += 1
        counts["agree"] += entry["faces"][0]["emotion"] == python[k].faces[0].emotion
        for way, faces in followed.items():
            if len(faces) == len(entry["faces"]):
                off = np.abs(np.subtract(entry["faces"][0]["box"], faces[0].box)).max()
                counts[f"same_box{way}"] += bool(off <= BOX_TOL_PX)
                counts[f"agree_tracker{way}"] += entry["faces"][0]["emotion"] == faces[0].emotion
    return {**counts, "frames": len(run["log"])}


@pytest.mark.slow
def test_live_page_agrees_with_the_python_pipeline(per_frame_run):
    """The page with the full detection on every frame (?detectEvery=1) against the Python pipeline on each
    frame: the issue's 90 %, and the boxes within BOX_TOL_PX."""
    a = _agreement(*per_frame_run)
    compared, agree = a["compared"], a["agree"]
    assert compared >= 20, f"only {compared} frames with exactly one face to compare"
    rate = agree / compared
    print(f"full detection on every frame: emotion as the Python pipeline's on {agree} of {compared} frames "
          f"({rate:.1%}); boxes within {BOX_TOL_PX} px: {a['same_box']}")
    assert a["tracked"] == 0
    assert rate >= AGREEMENT, (f"the page agrees with the Python pipeline on {agree} of {compared} frames "
                               f"({rate:.0%})")
    assert a["same_box"] >= AGREEMENT * compared, (f"the page's box is Python's on {a['same_box']} of "
                                                   f"{compared} frames")


@pytest.mark.slow
def test_live_page_follows_faces_as_the_kernel_widget(live_run):
    """The page as it runs by default (faces followed by O-Net between full detections) against Python's
    FaceTracker, which the kernel widget runs, fed the same frames, each from the page's state before it
    (``_resynced`` in _agreement): the same step on each frame, the same boxes and emotions. The tracker
    following its own boxes, and the page's agreement with the Python pipeline's full detection on each
    frame, are printed (the latter is lower: see the module docstring)."""
    a = _agreement(*live_run)
    compared = a["compared"]
    assert compared >= 20, f"only {compared} frames with exactly one face to compare"
    for way, name in (("", "following its own boxes"), ("_resynced", "given the page's boxes")):
        print(f"faces followed on {a['tracked']} of {a['frames']} frames; the tracker {name}: its step on "
              f"{a['same_step' + way]}; on {compared} frames with one face, its box (within {BOX_TOL_PX} px) on "
              f"{a['same_box' + way]}, its emotion on {a['agree_tracker' + way]}; the full detection's emotion "
              f"on {a['agree']} ({a['agree'] / compared:.1%})")
    assert a["tracked"] >= a["frames"] / 2, f"only {a['tracked']} of {a['frames']} frames were followed by O-Net"
    # asserted frame by frame (each from the page's state): see _agreement
    step, box, emotion = a["same_step_resynced"], a["same_box_resynced"], a["agree_tracker_resynced"]
    frames, misses = a["frames"], RESYNCED_MISSES
    assert step >= frames - misses, f"the page chose the tracker's step on {step} of {frames} frames"
    assert box >= compared - misses, f"the page's box is the tracker's on {box} of {compared} frames"
    assert emotion >= compared - misses, f"the page's emotion is the tracker's on {emotion} of {compared}"
    # the tracker following its own boxes: only a floor against gross divergence (see _agreement)
    assert min(a["same_box"], a["agree_tracker"]) >= FREE_FLOOR * compared, a


TRACK_JS = """
import * as ort from "%(ort)s";
import { readFileSync } from "node:fs";
import { trackBoxes } from "%(web)s/mtcnn.js";
ort.env.wasm.numThreads = 1;
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const onet = await ort.InferenceSession.create(job.onet, { executionProviders: ["wasm"] });
const rgba = new Uint8ClampedArray(readFileSync(job.image));
const out = {};
for (const [name, boxes] of Object.entries(job.cases)) {
  out[name] = await trackBoxes(ort, { onet }, rgba, job.w, job.h, boxes, { grow: job.grow, keepScore: job.keep });
}
console.log(JSON.stringify(out));
"""


def test_page_follows_faces_as_python_does_in_node(tmp_path):
    """mtcnn.js's ``trackBoxes`` (the page's step between full detections) with ONNX Runtime Web in Node, on
    the six faces of a group photo, each box moved by a few pixels as between two camera frames, against
    Python's FaceTracker on the same boxes: the same six boxes within BOX_TOL_PX. With a seventh box on
    the background, O-Net keeps only the six faces (the page then runs the full detection); with one box
    twice, NMS keeps it once."""
    import inspect
    import re

    from emolib.faces import FaceTracker
    from emolib.onnx_export import export_mtcnn
    from emolib.pipeline import EmotionPipeline

    node = _node_or_skip()
    if not ORT_NODE.is_file():
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in web/ (make book does)")
    if not PHOTOS[1].is_file():
        pytest.skip(f"the group photo {PHOTOS[1]} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    # the page's defaults are FaceTracker's
    engine = (ROOT / "emolib" / "web" / "engine.js").read_text()
    js = {k: float(re.search(rf"\b{k}: ([0-9.]+)", engine).group(1)) for k in ("trackGrow", "keepScore")}
    py = inspect.signature(FaceTracker).parameters
    assert js == {"trackGrow": py["grow"].default, "keepScore": py["keep_score"].default}
    rgb = np.asarray(Image.open(PHOTOS[1]).convert("RGB"))
    h, w = rgb.shape[:2]
    pipe = EmotionPipeline(hands=False)
    tracker = FaceTracker(pipe)
    assert len(tracker(Image.fromarray(rgb))) == 6
    moved = np.asarray(tracker.boxes, np.float32) + np.float32([3, -2, 3, -2])  # as between two frames
    tracker.boxes = moved
    python = tracker(Image.fromarray(rgb))
    assert tracker.since_full == 1 and len(python) == 6, "Python followed the six faces with O-Net alone"
    onet, = export_mtcnn(tmp_path, ("onet",))
    background = [[5, 5, 45, 45]] if min(moved[:, 1]) > 60 else [[w - 45, h - 45, w - 5, h - 5]]
    cases = {"moved": moved.tolist(), "with_background": moved.tolist() + background,
             "twice": moved.tolist() + [moved[0].tolist()]}
    image = _rgba_file(rgb, tmp_path / "group.rgba")
    got = _run_node(node, tmp_path, TRACK_JS, {"onet": str(onet), "image": image["path"], "w": w, "h": h,
                                                "grow": js["trackGrow"], "keep": js["keepScore"], "cases": cases})

    def clipped_sorted(found):  # engine.js clips to the frame and sorts left to right, as _clip_and_sort
        b = np.array([f["box"] for f in found], np.float64)
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, w)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, h)
        return b[np.lexsort((b[:, 1], b[:, 0]))]

    want = np.array([f.box for f in python.faces])
    for name in cases:
        assert len(got[name]) == 6, (name, len(got[name]))
        np.testing.assert_allclose(clipped_sorted(got[name]), want, rtol=0, atol=BOX_TOL_PX, err_msg=name)


# --------------------------------------------------------------------------- hands (emolib/web/hands.js)

ORT_NODE = ROOT / "web" / "node_modules" / "onnxruntime-web" / "dist" / "ort.node.min.mjs"
ASL = DATA / "asl" / "train"
#: hands.js's landmarks may differ from Python's by this many pixels (on 224x224 photos). Given the same
#: network outputs the JavaScript steps give Python's numbers (test_page_hand_steps_equal_pythons); what
#: is left is ONNX Runtime Web's WebAssembly kernels against onnxruntime's CPU kernels: at most 0.0085 px
#: on 24 ASL photos when this was written. 0.1 px is 12 times that, and still 5 times smaller than the
#: half-pixel shift a mistaken pixel-centre convention in the crop would cause.
HAND_TOL_PX = 0.1
#: In Chromium the page reads the photo through the browser's own JPEG decoder and a canvas; on the four
#: ASL photos the landmarks were still within 0.006 px of Python's when this was written: the same bound.
CHROME_TOL_PX = HAND_TOL_PX
# Camera hands. On the camera, Python reads the frames with the page's very pixels (:func:`i420_to_rgb`,
# :func:`match_frames`); on this clip's small, half-hidden hands the palm and presence scores sit near their
# thresholds on some frames, where WebAssembly's and onnxruntime's last bits could still tip them. Read anew
# on each frame, every frame agreed on hands, sides and gestures in the five runs of the module docstring
# (with PyAV's decoding and the thumbnail pairing: 47 of 54, 87 %). Followed from read to read (the page's
# default), each side reads where its own last landmarks point, so those last bits can grow until a hand is
# lost or found again: 134 of 139, 143 of 143 and 143 of 144 reads agreed, and the step on 138 of 139,
# 143 of 143 and 144 of 144 (``results/benchmarks/live_page_agreement.json``, 2026-11-28 07:44 UTC), but
# only 126 of 141 in the fresh-clone CI run of that day's last stop (its log). That chain is the runtimes'
# drift, not a fault of either side, so the test gives Python the page's state before each read
# (``resynced``) and allows RESYNCED_MISSES there; the free chain only has to stay above FREE_FLOOR.

HAND_STEPS_JS = """
import { readFileSync } from "node:fs";
import * as H from "%(web)s/hands.js";
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const rgba = new Uint8ClampedArray(readFileSync(job.image));
const out = {};
out.warps = job.warps.map(({ roi, size, border }) => {
  const t = H.warpToTensor(rgba, job.w, job.h, H.padRoi(roi, size, size).roi, size, size, border);
  return Buffer.from(Uint8Array.from(t, (v) => Math.round(v * 255))).toString("base64");
});
const palm = job.palm;
const dets = H.weightedNms(H.decodePalms(Float32Array.from(palm.boxes), Float32Array.from(palm.scores), 0.5))
  .map((d) => H.removeLetterbox(d, palm.padding));
out.palms = dets.map((d) => ({ box: d.box, keypoints: d.keypoints, score: d.score }));
out.rects = H.associate(dets.map((d) => ({ rect: H.palmToRect(d, job.w, job.h), palm: d }))).map((r) => r.rect);
out.projected = H.projectLandmarks(job.project.raw, job.project.padding, job.project.rect, job.w, job.h);
out.normalized = job.normalize.map(({ landmarks, handedness }) => H.normalizeLandmarks(landmarks, handedness));
out.followed = job.normalize.map(({ landmarks }) => H.handRegionFromLandmarks(landmarks, job.w, job.h));
out.assign = job.assign.map(({ faces, hands }) => {
  const people = faces.map((box) => ({ box }));
  const rest = H.assignHands(people, hands);
  return { slots: people.map((p) => [p.hands.left, p.hands.right].map((h) => (h ? hands.indexOf(h) : -1))),
           rest: rest.map((h) => hands.indexOf(h)) };
});
console.log(JSON.stringify(out));
"""

HAND_READER_JS = """
import * as ort from "%(ort)s";
import { readFileSync } from "node:fs";
import { HandReader } from "%(web)s/hands.js";
ort.env.wasm.numThreads = 1;
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const reader = await HandReader.create(ort, job.models + "/", job.info);
const out = [];
for (const { path, w, h } of job.images) {
  const hands = await reader.read(new Uint8ClampedArray(readFileSync(path)), w, h, []);
  out.push(hands.map(({ box, handedness, landmarks, gesture, probabilities, score }) =>
    ({ box, handedness, landmarks, gesture, probabilities, score })));
}
console.log(JSON.stringify(out));
"""


def _node_or_skip() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (the page's modules are checked in Node)")
    return node


def _run_node(node: str, tmp_path: Path, script: str, job: dict) -> dict:
    (tmp_path / "script.mjs").write_text(script % {"web": (ROOT / "emolib" / "web").as_posix(),
                                                   "ort": ORT_NODE.as_posix()})
    (tmp_path / "job.json").write_text(json.dumps(job))
    done = subprocess.run([node, str(tmp_path / "script.mjs"), str(tmp_path / "job.json")], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _rgba_file(rgb: np.ndarray, path: Path) -> dict:
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], 2)
    rgba.tofile(path)
    return {"path": str(path), "w": rgb.shape[1], "h": rgb.shape[0]}


def _asl_or_skip(per_letter: int) -> list[Path]:
    if not ASL.is_dir():
        pytest.skip(f"the ASL photos {ASL} are absent (set EMOLIB_DATA to the folder of ../shared/data)")
    return [p for letter in "AFLV" for p in sorted((ASL / letter).glob("*.jpg"))[:per_letter]]


def test_page_hand_steps_equal_pythons(tmp_path):
    """hands.js's steps on the same inputs as emolib's Python: the rotated crops (uint8, bit for bit), palm
    decoding with weighted NMS and the hand regions (from the Python palm network's outputs on a real
    photo), the landmarks' projection, normalize_landmarks, assign_hands, and the region a followed hand's
    landmarks give the next camera frame (HandTracker's hand_region_from_landmarks)."""
    import base64
    from types import SimpleNamespace

    from emolib.hands import HandDetector, hand_region_from_landmarks, normalize_landmarks
    from emolib.hands.landmark import project
    from emolib.hands.runtime import load_model as load_hand_model
    from emolib.hands.palm import (INPUT_SIZE, NormRect, RotatedRect, associate, decode, palm_to_rect,
                                   remove_letterbox, ssd_anchors, weighted_nms)
    from emolib.hands.warp import image_to_tensor, pad_roi, warp
    from emolib.pipeline import assign_hands

    node = _node_or_skip()
    pytest.importorskip("onnxruntime", reason="the palm network's outputs come from onnxruntime")
    photo = _asl_or_skip(1)[2]  # an L
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    h, w = rgb.shape[:2]
    image = _rgba_file(rgb, tmp_path / "photo.rgba")
    rois = [RotatedRect(w / 2, h / 2, w, h), RotatedRect(100.3, 130.7, 150.2, 150.2, 0.61),
            RotatedRect(20.0, 200.5, 90.0, 60.0, -2.9), RotatedRect(112.0, 112.0, 300.0, 300.0, 3.14159)]
    warps = [(r, s, b) for r, s, b in zip(rois, (192, 224, 224, 192), ("zero", "replicate", "zero", "replicate"))]
    tensor, padding, _ = image_to_tensor(rgb, RotatedRect(w / 2, h / 2, w, h), INPUT_SIZE, INPUT_SIZE, "zero")
    out = load_hand_model("palm", 0)(tensor)
    with HandDetector(model_complexity=0) as detect:
        hands = detect(rgb)
    boxes, scores = sorted(out.values(), key=lambda a: -a.shape[-1])
    dets = [remove_letterbox(d, padding) for d in weighted_nms(decode(boxes, scores, ssd_anchors(), 0.5))]
    assert dets, "no palm in the photo"
    rects = [r for r, _ in associate([(palm_to_rect(d, w, h), d) for d in dets])]
    raw = np.random.default_rng(4).random(63) * 224
    lm = [np.asarray(hd.landmarks) for hd in hands] + [np.random.default_rng(5).normal(100, 30, (21, 3))]
    sides = [hd.handedness for hd in hands] + ["left"]
    hand = lambda x, y, side: {"landmarks": [[x, y, 0.0]] * 21, "handedness": side, "box": [x, y, x + 9, y + 9]}  # noqa: E731
    assign = [  # two people and their hands; a third hand too far; two "right" hands near one face; no face
        {"faces": [[100, 50, 140, 100], [300, 60, 340, 110]],
         "hands": [hand(330, 200, "left"), hand(90, 190, "right"), hand(150, 210, "left"), hand(900, 900, "left")]},
        {"faces": [[100, 50, 140, 100]], "hands": [hand(80, 160, "right"), hand(120, 150, "right")]},
        {"faces": [], "hands": [hand(80, 160, "right")]},
    ]
    job = {"image": image["path"], "w": w, "h": h,
           "warps": [{"roi": {"cx": r.cx, "cy": r.cy, "width": r.width, "height": r.height, "rotation": r.rotation},
                      "size": s, "border": b} for r, s, b in warps],
           "palm": {"boxes": boxes.ravel().tolist(), "scores": scores.ravel().tolist(), "padding": list(padding)},
           "project": {"raw": raw.tolist(), "padding": [0.0, 0.05, 0.0, 0.05],
                       "rect": {"x": 0.45, "y": 0.55, "width": 0.6, "height": 0.7, "rotation": 0.8}},
           "normalize": [{"landmarks": x.tolist(), "handedness": s} for x, s in zip(lm, sides)], "assign": assign}
    got = _run_node(node, tmp_path, HAND_STEPS_JS, job)
    for (r, s, b), js in zip(warps, got["warps"]):
        ref = warp(rgb, pad_roi(r, s, s)[0], s, s, b)
        assert np.frombuffer(base64.b64decode(js), np.uint8).tolist() == ref.ravel().tolist(), (r, b)
    assert len(got["palms"]) == len(dets)
    for js, d in zip(got["palms"], dets):
        np.testing.assert_allclose(js["box"], d.box, rtol=0, atol=1e-12)
        np.testing.assert_allclose(js["keypoints"], d.keypoints, rtol=0, atol=1e-12)
        assert js["score"] == pytest.approx(d.score, abs=1e-12)
    np.testing.assert_allclose([[r["x"], r["y"], r["width"], r["height"], r["rotation"]] for r in got["rects"]],
                               [[r.x_center, r.y_center, r.width, r.height, r.rotation] for r in rects], rtol=0, atol=1e-12)
    ref = project(raw.reshape(21, 3), (0.0, 0.05, 0.0, 0.05), NormRect(0.45, 0.55, 0.6, 0.7, 0.8), w, h)
    np.testing.assert_allclose(got["projected"], ref, rtol=0, atol=1e-4)
    for js, x, s in zip(got["normalized"], lm, sides):
        np.testing.assert_allclose(js, normalize_landmarks(x, s), rtol=0, atol=1e-6)
    for js, x in zip(got["followed"], lm):
        r = hand_region_from_landmarks(x, w, h)
        np.testing.assert_allclose([js["x"], js["y"], js["width"], js["height"], js["rotation"]],
                                   [r.x_center, r.y_center, r.width, r.height, r.rotation], rtol=0,
                                   atol=1e-12)
    for case, js in zip(assign, got["assign"]):
        faces = [SimpleNamespace(box=b, hands=None) for b in case["faces"]]
        hs = [SimpleNamespace(landmarks=np.asarray(x["landmarks"]), handedness=x["handedness"], box=x["box"])
              for x in case["hands"]]
        rest = assign_hands(faces, hs)
        index = {id(x): i for i, x in enumerate(hs)}
        slots = [[index[id(f.hands[k])] if f.hands[k] is not None else -1 for k in ("left", "right")] for f in faces]
        assert js == {"slots": slots, "rest": [index[id(x)] for x in rest]}, case


@pytest.mark.slow
def test_page_finds_hands_as_python_does_in_node(tmp_path):
    """hands.js with ONNX Runtime Web (its Node build, the same WebAssembly as the page's) on real ASL photos,
    against emolib's HandDetector with the page's settings and files and GestureClassifier: the same hands,
    the same sides, landmarks within HAND_TOL_PX, the same gestures."""
    from emolib.gestures import GestureClassifier
    from emolib.hands import HandDetector
    from emolib.livepage import LIVE_HAND_SETTINGS, stage_hands

    node = _node_or_skip()
    pytest.importorskip("onnxruntime", reason="the Python side runs the hand networks in onnxruntime")
    if not ORT_NODE.is_file():
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in web/ (make book does)")
    photos = _asl_or_skip(3)
    models = tmp_path / "models"
    info = stage_hands(models)
    assert info["settings"] == LIVE_HAND_SETTINGS
    images = [_rgba_file(np.asarray(Image.open(p).convert("RGB")), tmp_path / f"{k}.rgba") for k, p in enumerate(photos)]
    got = _run_node(node, tmp_path, HAND_READER_JS, {"models": str(models), "info": info, "images": images})
    settings = {k: v for k, v in LIVE_HAND_SETTINGS.items() if k != "hand_distance"}
    clf = GestureClassifier("gestures-asl")
    found = 0
    with HandDetector(**settings, model_dir=models) as detect:
        for photo, js in zip(photos, got):
            hands = detect(photo)
            clf.classify(None, hands)
            assert len(js) == len(hands), photo
            for a, b in zip(hands, js):
                assert b["handedness"] == a.handedness and b["gesture"] == a.gesture, photo
                np.testing.assert_allclose(np.asarray(b["landmarks"])[:, :2], a.landmarks[:, :2], rtol=0,
                                           atol=HAND_TOL_PX, err_msg=str(photo))
                np.testing.assert_allclose(b["box"], a.box, rtol=0, atol=2 * HAND_TOL_PX)
                assert b["probabilities"] == pytest.approx(a.probabilities, abs=1e-3)
                found += 1
    assert found >= len(photos) - 1, "hands were missed in most photos"


HAND_TRACK_JS = """
import * as ort from "%(ort)s";
import { readFileSync } from "node:fs";
import { HandReader } from "%(web)s/hands.js";
ort.env.wasm.numThreads = 1;
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const reader = await HandReader.create(ort, job.models + "/", job.info);
reader.settings.pad_retry = 0;  // the camera's (live.js CAMERA_PAD_RETRY)
reader.settings.palm_every = job.palmEvery;
const all = readFileSync(job.frames), size = job.w * job.h * 4;
const frame = (k) => new Uint8ClampedArray(all.buffer, all.byteOffset + k * size, size);
const pick = (hands) => hands.map(({ handedness, landmarks, gesture, score }) =>
  ({ handedness, landmarks, gesture, score }));
const out = [];
for (let k = 0; k < job.states.length; k++) {
  // the state Python's HandTracker had before this frame: its followed regions, each with its palm's score
  reader.followed = job.states[k].followed.map(({ rect, score }) => ({ rect, palm: { score } }));
  reader.sincePalm = job.states[k].sincePalm;
  reader.trackSize = `${job.w}x${job.h}`;
  const hands = await reader.read(frame(k), job.w, job.h, [], true);
  out.push({ palm: reader.palmDetected, since: reader.sincePalm, hands: pick(hands),
             next: reader.followed.map((f) => f.rect) });
}
// a frame of another size starts afresh: with a hand followed and the palm detector just run, the next
// frame of the same size would be followed; one of another size (h x w) runs the palm detector
const withHand = job.states.find((st) => st.followed.length);
reader.followed = withHand.followed.map(({ rect, score }) => ({ rect, palm: { score } }));
reader.sincePalm = 0;
reader.trackSize = `${job.w}x${job.h}`;
await reader.read(frame(0), job.h, job.w, [], true);
const resized = { palm: reader.palmDetected, size: reader.trackSize };
// a photo between two frames neither uses nor changes the followed hands; reset forgets them
const followed = JSON.stringify(reader.followed);
await reader.read(frame(0), job.w, job.h, [], false);
const unchanged = JSON.stringify(reader.followed) === followed;
reader.reset();
const after = await reader.read(frame(0), job.w, job.h, [], true);
const afterReset = { palm: reader.palmDetected, hands: pick(after) };
console.log(JSON.stringify({ frames: out, unchanged, afterReset, resized }));
"""


@pytest.mark.slow
def test_page_follows_hands_as_python_does_in_node(tmp_path):
    """The camera's hand reading (hands.js ``HandReader.read(..., track=true)``, MediaPipe's video mode) with
    ONNX Runtime Web in Node, on the camera clip's frames in order, against emolib's HandTracker (and
    GestureClassifier) with the page's files and settings (its default ``palmEvery`` too, HandTracker's
    ``palm_every``). Step by step: before each frame the page's reader is given the state Python's tracker had
    (its followed regions, their palms' scores, the frames since the palm detector ran); then on every
    frame the same step (palm detector or not), the same hands, sides and gestures, landmarks within
    HAND_TOL_PX, and the next frame's regions within 0.5 px (rotation 0.01 rad). Lock-step, because following
    amplifies the last bits: left to run on its own, each side on its own landmarks, a difference of
    hundredths of a pixel on the clip's first frame grew to tenths on the next, and to whole pixels (and on
    some frames another number of hands) a few frames later, as emolib's and MediaPipe's own following drift apart
    (``results/benchmarks/hands_vs_mediapipe_video.json``). A photo read between two frames leaves the
    followed hands as they were; after a reset the palm detector runs again."""
    import re

    from emolib.gestures import GestureClassifier
    from emolib.hands import HandDetector, HandTracker
    from emolib.livepage import LIVE_HAND_SETTINGS, stage_hands

    node = _node_or_skip()
    _requirements_node_video()
    live = (ROOT / "emolib" / "web" / "live.js").read_text()
    # the page's default palmEvery
    palm_every = int(re.search(r"PALM_EVERY_ASKED >= 1 \? PALM_EVERY_ASKED : (\d+);", live).group(1))
    models = tmp_path / "models"
    info = stage_hands(models)
    y4m = tmp_path / "camera.y4m"
    write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)
    frames = read_y4m(y4m)
    h, w = frames[0].shape[:2]
    settings = {k: v for k, v in LIVE_HAND_SETTINGS.items() if k != "hand_distance"}
    clf = GestureClassifier("gestures-asl")
    python = []
    with HandDetector(**settings, model_dir=models) as detect:
        tracker = HandTracker(detect, palm_every=palm_every)
        for frame in frames:
            state = {"sincePalm": tracker.since_palm, "followed": [
                {"rect": {"x": r.x_center, "y": r.y_center, "width": r.width, "height": r.height,
                          "rotation": r.rotation}, "score": palm.score} for r, palm in tracker.followed]}
            hands = tracker(frame)
            clf.classify(None, hands)
            python.append((state, tracker.palm_detected, hands, list(tracker.regions), tracker.since_palm))
    rgba = np.concatenate([np.stack(frames), np.full(np.stack(frames).shape[:3] + (1,), 255, np.uint8)], 3)
    rgba.tofile(tmp_path / "frames.rgba")
    job = {"models": str(models), "info": info, "w": w, "h": h, "frames": str(tmp_path / "frames.rgba"),
           "states": [p[0] for p in python], "palmEvery": palm_every}
    got = _run_node(node, tmp_path, HAND_TRACK_JS, job)
    assert got["unchanged"], "a photo changed the followed hands"
    assert got["afterReset"]["palm"] and got["afterReset"]["hands"], "after a reset the palm detector runs"
    assert palm_every > 1 and got["resized"] == {"palm": True, "size": f"{h}x{w}"}, \
        "a frame of another size must start afresh (palm detector, the size remembered)"
    worst, followed = 0.0, 0
    for k, ((_, palm, hands, regions, since), js) in enumerate(zip(python, got["frames"])):
        assert js["palm"] == palm, (k, "the palm detector ran on one side only")
        assert js["since"] == since, (k, "frames since the palm detector: the page counts otherwise")
        followed += not palm
        sides = [(b["handedness"], b["gesture"]) for b in js["hands"]]
        assert [(h.handedness, h.gesture) for h in hands] == sides, k
        for a, b in zip(hands, js["hands"]):
            np.testing.assert_allclose(np.asarray(b["landmarks"])[:, :2], a.landmarks[:, :2], rtol=0,
                                       atol=HAND_TOL_PX, err_msg=f"frame {k}")
            worst = max(worst, float(np.abs(np.asarray(b["landmarks"])[:, :2] - a.landmarks[:, :2]).max()))
            assert b["score"] == pytest.approx(a.score, abs=1e-4)
        assert len(js["next"]) == len(regions), k
        for r, n in zip(regions, js["next"]):
            np.testing.assert_allclose([n["x"] * w, n["y"] * h, n["width"] * w, n["height"] * h],
                                       [r.x_center * w, r.y_center * h, r.width * w, r.height * h], rtol=0,
                                       atol=0.5)
            assert abs(n["rotation"] - r.rotation) < 0.01, k
    assert followed >= len(frames) // 4, f"only {followed} of {len(frames)} read without palm detection"
    print(f"palm_every {palm_every}: {len(frames)} frames, each followed as Python follows it ({followed} "
          f"without the palm detector); "
          f"largest landmark difference {worst:.4f} px")


def _requirements_node_video() -> None:
    if not ORT_NODE.is_file():
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in web/ (make book does)")
    if not CLIP.is_file():
        pytest.skip(f"the test video {CLIP} is absent (set EMOLIB_DATA to the folder of ../shared/data)")
    pytest.importorskip("av", reason="PyAV is needed to decode the test video: pip install av")
    pytest.importorskip("onnxruntime", reason="the Python side runs the hand networks in onnxruntime")


@pytest.mark.slow
def test_live_page_reads_hands_in_photos(live_run):
    """The ASL photos given to the page's upload input: the page finds the hands emolib's HandDetector finds
    with the page's files and settings, with the same sides and gestures, landmarks within CHROME_TOL_PX
    (Chromium decodes the JPEG itself), and its gestures agree with the Python pipeline's
    (EmotionPipeline, MediaPipe's full networks as gestures-asl was trained with)."""
    from emolib.gestures import GestureClassifier
    from emolib.hands import HandDetector
    from emolib.livepage import LIVE_HAND_SETTINGS
    from emolib.pipeline import EmotionPipeline

    if not all(p.is_file() for p in HAND_PHOTOS):
        pytest.skip(f"the ASL photos are absent ({HAND_PHOTOS[0]}; set EMOLIB_DATA to the folder of ../shared/data)")

    run, _, _ = live_run
    settings = {k: v for k, v in LIVE_HAND_SETTINGS.items() if k != "hand_distance"}
    clf = GestureClassifier("gestures-asl")
    pipe = EmotionPipeline(hands=True)
    agree, worst = 0, 0.0
    with HandDetector(**settings, model_dir=ROOT / "_build" / "html" / "_static" / "live" / "models") as detect:
        for photo in HAND_PHOTOS:
            page = run["hand_photos"][photo.name]
            hands = detect(photo)
            clf.classify(None, hands)
            assert page["hands"] == len(hands) == len(page["list"]) >= 1, (photo.name, page["hands"], len(hands))
            assert page["gesture"] == hands[0].gesture, photo.name
            for a, b in zip(hands, page["list"]):
                assert b["handedness"] == a.handedness and b["gesture"] == a.gesture, photo.name
                np.testing.assert_allclose(np.asarray(b["landmarks"])[:, :2], a.landmarks[:, :2], rtol=0,
                                           atol=CHROME_TOL_PX, err_msg=photo.name)
                worst = max(worst, float(np.abs(np.asarray(b["landmarks"])[:, :2] - a.landmarks[:, :2]).max()))
            result = pipe(photo)
            python = [h.gesture for h in result.hands] + [h.gesture for f in result.faces
                                                          for h in f.hands.values() if h is not None]
            agree += page["gesture"] in python
    assert agree == len(HAND_PHOTOS), f"the page's gesture is the Python pipeline's on {agree} of {len(HAND_PHOTOS)}"
    print(f"largest landmark difference page - Python: {worst:.4f} px")


def camera_hand_agreement(run: dict, y4m: Path) -> dict:
    """The camera frames the page read hands on (its hand log, in the order it read them), fed in that order
    to emolib's HandTracker (the page's settings, files and palm_every, as the page follows hands on the
    camera) and GestureClassifier, in two ways. ``free``: the tracker follows its own hands from read to read,
    as the page does; ``resynced``: before each read the tracker is given the page's state after the read
    before (the followed regions and their palms' scores, the reads since the palm detector ran, from the
    hand log), so that each read is compared alone and a difference cannot carry over. For each: on how many
    frames (``compared``) the page took the tracker's step (``same_step``: the palm detector or not) and had
    the same number of hands, sides and gestures (``agree``) and the same next regions (``same_regions``:
    the tracker's from its landmarks, the page's from its own, within REGION_TOL_PX and REGION_TOL_RAD;
    ``region_px``, ``region_rad``: the largest differences where both had as many), how many had a hand
    (``with_hands``) and how many were read without the palm detector (``followed``). The worker reads
    only some camera frames (those that come while it is idle, and the newest it missed): the tracker
    gets exactly those. The hand log's first
    entries are the camera's reads of the logged frames (``run["log"]``); the reads after (of frames shown
    after the log was taken, and of photos) are not compared."""
    from emolib.gestures import GestureClassifier
    from emolib.hands import HandDetector, HandTracker
    from emolib.hands.palm import NormRect, PalmDetection
    from emolib.livepage import LIVE_HAND_SETTINGS

    frames = read_y4m(y4m)
    by_frame = dict(zip((e["frame"] for e in run["log"]), match_frames(run["log"], frames)))
    camera = []
    for entry in run["hand_log"]:
        if entry["frame"] not in by_frame:
            break
        camera.append(entry)
    assert all(e["frame"] not in by_frame for e in run["hand_log"][len(camera):]), \
        "a hand read of a logged frame came after one of a frame the log lacks: the order cannot be followed"
    settings = {k: v for k, v in LIVE_HAND_SETTINGS.items() if k != "hand_distance"}
    clf = GestureClassifier("gestures-asl")
    keys = ("compared", "agree", "with_hands", "same_step", "followed", "same_regions", "same_since_palm")
    counts = {way: dict.fromkeys(keys, 0) | {"region_px": 0.0, "region_rad": 0.0}
              for way in ("free", "resynced")}
    with HandDetector(**settings, model_dir=ROOT / "_build" / "html" / "_static" / "live" / "models") as detect:
        trackers = {way: HandTracker(detect, palm_every=run["hand_options"]["palmEvery"]) for way in counts}
        since_palm = 0
        for i, entry in enumerate(camera):
            frame = frames[by_frame[entry["frame"]]]
            for way, tracker in trackers.items():
                if way == "resynced" and i:  # the page's state after its read before this one
                    before = camera[i - 1]
                    tracker.followed = [(NormRect(f["rect"]["x"], f["rect"]["y"], f["rect"]["width"],
                                                  f["rect"]["height"], f["rect"]["rotation"]),
                                         PalmDetection(np.zeros(4), np.zeros((7, 2)), f["score"]))
                                        for f in before["followed"]]
                    tracker.since_palm = since_palm  # counted from the log's palm flags, not the page's
                hands = tracker(frame)
                clf.classify(None, hands)
                c = counts[way]
                c["compared"] += 1
                c["with_hands"] += bool(hands)
                c["followed"] += not tracker.palm_detected
                c["same_step"] += entry["palm"] == tracker.palm_detected
                c["agree"] += [(h.handedness, h.gesture) for h in hands] == [(h["handedness"], h["gesture"])
                                                                             for h in entry["hands"]]
                d = region_difference(tracker.regions, entry["followed"], *frame.shape[1::-1])
                if d is not None:
                    c["same_regions"] += d[0] <= REGION_TOL_PX and d[1] <= REGION_TOL_RAD
                    c["region_px"], c["region_rad"] = max(c["region_px"], d[0]), max(c["region_rad"], d[1])
                c["same_since_palm"] += tracker.since_palm == entry["sincePalm"]
            since_palm = 0 if entry["palm"] else since_palm + 1  # HandTracker's count after this read
    return counts


#: The next read's hand regions of the page and of HandTracker are the same when their centres and sizes
#: differ by at most REGION_TOL_PX pixels and their turns by at most REGION_TOL_RAD. A region comes from 12
#: landmarks, which agree within HAND_TOL_PX on photos; on the camera clip the largest differences, given
#: the page's state, were 0.017 px and 0.00026 rad on 2026-11-28 (printed by the test), while a half-pixel
#: slip (a wrong pixel-centre convention) would move a centre by 0.5 px.
REGION_TOL_PX = 0.2
REGION_TOL_RAD = 2e-3


def region_difference(python: list, page: list[dict], width: int, height: int) -> tuple[float, float] | None:
    """The largest difference between HandTracker's next regions (:class:`~emolib.hands.palm.NormRect`)
    and the page's (its hand log's ``followed``), in the same order: ``(pixels, radians)``, or None when
    their numbers differ."""
    if len(python) != len(page):
        return None
    px = rad = 0.0
    for r, f in zip(python, page):
        q = f["rect"]
        px = max(px, abs(r.x_center - q["x"]) * width, abs(r.width - q["width"]) * width,
                 abs(r.y_center - q["y"]) * height, abs(r.height - q["height"]) * height)
        rad = max(rad, abs((r.rotation - q["rotation"] + np.pi) % (2 * np.pi) - np.pi))
    return px, rad


@pytest.mark.slow
def test_live_page_hands_on_the_camera_agree_with_python(live_run):
    """The camera frames the page read hands on, fed in the same order to emolib's HandTracker, each read
    from the page's own state after the read before (``resynced``, see camera_hand_agreement): the same step
    (palm detector or not), the same number of hands and sides, the same gestures and the same regions for
    the next read, on all but RESYNCED_MISSES of the frames; most reads followed the hands without the
    palm detector. The tracker left to follow its own hands (``free``) only has to stay above FREE_FLOOR:
    there the last bits' differences can grow from read to read (see the comment on camera hands above
    HAND_STEPS_JS)."""
    run, y4m, _ = live_run
    assert run["hand_options"]["track"], "the page does not follow the hands on the camera"
    ways = camera_hand_agreement(run, y4m)
    a = ways["resynced"]
    compared, agree, with_hands = a["compared"], a["agree"], a["with_hands"]
    assert compared >= 20 and with_hands >= compared // 2, (compared, with_hands)
    misses = RESYNCED_MISSES
    assert agree >= compared - misses, f"the page's hands are Python's on {agree} of {compared} frames"
    assert a["same_step"] >= compared - misses, f"the tracker's step on {a['same_step']} of {compared}"
    since = a["same_since_palm"]
    assert since >= compared - misses, f"reads since the palm counted as Python's on {since} of {compared}"
    assert a["followed"] >= compared // 3, f"only {a['followed']} of {compared} reads followed the hands"
    assert a["same_regions"] >= compared - misses, (f"the next read's regions are HandTracker's on "
                                                    f"{a['same_regions']} of {compared} reads")
    free = ways["free"]  # following its own hands: only a floor against gross divergence
    assert free["agree"] >= FREE_FLOOR * free["compared"], free
    for way, c in ways.items():
        print(f"camera hands ({way}): the page agrees with HandTracker on {c['agree']} of {c['compared']} "
              f"frames ({c['with_hands']} with hands, {c['followed']} followed without the palm detector, the "
              f"same step on {c['same_step']}, the same next regions on {c['same_regions']}, the largest "
              f"region difference {c['region_px']:.2g} px, {c['region_rad']:.2g} rad)")


@pytest.mark.slow
def test_live_page_reads_hands_in_a_worker(live_run):
    """By default the page reads hands in its Web Worker (hands_worker.js), not waiting for them on the camera:
    every hand result is counted and logged with the frame it was read on, a frame the page showed."""
    run, _, _ = live_run
    assert run["hands_engine"] == "worker", "the page's hands do not come from its worker"
    camera = [e["frame"] for e in run["hand_log"] if e["frame"] <= run["frames"]]
    assert len(camera) >= 20 and camera == sorted(set(camera)), camera
    assert run["hand_reads"] == len(run["hand_log"]), "a hand result is not counted (or counted twice)"
    # what the worker fetched (ONNX Runtime Web's WebAssembly, the hand models; its module imports are not listed):
    # all from the page's server
    loaded = run["worker_resources"]
    for name in (".wasm", "palm", "landmark", "gestures"):
        assert any(name in r for r in loaded), (name, loaded)
    assert all(r.startswith(run["origin"]) for r in loaded), f"the hand worker loaded files from elsewhere: {loaded}"


@pytest.mark.slow
def test_live_page_reads_hands_on_the_main_thread_when_asked(tmp_path):
    """``?handsWorker=0``: the hands are read on the main thread, awaited in every camera frame (each shown
    frame has its hand read), and a photo's hands are the same as the worker's; when the worker's script
    does not load, when its camera reads keep failing, and without ``Worker`` in the browser, the page reads
    them on the main thread."""
    _requirements()
    if not all(p.is_file() for p in HAND_PHOTOS):
        pytest.skip(f"the ASL photos are absent ({HAND_PHOTOS[0]}; set EMOLIB_DATA to the folder of ../shared/data)")
    build_live_page()
    y4m = tmp_path / "camera.y4m"
    write_y4m(CLIP, y4m, CLIP_START_S, 1.0)
    got = {}
    with serve(ROOT / "_build" / "html") as url, chromium(tmp_path / "profile", y4m, tmp_path / "chromium.log") as cdp:
        for query in ("handsWorker=0", ""):
            open_live_page(cdp, url, query=query)
            wait_for(lambda: cdp.js("window.emolibLive.handsEngine"), 120, "the hand models")
            engine = cdp.js("window.emolibLive.handsEngine")
            if query:
                run = run_camera(cdp, 2.0)
                frames = [e["frame"] for e in cdp.js("window.emolibLive.handLog")]
                assert frames == list(range(1, len(frames) + 1)) and len(frames) >= run["frames"] >= 5, frames
                cdp.js("document.getElementById('emolib-live-start').click()")  # stop
            _upload(cdp, HAND_PHOTOS[0])
            got[engine] = cdp.js(HAND_STATE)
        # a worker whose script does not load (here: a wrong URL): the page falls back to the main thread
        script = cdp.call("Page.addScriptToEvaluateOnNewDocument", source=(
            "const W = window.Worker; window.Worker = function (url, opts) { return new W(url + '.missing', opts); };"))
        open_live_page(cdp, url)
        wait_for(lambda: cdp.js("window.emolibLive.handsEngine"), 120, "the hand models")
        broken = cdp.js("window.emolibLive.handsEngine")
        _upload(cdp, HAND_PHOTOS[0])
        got["broken worker"] = cdp.js(HAND_STATE)
        cdp.call("Page.removeScriptToEvaluateOnNewDocument", identifier=script["identifier"])
        # a worker that starts but whose camera reads fail (their faces are made unreadable): after a few
        # failures in a row the page stops it and reads the hands on the main thread, the camera running on
        script = cdp.call("Page.addScriptToEvaluateOnNewDocument", source=(
            "const W = window.Worker; window.Worker = class extends W { postMessage(m, t) {"
            " if (m && m.type === 'read' && !m.id) m = { ...m, faces: null };"
            " return t ? super.postMessage(m, t) : super.postMessage(m); } };"))
        open_live_page(cdp, url)
        wait_for(lambda: cdp.js("window.emolibLive.handsEngine") == "worker", 120, "the hand worker")
        cdp.js("document.getElementById('emolib-live-start').click()")
        wait_for(lambda: cdp.js("window.emolibLive.handsEngine") == "main", 60, "the main thread to take over")
        reads = cdp.js("window.emolibLive.handReads")
        wait_for(lambda: cdp.js("window.emolibLive.handReads") > reads + 3, 60, "hands read on the main thread")
        assert cdp.js("window.emolibLive.frames") > 0
        cdp.js("document.getElementById('emolib-live-start').click()")  # stop
        cdp.call("Page.removeScriptToEvaluateOnNewDocument", identifier=script["identifier"])
        # a browser without Web Workers: the page falls back to the main thread by itself
        cdp.call("Page.addScriptToEvaluateOnNewDocument",
                 source="delete window.Worker; window.Worker = undefined;")
        open_live_page(cdp, url)
        wait_for(lambda: cdp.js("window.emolibLive.handsEngine"), 120, "the hand models")
        fallback = cdp.js("window.emolibLive.handsEngine")
        _upload(cdp, HAND_PHOTOS[0])
        got["no Worker"] = cdp.js(HAND_STATE)
    assert set(got) == {"main", "worker", "broken worker", "no Worker"}, got.keys()
    assert broken == fallback == "main", (broken, fallback)
    assert got["main"]["hands"] >= 1 and got["main"] == got["worker"] == got["broken worker"] == got["no Worker"]


def test_stage_puts_the_hands_in_the_manifest(tmp_path):
    """``python -m emolib.livepage stage``: the hand networks, the gesture model and hands.js beside the rest,
    the manifest's ``hands`` entry and the total size of the model files."""
    from emolib.livepage import LIVE_HAND_SETTINGS, stage

    if not (ROOT / "web" / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in web/ (make book does)")
    manifest = stage(tmp_path)
    hands = manifest["hands"]
    assert hands["settings"] == LIVE_HAND_SETTINGS and hands["gestures"]["classes"] == ["punch", "super", "loser",
                                                                                       "victory"]
    for name in (hands["palm"], hands["landmark"], hands["gestures"]["file"]):
        assert manifest["bytes"][name] == (tmp_path / "models" / name).stat().st_size > 50_000
    assert manifest["total_bytes"] == sum(p.stat().st_size for p in (tmp_path / "models").glob("*.onnx"))
    for js in ("hands.js", "hands_worker.js"):
        assert (tmp_path / js).read_text() == (ROOT / "emolib" / "web" / js).read_text()
    assert (tmp_path / "ort" / "ort.wasm.bundle.min.mjs").is_file(), "the hand worker's ONNX Runtime Web module"
    assert json.loads((tmp_path / "models" / "manifest.json").read_text()) == manifest


def test_stage_again_leaves_no_model_the_page_does_not_load(tmp_path):
    """Staging into a folder that holds another emotion model (an earlier build's) removes that model's files,
    and the manifest's sizes count only what the page loads."""
    from emolib.livepage import page_files, stage

    if not (ROOT / "web" / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip("onnxruntime-web is not installed: run `npm ci` in web/ (make book does)")
    first = stage(tmp_path, model="emonet-fer2013")
    assert (tmp_path / "models" / "emonet-fer2013.onnx").is_file() and "emonet-fer2013.onnx" in first["bytes"]
    manifest = stage(tmp_path)
    assert manifest["emotion"]["file"] != "emonet-fer2013.onnx"
    left = sorted(p.name for p in (tmp_path / "models").glob("*"))
    assert "emonet-fer2013.onnx" not in left and "emonet-fer2013.json" not in left, left
    assert sorted(p.name for p in (tmp_path / "models").glob("*.onnx")) == sorted(page_files(manifest))
    assert set(manifest["bytes"]) == page_files(manifest)
    assert manifest["total_bytes"] == sum(p.stat().st_size for p in (tmp_path / "models").glob("*.onnx"))
