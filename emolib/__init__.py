"""emolib: the small library under the emotion-book.

One concept per module::

    from emolib import data, transforms, models, train, metrics

The modules load on first use (``emolib.models`` imports PyTorch then), so that
``import emolib`` is cheap, e.g. for the Jupyter server extension :mod:`emolib.serverext`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = ("utils", "labels", "fileio", "data", "gesture_data", "transforms", "augment", "models", "cards",
               "metrics", "optim", "distill", "train", "recipes", "experiment", "faces", "hands", "gestures", "pipeline",
               "drawing", "video", "webengine", "widgets", "onnx_export", "serverext", "pipeline_cli", "cli",
               "livepage", "book")
_NAMES = {
    "create_model": "models", "list_models": "models", "list_pretrained": "models", "load_model": "models",
    "fit": "train", "predict": "train", "try_gpu": "train", "setup": "utils",
}

__all__ = [
    "data", "transforms", "models", "train", "metrics",
    "create_model", "list_models", "list_pretrained", "load_model",
    "fit", "predict", "try_gpu", "setup",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
