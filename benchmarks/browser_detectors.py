"""The face detectors' cost in the browser: BlazeFace versus MTCNN in ONNX Runtime Web, per 640x480 frame.

Serves ``benchmarks/browser/detectors.html`` with onnxruntime-web (``web/node_modules``,
``npm ci`` there first) and the ONNX files (:mod:`emolib.onnx_export`) from a temporary
folder, opens it in headless Chromium (single-threaded WebAssembly with SIMD, as the
book's live page runs on GitHub Pages) and records the median time of each network:
BlazeFace on its 128x128 input; MTCNN's P-Net over the whole image pyramid that
facenet-pytorch builds for a 640x480 frame (min_face_size 32, factor 0.709), R-Net on 8,
32 and 64 candidates and O-Net on 1 and 4 (the pyramid resampling and the NMS passes in
JavaScript come on top of MTCNN's numbers); and the emotion model on one face: by default the
one the live page and the Python pipeline run (``emolib.livepage.DEFAULT_LIVE_MODEL``, which is
``emolib.pipeline.DEFAULT_MODEL``), named in the record's ``emotion_model``.

    flock /tmp/heavy.lock python benchmarks/browser_detectors.py   # -> results/08_webcam/browser_detectors.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import commit, write_record  # noqa: E402
from emolib.livepage import DEFAULT_LIVE_MODEL, ORT_FILES, ort_dist  # noqa: E402
from emolib.onnx_export import export_blazeface, export_emotion, export_mtcnn  # noqa: E402
from tests.browser_page import chromium, serve, wait_for  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "results" / "08_webcam" / "browser_detectors.json")
    p.add_argument("--model", default=DEFAULT_LIVE_MODEL,
                   help="the emotion model timed on one face (default: the live page's, %(default)s)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        (site / "ort").mkdir(parents=True)
        for name in ORT_FILES:
            shutil.copy(ort_dist() / name, site / "ort" / name)
        for name in ("detectors.html", "detectors.js"):
            shutil.copy(ROOT / "benchmarks" / "browser" / name, site / name)
        export_blazeface(site / "models")
        export_mtcnn(site / "models")
        emotion = export_emotion(args.model, site / "models").stem
        load_before = os.getloadavg()
        with serve(site) as url, chromium(Path(tmp) / "profile", None, Path(tmp) / "chromium.log") as cdp:
            cdp.call("Page.navigate", url=f"{url}/detectors.html?emotion={emotion}")
            state = wait_for(lambda: (cdp.js("window.emolibBench && window.emolibBench.done && window.emolibBench")),
                             300, "the benchmark page")
        load_after = os.getloadavg()
    if "error" in state:
        print(state["error"], file=sys.stderr)
        return 1
    r = state["result"]
    # performance.now() is coarsened to 0.1 ms on pages that are not cross-origin isolated
    r = {k: (round(v, 1) if isinstance(v, float) else {n: round(x, 1) for n, x in v.items()} if isinstance(v, dict)
             else v) for k, v in r.items()}
    mtcnn_typical = round(r["mtcnn_pnet_ms"] + r["mtcnn_rnet_ms"]["32"] + r["mtcnn_onet_ms"]["1"], 1)
    record = {"what": "median ms per network call in headless Chromium, onnxruntime-web 1.30.0, WASM SIMD, 1 thread",
              **r, "mtcnn_networks_per_frame_ms": mtcnn_typical,
              "blazeface_networks_per_frame_ms": r["blazeface_ms"],
              "loadavg_before": [round(v, 2) for v in load_before], "loadavg_after": [round(v, 2) for v in load_after],
              "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": commit()}
    write_record(args.out, record)
    print(json.dumps(record, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
