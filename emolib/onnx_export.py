"""ONNX files for the browser: the shipped emotion models and the face detectors.

``python -m emolib export --onnx NAME [--out DIR]`` writes them (``NAME`` is a shipped
emotion model, ``mtcnn``, ``blazeface`` or ``all``); ``make book`` puts them into the
book's static files, where the live page (``book/08b_try_it.md``) runs them with ONNX
Runtime Web.

Every file takes **pixels in 0..1** and has its normalisation baked into the graph, so
the page does no arithmetic the Python code does elsewhere:

* emotion models: input ``image`` ``(n, C, S, S)`` (48x48 gray for the FER2013 models)
  in 0..1, the checkpoint's ``(x - mean) / std`` first; outputs ``logits`` and
  ``probabilities`` ``(n, classes)``; the class names are in the model's metadata
  (``classes``, comma-separated) and in :func:`export_emotion`'s JSON side file;
* MTCNN (facenet-pytorch's weights): ``mtcnn_pnet.onnx`` (any height and width),
  ``mtcnn_rnet.onnx`` (24x24 patches), ``mtcnn_onet.onnx`` (48x48 patches), each with
  facenet's ``(255 x - 127.5) / 128`` first;
* BlazeFace, MediaPipe's short-range face detector (Apache-2.0), converted from the
  TFLite file of the mediapipe 0.10.21 wheel by ``tools/convert_mediapipe_face.py``
  (TensorFlow is not a dependency of emolib, so the converted file ships in
  ``emolib/web/models/``): input ``image`` ``(1, 128, 128, 3)`` RGB in 0..1, outputs
  ``regressors (1, 896, 16)`` and ``classificators (1, 896, 1)``;
* the gesture model (``gestures-asl``, a landmark MLP): input ``landmarks`` ``(n, 63)``,
  the 21 landmarks already normalised by :func:`emolib.hands.normalize_landmarks` (the page
  does that step in JavaScript, ``emolib/web/hands.js``); outputs ``logits`` and
  ``probabilities``; its JSON side file gives the classes, the normalisation and the
  paired emotions;
* MediaPipe's hand networks (``hands``: the lite palm detector and lite landmark network
  shipped in ``emolib/assets/hands/``, Apache-2.0) with their weights **stored as float16**
  (:func:`half_weights`): each large weight becomes a float16 initializer and a ``Cast``
  back to float32, which onnxruntime folds when it loads the file, so the arithmetic stays
  float32; MediaPipe's weights are float16 values already, so nothing is rounded (the file's
  metadata says so) and the files are half the size (3.9 + 4.1 MB become 2.0 + 2.1 MB).
  Inputs and outputs as in :mod:`emolib.hands`.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from .fileio import atomic_write, copy_file, write_text
from .hands.runtime import MODEL_DIR as HAND_MODEL_DIR
from .hands.runtime import MODEL_FILES
from .models import list_pretrained, load_model

__all__ = ["OPSET", "WEB_MODELS", "HAND_FILES", "export_emotion", "export_mtcnn", "export_blazeface",
           "export_gestures", "export_hands", "half_weights", "export_onnx", "onnx_names"]

OPSET = 17
WEB_MODELS = Path(__file__).parent / "web" / "models"
BLAZEFACE_FILE = "blazeface_short_range.onnx"
#: The hand networks the page runs (MediaPipe's lite ones, model_complexity 0), named as in emolib.hands.
HAND_FILES = (MODEL_FILES[("palm", 0)], MODEL_FILES[("landmark", 0)])


class _Normalised(nn.Module):
    """``model((x - mean) / std)`` followed by a softmax: what the browser runs."""

    def __init__(self, model: nn.Module, mean, std) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor):
        logits = self.model((x - self.mean) / self.std)
        return logits, logits.softmax(1)


class _MtcnnInput(nn.Module):
    """One of MTCNN's networks after facenet-pytorch's ``(255 x - 127.5) / 128``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        return self.net((x * 255.0 - 127.5) * 0.0078125)


class _Softmax(nn.Module):
    """``model(x)`` and its softmax: the gesture MLP as the browser runs it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        logits = self.model(x)
        return logits, logits.softmax(1)


def onnx_names() -> list[str]:
    """What ``--onnx`` accepts: the shipped emotion and gesture models, ``mtcnn``, ``blazeface``,
    ``hands`` and ``all``."""
    return list_pretrained() + ["mtcnn", "blazeface", "hands", "all"]


def _export(module: nn.Module, example: torch.Tensor, path: Path, outputs: list[str], axes: dict,
            meta: dict | None = None, input_name: str = "image", half: bool = False) -> Path:
    """Export to memory, add ``meta`` as the model's metadata, then write ``path`` in one atomic step.

    ``half``: store the weights as float16 (:func:`half_weights`), for a module whose weights are
    float16 values already (a shipped checkpoint): constant folding is then off, so that batch norm is
    not folded into the convolutions (which would make new, rounded weights) and nothing is rounded."""
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False): the dynamo one needs onnxscript, and these graphs are plain.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.eval(), (example,), buf, input_names=[input_name], output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=not half)
    data = buf.getvalue()
    if meta or half:
        import onnx

        model = onnx.load_from_string(data)
        del model.metadata_props[:]
        for k, v in (meta or {}).items():
            model.metadata_props.add(key=k, value=str(v))
        if half:
            half_weights(model, min_elements=1)
        data = model.SerializeToString()
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return path


def _is_half_exact(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is a float16 value (so storing it as float16 loses nothing)."""
    return bool((t.to(torch.float16).to(t.dtype) == t).all())


def export_emotion(name_or_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write ``<out>/<name>.onnx`` (and ``<name>.json``: classes, input size and channels) for an emotion model."""
    model = load_model(name_or_path)
    cfg = model.input_config
    name = Path(str(name_or_path)).stem
    path = Path(out) / f"{name}.onnx"
    example = torch.rand(2, cfg.channels, cfg.size, cfg.size)
    # A shipped checkpoint holds float16 values: the file stores them as such (half the size, nothing rounded).
    wrapped = _Normalised(model, cfg.mean, cfg.std)  # its mean and std are stored too: they must be exact as well
    half = all(_is_half_exact(t) for t in wrapped.state_dict().values() if t.is_floating_point())
    _export(wrapped, example, path, ["logits", "probabilities"],
            {"image": {0: "faces"}, "logits": {0: "faces"}, "probabilities": {0: "faces"}},
            meta={"classes": ",".join(model.classes), "size": cfg.size, "channels": cfg.channels,
                  "producer": "emolib.onnx_export"}, half=half)
    info = {"name": name, "classes": list(model.classes), "size": cfg.size, "channels": cfg.channels,
            "input": "pixels in 0..1, normalisation in the graph", "file": path.name}
    write_text(path.with_suffix(".json"), json.dumps(info, indent=1) + "\n")
    return path


def mtcnn_networks() -> tuple[nn.Module, nn.Module, nn.Module]:
    """facenet-pytorch's P-Net, R-Net and O-Net with their shipped weights, in eval mode."""
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    return PNet().eval(), RNet().eval(), ONet().eval()


def export_mtcnn(out: str | os.PathLike, nets: tuple[str, ...] = ("pnet", "rnet", "onet")) -> list[Path]:
    """Write MTCNN's networks (facenet-pytorch's weights) as ``mtcnn_{p,r,o}net.onnx`` (``nets``: which)."""
    pnet, rnet, onet = mtcnn_networks()
    out = Path(out)
    n = {0: "n"}
    specs = {
        "pnet": (pnet, (1, 3, 60, 80), ["regression", "probability"],
                 {"image": {0: "n", 2: "height", 3: "width"}, "regression": {0: "n", 2: "h", 3: "w"},
                  "probability": {0: "n", 2: "h", 3: "w"}}),
        "rnet": (rnet, (3, 3, 24, 24), ["regression", "probability"], {"image": n, "regression": n, "probability": n}),
        "onet": (onet, (3, 3, 48, 48), ["regression", "landmarks", "probability"],
                 {"image": n, "regression": n, "landmarks": n, "probability": n}),
    }
    return [_export(_MtcnnInput(specs[k][0]), torch.rand(*specs[k][1]), out / f"mtcnn_{k}.onnx", specs[k][2],
                    specs[k][3]) for k in nets]


def export_blazeface(out: str | os.PathLike) -> Path:
    """Copy the converted BlazeFace (``tools/convert_mediapipe_face.py`` made it) to ``out``."""
    src = WEB_MODELS / BLAZEFACE_FILE
    if not src.is_file():
        raise FileNotFoundError(f"{src} is missing: run tools/convert_mediapipe_face.py (see its docstring)")
    dst = Path(out) / BLAZEFACE_FILE
    if dst.resolve() != src.resolve():
        copy_file(src, dst)
    return dst


def export_gestures(name_or_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write ``<out>/<name>.onnx`` and ``<name>.json`` for a landmark gesture model (``gestures-asl``).

    The graph is the MLP and a softmax on the normalised landmark features ``(n, 21 * 3)``;
    the JSON side file records what the features must be (``normalization``: ``rotate``,
    ``use_z``, as the checkpoint's), the classes and the emotion paired with each gesture.
    """
    model = load_model(name_or_path)
    if getattr(model, "emolib_name", None) != "landmark_mlp":
        raise ValueError(f"{name_or_path} is not a landmark gesture model (arch "
                         f"{getattr(model, 'emolib_name', type(model).__name__)!r})")
    meta = dict(getattr(model, "meta", {}) or {})
    norm = meta.get("normalization", {})
    rotate, use_z = bool(norm.get("rotate", True)), bool(norm.get("use_z", True))
    n_in = 21 * (3 if use_z else 2)
    name = Path(str(name_or_path)).stem
    path = Path(out) / f"{name}.onnx"
    _export(_Softmax(model), torch.randn(2, n_in), path, ["logits", "probabilities"],
            {"landmarks": {0: "hands"}, "logits": {0: "hands"}, "probabilities": {0: "hands"}},
            meta={"classes": ",".join(model.classes), "rotate": rotate, "use_z": use_z,
                  "producer": "emolib.onnx_export"}, input_name="landmarks")
    info = {"name": name, "classes": list(model.classes), "inputs": n_in,
            "normalization": {"rotate": rotate, "use_z": use_z},
            "gesture_emotions": dict(meta.get("gesture_emotions", {})),
            "input": "21 landmarks normalised by emolib.hands.normalize_landmarks, flattened", "file": path.name}
    write_text(path.with_suffix(".json"), json.dumps(info, indent=1) + "\n")
    return path


def half_weights(model, min_elements: int = 256):
    """The ONNX ``model`` (an ``onnx.ModelProto``, changed in place and returned) with every float32
    initializer of at least ``min_elements`` values stored as float16, followed by a ``Cast`` to
    float32 under the initializer's old name. The computation stays float32 (onnxruntime folds the
    casts into float32 weights when it loads the file); the file is about half the size. The
    metadata ``float16_weights`` says how many values float16 rounded: none for MediaPipe's hand
    networks, whose TFLite weights are float16 already (tf2onnx widened them to float32)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    casts, kept, inexact = [], [], 0
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            kept.append(init)
            continue
        values = numpy_helper.to_array(init)
        half = numpy_helper.from_array(values.astype(np.float16), init.name + "_f16")
        inexact += int((values.astype(np.float16).astype(np.float32) != values).sum())
        kept.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT,
                                      name=init.name + "_cast"))
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    nodes = casts + list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.metadata_props.add(key="float16_weights", value=f"{len(casts)} initializers, {inexact} values rounded")
    return model


def export_hands(out: str | os.PathLike, half: bool = True) -> list[Path]:
    """Write MediaPipe's lite palm detector and landmark network (:data:`HAND_FILES`, from
    ``emolib/assets/hands``) into ``out``, with float16 weights (:func:`half_weights`) unless ``half``
    is False. The names are emolib's, so ``HandDetector(model_complexity=0, model_dir=out)`` runs them."""
    import onnx

    paths = []
    for name in HAND_FILES:
        src = HAND_MODEL_DIR / name
        if not src.is_file():
            raise FileNotFoundError(f"{src} is missing: rebuild it with tools/convert_mediapipe_hands.py")
        model = onnx.load(str(src))
        if half:
            half_weights(model)
        onnx.checker.check_model(model)
        with atomic_write(Path(out) / name, "wb") as fh:
            fh.write(model.SerializeToString())
        paths.append(Path(out) / name)
    return paths


def export_onnx(name: str, out: str | os.PathLike) -> list[Path]:
    """Write the ONNX file(s) for ``name`` (see :func:`onnx_names`) into ``out``; returns their paths."""
    if name == "all":
        return [p for n in onnx_names() if n != "all" for p in export_onnx(n, out)]
    if name == "mtcnn":
        return export_mtcnn(out)
    if name == "blazeface":
        return [export_blazeface(out)]
    if name == "hands":
        return export_hands(out)
    if getattr(load_model(name), "emolib_name", None) == "landmark_mlp":
        return [export_gestures(name, out)]
    return [export_emotion(name, out)]
