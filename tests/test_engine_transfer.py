"""benchmarks/engine_transfer.py counts the bytes the widget's browser engine sends, as the widget
sends them (``WebcamWidget._send_engine``)."""

import base64
import importlib.util
import json
from pathlib import Path

import pytest

from emolib.pipeline import DEFAULT_MODEL
from emolib.widgets.camera import PART_BYTES

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("engine_transfer", ROOT / "benchmarks" / "engine_transfer.py")
engine_transfer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(engine_transfer)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 10, 11, 12])
def test_base64_bytes_is_the_length_of_each_part_encoded_alone(size):
    blob = bytes(range(size))
    parts = [blob[k:k + 4] for k in range(0, max(size, 1), 4)]
    assert engine_transfer.base64_bytes(size, part_bytes=4) == sum(len(base64.b64encode(p)) for p in parts)


def test_base64_bytes_of_the_widgets_parts():
    part = len(base64.b64encode(bytes(PART_BYTES)))
    assert engine_transfer.base64_bytes(2 * PART_BYTES + 5) == 2 * part + 8


def _files(emotion: str, size: int) -> dict:
    """A stand-in for emolib.webengine.engine_files: a 'WebAssembly binary' over one part, two ONNX
    files and two modules."""
    return {"manifest": {"emotion": {"file": f"{emotion}.onnx"}},
            "modules": [["engine.js", "// é\n"], ["ort.wasm.bundle.min.mjs", "export {};\n"]],
            "binaries": {"ort.wasm": bytes(PART_BYTES + 1), "blaze.onnx": b"\x08" * 100,
                         f"{emotion}.onnx": bytes(size)}}


def test_main_writes_each_models_files_and_totals(tmp_path):
    asked = []

    def gather(name, ort_dir):
        asked.append((name, ort_dir))
        return _files(name, 2000 if name == DEFAULT_MODEL else 3000)

    out = tmp_path / "engine_transfer.json"
    argv = ["--also", "other", DEFAULT_MODEL, "--ort-dir", str(tmp_path), "--out", str(out)]
    assert engine_transfer.main(argv, gather=gather) == 0
    assert asked == [(DEFAULT_MODEL, tmp_path), ("other", tmp_path)], "the default first, each model once"
    rec = json.loads(out.read_text())
    assert rec["model"] == rec["default_model"] == DEFAULT_MODEL
    assert list(rec["models"]) == [DEFAULT_MODEL, "other"]
    assert rec["part_bytes"] == PART_BYTES and len(rec["loadavg_before"]) == 3 and rec["when"].endswith("UTC")
    assert "commit" in rec and rec["onnxruntime_web"]
    m = rec["models"][DEFAULT_MODEL]
    assert m["emotion_file"] == f"{DEFAULT_MODEL}.onnx" and m["binaries"][m["emotion_file"]] == 2000
    assert m["modules"] == {"engine.js": 6, "ort.wasm.bundle.min.mjs": 11}, "UTF-8 bytes, not characters"
    assert m["binaries_bytes"] == PART_BYTES + 1 + 100 + 2000 and m["modules_bytes"] == 17
    assert m["total_bytes"] == m["binaries_bytes"] + 17
    encoded = [len(base64.b64encode(bytes(PART_BYTES))), 4, len(base64.b64encode(bytes(100))),
               len(base64.b64encode(bytes(2000)))]
    assert m["total_bytes_base64"] == sum(encoded) + 17
    assert rec["models"]["other"]["total_bytes"] - m["total_bytes"] == 1000
