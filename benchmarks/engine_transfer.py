"""What the webcam widget's browser engine sends to the notebook's page, in bytes, per emotion model.

``webcam(engine="browser")`` sends, once, what :func:`emolib.webengine.engine_files` returns: the
``binaries`` (ONNX Runtime Web's WebAssembly binary and the ONNX files: BlazeFace, MTCNN's three
networks and the emotion model) as binary buffers of widget messages in parts of at most
``emolib.widgets.camera.PART_BYTES``, or as base64 text where the front end takes no buffers (Colab),
and the ``modules`` (``face.js``, ``mtcnn.js``, ``engine.js`` and ``ort.wasm.bundle.min.mjs``) as
text in the last message. This script counts those bytes for the default model
(``emolib.pipeline.DEFAULT_MODEL``) and for each ``--also`` model, and writes
``results/benchmarks/engine_transfer.json``: per model, each file's bytes, ``total_bytes`` (binaries
plus the modules' UTF-8 bytes) and ``total_bytes_base64`` (the binaries as the base64 text of each
part); ``model`` is the one counted first, ``default_model`` the pipeline's. Nothing is timed;
exporting a model to ONNX the first time takes a few seconds.

    python benchmarks/engine_transfer.py   # -> results/benchmarks/engine_transfer.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import commit, write_record  # noqa: E402
from emolib.pipeline import DEFAULT_MODEL  # noqa: E402
from emolib.webengine import engine_files, ort_pin  # noqa: E402
from emolib.widgets.camera import PART_BYTES  # noqa: E402


def base64_bytes(size: int, part_bytes: int = PART_BYTES) -> int:
    """The base64 text of a ``size``-byte file sent in parts of at most ``part_bytes`` (each part encoded
    on its own, as ``WebcamWidget._send_engine`` does)."""
    full, rest = divmod(size, part_bytes)
    return full * 4 * -(-part_bytes // 3) + 4 * -(-rest // 3)


def transfer(files: dict) -> dict:
    """Bytes of what :func:`emolib.webengine.engine_files` returned (``files``): per binary, per module
    (UTF-8), their totals, and the total with the binaries as base64 text."""
    binaries = {name: len(blob) for name, blob in files["binaries"].items()}
    modules = {name: len(source.encode("utf-8")) for name, source in files["modules"]}
    total = sum(binaries.values()) + sum(modules.values())
    b64 = sum(base64_bytes(n) for n in binaries.values()) + sum(modules.values())
    return {"binaries": binaries, "modules": modules, "binaries_bytes": sum(binaries.values()),
            "modules_bytes": sum(modules.values()), "total_bytes": total, "total_bytes_base64": b64,
            "emotion_file": files["manifest"]["emotion"]["file"]}


def main(argv=None, gather=engine_files) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="the emotion model (default: the pipeline's, %(default)s)")
    p.add_argument("--also", nargs="*", default=["baseline-fer2013"],
                   help="other models to count (%(default)s)")
    p.add_argument("--ort-dir", type=Path, default=None,
                   help="onnxruntime-web's dist folder (default: ort_dist)")
    p.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks" / "engine_transfer.json")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    models = {}
    for name in dict.fromkeys([args.model, *args.also]):
        models[name] = transfer(gather(name, args.ort_dir))
        print(f"{name}: {models[name]['total_bytes'] / 1e6:.1f} MB ({models[name]['total_bytes']:,} bytes)")
    record = {"what": "bytes the webcam widget's browser engine sends once (emolib.webengine.engine_files): "
                      "binaries as widget buffers, modules as UTF-8 text (not counted: the manifest, under "
                      "1 kB, and the modules' JSON escaping); total_bytes_base64: the binaries as base64 "
                      f"text of {PART_BYTES >> 20} MB parts (Colab)",
              "model": args.model, "default_model": DEFAULT_MODEL, "models": models, "part_bytes": PART_BYTES,
              "onnxruntime_web": ort_pin()["version"],
              "loadavg_before": [round(v, 2) for v in load_before],
              "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "commit": commit()}
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
