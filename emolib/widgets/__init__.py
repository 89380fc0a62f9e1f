"""Jupyter widgets of emolib: the live webcam (:mod:`emolib.widgets.camera`).

::

    from emolib.widgets import webcam

    cam = webcam()                    # the last line of a cell: the camera with each face's box and emotion
    cam = webcam(engine="browser")    # the live page's ONNX models, run in the notebook's page

Their JavaScript and CSS are files under ``emolib/web/`` (``webcam.js`` after ``draw.js``,
``webcam.css``; the browser engine's ``engine.js``, ``face.js`` and ``mtcnn.js``, with the files that
:mod:`emolib.widgets.browser_engine` gathers). :class:`~emolib.faces.FaceTracker`, which the widget
uses between full detections, lives in :mod:`emolib.faces` and is re-exported here.

The names load on first use, so that :mod:`emolib.widgets.browser_engine` (which the live page's
build step uses) does not need anywidget.
"""

from __future__ import annotations

import importlib

_NAMES = {"WebcamWidget": "camera", "webcam": "camera", "is_headless": "camera", "default_frame": "camera",
          "enable_colab_widgets": "camera", "server_nodelay": "camera", "NODELAY_ENV": "camera",
          "ENGINES": "camera", "FaceTracker": "camera"}
_SUBMODULES = ("camera", "browser_engine")

__all__ = ["WebcamWidget", "FaceTracker", "webcam", "is_headless", "default_frame", "enable_colab_widgets",
           "server_nodelay", "NODELAY_ENV", "ENGINES"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _NAMES:
        return getattr(importlib.import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))
