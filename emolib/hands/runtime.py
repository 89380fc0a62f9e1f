"""Loading MediaPipe's hand networks (shipped as ONNX files) into onnxruntime.

The four files under ``emolib/assets/hands/`` are MediaPipe 0.10.21's palm detector and
hand-landmark network (full and lite), converted from TFLite by
``tools/convert_mediapipe_hands.py`` (Apache-2.0, see the ``NOTICE`` beside them). They need
``onnxruntime`` (the optional extra ``pip install "emolib[hands]"``), nothing of MediaPipe.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: The install command every "hands unavailable" message names.
HANDS_INSTALL = 'pip install "emolib[hands]"'
#: Where the ONNX files are (``$EMOLIB_HANDS_MODELS`` or ``model_dir=`` point elsewhere).
MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "hands"
#: What produced the landmarks (part of the landmark caches' key).
BACKEND = "onnxruntime:mediapipe-0.10.21"
#: File names by (network, model_complexity): MediaPipe picks the palm detector by complexity too
#: (palm_detection_model_loader.pbtxt), not only the landmark network (hand_landmark_model_loader.pbtxt).
MODEL_FILES = {("palm", 0): "palm_detection_lite.onnx", ("palm", 1): "palm_detection_full.onnx",
               ("landmark", 0): "hand_landmark_lite.onnx", ("landmark", 1): "hand_landmark_full.onnx"}


class HandsUnavailableError(ImportError):
    """onnxruntime (the optional extra ``emolib[hands]``) is not installed or not usable."""


class HandModelError(RuntimeError):
    """A hand model file is missing or cannot be read (the message names the file)."""


def require_onnxruntime():
    """The ``onnxruntime`` module, or :class:`HandsUnavailableError` saying how to install it."""
    try:
        import onnxruntime
    except ImportError as err:
        raise HandsUnavailableError(
            f"hand detection needs onnxruntime, which is not installed ({err}). Install the optional extra: "
            f"{HANDS_INSTALL}."
        ) from None
    return onnxruntime


def hands_available() -> bool:
    """True when onnxruntime can be imported (the models ship inside emolib)."""
    try:
        require_onnxruntime()
    except HandsUnavailableError:
        return False
    return True


def model_dir(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$EMOLIB_HANDS_MODELS``, else the folder shipped inside emolib."""
    if path is not None:
        return Path(path)
    env = os.environ.get("EMOLIB_HANDS_MODELS")
    return Path(env) if env else MODEL_DIR


class OnnxModel:
    """One ONNX network in an onnxruntime session: ``model(x) -> dict of outputs by name``.

    ``threads`` is onnxruntime's ``intra_op_num_threads`` (0: its default, one per core); the
    graph optimisations are all on, and idle worker threads sleep rather than spin. A missing or unreadable file raises :class:`HandModelError`
    naming it.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        ort = require_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise HandModelError(f"hand model file {self.path} is missing: reinstall emolib, or rebuild it with "
                                 "tools/convert_mediapipe_hands.py")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: on a shared CPU (2 cores, torch beside
        # it) spinning threads took 3x the CPU time per photo (see benchmarks/bench_hands_speed.py).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own types (InvalidProtobuf, Fail, ...)
            raise HandModelError(f"hand model file {self.path} cannot be loaded (corrupt or not an ONNX model?): "
                                 f"{type(err).__name__}: {err}") from None
        (inp,) = self.session.get_inputs()
        self.input_name = inp.name
        self.input_shape = tuple(inp.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(None, {self.input_name: x})))

    def __repr__(self) -> str:
        return f"OnnxModel({self.path.name}, input {self.input_shape})"


def load_model(kind: str, complexity: int, folder: str | os.PathLike | None = None, threads: int = 0) -> OnnxModel:
    """The palm (``kind="palm"``) or landmark (``"landmark"``) network for ``model_complexity`` 0 or 1."""
    return OnnxModel(model_dir(folder) / MODEL_FILES[(kind, complexity)], threads=threads)
