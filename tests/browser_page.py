"""Pages in headless Chromium, for tests and benchmarks: Chromium with a fake camera, a DevTools client,
a local file server, one ``wait_for`` helper, and the book's live page.

Used by ``tests/test_webcam_browser.py`` (the widget in JupyterLab), ``tests/test_live_page.py``,
``benchmarks/live_fps.py`` and ``benchmarks/browser_detectors.py``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
SIZE = (640, 480)  # the fake camera's frames
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required",
         "--remote-allow-origins=*", "--window-size=1280,1400"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- fake camera


def write_y4m(src: Path, dst: Path, start_s: float = 0.0, seconds: float = 2.0, size=SIZE) -> int:
    """Write ``seconds`` of video ``src`` from ``start_s`` as an uncompressed YUV4MPEG2 file.

    Each frame is centre-cropped to the aspect ratio of ``size``, resized, and stored as
    I420 (``FRAME`` then the Y, U and V planes), the layout Chromium's fake camera reads.
    Returns the number of frames written.
    """
    import av

    w, h = size
    n = 0
    with av.open(str(src)) as container, open(dst, "wb") as out:
        stream = container.streams.video[0]
        rate = stream.average_rate or 30
        out.write(f"YUV4MPEG2 W{w} H{h} F{rate.numerator}:{rate.denominator} Ip A1:1 C420jpeg\n".encode())
        t0 = None
        for frame in container.decode(stream):
            t = float(frame.time or 0.0)
            t0 = t if t0 is None else t0
            if t - t0 < start_s:
                continue
            if t - t0 >= start_s + seconds:
                break
            rgb = frame.to_ndarray(format="rgb24")
            fh, fw = rgb.shape[:2]
            cw, ch = (fh * w // h, fh) if fw * h > fh * w else (fw, fw * h // w)
            x0, y0 = (fw - cw) // 2, (fh - ch) // 2
            img = Image.fromarray(rgb[y0:y0 + ch, x0:x0 + cw]).resize(size, Image.BILINEAR)
            yuv = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24").reformat(format="yuv420p")
            planes = yuv.to_ndarray()  # (h * 3 / 2, w): Y, then U, then V
            out.write(b"FRAME\n")
            out.write(np.ascontiguousarray(planes).tobytes())
            n += 1
    return n


class CDP:
    """A minimal Chrome DevTools Protocol client (one page target) over ``websocket-client``."""

    def __init__(self, ws_url: str) -> None:
        import websocket

        self.ws = websocket.create_connection(ws_url, timeout=120, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression: str, await_promise: bool = False):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JavaScript failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def close(self) -> None:
        self.ws.close()


def start_chromium(profile: Path, y4m: Path, log) -> tuple[subprocess.Popen, int]:
    """Headless Chromium with ``FLAGS`` and a fake camera reading ``y4m``; returns it and its DevTools port."""
    profile.mkdir(parents=True, exist_ok=True)
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", f"--use-file-for-fake-video-capture={y4m}",
           "--remote-debugging-port=0", "about:blank"]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    port_file = profile / "DevToolsActivePort"
    wait_for(lambda: port_file.is_file() and port_file.read_text().strip() or proc.poll() is not None, 60,
             "Chromium's DevTools port", 0.2)
    if proc.poll() is not None:
        raise RuntimeError(f"chromium exited with {proc.returncode} (see its log)")
    return proc, int(port_file.read_text().split()[0])


def stop(proc: subprocess.Popen | None) -> None:
    """End a process started in its own session (Chromium, JupyterLab) with all its children."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own session: the kernel and renderer processes too
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".wasm": "application/wasm",
                      ".mjs": "text/javascript", ".js": "text/javascript", ".onnx": "application/octet-stream"}

    def log_message(self, *args) -> None:  # quiet
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """A plain static file server for ``folder`` on 127.0.0.1 (no Python code behind the pages); yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def chromium(profile: Path, y4m: Path | None, log_path: Path):
    """Headless Chromium (fake camera from ``y4m``); yields a :class:`CDP` session on its page."""
    with open(log_path, "w") as log:
        if y4m is None:
            y4m = profile.parent / "none.y4m"
            y4m.write_bytes(b"YUV4MPEG2 W16 H16 F30:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(16 * 16 * 3 // 2))
        proc, port = start_chromium(profile, y4m, log)
        cdp = None
        try:
            targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
            page = next(t for t in targets if t["type"] == "page")
            cdp = CDP(page["webSocketDebuggerUrl"])
            cdp.call("Page.enable")
            cdp.call("Runtime.enable")
            yield cdp
        finally:
            if cdp is not None:
                cdp.close()
            stop(proc)


def wait_for(predicate, timeout: float, what: str, interval: float = 0.25):
    """``predicate()``'s first truthy value, or ``TimeoutError`` after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


# --------------------------------------------------------------------------- the book's live page

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build" / "html"
LIVE_PAGE = "book/08b_try_it.html"
LIVE_SOURCES = [ROOT / "book" / "08b_try_it.md", ROOT / "_toc.yml", ROOT / "_config.yml"]


def build_live_page(build: Path = BUILD) -> Path:
    """``_build/html`` with the live page: runs ``jupyter-book build`` when the page is missing or older than
    its sources, then stages its files (:func:`emolib.livepage.stage`); returns the built page."""
    import subprocess
    import sys

    from emolib.livepage import stage

    page = build / LIVE_PAGE
    if not page.is_file() or page.stat().st_mtime < max(p.stat().st_mtime for p in LIVE_SOURCES):
        jb = Path(sys.executable).parent / "jupyter-book"
        done = subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(ROOT), "-W", "--keep-going"],
                              cwd=ROOT, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not page.is_file():
            raise RuntimeError(f"jupyter-book build failed ({done.returncode}):\n{done.stdout[-3000:]}\n"
                               f"{done.stderr[-3000:]}")
    stage(build / "_static" / "live")
    return page


LIVE_STATE = """(() => { const e = document.getElementById('emolib-live'); if (!e) return null;
  return {fps: +e.dataset.fps, faces: +e.dataset.faces, frames: +e.dataset.frames, emotion: e.dataset.emotion,
          status: e.dataset.status, first_ms: e.dataset.firstMs ? +e.dataset.firstMs : null}; })()"""

OVERLAY_PIXELS = """(() => { const c = document.querySelector('.emolib-live-overlay');
  if (!c || !c.width) return -1;
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()"""


def open_live_page(cdp: CDP, url: str, log: bool = True, timeout: float = 120, query: str = "") -> dict:
    """Navigate to the live page and wait until its models are loaded; returns its state.
    ``query``: more URL parameters, e.g. ``hands=0`` (faces only)."""
    params = "&".join(q for q in ("log=1" if log else "", query) if q)
    cdp.call("Page.navigate", url=f"{url}/{LIVE_PAGE}" + (f"?{params}" if params else ""))

    def ready():
        s = cdp.js(LIVE_STATE)
        if s and s["status"].startswith(("could not", "error")):
            raise RuntimeError(f"the live page says: {s['status']}")
        return s if s and s["status"].startswith("ready") else None

    return wait_for(ready, timeout, "the live page to load its models")


def run_camera(cdp: CDP, seconds: float, warmup_frames: int = 5) -> dict:
    """Click *Start camera*, wait for ``warmup_frames`` annotated frames, then measure for ``seconds``.

    Returns the page's state at the end, ``fps`` (annotated frames per second over the measured
    seconds, from the page's frame counter), ``first_ms`` (Start to the first frame with a face)
    and the frame log (when the page was opened with ``log=True``).
    """
    cdp.js("document.getElementById('emolib-live-start').click()")

    def warm():
        s = cdp.js(LIVE_STATE)
        if s["status"].startswith(("no camera", "error")):
            raise RuntimeError(f"the live page says: {s['status']}")
        return s if s["frames"] >= warmup_frames else None

    wait_for(warm, 60, f"{warmup_frames} annotated frames")
    n0, t0 = cdp.js("window.emolibLive.frames"), time.time()
    time.sleep(seconds)
    n1, t1 = cdp.js("window.emolibLive.frames"), time.time()
    state = cdp.js(LIVE_STATE)
    state["measured_fps"] = (n1 - n0) / (t1 - t0)
    state["measured_s"] = t1 - t0
    state["overlay_pixels"] = cdp.js(OVERLAY_PIXELS)
    state["first_ms"] = cdp.js("window.emolibLive.firstMs")
    state["log"] = cdp.js("window.emolibLive.log")
    state["options"] = cdp.js("window.emolibLive.options")
    return state
