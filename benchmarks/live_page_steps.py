"""Where a frame of the live page goes, and what WebAssembly threads would buy: the page's own step timings.

Serves ``_build/html`` with a static file server that also sends the cross-origin isolation headers
(``Cross-Origin-Opener-Policy: same-origin``, ``Cross-Origin-Embedder-Policy: require-corp``), which
GitHub Pages cannot send and which WebAssembly threads need; opens the *Try it* page in a fresh
headless Chromium (fake camera from the test's clip, 640x480 at 30 fps) with ``?log=1&hands=0``
(faces only) and ``threads=N`` for each ``--threads`` value, alternating ``--repeats`` times, and
records per run the annotated frames per second and the medians of the page's per-frame timings
(``engine.timing``: BlazeFace, MTCNN and its networks, the emotion model, the frame's total) and of
the R-Net candidates and O-Net survivors per frame, over all frames and split by the step the page took
(`median_by_mode`: "full" detection or faces "tracked" by O-Net alone), with the load average before and after.

The page uses one thread unless it is cross-origin isolated and asked for more (``emolib/web/live.js``),
so ``threads=1`` here is the published page's engine. Writes
``results/benchmarks/live_page_steps.json``::

    flock /tmp/heavy.lock python benchmarks/live_page_steps.py --threads 1 2 --repeats 2
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_page import build_live_page, chromium, open_live_page, run_camera, write_y4m  # noqa: E402
from tests.test_live_page import CLIP, CLIP_SECONDS, CLIP_START_S  # noqa: E402


class IsolatingHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that sends the headers of cross-origin isolation, quietly."""

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve_isolated(folder: Path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(IsolatingHandler,
                                                                                  directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def one_run(tmp: Path, y4m: Path, site: Path, threads: int, seconds: float) -> dict:
    load_before = [round(v, 2) for v in os.getloadavg()]
    with serve_isolated(site) as url, chromium(tmp / "profile", y4m, tmp / "chromium.log") as cdp:
        open_live_page(cdp, url, log=True, query=f"hands=0&threads={threads}")
        isolated = cdp.js("self.crossOriginIsolated")
        run = run_camera(cdp, seconds)
    log = run["log"][5:]  # after the warm-up frames
    def medians(entries):
        keys = sorted({k for e in entries for k, v in e["timing"].items() if isinstance(v, (int, float))})
        return {k: round(statistics.median(e["timing"][k] for e in entries if k in e["timing"]), 1) for k in keys}

    modes = sorted({e["timing"].get("mode", "full") for e in log})  # "full" or "tracked" (engine.js)
    by_mode = {m: [e for e in log if e["timing"].get("mode", "full") == m] for m in modes}
    return {"threads": threads, "cross_origin_isolated": isolated, "fps": round(run["measured_fps"], 2),
            "frames_logged": len(log), "median_per_frame": medians(log),
            "frames_by_mode": {m: len(v) for m, v in by_mode.items()},
            "median_by_mode": {m: medians(v) for m, v in by_mode.items()},
            "loadavg_before": load_before, "loadavg_after": [round(v, 2) for v in os.getloadavg()]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "live_page_steps.json")
    args = p.parse_args(argv)
    site = ROOT / "_build" / "html"
    build_live_page()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        y4m = Path(tmp) / "camera.y4m"
        write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)
        for k in range(args.repeats):
            for n in args.threads:
                folder = Path(tmp) / f"t{n}_{k}"
                folder.mkdir()
                runs.append(one_run(folder, y4m, site, n, args.seconds))
                print(json.dumps(runs[-1]), flush=True)
    version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    record = {
        "what": "the Try it page's own per-frame timings (?log=1), faces only (?hands=0), with ?threads=N on a "
                "server sending the cross-origin isolation headers; headless Chromium, fake camera 640x480 at "
                "30 fps; milliseconds are medians over the frames of a run after 5 warm-up frames",
        "runs": runs,
        "fps_median": {str(n): statistics.median(r["fps"] for r in runs if r["threads"] == n) for n in args.threads},
        "total_ms_median": {str(n): statistics.median(r["median_per_frame"].get("total", 0) for r in runs
                                                      if r["threads"] == n) for n in args.threads},
        "camera_fps": 30, "chromium": version, "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: record[k] for k in ("fps_median", "total_ms_median", "when")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
