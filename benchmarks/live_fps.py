"""The live page's frame rate in headless Chromium, repeated: no Python process behind the page.

Each run builds/stages the page if needed (``tests/browser_page.py``), serves ``_build/html``
with a plain static file server, starts a fresh headless Chromium with the fake camera fed
from the test's 2 s of ``short_hamilton_clip.mp4`` (640x480 y4m, 30 fps), opens the page,
clicks *Start camera* and records:

* ``fps``: annotated frames per second over ``--seconds`` (after 5 warm-up frames), from the
  page's frame counter (the goal: >= 28; the fake camera delivers 30);
* ``first_ms``: from the click on *Start camera* to the first frame drawn with a face
  (goal: within 3 s), the models being loaded with the page;
* ``load_s``: from navigation to the models being ready;
* the load average before and after (a run with load > 2.5 on this 2-core machine is suspect).

Writes ``results/08_webcam/live_fps.json`` (every run, medians); chapter 8 shows it beside the
kernel widget's ``fps.json``. Run it under ``flock /tmp/heavy.lock`` on a shared machine::

    flock /tmp/heavy.lock python benchmarks/live_fps.py --repeats 3

``--peer DIR`` measures a peer page the same way instead (served from DIR, which holds a
``book/08b_try_it.html`` with the same DOM contract): the issue's peer is ``@vladmandic/human``
(npm) with its TF.js WebAssembly backend, face detector and emotion model only, set up as a
throwaway page outside the repository (not a dependency); its record goes to
``live_fps_peer.json``.

``--compare`` measures the ways of reading faces live, side by side in one run, each
``--repeats`` times, interleaved (round 1: all of them, round 2: all of them, ...) so that a change of
load touches all of them alike:

* ``kernel widget``: ``webcam()`` in JupyterLab, frames to the Python kernel
  (``tests/test_webcam_browser.py::test_webcam_in_jupyterlab``, its 15 s count);
* ``browser engine``: ``webcam(engine="browser")`` in JupyterLab, the models in the page
  (``test_browser_engine_in_jupyterlab``: 15 s with the kernel alive, 8 s with it stopped);
* ``live page``: the book's *Try it* page from a static file server (as above), hands included;
* ``live page, faces only``: the same page with ``?hands=0``, the peer's task (``--faces-only`` alone);
* ``peer``: ``@vladmandic/human``'s throwaway page (``--peer DIR``; left out when not given).

It writes ``results/benchmarks/live_fps.json`` (every run with its load average before and
after, the medians); chapter 8 shows its table. Run it on a quiet machine::

    flock /tmp/heavy.lock python benchmarks/live_fps.py --compare --repeats 1 --peer /work/venvs/human-peer/site
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser_page import build_live_page, chromium, open_live_page, run_camera, serve, write_y4m  # noqa: E402
from tests.test_live_page import CLIP, CLIP_SECONDS, CLIP_START_S  # noqa: E402

from benchmarks.webcam_fps import run_once as run_widget_test  # noqa: E402
from emolib.pipeline import DEFAULT_MODEL  # noqa: E402


def one_run(tmp: Path, y4m: Path, seconds: float, site: Path, query: str = "") -> dict:
    load_before = os.getloadavg()
    with serve(site) as url, chromium(tmp / "profile", y4m, tmp / "chromium.log") as cdp:
        t0 = time.time()
        open_live_page(cdp, url, log=False, query=query)
        load_s = time.time() - t0
        run = run_camera(cdp, seconds)
    return {"fps": round(run["measured_fps"], 2), "first_ms": round(run["first_ms"]),
            "load_s": round(load_s, 2), "frames": run["frames"], "seconds": round(run["measured_s"], 2),
            "loadavg_before": [round(v, 2) for v in load_before],
            "loadavg_after": [round(v, 2) for v in os.getloadavg()]}


def _loads() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def compare(repeats: int, seconds: float, peer: Path | None, out: Path) -> dict:
    """The kernel widget, its browser engine, the live page (with hands, and faces only) and the peer,
    ``repeats`` interleaved rounds."""
    site = ROOT / "_build" / "html"
    build_live_page()
    systems = {"kernel widget": None, "browser engine": None, "live page": site, "live page, faces only": site}
    if peer is not None:
        systems["peer"] = peer
    runs: dict[str, list[dict]] = {name: [] for name in systems}
    with tempfile.TemporaryDirectory() as tmp:
        y4m = Path(tmp) / "camera.y4m"
        write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)
        for k in range(repeats):
            for name, folder in systems.items():
                work = Path(tmp) / f"{name.replace(' ', '_')}{k}"
                work.mkdir()
                before = _loads()
                if name == "kernel widget":
                    rec = run_widget_test({}, work)
                    run = {"fps": rec["fps"], "kernel_ms_median": rec["kernel_ms_median"],
                           "cpu_percent": rec["cpu_percent"]}
                elif name == "browser engine":
                    rec = run_widget_test({}, work, "test_browser_engine_in_jupyterlab", "engine_fps.json")
                    run = {"fps": rec["fps"], "fps_kernel_stopped": rec["fps_kernel_stopped"],
                           "engine_load_ms": rec["engine_load_ms"], "cpu_percent": rec["cpu_percent"],
                           "frames_sent_to_kernel": rec["frames_sent_to_kernel"]}
                else:
                    run = one_run(work, y4m, seconds, folder, "hands=0" if name == "live page, faces only" else "")
                run.update(loadavg_before=before, loadavg_after=_loads())
                runs[name].append(run)
                print(f"round {k + 1}/{repeats}, {name}: {run['fps']:.2f} annotated fps "
                      f"(load {before[0]:.2f} before)", flush=True)
    version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    record = {
        "what": "annotated frames per second at 640x480 of the ways to read faces live, measured in one run "
                "(benchmarks/live_fps.py --compare): headless Chromium, fake camera playing 2 s of "
                f"{CLIP.name} (one face) at 30 fps",
        "systems": {
            "kernel widget": "webcam() in JupyterLab: JPEG frames to the kernel's Python pipeline (MTCNN, "
                             f"{DEFAULT_MODEL}), emolib.serverext on",
            "browser engine": "webcam(engine='browser') in JupyterLab: emolib/web/engine.js in the page "
                              "(onnxruntime-web, 1 thread); fps_kernel_stopped: with the kernel process stopped",
            "live page": "the book's Try it page (the same engine.js, and the hands on every frame) from a static "
                         "file server, no Python",
            "live page, faces only": "the same page with ?hands=0: faces and emotions only, as the peer",
            "peer": "@vladmandic/human (npm), TF.js WASM backend, face detector and emotion model only, "
                    "a throwaway page from a static file server",
        },
        "runs": runs,
        "fps_median": {name: statistics.median(r["fps"] for r in rs) for name, rs in runs.items()},
        "seconds_per_count": {"kernel widget": 15, "browser engine": 15, "live page": seconds,
                              "live page, faces only": seconds, "peer": seconds},
        "goal_fps": 28, "camera_fps": 30,
        "chromium": version, "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--out", type=Path)
    p.add_argument("--peer", type=Path, help="a folder with a peer page (book/08b_try_it.html) to measure instead")
    p.add_argument("--faces-only", action="store_true",
                   help="open the live page with ?hands=0 (faces and emotions only, as the peer); the default "
                        "reads the hands too")
    p.add_argument("--compare", action="store_true",
                   help="the kernel widget, the browser engine, the live page and --peer, in one run")
    args = p.parse_args(argv)
    if args.compare:
        record = compare(args.repeats, args.seconds, args.peer, args.out or ROOT / "results" / "benchmarks" /
                         "live_fps.json")
        print(json.dumps({k: record[k] for k in ("fps_median", "when")}, indent=1))
        return 0
    out = args.out or ROOT / "results" / "08_webcam" / ("live_fps_peer.json" if args.peer else "live_fps.json")
    site = args.peer or ROOT / "_build" / "html"
    if not args.peer:
        build_live_page()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        y4m = Path(tmp) / "camera.y4m"
        write_y4m(CLIP, y4m, CLIP_START_S, CLIP_SECONDS)
        for i in range(args.repeats):
            folder = Path(tmp) / f"run{i}"
            folder.mkdir()
            runs.append(one_run(folder, y4m, args.seconds, site, "hands=0" if args.faces_only else ""))
            print(json.dumps(runs[-1]), flush=True)
    version = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True).stdout.strip()
    manifest = None if args.peer else json.loads((site / "_static" / "live" / "models" / "manifest.json").read_text())
    record = {
        "what": "peer page: @vladmandic/human (npm), TF.js WASM backend, face detector and emotion model only; "
                "headless Chromium, fake camera 640x480 at 30 fps, static file server" if args.peer else "the book's live page (onnxruntime-web 1.30.0, 1 thread, WASM SIMD): the full face detection "
                "(BlazeFace, then MTCNN's P-Net, R-Net and O-Net around its faces) every 30th frame and when a face "
                "is lost, the faces followed by O-Net alone in between (engine.js), "
                + Path(manifest["emotion"]["file"]).stem
                + ("; faces only (?hands=0)" if args.faces_only else "; MediaPipe's hands and the gesture model "
                   "on every frame") + "; headless Chromium, fake camera 640x480 at 30 fps, static file server",
        "faces_only": bool(args.faces_only) if not args.peer else None,
        "runs": runs,
        "fps_median": statistics.median(r["fps"] for r in runs),
        "first_ms_median": statistics.median(r["first_ms"] for r in runs),
        "load_s_median": statistics.median(r["load_s"] for r in runs),
        "goal": {"fps": 28, "first_ms": 3000},
        "model_bytes": manifest["bytes"] if manifest else None,
        "chromium": version, "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: v for k, v in record.items() if k != "runs"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
