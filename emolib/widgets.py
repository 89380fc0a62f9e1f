"""The pipeline live: a webcam widget for Jupyter (JupyterLab, Notebook 7, VS Code, Colab).

::

    from emolib.widgets import webcam

    cam = webcam()            # the shipped "baseline-fer2013"; model=PATH for a checkpoint
    cam                       # the last line of a cell: shows the camera with boxes and labels

    cam.snapshot              # after pressing "Snapshot": the annotated PIL image
    cam.snapshot_result       # ... and its emolib.pipeline.PipelineResult
    cam.fps, cam.frames_processed, cam.frames_dropped, cam.status

How it works (one `anywidget <https://anywidget.dev>`_ ES module, no build step):

1. The **browser** opens the reader's camera (``navigator.mediaDevices.getUserMedia``),
   shows it in a ``<video>`` element, and draws one camera frame at a time onto a
   canvas, at most ``width`` pixels wide (640 by default).
2. It encodes that frame as **JPEG** (``canvas.toBlob``, quality ``quality``, 0.7: about
   15 to 40 kB for 640x480) and sends it to the kernel as a widget message with one
   binary buffer (base64 text on Colab).
3. The **kernel** decodes it, runs :class:`emolib.pipeline.EmotionPipeline` (MTCNN,
   crops, CLAHE, the emotion model) and answers with the boxes, labels and
   probabilities as JSON, a few hundred bytes. Between two full detections (every 5th
   frame) the faces of the previous frame are followed with MTCNN's last stage alone
   (:class:`FaceTracker`), several times faster.
4. The browser draws them on a transparent canvas laid over the video.
5. **Only the faces' region** travels between full detections: with each answer the
   kernel names the part of the next frame it needs (:meth:`FaceTracker.next_region`:
   the faces with room around them to move), and the browser encodes just that
   rectangle, cut from the full-resolution frame (about half the bytes for one face at
   640x480, as chapter 8 measures; ``regions=False`` sends whole frames). Every full
   detection gets the whole frame, so new faces are found anywhere.

**Frames are dropped, never queued**: the browser sends the newest camera frame as soon
as fewer than ``max_inflight`` frames (2) are on their way, so the kernel can work on one
frame while the next travels. A slow kernel therefore lowers the frame rate instead of
adding delay: what is drawn is never more than two processing times old. The camera
frames that were never sent are counted in ``frames_dropped`` (and frames that reach the
kernel after a newer one from the same view are dropped there). If the camera cannot be
opened (no camera, permission denied, a page that is not a secure context), the widget says so
and ``status`` starts with ``"no camera: "`` followed by the browser's error
(``"no camera: NotAllowedError: Permission denied"``).

**On a local Jupyter server, enable** :mod:`emolib.serverext` **once**
(``emolib serverext enable`` in a terminal, then restart Jupyter):
without it the server holds each answer up to 40 ms (Nagle's algorithm against the
browser's delayed acknowledgement), which lowers the frame rate most when the kernel is
fast (chapter 8 measures both). :func:`webcam` prints this advice when it runs under a
Jupyter server that lacks the setting.

Where nothing renders widgets (papermill, nbval, CI, a script), :func:`webcam` runs the
pipeline once on a still frame and displays that annotated frame instead
(``headless=True``, detected by :func:`is_headless`); the notebook keeps running.
"""

from __future__ import annotations

import base64
import collections
import io
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import anywidget
import numpy as np
import traitlets as t
from PIL import Image

from .pipeline import DEFAULT_MODEL, EmotionPipeline, PipelineResult, draw, load_image

__all__ = ["WebcamWidget", "FaceTracker", "webcam", "is_headless", "default_frame", "enable_colab_widgets",
           "server_nodelay"]

# Processes that run notebooks without a frontend: a kernel started by one of them is headless.
_HEADLESS_PROGRAMS = ("papermill", "pytest", "py.test", "nbval", "jupyter-nbconvert", "jupyter-execute",
                      "jupyter-book", "sphinx-build", "jupyter-cache")
_HEADLESS_MODULES = ("papermill", "pytest", "nbval", "nbconvert", "nbclient", "emolib.book", "jupyter_book",
                     "sphinx", "jupyter_cache")


def enable_colab_widgets() -> bool:
    """On Google Colab, turn on its custom widget manager (needed for any non-core widget).

    Does nothing elsewhere; returns whether it ran. Called by :class:`WebcamWidget`.
    """
    if "google.colab" not in sys.modules:
        return False
    try:
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
        return True
    except Exception:  # an old or unusual Colab runtime: the widget may still show
        return False


def _parent_cmdline() -> list[str]:
    try:
        import psutil

        return psutil.Process(os.getppid()).cmdline()
    except Exception:
        try:
            raw = Path(f"/proc/{os.getppid()}/cmdline").read_bytes()
            return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        except OSError:
            return []


def is_headless() -> bool:
    """Whether no frontend will render widgets for this kernel.

    In order: ``$EMOLIB_HEADLESS`` (``1``/``0``) decides when set; outside an IPython
    kernel (a script, a terminal) it is headless; on Colab it is not; a kernel started
    by papermill, nbclient, nbconvert, nbval/pytest, jupyter-book or ``python -m
    emolib.book`` is headless (judged from the parent process's program or ``-m``
    module, never from its other arguments); anything else (JupyterLab, Notebook, VS
    Code) is taken to have a frontend.
    """
    env = os.environ.get("EMOLIB_HEADLESS", "").strip().lower()
    if env in ("1", "true", "yes"):
        return True
    if env in ("0", "false", "no"):
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return True
    if shell is None or not hasattr(shell, "kernel"):
        return True
    if "google.colab" in sys.modules:
        return False
    args = _parent_cmdline()
    names = [os.path.basename(a).lower() for a in args[:2]]
    if "-m" in args[:-1]:
        module = args[args.index("-m") + 1]
        if any(module == m or module.startswith(m + ".") for m in _HEADLESS_MODULES):
            return True
    return any(n.startswith(p) for n in names for p in _HEADLESS_PROGRAMS)


def default_frame(data_root: str | os.PathLike | None = None) -> Image.Image:
    """A real frame for headless runs: 4.5 s into ``video/short_hamilton_clip.mp4`` of the data
    root (``$EMOLIB_DATA``), else ``photos/obama.jpg``; a plain gray 640x480 image without either."""
    root = Path(data_root or os.environ.get("EMOLIB_DATA") or Path.home() / "emolib-data").expanduser()
    clip = root / "video" / "short_hamilton_clip.mp4"
    if clip.is_file():
        try:
            from .pipeline import iter_video_frames

            for _, t_s, rgb in iter_video_frames(clip):
                if t_s >= 4.5:
                    return Image.fromarray(rgb)
        except Exception:
            pass
    photo = root / "photos" / "obama.jpg"
    if photo.is_file():
        return load_image(photo)
    return Image.new("RGB", (640, 480), (128, 128, 128))


NODELAY_ENV = "EMOLIB_NODELAY"  # set by emolib.serverext in the server, inherited by its kernels
_NODELAY_ADVISED = False


def server_nodelay() -> bool | None:
    """Whether the Jupyter server that started this kernel sends without Nagle's delay.

    ``True`` with :mod:`emolib.serverext` enabled as a server extension; ``False`` in a
    kernel that Jupyter Server started without it (``$JPY_SESSION_NAME`` set,
    ``$EMOLIB_NODELAY`` not); ``None`` where it cannot be told (Colab, VS Code, a script,
    or the connection class configured by hand).
    """
    if os.environ.get(NODELAY_ENV) == "1":
        return True
    if "JPY_SESSION_NAME" in os.environ and "google.colab" not in sys.modules:
        return False
    return None


def _advise_nodelay() -> None:
    global _NODELAY_ADVISED
    if _NODELAY_ADVISED or server_nodelay() is not False:
        return
    _NODELAY_ADVISED = True
    print("emolib: this Jupyter server holds each of the webcam's answers up to 40 ms (Nagle's algorithm). "
          "Run `emolib serverext enable` once in a terminal and restart Jupyter "
          "for a higher frame rate (see help(emolib.serverext)).")


def _face_json(face) -> dict:
    d = face.to_dict(digits=3)
    d.pop("landmarks", None)
    d["p"] = round(float(face.probabilities.get(face.emotion, face.score)), 3) if face.emotion else None
    return d


class FaceTracker:
    """Faces of a video stream: MTCNN in full every ``detect_every`` frames, O-Net alone in between.

    A face moves little from one camera frame to the next, so between two full
    detections the boxes of the previous frame go straight to MTCNN's last stage (O-Net
    on a 48x48 patch of each box, grown by ``grow`` on every side), which confirms each
    face, corrects its box and places its landmarks: one small network per face instead
    of the image pyramid and three stages (about a seventh of the time on a 640x480
    frame). When O-Net no longer confirms one of the faces (probability below
    ``keep_score``), and on every ``detect_every``-th frame, the full detector runs
    instead, so new faces appear within ``detect_every`` frames. Returns the same
    :class:`~emolib.pipeline.PipelineResult` as the pipeline.

    Between full detections the tracker needs only the pixels around the faces.
    :meth:`next_region` says which part of the next frame it needs (a rectangle around
    all faces, each face's box grown by ``region_grow`` times its long side on every
    side, which leaves room for the face to move and for the pipeline's crop margin), or
    ``None`` when it needs the whole frame. A caller that sends frames somewhere (the
    webcam widget) sends only that region, and passes its position to ``__call__``
    as ``offset`` with the whole frame's ``frame_size``; the result is in frame pixels.
    """

    def __init__(self, pipeline: EmotionPipeline, detect_every: int = 5, grow: float = 0.05,
                 keep_score: float = 0.9, region_grow: float = 0.5, max_region: float = 0.6) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if region_grow < pipeline.margin / 2:
            raise ValueError(f"region_grow must leave room for the crop margin: >= {pipeline.margin / 2}, "
                             f"got {region_grow}")
        self.pipeline, self.detect_every, self.grow, self.keep_score = pipeline, int(detect_every), grow, keep_score
        self.region_grow, self.max_region = float(region_grow), float(max_region)
        self.usable = all(hasattr(pipeline.detector, n) for n in ("onet", "device"))
        self.boxes = None
        self.since_full = 0
        self.full_detections = 0
        self.need_full = False

    def reset(self) -> None:
        self.boxes, self.since_full, self.need_full = None, 0, False

    def _full_due(self) -> bool:
        return (not self.usable or self.boxes is None or not len(self.boxes) or self.need_full
                or self.since_full >= self.detect_every - 1)

    def next_region(self, frame_size: tuple[int, int]) -> list[int] | None:
        """``[x, y, width, height]`` of the next frame that the tracker needs, or ``None`` for all of it.

        ``None`` when a full detection is due, when there is no face to follow, and when
        the region would cover more than ``max_region`` of the frame (no saving then).
        """
        if self._full_due():
            return None
        W, H = frame_size
        b = np.asarray(self.boxes, np.float64)
        side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
        cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
        half = side * (0.5 + self.region_grow)
        x1 = int(max(0, np.floor((cx - half).min())))
        y1 = int(max(0, np.floor((cy - half).min())))
        x2 = int(min(W, np.ceil((cx + half).max())))
        y2 = int(min(H, np.ceil((cy + half).max())))
        if x2 - x1 < 2 or y2 - y1 < 2 or (x2 - x1) * (y2 - y1) > self.max_region * W * H:
            return None
        return [x1, y1, x2 - x1, y2 - y1]

    def _refine(self, img: Image.Image, boxes):
        import torch
        from facenet_pytorch.models.utils.detect_face import bbreg, rerec
        from torchvision.ops import nms

        from .pipeline import _mtcnn_crops

        det = self.pipeline.detector
        rgb = torch.from_numpy(np.array(img)).to(det.device).permute(2, 0, 1).unsqueeze(0).float()
        b = torch.as_tensor(np.asarray(boxes), dtype=torch.float32, device=det.device)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        g = self.grow
        b = rerec(torch.stack([b[:, 0] - g * w, b[:, 1] - g * h, b[:, 2] + g * w, b[:, 3] + g * h,
                               torch.ones_like(w)], 1))
        with torch.inference_mode():
            patches, valid = _mtcnn_crops(rgb, b, 48, self.pipeline.crop_sampling)
            b = b[valid]
            if not len(b):
                return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
            reg, pts, prob = det.onet(patches.to(next(det.onet.parameters()).dtype))
        keep = prob[:, 1] >= self.keep_score
        b, reg, pts, score = b[keep, :4], reg[keep], pts[keep], prob[keep, 1]
        bw, bh = b[:, 2:3] - b[:, 0:1] + 1, b[:, 3:4] - b[:, 1:2] + 1
        points = torch.stack([bw * pts[:, :5] + b[:, 0:1] - 1, bh * pts[:, 5:] + b[:, 1:2] - 1], 2)
        b = bbreg(torch.cat([b, score[:, None]], 1), reg)[:, :4]
        pick = nms(b, score, 0.5)
        b, score, points = b[pick].float().cpu().numpy(), score[pick].float().cpu().numpy(), points[pick].float().cpu().numpy()
        W, H = img.size
        b[:, [0, 2]] = b[:, [0, 2]].clip(0, W)
        b[:, [1, 3]] = b[:, [1, 3]].clip(0, H)
        ok = (b[:, 2] - b[:, 0] >= 1) & (b[:, 3] - b[:, 1] >= 1)
        b, score, points = b[ok], score[ok], points[ok]
        order = np.lexsort((b[:, 1], b[:, 0]))
        return b[order], score[order], points[order]

    def __call__(self, img: Image.Image, offset: tuple[int, int] = (0, 0),
                 frame_size: tuple[int, int] | None = None) -> PipelineResult:
        """The faces of one frame, or of the region of it at ``offset`` (see :meth:`next_region`)."""
        from .pipeline import FaceResult

        pipe = self.pipeline
        ox, oy = int(offset[0]), int(offset[1])
        frame_size = tuple(frame_size) if frame_size is not None else (img.width + ox, img.height + oy)
        whole = (ox, oy) == (0, 0) and tuple(img.size) == frame_size
        shift = np.array([ox, oy, ox, oy], np.float32)
        tracked = None
        if self.usable and self.boxes is not None and len(self.boxes) and (not whole or not self._full_due()):
            tracked = self._refine(img, np.asarray(self.boxes, np.float32) - shift)
            if len(tracked[0]) < len(self.boxes):  # a face was lost (turned away, or left): look again
                tracked = None
        if tracked is None:
            boxes, scores, points = pipe.detect(img)
            if whole:
                self.since_full, self.need_full = 0, False
                self.full_detections += 1
            else:  # a region is all there is to look in now: ask for the whole next frame
                self.need_full = True
        else:
            boxes, scores, points = tracked
            self.since_full += 1
        probs = pipe.classify(pipe.preprocess(img, boxes)) if pipe.model is not None and len(boxes) else None
        boxes, points = boxes + shift, points + shift[:2]
        self.boxes = boxes
        faces = []
        for i in range(len(boxes)):
            p = {c: float(v) for c, v in zip(pipe.classes, probs[i])} if probs is not None else {}
            faces.append(FaceResult(box=[float(v) for v in boxes[i]], score=float(scores[i]),
                                    landmarks=[[float(x), float(y)] for x, y in points[i]],
                                    emotion=max(p, key=p.get) if p else None, probabilities=p))
        return PipelineResult(image_size=frame_size, faces=faces)


_WIDGET_ESM = r"""
const TIMEOUT_MS = 15000;

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function cameraError(err) {
  if (!err) return "unknown error";
  return `${err.name || "Error"}: ${err.message || String(err)}`;
}

function advice(text) {
  if (text.includes("NotAllowedError")) return "Camera access was refused. Allow the camera for this page (the camera icon next to the address) and press Start.";
  if (text.includes("NotFoundError") || text.includes("OverconstrainedError")) return "No camera was found. Connect one and press Start.";
  if (text.includes("NotReadableError")) return "The camera is busy (another program or tab uses it). Close that and press Start.";
  if (text.includes("secure context")) return "Browsers give the camera only to https pages and to localhost.";
  return "The camera could not be opened.";
}

function render({ model, el }) {
  const view = Math.random().toString(36).slice(2, 10);
  const root = document.createElement("div");
  root.className = "emolib-webcam";
  root.innerHTML = `
    <div class="emolib-webcam-stage">
      <video class="emolib-webcam-video" muted playsinline autoplay></video>
      <canvas class="emolib-webcam-overlay"></canvas>
      <div class="emolib-webcam-message" hidden></div>
    </div>
    <div class="emolib-webcam-bar">
      <button class="emolib-webcam-toggle" type="button">Start</button>
      <button class="emolib-webcam-snap" type="button" disabled>Snapshot</button>
      <span class="emolib-webcam-stats">starting</span>
      <img class="emolib-webcam-thumb" hidden alt="last snapshot">
    </div>`;
  el.appendChild(root);
  const video = root.querySelector("video");
  const overlay = root.querySelector("canvas");
  const message = root.querySelector(".emolib-webcam-message");
  const toggle = root.querySelector(".emolib-webcam-toggle");
  const snapButton = root.querySelector(".emolib-webcam-snap");
  const stats = root.querySelector(".emolib-webcam-stats");
  const thumb = root.querySelector(".emolib-webcam-thumb");
  const grab = document.createElement("canvas");

  let stream = null, inflight = new Map(), frameId = 0, camFrames = 0, lastCamTime = -1;
  let sentSerial = -1, sent = 0, lastSend = 0, rtt = 0, encodeMs = 0, alive = true, waiting = null;
  let lastFaces = [], lastSize = [0, 0], results = [], region = null, regionOf = [0, 0], lastStats = 0;

  function setStatus(text) {
    if (model.get("status") !== text) { model.set("status", text); model.save_changes(); }
  }
  function showMessage(text) { message.textContent = text; message.hidden = !text; }

  async function start() {
    if (stream) return;
    showMessage("");
    toggle.textContent = "Stop";
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const text = "no camera: this page is not a secure context (https or localhost), so the browser gives it no camera";
      setStatus(text); showMessage(text + ". " + advice(text)); toggle.textContent = "Start"; return;
    }
    setStatus("starting camera");
    const w = model.get("width");
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: false, video: { width: { ideal: w }, height: { ideal: Math.round(w * 3 / 4) }, facingMode: "user" } });
    } catch (err) {
      const text = "no camera: " + cameraError(err);
      setStatus(text); showMessage(text + ". " + advice(text)); toggle.textContent = "Start"; stream = null; return;
    }
    if (!alive) { stream.getTracks().forEach((tr) => tr.stop()); stream = null; return; }
    video.srcObject = stream;
    try { await video.play(); } catch (err) { /* autoplay of a muted video is allowed */ }
    snapButton.disabled = false;
    setStatus("running");
    watchFrames();
    maybeSend();
  }

  function stop(status) {
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    stream = null; inflight.clear(); region = null;
    video.srcObject = null;
    snapButton.disabled = true;
    toggle.textContent = "Start";
    clearOverlay();
    if (status) setStatus(status);
  }

  function watchFrames() {
    // Count camera frames; a new one is sent only when nothing is in flight.
    if (!stream) return;
    const onFrame = () => {
      if (!stream) return;
      camFrames += 1;
      maybeSend();
      if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
    };
    if (video.requestVideoFrameCallback) {
      video.requestVideoFrameCallback(onFrame);
    } else {
      const poll = () => {
        if (!stream) return;
        if (video.currentTime !== lastCamTime) { lastCamTime = video.currentTime; onFrame(); }
        setTimeout(poll, 10);
      };
      poll();
    }
  }

  function encode(width, quality, part, partOf) {
    // The frame is w x h (the camera scaled to at most `width` wide). With `part`
    // ([x, y, pw, ph] in the pixels of a partOf[0] x partOf[1] frame, from the kernel),
    // only that region is encoded, if it belongs to a frame of this size.
    const vw = video.videoWidth, vh = video.videoHeight;
    const w = Math.min(width, vw), h = Math.round(vh * w / vw);
    if (part && (partOf[0] !== w || partOf[1] !== h || part[0] < 0 || part[1] < 0 ||
                 part[0] + part[2] > w || part[1] + part[3] > h)) part = null;
    const s = vw / w;
    if (part) {
      const [x, y, pw, ph] = part;
      grab.width = pw; grab.height = ph;
      grab.getContext("2d").drawImage(video, x * s, y * s, pw * s, ph * s, 0, 0, pw, ph);
    } else {
      grab.width = w; grab.height = h;
      grab.getContext("2d").drawImage(video, 0, 0, w, h);
    }
    return new Promise((resolve) => grab.toBlob((blob) => resolve([blob, w, h, part]), "image/jpeg", quality));
  }

  async function post(content, blob) {
    const buffer = await blob.arrayBuffer();
    if (model.get("transport") === "base64") {
      content.jpeg_b64 = base64(buffer);
      model.send(content);
    } else {
      model.send(content, undefined, [buffer]);
    }
  }

  function maybeSend() {
    if (!stream || !model.get("active") || inflight.size >= Math.max(1, model.get("max_inflight")) ||
        video.readyState < 2 || !video.videoWidth) return;
    if (camFrames === sentSerial) return;  // no new camera frame since the last one sent
    const now = performance.now();
    const maxFps = model.get("max_fps");
    if (maxFps > 0 && now - lastSend < 1000 / maxFps) {
      if (!waiting) waiting = setTimeout(() => { waiting = null; maybeSend(); }, 1000 / maxFps - (now - lastSend));
      return;
    }
    const id = ++frameId;
    inflight.set(id, now);
    sentSerial = camFrames; lastSend = now; sent += 1;
    encode(model.get("width"), model.get("quality"), region, regionOf).then(([blob, w, h, used]) => {
      if (!blob) { inflight.delete(id); return; }
      encodeMs = performance.now() - now;
      const content = { type: "frame", view, id, width: w, height: h, camera_frames: camFrames, sent, rtt_ms: rtt,
                        encode_ms: encodeMs };
      if (used) content.region = used;
      post(content, blob);
    });
  }

  function clearOverlay() {
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  }

  function drawFaces(faces, w, h) {  // emolib/web/draw.js, shared with the book's live page
    drawFacesOn(overlay, faces, w, h, { mirror: model.get("mirror"), bars: model.get("bars") });
  }

  function showStats(msg) {
    const now = performance.now();
    results.push(now);
    while (results.length > 30 || (results.length && now - results[0] > 5000)) results.shift();
    const fps = results.length > 1 ? (results.length - 1) * 1000 / (results[results.length - 1] - results[0]) : 0;
    if (now - lastStats < 250) return;  // a text change per frame costs the page layout work
    lastStats = now;
    const n = msg.faces.length;
    stats.textContent = `${fps.toFixed(1)} fps · ${n} face${n === 1 ? "" : "s"} · ` +
      `encode ${encodeMs.toFixed(0)} ms · kernel ${msg.ms.toFixed(0)} ms · round trip ${rtt.toFixed(0)} ms · ` +
      `${msg.processed} processed, ${msg.dropped} dropped`;
  }

  async function snapshot() {
    if (!stream || !video.videoWidth) return;
    const [blob, w, h] = await encode(video.videoWidth, 0.92);
    if (!blob) return;
    thumb.src = grab.toDataURL("image/jpeg", 0.6);
    post({ type: "snapshot", view, width: w, height: h }, blob);
  }

  function onMessage(msg) {
    if (!msg || (msg.view && msg.view !== view)) return;
    if (msg.type === "result") {
      if (inflight.has(msg.id)) { rtt = performance.now() - inflight.get(msg.id); inflight.delete(msg.id); }
      if (msg.id < frameId - 1) return;
      region = msg.next_region || null; regionOf = [msg.width, msg.height];
      lastFaces = msg.faces; lastSize = [msg.width, msg.height];
      if (stream) drawFaces(msg.faces, msg.width, msg.height);
      showStats(msg);
      maybeSend();
    } else if (msg.type === "error") {
      inflight.delete(msg.id);
      showMessage(msg.message);
      maybeSend();
    } else if (msg.type === "snapshot_done") {
      thumb.hidden = false;
      thumb.title = `snapshot ${msg.count}: ${msg.faces.length} face(s); in Python: widget.snapshot`;
    } else if (msg.type === "take_snapshot") {
      snapshot();
    }
  }

  const watchdog = setInterval(() => {
    const now = performance.now();
    const late = [...inflight].filter(([, t]) => now - t > TIMEOUT_MS);
    if (late.length) {
      late.forEach(([id]) => inflight.delete(id));  // the kernel is busy (a running cell) or gone: try a newer frame
      stats.textContent = "waiting for the kernel (is another cell running?)";
      maybeSend();
    }
  }, 1000);

  const onActive = () => (model.get("active") ? start() : stop("stopped"));
  toggle.addEventListener("click", () => {
    const active = !stream;
    if (active === model.get("active")) onActive();  // e.g. Start again after a refused permission
    model.set("active", active); model.save_changes();
  });
  snapButton.addEventListener("click", snapshot);
  model.on("change:active", onActive);
  model.on("msg:custom", onMessage);
  model.on("change:mirror", () => {
    video.style.transform = model.get("mirror") ? "scaleX(-1)" : "";
    if (stream) drawFaces(lastFaces, lastSize[0], lastSize[1]);
  });
  video.style.transform = model.get("mirror") ? "scaleX(-1)" : "";
  if (model.get("active")) start(); else { toggle.textContent = "Start"; setStatus("stopped"); }

  return () => {
    alive = false;
    clearInterval(watchdog);
    if (waiting) clearTimeout(waiting);
    model.off("change:active", onActive);
    model.off("msg:custom", onMessage);
    stop(null);
  };
}

export default { render };
"""

# The drawing of boxes, labels and bars is the book's live page's (emolib/web/draw.js): one module for both.
_ESM = (Path(__file__).parent / "web" / "draw.js").read_text() + "\nconst drawFacesOn = drawFaces;\n" + _WIDGET_ESM

_CSS = r"""
.emolib-webcam { font-family: sans-serif; font-size: 13px; max-width: 100%; }
.emolib-webcam-stage { position: relative; display: inline-block; max-width: 100%; background: #222;
  min-width: 320px; min-height: 60px; line-height: 0; }
.emolib-webcam-video { display: block; max-width: 100%; height: auto; }
.emolib-webcam-overlay { position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none; }
.emolib-webcam-message { position: absolute; left: 0; right: 0; top: 0; padding: 12px; line-height: 1.4;
  background: #fff3cd; color: #664d03; border: 1px solid #ffda6a; }
.emolib-webcam-message[hidden] { display: none; }
.emolib-webcam-bar { display: flex; gap: 8px; align-items: center; margin-top: 4px; flex-wrap: wrap; }
.emolib-webcam-stats { color: #555; font-variant-numeric: tabular-nums; }
.emolib-webcam-thumb { height: 48px; border: 1px solid #ccc; }
.emolib-webcam-thumb[hidden] { display: none; }
"""


class WebcamWidget(anywidget.AnyWidget):
    """The reader's camera with every face's box and emotion, live; see the module docstring.

    Parameters
    ----------
    model:
        For a new :class:`~emolib.pipeline.EmotionPipeline`: a shipped checkpoint name,
        a checkpoint path, an ``nn.Module``, or ``None`` for detection only.
    pipeline:
        An existing pipeline to use instead (``model`` and ``pipeline_kwargs`` are then ignored).
    width, quality:
        Frames are sent at most ``width`` pixels wide, as JPEG of this quality (0..1).
    max_fps:
        Send at most this many frames per second (0: as fast as the kernel answers),
        to leave CPU for other work.
    max_inflight:
        Frames sent and not yet answered. 2 (the default) keeps the kernel busy while the
        next frame is encoded and travels; 1 waits for each answer before sending the next
        frame (the least delay, a lower frame rate); more helps where the round trip is
        long (Colab).
    mirror:
        Show the camera mirrored, as people expect of a front camera (boxes follow).
    bars:
        Draw each face's seven probabilities next to its box, like :func:`emolib.pipeline.draw`.
    active:
        Open the camera as soon as the widget is shown (the Start/Stop button and
        ``widget.active = False`` change it).
    headless:
        ``True``: no frontend; the widget processes ``fallback`` once and displays the
        annotated frame as a PNG instead of the live view (see :func:`webcam`).
    fallback:
        The still frame for headless mode (path, PIL image or array; default
        :func:`default_frame`).
    track, detect_every:
        Follow the faces between full detections (:class:`FaceTracker`): MTCNN runs in
        full on every ``detect_every``-th frame, and only its last stage in between.
        ``track=False`` detects on every frame.
    regions:
        Between full detections, ask the browser for the faces' region only (see the
        module docstring); needs ``track``.
    pipeline_kwargs:
        Passed to :class:`~emolib.pipeline.EmotionPipeline`. The defaults here suit a
        webcam: ``min_face_size=64`` (a face in front of a camera is larger than that in
        a 640-pixel frame; it makes detection faster) and ``max_side=640``.

    Traits (Python side): ``status``; counters ``frames_received``, ``frames_processed``,
    ``frames_dropped``, ``camera_frames``, ``region_frames`` (frames that came as a face
    region), ``snapshots``; ``fps`` (frames processed per second over the last 30),
    ``inference_ms`` (kernel time of the last frame, decoding included), ``latency_ms``
    (the browser's round trip for the frame before) and ``encode_ms`` (the browser's
    time from grabbing a frame to its JPEG, for the last frame).
    Attributes: ``last_result`` (:class:`~emolib.pipeline.PipelineResult` of the last
    frame), ``snapshot``, ``snapshot_raw`` and ``snapshot_result``.
    """

    _esm = _ESM
    _css = _CSS

    # shared with the browser
    width = t.Int(640).tag(sync=True)
    quality = t.Float(0.7).tag(sync=True)
    max_fps = t.Float(0.0).tag(sync=True)
    max_inflight = t.Int(2).tag(sync=True)
    mirror = t.Bool(True).tag(sync=True)
    bars = t.Bool(True).tag(sync=True)
    active = t.Bool(True).tag(sync=True)
    status = t.Unicode("waiting for the browser to show the widget").tag(sync=True)
    transport = t.Unicode("binary").tag(sync=True)

    # Python only: observable counters (not synced, so a frame costs one message each way)
    frames_received = t.Int(0)
    frames_processed = t.Int(0)
    frames_dropped = t.Int(0)
    camera_frames = t.Int(0)
    region_frames = t.Int(0)
    snapshots = t.Int(0)
    fps = t.Float(0.0)
    inference_ms = t.Float(0.0)
    latency_ms = t.Float(0.0)
    encode_ms = t.Float(0.0)

    def __init__(self, model: Any = DEFAULT_MODEL, *, pipeline: EmotionPipeline | None = None,
                 headless: bool = False, fallback: Any = None, track: bool = True, detect_every: int = 5,
                 regions: bool = True, **kwargs: Any) -> None:
        enable_colab_widgets()
        widget_keys = {"width", "quality", "max_fps", "max_inflight", "mirror", "bars", "active"}
        widget_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in widget_keys}
        if "google.colab" in sys.modules:
            widget_kwargs.setdefault("transport", "base64")
        if pipeline is None:  # first, so that a missing model fails before the widget exists
            kwargs.setdefault("min_face_size", 64)
            kwargs.setdefault("max_side", 640)
            kwargs.setdefault("hands", False)  # MediaPipe per frame would halve the frame rate
            pipeline = EmotionPipeline(model, **kwargs)
        elif kwargs:
            raise TypeError(f"pipeline given: unexpected arguments {sorted(kwargs)}")
        super().__init__(**widget_kwargs)
        self.pipeline = pipeline
        self.tracker = FaceTracker(pipeline, detect_every) if track else None
        self.regions = bool(regions)
        self.headless = bool(headless)
        self.last_result: PipelineResult | None = None
        self.snapshot: Image.Image | None = None
        self.snapshot_raw: Image.Image | None = None
        self.snapshot_result: PipelineResult | None = None
        self._times: collections.deque[float] = collections.deque(maxlen=30)
        self._last_id: dict[str, int] = {}
        self._last_size: dict[str, tuple[int, int]] = {}
        self._dropped_here = 0
        self._browser_dropped = 0
        self._snapshot_callbacks: list[Callable] = []
        self.on_msg(self._handle_message)
        if self.headless:
            self.active = False
            self.run_once(fallback if fallback is not None else default_frame())
        else:
            _advise_nodelay()

    # ------------------------------------------------------------------ kernel side

    def process(self, image: Any) -> PipelineResult:
        """Run the full pipeline (no tracking) on one frame: a path, PIL image or array."""
        return self.pipeline(image)

    def run_once(self, image: Any) -> PipelineResult:
        """Process one still frame and keep it as the snapshot (what headless mode shows)."""
        img = load_image(image)
        t0 = time.perf_counter()
        result = self.pipeline(img)
        self.inference_ms = round(1000 * (time.perf_counter() - t0), 1)
        self.last_result = result
        self._keep_snapshot(img, result)
        self.status = (f"headless: no frontend renders widgets here, so one {img.width}x{img.height} frame "
                       f"was processed instead of the camera ({len(result.faces)} face(s))")
        return result

    def _keep_snapshot(self, img: Image.Image, result: PipelineResult) -> None:
        self.snapshot_raw, self.snapshot_result = img, result
        self.snapshot = draw(img, result, bars=bool(self.bars))
        self.snapshots += 1
        for callback in list(self._snapshot_callbacks):
            callback(self.snapshot, result)

    @staticmethod
    def _decode(content: dict, buffers: list) -> Image.Image:
        if buffers:
            data = bytes(buffers[0])
        else:
            data = base64.b64decode(content.get("jpeg_b64", ""))
        img = Image.open(io.BytesIO(data))
        img.load()
        return img.convert("RGB")

    def _handle_message(self, _widget: Any, content: dict, buffers: list) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "frame":
                self._on_frame(content, buffers)
            elif kind == "snapshot":
                self._on_snapshot(content, buffers)
        except Exception as err:  # show it in the widget; never a traceback in the kernel's log per frame
            message = f"error: {type(err).__name__}: {err}"
            self.status = message
            self.send({"type": "error", "view": content.get("view"), "id": content.get("id"), "message": message})

    def _on_frame(self, content: dict, buffers: list) -> None:
        view, frame_id = str(content.get("view", "")), int(content.get("id", 0))
        self.frames_received += 1
        if frame_id <= self._last_id.get(view, 0):  # an older frame than one already answered: drop it
            self._dropped_here += 1
            self.frames_dropped = self._browser_dropped + self._dropped_here
            return
        self._last_id[view] = frame_id
        t0 = time.perf_counter()
        img = self._decode(content, buffers)
        frame_size = (int(content.get("width") or img.width), int(content.get("height") or img.height))
        region = content.get("region")
        if region is not None:
            x, y, w, h = (int(v) for v in region)
            if self.tracker is None or (w, h) != img.size or x < 0 or y < 0 or x + w > frame_size[0] \
                    or y + h > frame_size[1]:
                raise ValueError(f"a {img.width}x{img.height} region {region} of a "
                                 f"{frame_size[0]}x{frame_size[1]} frame does not fit")
            self.region_frames += 1
        if self.tracker is not None and self._last_size.get(view) != frame_size:
            self.tracker.reset()  # a new camera or resolution: nothing to follow
        self._last_size[view] = frame_size
        if self.tracker is not None:
            offset = (x, y) if region is not None else (0, 0)
            result = self.tracker(img, offset=offset, frame_size=frame_size)
            next_region = self.tracker.next_region(frame_size) if self.regions else None
        else:
            result, next_region = self.pipeline(img), None
        now = time.perf_counter()
        self._times.append(now)
        self.last_result = result
        camera = int(content.get("camera_frames", 0))
        self._browser_dropped = max(0, camera - int(content.get("sent", 0)))
        with self.hold_trait_notifications():
            self.camera_frames = camera
            self.frames_processed += 1
            self.frames_dropped = self._browser_dropped + self._dropped_here
            self.inference_ms = round(1000 * (now - t0), 1)
            self.latency_ms = float(content.get("rtt_ms", 0.0))
            self.encode_ms = float(content.get("encode_ms", 0.0))
            if len(self._times) > 1:
                self.fps = round((len(self._times) - 1) / (self._times[-1] - self._times[0]), 2)
        if self.status.startswith("error: "):
            self.status = "running"
        self.send({"type": "result", "view": view, "id": frame_id, "width": frame_size[0], "height": frame_size[1],
                   "faces": [_face_json(f) for f in result.faces], "ms": self.inference_ms,
                   "processed": self.frames_processed, "dropped": self.frames_dropped, "next_region": next_region})

    def _on_snapshot(self, content: dict, buffers: list) -> None:
        img = self._decode(content, buffers)
        result = self.pipeline(img)
        self._keep_snapshot(img, result)
        self.send({"type": "snapshot_done", "view": content.get("view"), "count": self.snapshots,
                   "faces": [_face_json(f) for f in result.faces]})

    # ------------------------------------------------------------------ public

    def take_snapshot(self) -> None:
        """Ask the browser for a full-resolution snapshot (as the button does).

        It arrives when the kernel is idle again (after the current cell): read
        ``widget.snapshot`` in a later cell, or register :meth:`on_snapshot`.
        """
        self.send({"type": "take_snapshot"})

    def on_snapshot(self, callback: Callable[[Image.Image, PipelineResult], Any]) -> None:
        """Call ``callback(annotated_image, result)`` for every snapshot."""
        self._snapshot_callbacks.append(callback)

    def stats(self) -> dict:
        """The counters, the status and the last frame's faces, JSON-ready."""
        last = self.last_result
        return {
            "status": self.status, "frames_received": self.frames_received,
            "frames_processed": self.frames_processed, "frames_dropped": self.frames_dropped,
            "camera_frames": self.camera_frames, "region_frames": self.region_frames, "snapshots": self.snapshots,
            "fps": self.fps, "inference_ms": self.inference_ms, "latency_ms": self.latency_ms,
            "encode_ms": self.encode_ms,
            "full_detections": self.tracker.full_detections if self.tracker is not None else self.frames_processed,
            "last_faces": [_face_json(f) for f in last.faces] if last is not None else [],
            "last_size": list(last.image_size) if last is not None else None,
        }

    def _repr_mimebundle_(self, **kwargs: Any):
        if not self.headless:
            return super()._repr_mimebundle_(**kwargs)
        text = f"<WebcamWidget: {self.status}>"
        if self.snapshot is None:
            return {"text/plain": text}
        buf = io.BytesIO()
        self.snapshot.save(buf, "PNG")
        return {"image/png": base64.b64encode(buf.getvalue()).decode("ascii"), "text/plain": text}

    def __repr__(self) -> str:
        return f"<WebcamWidget: {self.status}; {self.frames_processed} frames processed, {self.fps:.1f} fps>"


def webcam(model: Any = DEFAULT_MODEL, *, headless: bool | None = None, fallback: Any = None,
           **kwargs: Any) -> WebcamWidget:
    """A :class:`WebcamWidget`; make it the last line of a cell to show it.

    ``headless=None`` asks :func:`is_headless`. Headless (papermill, nbval, CI), the
    pipeline runs once on ``fallback`` (a path, PIL image or array; default: a frame of
    the data root's video, see :func:`default_frame`) and the widget displays that
    annotated frame as an image, so the notebook runs to the end without a camera.
    Other arguments: see :class:`WebcamWidget`.
    """
    if headless is None:
        headless = is_headless()
    return WebcamWidget(model, headless=headless, fallback=fallback, **kwargs)
