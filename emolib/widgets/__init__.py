"""Jupyter widgets of emolib: the live webcam (:mod:`emolib.widgets.camera`).

::

    from emolib.widgets import webcam

    cam = webcam()            # the last line of a cell: the camera with each face's box and emotion

Their JavaScript and CSS are files under ``emolib/web/`` (``webcam.js`` after ``draw.js``,
``webcam.css``). :class:`~emolib.faces.FaceTracker`, which the widget uses between full
detections, lives in :mod:`emolib.faces` and is re-exported here.
"""

from __future__ import annotations

from ..faces import FaceTracker
from .camera import (NODELAY_ENV, WebcamWidget, default_frame, enable_colab_widgets, is_headless, server_nodelay,
                     webcam)

__all__ = ["WebcamWidget", "FaceTracker", "webcam", "is_headless", "default_frame", "enable_colab_widgets",
           "server_nodelay", "NODELAY_ENV"]
