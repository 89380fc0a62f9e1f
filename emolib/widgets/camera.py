"""The pipeline live: a webcam widget for Jupyter (JupyterLab, Notebook 7, VS Code, Colab).

::

    from emolib.widgets import webcam

    cam = webcam()            # the shipped "vgg_cpu-fer2013"; model=PATH for a checkpoint
    cam                       # the last line of a cell: shows the camera with boxes and labels

    cam.snapshot              # after pressing "Snapshot": the annotated PIL image
    cam.snapshot_result       # ... and its emolib.pipeline.PipelineResult
    cam.fps, cam.frames_processed, cam.frames_dropped, cam.status

How it works (one `anywidget <https://anywidget.dev>`_ ES module, no build step: ``emolib/web/webcam.js``
after ``emolib/web/draw.js``, styled by ``emolib/web/webcam.css``):

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
   (:class:`emolib.faces.FaceTracker`), several times faster.
4. The browser draws them on a transparent canvas laid over the video.
5. **Only the faces' region** travels between full detections: with each answer the
   kernel names the part of the next frame it needs (:meth:`~emolib.faces.FaceTracker.next_region`:
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

**Two engines.** ``engine="kernel"`` (the default) is the above: frames go to the kernel, which runs
the Python pipeline, so any model, checkpoint or :class:`~emolib.pipeline.EmotionPipeline`
works. ``engine="browser"`` runs the book's live page engine (``emolib/web/engine.js``:
BlazeFace, MTCNN and the emotion model in ONNX Runtime Web, WebAssembly, one thread) in the
notebook's page itself: no frame goes to the kernel. When the widget is shown, the browser asks
the kernel once for the engine's files (:func:`emolib.webengine.engine_files`: the
models exported to ONNX, onnxruntime-web's module and WebAssembly binary, about 19 MB) and gets
them as binary buffers of widget messages (base64 on Colab), in 4 MB parts; from then on the
kernel only receives a summary once a second (``frames_processed``, ``fps``, the last faces),
and the camera keeps being read if the kernel stops. It runs shipped models and checkpoint files
(exported to ONNX on first use), not custom pipelines or hands; the Snapshot button still sends
one frame to the kernel's Python pipeline.

Where nothing renders widgets (papermill, nbval, CI, a script), :func:`webcam` runs the
pipeline once on a still frame and displays that annotated frame instead
(``headless=True``, detected by :func:`is_headless`); the notebook keeps running.
"""

from __future__ import annotations

import base64
import collections
import io
import os
import time
from pathlib import Path
from typing import Any, Callable

try:
    import anywidget
    import traitlets as t
except ImportError as _err:  # a fresh Colab or a plain pip install: say what to install
    raise ModuleNotFoundError(f"emolib.widgets needs anywidget and ipywidgets ({_err.name} is missing): "
                              "pip install 'emolib[widgets]'", name=_err.name) from _err
from PIL import Image

from .. import data
from ..drawing import draw
from ..faces import FaceTracker
from ..fileio import load_image
from ..pipeline import DEFAULT_MODEL, EmotionPipeline, PipelineResult
from ..utils import in_colab
from ..video import iter_video_frames
from ..webengine import engine_files

__all__ = ["WebcamWidget", "webcam", "is_headless", "default_frame", "enable_colab_widgets", "server_nodelay",
           "NODELAY_ENV", "ENGINES"]

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
ENGINES = ("kernel", "browser")
PART_BYTES = 4 << 20  # the browser engine's files travel in parts of at most this size


def enable_colab_widgets() -> bool:
    """On Google Colab, turn on its custom widget manager (needed for any non-core widget).

    Does nothing elsewhere; returns whether it ran. Called by :class:`WebcamWidget`.
    """
    if not in_colab():
        return False
    try:
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
        return True
    except Exception:  # an old or unusual Colab runtime: the widget may still show
        return False


def is_headless() -> bool:
    """Whether no frontend will render widgets for this kernel.

    In order: ``$EMOLIB_HEADLESS`` (``1``/``0``) decides when set; outside an IPython
    kernel (a script, a terminal) it is headless; a kernel of Colab, of a Jupyter server
    (JupyterLab, Notebook 7: it sets ``$JPY_SESSION_NAME``) or of VS Code (``$VSCODE_PID``)
    has a frontend; any other kernel (papermill, nbclient, nbconvert, nbval, jupyter-book
    start theirs without a server) is taken to be headless. Set ``EMOLIB_HEADLESS=0`` for
    another frontend, ``1`` for a batch run started from inside a notebook.
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
    return not (in_colab() or "JPY_SESSION_NAME" in os.environ or "VSCODE_PID" in os.environ)


def default_frame(data_root: str | os.PathLike | None = None) -> Image.Image:
    """A real frame for headless runs: 4.5 s into ``video/short_hamilton_clip.mp4`` of the data
    root (:func:`emolib.data.data_root`), else ``photos/obama.jpg``; a plain gray 640x480 image without either."""
    root = data.data_root(data_root)
    clip = root / "video" / "short_hamilton_clip.mp4"
    if clip.is_file():
        try:
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
    if "JPY_SESSION_NAME" in os.environ and not in_colab():
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
        Follow the faces between full detections (:class:`~emolib.faces.FaceTracker`): MTCNN runs in
        full on every ``detect_every``-th frame, and only its last stage in between.
        ``track=False`` detects on every frame. ``detect_every=None`` (the default): 5 with the kernel
        engine; with the browser engine, engine.js's default (30: its full detection costs about two
        camera frames, following a face a third of one).
    regions:
        Between full detections, ask the browser for the faces' region only (see the
        module docstring); needs ``track``.
    engine:
        ``"kernel"`` (frames to the kernel's Python pipeline) or ``"browser"`` (the ONNX models in
        the notebook's page, no frame to the kernel); see the module docstring.
    ort_dir:
        For ``engine="browser"``: onnxruntime-web's ``dist`` folder (default:
        :func:`emolib.webengine.ort_dist` finds it).
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

    # draw.js (shared with the book's live page) and the widget's own module, sent as one ES module
    _esm = (WEB_DIR / "draw.js").read_text() + "\n" + (WEB_DIR / "webcam.js").read_text()
    _css = (WEB_DIR / "webcam.css").read_text()

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
    engine = t.Unicode("kernel").tag(sync=True)

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
    engine_load_ms = t.Float(0.0)  # browser engine: from the widget's display to the models being ready

    def __init__(self, model: Any = DEFAULT_MODEL, *, pipeline: EmotionPipeline | None = None,
                 headless: bool = False, fallback: Any = None, track: bool = True, detect_every: int | None = None,
                 regions: bool = True, engine: str = "kernel", ort_dir: Any = None, **kwargs: Any) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
        if engine == "browser" and (pipeline is not None or not isinstance(model, (str, os.PathLike))):
            raise ValueError("engine='browser' runs a shipped model name or a checkpoint path in the "
                             "browser; use engine='kernel' for a custom pipeline or an nn.Module")
        enable_colab_widgets()
        widget_keys = {"width", "quality", "max_fps", "max_inflight", "mirror", "bars", "active"}
        widget_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in widget_keys}
        if in_colab():
            widget_kwargs.setdefault("transport", "base64")
        if pipeline is None:  # first, so that a missing model fails before the widget exists
            kwargs.setdefault("min_face_size", 64)
            kwargs.setdefault("max_side", 640)
            kwargs.setdefault("hands", False)  # MediaPipe per frame would halve the frame rate
            pipeline = EmotionPipeline(model, **kwargs)
        elif kwargs:
            raise TypeError(f"pipeline given: unexpected arguments {sorted(kwargs)}")
        # the browser engine's files (ONNX exports cached on disk) before the widget exists: errors first
        self._engine_files = engine_files(model, ort_dir) if engine == "browser" and not headless else None
        super().__init__(engine=engine, **widget_kwargs)
        self.pipeline = pipeline
        self.tracker = FaceTracker(pipeline, 5 if detect_every is None else detect_every) if track else None
        # what the browser engine is told (engine.js's createEngine options): its own default unless asked
        self._engine_options = {"detectEvery": 1} if not track else (
            {} if detect_every is None else {"detectEvery": int(detect_every)})
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
        self._browser_faces: list[dict] = []
        self._browser_size: list[int] | None = None
        self.on_msg(self._handle_message)
        if self.headless:
            self.active = False
            self.run_once(fallback if fallback is not None else default_frame())
        elif engine == "kernel":
            _advise_nodelay()

    # ------------------------------------------------------------------ kernel side

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
            elif kind == "engine_request":
                self._send_engine(str(content.get("view", "")))
            elif kind == "engine_stats":
                self._on_engine_stats(content)
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

    def _send_engine(self, view: str) -> None:
        """The browser engine's files to one view: each binary in parts, then the modules and the manifest."""
        if self._engine_files is None:
            raise RuntimeError("this widget runs engine='kernel'")
        b64 = self.transport == "base64"
        for name, blob in self._engine_files["binaries"].items():
            parts = max(1, -(-len(blob) // PART_BYTES))
            for k in range(parts):
                chunk = blob[k * PART_BYTES:(k + 1) * PART_BYTES]
                msg = {"type": "engine_file", "view": view, "name": name, "part": k, "parts": parts,
                       "offset": k * PART_BYTES, "size": len(blob)}
                if b64:
                    self.send({**msg, "b64": base64.b64encode(chunk).decode("ascii")})
                else:
                    self.send(msg, [chunk])
        self.send({"type": "engine_ready", "view": view, "manifest": self._engine_files["manifest"],
                   "modules": self._engine_files["modules"], "options": self._engine_options})

    def _on_engine_stats(self, content: dict) -> None:
        """The browser engine's summary (once a second): counters, the last frame's faces."""
        with self.hold_trait_notifications():
            self.camera_frames = int(content.get("camera_frames", 0))
            self.frames_processed = int(content.get("frames", 0))
            self.frames_dropped = max(0, self.camera_frames - self.frames_processed)
            self.fps = round(float(content.get("fps", 0.0)), 2)
            self.inference_ms = round(float(content.get("frame_ms", 0.0)), 1)
            self.engine_load_ms = round(float(content.get("load_ms", 0.0)), 1)
        self._browser_faces = list(content.get("faces") or [])
        self._browser_size = content.get("size")

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
            "engine": self.engine, "engine_load_ms": self.engine_load_ms,
            **({"last_faces": self._browser_faces, "last_size": self._browser_size}
               if self.engine == "browser" else {}),
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
    ``engine="browser"`` runs the models in the notebook's page instead of the kernel.
    Other arguments: see :class:`WebcamWidget`.
    """
    if headless is None:
        headless = is_headless()
    return WebcamWidget(model, headless=headless, fallback=fallback, **kwargs)
