"""Convert MediaPipe's short-range face detector (BlazeFace) from TFLite to ONNX for the live page.

The result, ``emolib/web/models/blazeface_short_range.onnx``, is committed: TensorFlow is
not a dependency of emolib. Rerun this script only to re-make it, in a throwaway venv::

    python3 -m venv /work/venvs/tf2onnx-web
    /work/venvs/tf2onnx-web/bin/pip install tensorflow-cpu==2.21.0 tf2onnx==1.17.0 onnxruntime==1.31.1
    pip download mediapipe==0.10.21 --no-deps -d /tmp/mp      # the wheel holds the .tflite file
    /work/venvs/tf2onnx-web/bin/python tools/convert_mediapipe_face.py /tmp/mp/mediapipe-0.10.21-*.whl

What it does:

1. reads ``mediapipe/modules/face_detection/face_detection_short_range.tflite`` from the
   wheel (MediaPipe, Apache-2.0; input ``(1, 128, 128, 3)`` RGB in -1..1, outputs 896
   anchors' box regressors ``(1, 896, 16)`` and scores ``(1, 896, 1)``, as logits);
2. converts it with ``tf2onnx.convert.from_tflite`` (opset 17);
3. puts ``2 x - 1`` in front, so the page feeds pixels in 0..1 like every other emolib
   ONNX file, and names the tensors ``image``, ``regressors`` and ``classificators``;
4. checks that onnxruntime's outputs equal TFLite's within 1e-4 on random images and on
   a smooth synthetic one, and exits with an error if not.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

TFLITE_IN_WHEEL = "mediapipe/modules/face_detection/face_detection_short_range.tflite"
OUT = Path(__file__).resolve().parents[1] / "emolib" / "web" / "models" / "blazeface_short_range.onnx"
TOL = 1e-4


def convert(tflite: Path, out: Path) -> None:
    import onnx
    import tf2onnx
    from onnx import helper

    model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=17)
    graph = model.graph
    old_in = graph.input[0].name
    # 2x - 1 in front of the network: pixels 0..1 in, MediaPipe's -1..1 to the first layer.
    graph.initializer.extend([helper.make_tensor("emolib_two", onnx.TensorProto.FLOAT, [], [2.0]),
                              helper.make_tensor("emolib_one", onnx.TensorProto.FLOAT, [], [1.0])])
    pre = [helper.make_node("Mul", ["image", "emolib_two"], ["emolib_scaled"]),
           helper.make_node("Sub", ["emolib_scaled", "emolib_one"], [old_in])]
    for i, node in enumerate(pre):
        graph.node.insert(i, node)
    graph.input[0].name = "image"
    # Output names: by shape (16 coordinates per anchor, or 1 score).
    renames = {}
    for o in graph.output:
        last = o.type.tensor_type.shape.dim[-1].dim_value
        renames[o.name] = "regressors" if last == 16 else "classificators"
    for node in graph.node:
        node.output[:] = [renames.get(n, n) for n in node.output]
    for o in graph.output:
        o.name = renames[o.name]
    del model.metadata_props[:]
    for k, v in {"source": TFLITE_IN_WHEEL + " (mediapipe 0.10.21)", "license": "Apache-2.0",
                 "input": "RGB 128x128 NHWC, pixels in 0..1", "converted_by": "tools/convert_mediapipe_face.py"}.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))


def check(tflite: Path, out: Path) -> float:
    """Largest difference between TFLite and onnxruntime over a few inputs; raises above TOL."""
    import onnxruntime as ort
    import tensorflow as tf

    interp = tf.lite.Interpreter(model_path=str(tflite))
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    outs = {tuple(d["shape"])[-1]: d["index"] for d in interp.get_output_details()}
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 127.0
    smooth = np.stack([xx, yy, (xx + yy) / 2], -1)[None].astype(np.float32)
    worst = 0.0
    for x in [rng.random((1, 128, 128, 3), dtype=np.float32) for _ in range(3)] + [smooth]:
        interp.set_tensor(inp["index"], x * 2 - 1)
        interp.invoke()
        ref = {16: interp.get_tensor(outs[16]), 1: interp.get_tensor(outs[1])}
        reg, cls = sess.run(["regressors", "classificators"], {"image": x})
        worst = max(worst, float(np.abs(reg - ref[16]).max()), float(np.abs(cls - ref[1]).max()))
    if worst > TOL:
        raise SystemExit(f"ONNX and TFLite differ by {worst:.2e} > {TOL}")
    return worst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("wheel", type=Path, help="mediapipe-0.10.21-*.whl, or the .tflite file itself")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    tflite = args.wheel
    if args.wheel.suffix == ".whl":
        tflite = Path("/tmp") / "face_detection_short_range.tflite"
        with zipfile.ZipFile(args.wheel) as z:
            tflite.write_bytes(z.read(TFLITE_IN_WHEEL))
    convert(tflite, args.out)
    worst = check(tflite, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); ONNX == TFLite within {worst:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
