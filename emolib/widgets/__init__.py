"""Jupyter widgets of emolib: the live webcam (:mod:`emolib.widgets.camera`).

::

    from emolib.widgets import webcam

    cam = webcam()                    # the last line of a cell: the camera with each face's box and emotion
    cam = webcam(engine="browser")    # the live page's ONNX models, run in the notebook's page

Their JavaScript and CSS are files under ``emolib/web/`` (``webcam.js`` after ``draw.js``,
``webcam.css``; the browser engine's ``engine.js``, ``face.js`` and ``mtcnn.js``, with the files that
:mod:`emolib.webengine` gathers). :class:`~emolib.faces.FaceTracker`, which the widget uses between full
detections, lives in :mod:`emolib.faces` and is re-exported here. Importing this package needs anywidget
and ipywidgets (``pip install 'emolib[widgets]'``; the error says so).
"""

from __future__ import annotations

from .camera import (ENGINES, NODELAY_ENV, FaceTracker, WebcamWidget, default_frame, enable_colab_widgets,
                     is_headless, server_nodelay, webcam)

__all__ = ["WebcamWidget", "FaceTracker", "webcam", "is_headless", "default_frame", "enable_colab_widgets",
           "server_nodelay", "NODELAY_ENV", "ENGINES"]
