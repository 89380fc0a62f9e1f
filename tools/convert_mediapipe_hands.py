"""Convert MediaPipe's hand models (from the mediapipe 0.10.21 wheel) to the ONNX files emolib ships.

emolib runs MediaPipe Hands with onnxruntime, without mediapipe (whose last release with the
models inside, 0.10.21, pins numpy<2). This script makes the ONNX files once; it is not needed
at run time. Rerun it (from the repository root) in a throwaway environment::

    python3 -m venv /work/venvs/tf2onnx
    /work/venvs/tf2onnx/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnxruntime
    /work/venvs/tf2onnx/bin/python tools/convert_mediapipe_hands.py

It

1. downloads the wheel with ``pip download mediapipe==0.10.21 --no-deps`` (or takes
   ``--wheel PATH``) and unpacks the four ``.tflite`` files under ``mediapipe/modules/``:
   ``palm_detection_full`` / ``palm_detection_lite`` (MediaPipe's palm detector for
   ``model_complexity`` 1 / 0) and ``hand_landmark_full`` / ``hand_landmark_lite``;
2. converts each with ``python -m tf2onnx.convert --tflite ... --opset 13`` (inputs stay
   NHWC float32 in [0, 1], as in TFLite; output names are TFLite's);
3. checks the ONNX model against the TFLite interpreter on a random input and on a smooth
   synthetic image: every output must agree within ``--atol`` (1e-4), measured relative to
   the output's largest value where that is above 1 (the palm detector's box regressors are
   in pixels of its 192x192 input, where float32 rounding alone is ~1e-5), else it stops;
4. writes the ``.onnx`` files and ``SOURCE.json`` (wheel, sha256 of each tflite and onnx
   file, tool versions, largest differences) to ``emolib/assets/hands/``. The licence notice
   (Apache-2.0, by the MediaPipe authors) is ``emolib/assets/hands/NOTICE``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MODELS = {
    "palm_detection_full": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "palm_detection_lite": "mediapipe/modules/palm_detection/palm_detection_lite.tflite",
    "hand_landmark_full": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
    "hand_landmark_lite": "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite",
}
VERSION = "0.10.21"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def get_wheel(wheel: str | None, tmp: Path) -> Path:
    if wheel:
        return Path(wheel)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", f"mediapipe=={VERSION}", "--no-deps",
                    "-d", str(tmp)], check=True)
    return next(tmp.glob(f"mediapipe-{VERSION}-*.whl"))


def check(tflite: Path, onnx_file: Path, atol: float) -> float:
    """Largest difference between TFLite and onnxruntime outputs, relative to each output's largest
    value where that is above 1 (raises if over ``atol``)."""
    import onnxruntime as ort
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    (inp,) = interp.get_input_details()
    sess = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (oinp,) = sess.get_inputs()
    shape = tuple(inp["shape"])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : shape[1], 0 : shape[2]] / shape[1]
    smooth = np.stack([0.5 + 0.4 * np.sin(6 * xx + 3 * c) * np.cos(5 * yy) for c in range(3)], -1)
    inputs = [rng.random(shape, dtype=np.float32), smooth[None].astype(np.float32)]
    worst = 0.0
    for x in inputs:
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        ref = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
        got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {oinp.name: x})))
        if set(ref) != set(got):
            raise SystemExit(f"{onnx_file.name}: outputs {sorted(got)} differ from TFLite's {sorted(ref)}")
        for name in ref:
            # Relative to the output's size where that is above 1: the palm detector's box
            # regressors are in pixels of its 192x192 input (up to a few hundred).
            scale = max(1.0, float(np.abs(ref[name]).max()))
            diff = float(np.abs(ref[name].reshape(got[name].shape) - got[name]).max()) / scale
            worst = max(worst, diff)
            if diff > atol:
                raise SystemExit(f"{onnx_file.name}: output {name} differs from TFLite by {diff:.2e} > {atol} "
                                 f"(relative to its largest value where that is above 1)")
    return worst


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", help="a downloaded mediapipe-0.10.21 wheel (default: pip download it)")
    ap.add_argument("--out", default="emolib/assets/hands", help="output folder (default %(default)s)")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--atol", type=float, default=1e-4)
    args = ap.parse_args(argv)
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        wheel = get_wheel(args.wheel, tmp)
        source = {"wheel": wheel.name, "wheel_sha256": sha256(wheel),
                  "tools": {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
                            "onnxruntime": onnxruntime.__version__, "opset": args.opset},
                  "check": f"max |onnx - tflite| / max(1, max |tflite|) <= {args.atol} on a random and a smooth input",
                  "models": {}}
        with zipfile.ZipFile(wheel) as zf:
            for name, member in MODELS.items():
                tflite = tmp / f"{name}.tflite"
                tflite.write_bytes(zf.read(member))
                onnx_file = out / f"{name}.onnx"
                subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tflite),
                                "--output", str(onnx_file), "--opset", str(args.opset)], check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                worst = check(tflite, onnx_file, args.atol)
                source["models"][name] = {"from": member, "tflite_sha256": sha256(tflite),
                                          "onnx_sha256": sha256(onnx_file), "max_diff": worst}
                print(f"{name}: {onnx_file} ({onnx_file.stat().st_size / 1e6:.1f} MB), max |diff| {worst:.2e}")
    (out / "SOURCE.json").write_text(json.dumps(source, indent=2) + "\n")


if __name__ == "__main__":
    main()
