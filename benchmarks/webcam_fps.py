"""The webcam widget's frame rate in a real browser, repeated: ``tests/test_webcam_browser.py`` N times per variant.

One run of the browser test measures 15 s; on a 2-core machine where Chromium, the
Jupyter server and the kernel share the cores, runs differ by a few frames per second.
This script runs the test ``--repeats`` times for each variant and keeps every number:

* ``default``: what a reader gets with the README's set-up (``emolib serverext enable``,
  the widget's defaults: two frames in flight, face regions between full detections);
* ``nagle``: the same on a plain Jupyter server (no ``emolib.serverext``);
* ``wholeframes``: the same, sending whole frames only (``webcam(regions=False)``).

Writes ``results/08_webcam/fps_runs.json`` (all runs, medians) and, for each variant, the
record of its median run as ``fps.json`` / ``fps_nagle.json`` / ``fps_wholeframes.json``,
with the default's screenshot as ``webcam.png``. Chapter 8 shows them. The side-by-side comparison of
the kernel widget, its browser engine, the live page and the peer, measured in one run, is
``benchmarks/live_fps.py --compare`` (which runs :func:`run_once` for both widget engines).

    python benchmarks/webcam_fps.py --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"default": {}, "nagle": {"EMOLIB_TEST_NODELAY": "0"}, "wholeframes": {"EMOLIB_TEST_REGIONS": "0"}}


def run_once(env_extra: dict[str, str], folder: Path, test: str = "test_webcam_in_jupyterlab",
             record: str = "fps*.json") -> dict:
    """Run one browser test of tests/test_webcam_browser.py (the kernel widget's, or with
    ``test="test_browser_engine_in_jupyterlab", record="engine_fps.json"`` the browser engine's);
    returns the record it wrote into ``folder``."""
    env = dict(os.environ, EMOLIB_WEBCAM_RESULTS=str(folder), **env_extra)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
           "tests/test_webcam_browser.py", "-k", test]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    records = sorted(folder.glob(record))
    if done.returncode != 0 or len(records) != 1:
        raise RuntimeError(f"the browser test failed or skipped:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return json.loads(records[0].read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "08_webcam")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    summary_path = args.out / "fps_runs.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    for name in args.variants:
        with tempfile.TemporaryDirectory() as tmp:
            runs = []  # (record, the folder holding that run's record and screenshot)
            for k in range(args.repeats):
                folder = Path(tmp) / f"run{k}"
                folder.mkdir()
                record = run_once(VARIANTS[name], folder)
                runs.append((record, folder))
                print(f"{name} run {k + 1}/{args.repeats}: {record['fps']:.2f} annotated fps "
                      f"(kernel that answers at once: {record['echo_kernel']['fps']:.2f})", flush=True)
            fps = [r["fps"] for r, _ in runs]
            echo = [r["echo_kernel"]["fps"] for r, _ in runs]
            median_record, median_folder = sorted(runs, key=lambda rf: rf[0]["fps"])[len(runs) // 2]
            record = dict(median_record, runs_fps=fps, runs_echo_fps=echo,
                          note=f"the median of {len(runs)} runs of the browser test (benchmarks/webcam_fps.py)")
            target = "fps.json" if name == "default" else f"fps_{name}.json"
            (args.out / target).write_text(json.dumps(record, indent=1) + "\n")
            shot = next(median_folder.glob("webcam*.png"), None)
            if name == "default" and shot is not None:
                shutil.copy(shot, args.out / "webcam.png")
        summary[name] = {"fps": fps, "median_fps": statistics.median(fps),
                         "echo_fps": echo, "median_echo_fps": statistics.median(echo),
                         "kernel_ms_median": [r["kernel_ms_median"] for r, _ in runs],
                         "round_trip_ms_median": [r["round_trip_ms_median"] for r, _ in runs],
                         "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
        summary_path.write_text(json.dumps(summary, indent=1) + "\n")
        print(f"{name}: median {statistics.median(fps):.2f} annotated fps of {fps}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
