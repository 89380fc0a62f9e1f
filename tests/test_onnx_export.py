"""ONNX files for the browser: each runs in onnxruntime and gives PyTorch's outputs within 1e-4."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from emolib.cli import main
from emolib.models import list_pretrained, load_model
from emolib.onnx_export import BLAZEFACE_FILE, WEB_MODELS, export_emotion, export_mtcnn, mtcnn_networks, onnx_names
from tests.conftest import needs_real

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is needed to run the exported files")
TOL = 1e-4
EMOTION_MODELS = [n for n in list_pretrained() if not n.startswith("gestures")]


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _real_faces(n_per_class: int = 4) -> np.ndarray:
    """FER2013 PublicTest faces, ``n_per_class`` of each emotion, as 0..1 floats ``(n, 1, 48, 48)``."""
    root = needs_real("fer2013/test")
    paths = [p for d in sorted(root.iterdir()) if d.is_dir() for p in sorted(d.glob("*.jpg"))[:n_per_class]]
    return np.stack([np.asarray(Image.open(p).convert("L"), np.float32)[None] / 255.0 for p in paths])


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    for name in EMOTION_MODELS:
        export_emotion(name, out)
    export_mtcnn(out)
    return out


def _torch_emotion(name: str, x: np.ndarray) -> np.ndarray:
    model = load_model(name)
    cfg = model.input_config
    t = (torch.from_numpy(x) - torch.tensor(cfg.mean).reshape(1, -1, 1, 1)) / torch.tensor(cfg.std).reshape(1, -1, 1, 1)
    with torch.no_grad():
        return model(t.float()).numpy()


def _check_emotion(onnx_dir, name: str, x: np.ndarray) -> None:
    logits, probs = _session(onnx_dir / f"{name}.onnx").run(None, {"image": x.astype(np.float32)})
    ref = _torch_emotion(name, x)
    np.testing.assert_allclose(logits, ref, atol=TOL, rtol=0)
    np.testing.assert_allclose(probs, torch.from_numpy(ref).softmax(1).numpy(), atol=TOL, rtol=0)
    assert (probs.argmax(1) == ref.argmax(1)).all()


@pytest.mark.parametrize("name", EMOTION_MODELS)
def test_emotion_onnx_equals_pytorch_on_generated_input(onnx_dir, name):
    rng = np.random.default_rng(0)
    x = rng.random((5, 1, 48, 48), dtype=np.float32)
    x[0] = 0.0  # the extremes too
    x[1] = 1.0
    _check_emotion(onnx_dir, name, x)
    info = json.loads((onnx_dir / f"{name}.json").read_text())
    assert info["classes"] == list(load_model(name).classes) and info["size"] == 48


@pytest.mark.parametrize("name", EMOTION_MODELS)
def test_emotion_onnx_equals_pytorch_on_real_faces(onnx_dir, name):
    _check_emotion(onnx_dir, name, _real_faces())


def test_mtcnn_onnx_equals_pytorch(onnx_dir):
    rng = np.random.default_rng(1)
    nets = dict(zip(("pnet", "rnet", "onet"), mtcnn_networks()))
    for net, shape in (("pnet", (1, 3, 93, 121)), ("rnet", (4, 3, 24, 24)), ("onet", (4, 3, 48, 48))):
        x = rng.random(shape, dtype=np.float32)
        got = _session(onnx_dir / f"mtcnn_{net}.onnx").run(None, {"image": x})
        with torch.no_grad():
            ref = nets[net]((torch.from_numpy(x) * 255.0 - 127.5) * 0.0078125)
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            np.testing.assert_allclose(g, r.numpy(), atol=TOL, rtol=0)


def test_mtcnn_pnet_onnx_on_a_real_photo(onnx_dir):
    photo = needs_real("photos") / "obama.jpg"
    img = Image.open(photo).convert("RGB").resize((160, 120))
    x = np.asarray(img, np.float32).transpose(2, 0, 1)[None] / 255.0
    reg, prob = _session(onnx_dir / "mtcnn_pnet.onnx").run(None, {"image": x})
    with torch.no_grad():
        ref_reg, ref_prob = mtcnn_networks()[0]((torch.from_numpy(x) * 255.0 - 127.5) * 0.0078125)
    np.testing.assert_allclose(prob, ref_prob.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(reg, ref_reg.numpy(), atol=TOL, rtol=0)


def test_export_onnx_command(tmp_path, capsys):
    assert main(["export", "--onnx", EMOTION_MODELS[0], "--out", str(tmp_path)]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["onnx"].endswith(f"{EMOTION_MODELS[0]}.onnx") and line["size_bytes"] > 100_000
    assert main(["export", "--onnx", "no-such-model", "--out", str(tmp_path)]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert main(["export"]) == 2  # neither a run to ship nor --onnx
    assert "mtcnn" in onnx_names() and "all" in onnx_names()


@pytest.mark.skipif(not (WEB_MODELS / BLAZEFACE_FILE).is_file(), reason="the converted BlazeFace is not shipped")
def test_blazeface_onnx_finds_the_face_in_a_real_photo():
    photo = needs_real("photos") / "obama.jpg"
    img = Image.open(photo).convert("RGB").resize((128, 128))
    x = np.asarray(img, np.float32)[None] / 255.0
    sess = _session(WEB_MODELS / BLAZEFACE_FILE)
    reg, cls = sess.run(["regressors", "classificators"], {"image": x})
    assert reg.shape == (1, 896, 16) and cls.shape == (1, 896, 1)
    assert 1.0 / (1.0 + np.exp(-cls.max())) > 0.75  # a confident face
    blank = np.full_like(x, 0.5)
    assert 1.0 / (1.0 + np.exp(-sess.run(["classificators"], {"image": blank})[0].max())) < 0.5


def test_a_failed_export_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    name = EMOTION_MODELS[0]
    path = export_emotion(name, tmp_path)
    before = path.read_bytes()
    meta = {p.key: p.value for p in __import__("onnx").load(str(path)).metadata_props}
    assert meta["classes"] == ",".join(load_model(name).classes) and meta["producer"] == "emolib.onnx_export"

    def broken(module, args, f, **kwargs):  # fails half-way through writing
        if isinstance(f, (str, bytes)) or hasattr(f, "__fspath__"):
            with open(f, "wb") as fh:
                fh.write(b"partial")
        else:
            f.write(b"partial")
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        export_emotion(name, tmp_path)
    assert path.read_bytes() == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.json", f"{name}.onnx"]  # no temporary left
