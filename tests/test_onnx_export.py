"""ONNX files for the browser: each runs in onnxruntime and gives PyTorch's outputs within 1e-4 (the hand
networks, converted from TFLite, give the shipped ONNX files' outputs: their weights are only stored as float16)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emolib.cli import main
from emolib.labels import EMOTIONS
from emolib.models import create_model, list_pretrained, load_model, save_checkpoint
from emolib.onnx_export import (BLAZEFACE_FILE, HAND_FILES, WEB_MODELS, export_emotion, export_gestures, export_hands,
                                export_mtcnn, half_weights, mtcnn_networks, onnx_names)
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
def test_shipped_emotion_onnx_stores_its_float16_weights_without_rounding(onnx_dir, name):
    # A shipped checkpoint holds float16 values: the file keeps them as float16, unrounded (batch norm not
    # folded into the convolutions), so it is about half the float32 size.
    import onnx

    model = onnx.load(onnx_dir / f"{name}.onnx")
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["float16_weights"].endswith(" 0 values rounded"), meta
    params = sum(p.numel() for p in load_model(name).parameters())
    assert (onnx_dir / f"{name}.onnx").stat().st_size < 2.2 * params


def test_emotion_onnx_of_float32_weights_stays_float32(tmp_path):
    # Weights that are not float16 values (a fresh model) are not rounded to make the file smaller.
    import onnx

    net = create_model("baseline").eval()
    path = tmp_path / "fresh.pt"
    save_checkpoint(net, path, list(EMOTIONS), half=False)
    out = export_emotion(path, tmp_path)
    meta = {p.key: p.value for p in onnx.load(out).metadata_props}
    assert "float16_weights" not in meta
    x = np.random.default_rng(1).random((3, 1, 48, 48), dtype=np.float32)
    logits, _ = _session(out).run(None, {"image": x})
    with torch.no_grad():
        ref = net((torch.from_numpy(x) - 0.5) / 0.5).numpy()
    np.testing.assert_allclose(logits, ref, atol=TOL, rtol=0)


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


# --------------------------------------------------------------------------- hands and gestures


def _asl_photos(per_letter: int) -> list:
    root = needs_real("asl/train")
    return [p for letter in "AFLV" for p in sorted((root / letter).glob("*.jpg"))[:per_letter]]


def _check_gestures(path, x: np.ndarray) -> None:
    model = load_model("gestures-asl")
    logits, probs = _session(path).run(None, {"landmarks": x.astype(np.float32)})
    with torch.no_grad():
        ref = model(torch.from_numpy(x).float())
    np.testing.assert_allclose(logits, ref.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(probs, ref.softmax(1).numpy(), atol=TOL, rtol=0)
    assert (probs.argmax(1) == ref.numpy().argmax(1)).all()


def test_gesture_onnx_equals_pytorch_on_generated_features(tmp_path):
    path = export_gestures("gestures-asl", tmp_path)
    x = np.random.default_rng(2).normal(0, 1, (6, 63)).astype(np.float32)
    _check_gestures(path, x)
    info = json.loads(path.with_suffix(".json").read_text())
    model = load_model("gestures-asl")
    assert info["classes"] == list(model.classes) and info["inputs"] == 63
    assert info["normalization"] == {"rotate": True, "use_z": True}
    assert info["gesture_emotions"]["victory"] == "happy"


def test_gesture_onnx_equals_pytorch_on_real_landmarks(tmp_path):
    """The MLP's features from hands MediaPipe found in real ASL photos (the shipped detector's settings)."""
    from emolib.hands import HandDetector, landmark_features

    photos = _asl_photos(3)
    with HandDetector() as detect:
        hands = [h for p in photos for h in detect(p)]
    assert len(hands) >= len(photos) - 2, "the hand detector missed most ASL photos"
    x = landmark_features(np.stack([h.landmarks for h in hands]), [h.handedness for h in hands])
    _check_gestures(export_gestures("gestures-asl", tmp_path), x)


def test_export_gestures_refuses_an_emotion_model(tmp_path):
    with pytest.raises(ValueError, match="not a landmark gesture model"):
        export_gestures(EMOTION_MODELS[0], tmp_path)


def test_hand_networks_with_float16_weights_lose_nothing(tmp_path):
    """MediaPipe's weights are float16 values: stored as float16 they are the same numbers, and the
    networks give the same outputs as the shipped float32 files, in half the bytes."""
    import onnx
    from onnx import numpy_helper

    from emolib.hands import MODEL_DIR

    paths = export_hands(tmp_path)
    assert [p.name for p in paths] == list(HAND_FILES)
    rng = np.random.default_rng(3)
    for path in paths:
        src = MODEL_DIR / path.name
        assert path.stat().st_size < 0.55 * src.stat().st_size
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert meta["float16_weights"].endswith(" 0 values rounded"), meta
        original = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(src)).graph.initializer}
        halves = {i.name[:-4]: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer
                  if i.name.endswith("_f16")}
        assert halves and all(v.dtype == np.float16 for v in halves.values())
        for name, v in halves.items():
            np.testing.assert_array_equal(v.astype(np.float32), original[name])
        new, old = _session(path), _session(src)
        (inp,) = old.get_inputs()
        x = rng.random((1, *inp.shape[1:]), dtype=np.float32)
        for a, b in zip(new.run(None, {inp.name: x}), old.run(None, {inp.name: x})):
            np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)


def test_half_weights_counts_what_float16_rounds():
    import onnx
    from onnx import helper, numpy_helper

    w = numpy_helper.from_array(np.full((16, 16), 0.1, np.float32), "w")  # 0.1 is no float16 value
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 16])], [w])
    model = half_weights(helper.make_model(graph), min_elements=16)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["float16_weights"] == "1 initializers, 256 values rounded"
    assert [n.op_type for n in model.graph.node] == ["Cast", "MatMul"]


def test_export_onnx_command_for_hands(tmp_path, capsys):
    assert "gestures-asl" in onnx_names() and "hands" in onnx_names()
    assert main(["export", "--onnx", "gestures-asl", "--out", str(tmp_path)]) == 0
    assert main(["export", "--onnx", "hands", "--out", str(tmp_path)]) == 0
    written = [json.loads(line)["onnx"] for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert sorted(Path(p).name for p in written) == sorted(["gestures-asl.onnx", *HAND_FILES])


def test_export_hands_names_a_missing_file(tmp_path, monkeypatch):
    import emolib.onnx_export as ox

    monkeypatch.setattr(ox, "HAND_MODEL_DIR", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere/palm_detection_lite.onnx"):
        ox.export_hands(tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
