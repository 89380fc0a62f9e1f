"""The webcam chapter's measurements: frames of a video as a camera would send them, the kernel's time
per frame, and the recorded frame rates (``results/08_webcam``) as Markdown tables.

The recorded files are read from the repository's ``results/08_webcam`` or, outside a
checkout, from the packaged reference copy (:func:`emolib.book.runs.result_file`).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from PIL import Image

from ..video import iter_video_frames
from .runs import result_file

__all__ = ["webcam_record", "webcam_record_table", "webcam_variants_table", "live_page_table",
           "live_agreement_table", "engine_transfer", "engine_transfer_table", "camera_frames",
           "camera_jpegs", "time_frames", "timing_table"]


def _read_json(folder: str | os.PathLike, name: str) -> dict | None:
    path = result_file(Path(folder) / name)
    return json.loads(path.read_text()) if path.is_file() else None


def webcam_record(folder: str | os.PathLike = "results/08_webcam") -> tuple[Path | None, dict | None]:
    """What ``tests/test_webcam_browser.py`` recorded: ``(screenshot path or None, fps.json as a dict or None)``.
    ``folder`` is relative to the repository root."""
    shot = result_file(Path(folder) / "webcam.png")
    record = result_file(Path(folder) / "fps.json")
    return (shot if shot.is_file() else None), (json.loads(record.read_text()) if record.is_file() else None)


def webcam_record_table(record: Mapping) -> str:
    """The numbers of ``results/08_webcam/fps.json`` (see :func:`webcam_record`) as a Markdown table."""
    machine = record["machine"]
    runs = record.get("runs_fps")
    sent_regions = record.get("frames_sent_as_face_regions")
    server = {True: "`emolib.serverext` on (TCP_NODELAY)", False: "plain Jupyter server (Nagle's algorithm on)"}
    return "\n".join([
        "| measured | value |", "|---|---|",
        f"| annotated frames per second | **{record['fps']:.1f}** ({record['frames']} frames in "
        f"{record['seconds']:.0f} s)" + (f"; the median of {len(runs)} runs: "
                                          f"{', '.join(f'{f:.1f}' for f in runs)}" if runs else "") + " |",
        f"| camera | {record['frame_size'][0]}×{record['frame_size'][1]}, JPEG quality {record['jpeg_quality']} |",
        *([f"| frames sent as the face's region only | {sent_regions} of {record['frames']} (the others whole, "
           f"for a full detection) |"] if sent_regions is not None else []),
        f"| frames with a face found | {record['frames_with_a_face']} of {record['frames']} |",
        *([f"| grabbing and encoding a frame in the browser (median) | {record['encode_ms_median']:.0f} ms |"]
          if "encode_ms_median" in record else []),
        f"| kernel time per frame (median) | {record['kernel_ms_median']:.0f} ms (MTCNN in full on "
        f"{record['full_detections']} of the {record['frames']} frames) |",
        f"| round trip in the browser (median) | {record['round_trip_ms_median']:.0f} ms |",
        f"| frames in flight | {record.get('max_inflight', 1)} |",
        *([f"| Jupyter server | {server[record['server_nodelay']]} |"]
          if record.get("server_nodelay") in server else []),
        f"| camera frames never sent (dropped) | {record['frames_dropped']} of {record['camera_frames']} |",
        *([f"| CPU used during the count (200 % = both cores) | Chromium {cpu['chromium']:.0f} %, Jupyter server "
           f"{cpu['jupyter_server']:.0f} %, kernel {cpu['kernel']:.0f} % |"] if (cpu := record.get("cpu_percent")) else []),
        *([f"| the same with a kernel that answers at once | {echo['fps']:.1f} frames per second, round trip "
           f"{echo['round_trip_ms_median']:.0f} ms |"] if (echo := record.get("echo_kernel")) else []),
        f"| model | {record['model']} |",
        f"| machine | {machine['cpus']} CPU cores, {machine.get('torch_threads', 1)} torch thread, load average "
        f"{machine['loadavg_1min']} during the run; {machine['chromium']} |",
        f"| recorded | {record['when'][:16].replace('T', ' ')} |",
    ])


def webcam_variants_table(folder: str | os.PathLike = "results/08_webcam") -> str | None:
    """``benchmarks/webcam_fps.py``'s variants side by side (``fps.json``, ``fps_nagle.json``,
    ``fps_wholeframes.json``) as a Markdown table, or ``None`` when fewer than two are there."""
    names = {"fps.json": "as set up in this chapter", "fps_nagle.json": "plain Jupyter server (no `emolib.serverext`)",
             "fps_wholeframes.json": "whole frames only (`webcam(regions=False)`)"}
    files = {n: result_file(Path(folder) / n) for n in names}
    records = {n: json.loads(f.read_text()) for n, f in files.items() if f.is_file()}
    if len(records) < 2:
        return None
    lines = ["| set-up | annotated frames per second (runs) | kernel that answers at once | round trip |",
             "|---|---|---|---|"]
    for n, r in records.items():
        runs = r.get("runs_fps") or [r["fps"]]
        echo = r.get("runs_echo_fps") or [r["echo_kernel"]["fps"]]
        lines.append(f"| {names[n]} | **{statistics.median(runs):.1f}** ({', '.join(f'{f:.1f}' for f in runs)}) | "
                     f"{statistics.median(echo):.1f} ({', '.join(f'{f:.1f}' for f in echo)}) | "
                     f"{r['round_trip_ms_median']:.0f} ms |")
    return "\n".join(lines)


def camera_frames(video: str | os.PathLike, n: int = 60, every: int = 2, size: tuple[int, int] = (640, 480),
                  start_s: float = 0.0) -> list:
    """``n`` frames of a video as a camera of ``size`` would see them (PIL images): every
    ``every``-th frame from ``start_s`` seconds, the centre cut to the aspect ratio of
    ``size`` and resized to it."""
    frames = []
    for _, t_s, rgb in iter_video_frames(video, every=every):
        if t_s < start_s:
            continue
        h, w = rgb.shape[:2]
        cw, ch = (h * size[0] // size[1], h) if w * size[1] > h * size[0] else (w, w * size[1] // size[0])
        x0, y0 = (w - cw) // 2, (h - ch) // 2
        frames.append(Image.fromarray(rgb[y0:y0 + ch, x0:x0 + cw]).resize(size, Image.BILINEAR))
        if len(frames) >= n:
            break
    return frames


def camera_jpegs(video: str | os.PathLike, n: int = 60, every: int = 2, size: tuple[int, int] = (640, 480),
                 quality: int = 70) -> list[bytes]:
    """:func:`camera_frames` as a webcam widget sends them: encoded as JPEG of ``quality``."""
    jpegs = []
    for frame in camera_frames(video, n, every, size):
        buffer = io.BytesIO()
        frame.save(buffer, "JPEG", quality=quality)
        jpegs.append(buffer.getvalue())
    return jpegs


def time_frames(pipeline, jpegs: Sequence[bytes], tracker=None, regions: bool = False,
                quality: int = 70) -> list[dict]:
    """Kernel time of each JPEG frame, as the webcam widget spends it: decoding, MTCNN detection, and
    crops + CLAHE + the model (``pipeline``'s steps), in milliseconds, with the number of faces.

    With a :class:`emolib.widgets.FaceTracker`, the frames go through it instead (one total only).
    With ``regions=True`` as well, each frame is cut to the region that the tracker asked for
    after the frame before (:meth:`~emolib.widgets.FaceTracker.next_region`) and encoded again
    as JPEG of ``quality``, as the browser does; the row then says ``region`` (whether it was
    one) and the JPEG size is that of the region."""
    rows = []
    region = None
    for jpeg in jpegs:
        offset, frame_size = (0, 0), None
        if tracker is not None and regions and region is not None:
            frame = Image.open(io.BytesIO(jpeg)).convert("RGB")
            x, y, w, h = region
            buffer = io.BytesIO()
            frame.crop((x, y, x + w, y + h)).save(buffer, "JPEG", quality=quality)
            jpeg, offset, frame_size = buffer.getvalue(), (x, y), frame.size
        t0 = time.perf_counter()
        image = Image.open(io.BytesIO(jpeg)).convert("RGB")
        t1 = time.perf_counter()
        if tracker is not None:
            size = frame_size or image.size
            faces = len(tracker(image, offset=offset, frame_size=size).faces)
            region = tracker.next_region(size) if regions else None
            t3 = time.perf_counter()
            rows.append({"faces": faces, "jpeg_kb": len(jpeg) / 1024, "total_ms": 1000 * (t3 - t0),
                         "region": frame_size is not None})
            continue
        boxes, _, _ = pipeline.detect(image)
        t2 = time.perf_counter()
        if len(boxes) and pipeline.model is not None:
            pipeline.classify(pipeline.preprocess(image, boxes))
        t3 = time.perf_counter()
        rows.append({"faces": len(boxes), "jpeg_kb": len(jpeg) / 1024, "decode_ms": 1000 * (t1 - t0),
                     "detect_ms": 1000 * (t2 - t1), "classify_ms": 1000 * (t3 - t2), "total_ms": 1000 * (t3 - t0)})
    return rows


def timing_table(rows: Sequence[Mapping]) -> str:
    """:func:`time_frames`'s rows (without a tracker) as a Markdown table of medians."""
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    return "\n".join([
        f"| per frame (median of {len(rows)}) | |", "|---|---:|",
        f"| JPEG size | {med['jpeg_kb']:.0f} kB |",
        f"| decoding the JPEG | {med['decode_ms']:.1f} ms |",
        f"| MTCNN detection | {med['detect_ms']:.1f} ms |",
        f"| crops, CLAHE and the model | {med['classify_ms']:.1f} ms |",
        f"| **kernel total** | **{med['total_ms']:.0f} ms**, at most {1000 / med['total_ms']:.0f} frames per second |",
    ])


def live_page_table(folder: str | os.PathLike = "results/08_webcam") -> str | None:
    """The kernel widget (``fps.json``) beside the book's in-browser page (``live_fps.json``, written by
    ``benchmarks/live_fps.py``) as a Markdown table, with the face detectors' cost in the browser
    (``browser_detectors.json``, with the emotion model it timed, ``emotion_model``); ``None`` when the page's
    benchmark has not been run."""
    live = _read_json(folder, "live_fps.json")
    if live is None:
        return None
    widget = _read_json(folder, "fps.json")
    peer = _read_json(folder, "live_fps_peer.json")

    def runs(rec):
        each = ", ".join(f"{r['fps']:.1f}" for r in rec["runs"])
        return f"**{rec['fps_median']:.1f}** ({each})"

    def loads(rec):
        return ", ".join(f"{r['loadavg_before'][0]:.1f}" for r in rec["runs"])

    wfps = f"{statistics.median(widget['runs_fps']):.1f} ({', '.join(f'{f:.1f}' for f in widget['runs_fps'])})" \
        if widget and widget.get("runs_fps") else (f"{widget['fps']:.1f}" if widget else "not recorded")
    page = "in-browser page (*Try it*" + (", faces only)" if live.get("faces_only") else ")")
    cols = [("kernel widget (chapter 8)", None), (page, live)]
    if peer:
        cols.append(("peer: `@vladmandic/human`, WASM, face + emotion", peer))
    rows = ["| | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]

    def row(name, widget_cell, fn):
        rows.append(f"| {name} | {widget_cell} | " + " | ".join(fn(r) for _, r in cols[1:]) + " |")

    row("annotated frames per second, 640×480 (median, runs)", wfps, runs)
    row("Start to first annotated frame (median)", "", lambda r: f"{r['first_ms_median'] / 1000:.1f} s")
    row("page load to models ready (median)", "", lambda r: f"{r['load_s_median']:.1f} s")
    row("model files the page loads", "", lambda r: f"{sum(r['model_bytes'].values()) / 1e6:.1f} MB"
        if r.get("model_bytes") else "")
    row("Python process", "the kernel (and the Jupyter server)", lambda r: "none: a static file server")
    row("load average at the start of each run", "", loads)
    d = _read_json(folder, "browser_detectors.json")
    if d is not None:
        # records before 2026-11-28 timed baseline-fer2013 by name, under emotion_baseline_ms
        emotion = d.get("emotion_model", "baseline-fer2013")
        emotion_ms = d["emotion_ms"] if "emotion_ms" in d else d["emotion_baseline_ms"]
        rows += ["", "| face detector in the browser (1 thread, WASM SIMD) | networks per 640×480 frame (median) |",
                 "|---|---|",
                 f"| MediaPipe BlazeFace (short range, 128×128) | {d['blazeface_ms']:.1f} ms |",
                 f"| MTCNN: P-Net on the {len(d['mtcnn_pyramid'])}-level pyramid, R-Net on 32, O-Net on 1 "
                 f"candidates | {d['mtcnn_networks_per_frame_ms']:.1f} ms (P-Net alone {d['mtcnn_pnet_ms']:.1f} ms; "
                 f"pyramid and NMS in JavaScript on top) |",
                 f"| MTCNN's R-Net per candidate (from a batch of 8) and O-Net on one face | "
                 f"{d['mtcnn_rnet_ms']['8'] / 8:.1f} ms and {d['mtcnn_onet_ms']['1']:.1f} ms |",
                 f"| the emotion model (`{emotion}`), one face | {emotion_ms:.1f} ms |",
                 f"| load average before the detector measurement | {d['loadavg_before'][0]:.1f} |"]
    return "\n".join(rows)


def engine_transfer(folder: str | os.PathLike = "results/benchmarks") -> dict | None:
    """What the webcam widget's browser engine sends once, per emotion model (``engine_transfer.json``,
    written by ``benchmarks/engine_transfer.py``), or ``None`` when it has not been counted."""
    return _read_json(folder, "engine_transfer.json")


def engine_transfer_table(folder: str | os.PathLike = "results/benchmarks") -> str | None:
    """:func:`engine_transfer` as a Markdown table, one column per model (the default model's first): the
    emotion model, the WebAssembly binary, the other ONNX files (the face detectors), the JavaScript
    modules, and the totals, as sent and as base64 text; ``None`` when not counted."""
    rec = engine_transfer(folder)
    if rec is None:
        return None
    names = sorted(rec["models"], key=lambda n: n != rec["default_model"])
    models = [rec["models"][n] for n in names]

    def cells(fn):
        return " | ".join(fn(m) for m in models) + " |"

    def mb(n):
        return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"

    def wasm(m):
        return sum(n for f, n in m["binaries"].items() if f.endswith(".wasm"))

    def detectors(m):
        return sum(n for f, n in m["binaries"].items() if f.endswith(".onnx") and f != m["emotion_file"])

    heads = [f"`{n}`" + (" (the default)" if n == rec["default_model"] else "") for n in names]
    return "\n".join([
        "| sent once by the kernel | " + " | ".join(heads) + " |", "|---" + "|---:" * len(names) + "|",
        "| the emotion model (ONNX) | " + cells(lambda m: mb(m["binaries"][m["emotion_file"]])),
        "| BlazeFace and MTCNN's three networks (ONNX) | " + cells(lambda m: mb(detectors(m))),
        "| ONNX Runtime Web's WebAssembly binary | " + cells(lambda m: mb(wasm(m))),
        f"| JavaScript: {', '.join(f'`{f}`' for f in models[0]['modules'])} | "
        + cells(lambda m: mb(m["modules_bytes"])),
        "| **in all** | " + cells(lambda m: f"**{mb(m['total_bytes'])}**"),
        "| in all as base64 text (Colab) | " + cells(lambda m: mb(m["total_bytes_base64"])),
    ])


def live_agreement_table(folder: str | os.PathLike = "results/benchmarks") -> str | None:
    """The live page against Python on the fake camera (``live_page_agreement.json``, written by
    ``benchmarks/live_agreement.py``) as a Markdown table, one row per way of running the page; ``None``
    when the benchmark has not been run."""
    rec = _read_json(folder, "live_page_agreement.json")
    if rec is None or not isinstance(rec.get("runs"), dict):
        return None
    names = {"per frame": "full detection on every frame (`?detectEvery=1`)",
             "followed": "faces followed, as the page opens"}

    def each(runs, key, of="compared"):
        return ", ".join(f"{r[key]} of {r[of]}" for r in runs)

    rows = ["| the page's faces | frames followed | emotion as the Python pipeline's (each run) "
            f"| box within {rec['box_within_px']} px of the tracker's | emotion as the tracker's "
            "| load average before |", "|---|---|---|---|---|---|"]
    for key, runs in rec["runs"].items():
        rates = [r["agree"] / r["compared"] for r in runs if r["compared"]]
        worst = f"lowest {min(rates):.1%}" if rates else "no frame with one face"
        loads = ", ".join(f"{r['loadavg_before'][0]:.1f}" for r in runs)
        rows.append(f"| {names.get(key, key)} | {each(runs, 'tracked', 'frames')} | {each(runs, 'agree')} "
                    f"({worst}) | {each(runs, 'same_box')} | {each(runs, 'agree_tracker')} | {loads} |")
    return "\n".join(rows)
