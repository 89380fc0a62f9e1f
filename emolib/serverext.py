"""A Jupyter server setting that makes the webcam widget's answers arrive without a 40 ms wait.

The problem: Jupyter Server sends kernel messages to the browser over a Tornado websocket
with Nagle's algorithm on (Tornado's default). Every widget message from the kernel follows
a small ``status: busy`` message; Nagle holds the second small write until the browser has
acknowledged the first, and the browser delays that acknowledgement (TCP delayed ACK, 40 ms
on Linux). So each answer of :class:`emolib.widgets.WebcamWidget` waits up to 40 ms in the
server, which matters most when the kernel itself is fast. Chapter 8 of the book measures
the webcam with and without this setting.

The fix is one socket option, ``TCP_NODELAY``, on the kernel websockets. Either

* enable this module as a server extension, once per environment, and restart Jupyter::

      emolib serverext enable            # writes etc/jupyter/jupyter_server_config.d/emolib.json
                                         # in this Python environment (--user: in ~/.jupyter)

  (``jupyter server extension enable`` cannot do it: Jupyter Server 2 enables only
  extensions that are already listed in some configuration file);

* or start Jupyter with the connection class it installs::

      jupyter lab --ServerApp.kernel_websocket_connection_class=emolib.serverext.NoDelayConnection

Nothing else changes: the same messages, in the same order, only sent as soon as they are
written. Kernels started by a server with the extension on see ``EMOLIB_NODELAY=1`` in their
environment (:func:`emolib.widgets.server_nodelay` reads it; the hand-set connection class
does not set it). Colab and VS Code do not use Jupyter Server's websockets, so there is
nothing to set there.

This module imports Jupyter Server (and nothing heavy from emolib): it is meant for the
server process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection

from .fileio import write_text

__all__ = ["NoDelayConnection", "ENV", "config_file", "enable", "is_enabled"]

ENV = "EMOLIB_NODELAY"  # the same name as emolib.widgets.NODELAY_ENV


class NoDelayConnection(ZMQChannelsWebsocketConnection):
    """Jupyter Server's kernel websocket connection with ``TCP_NODELAY`` on its socket."""

    def connect(self):  # type: ignore[override]
        self.websocket_handler.set_nodelay(True)
        return super().connect()


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "emolib.serverext"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Install :class:`NoDelayConnection` unless another connection class was configured."""
    settings = serverapp.web_app.settings
    current = settings.get("kernel_websocket_connection_class")
    if current is None or current is ZMQChannelsWebsocketConnection:
        settings["kernel_websocket_connection_class"] = NoDelayConnection
        current = NoDelayConnection
    if isinstance(current, type) and issubclass(current, NoDelayConnection):
        os.environ[ENV] = "1"  # inherited by the kernels this server starts
        serverapp.log.info("emolib.serverext: kernel websockets send at once (TCP_NODELAY)")
    else:
        serverapp.log.warning(
            f"emolib.serverext: kernel_websocket_connection_class is {current.__module__}.{current.__name__}, "
            "so TCP_NODELAY was not set; webcam answers may wait up to 40 ms in the server")


def config_file(user: bool = False) -> Path:
    """The configuration file that enables the extension: in this Python environment's
    ``etc/jupyter`` (where Jupyter looks first for a server started from it), or with
    ``user=True`` in the user's Jupyter configuration folder (``~/.jupyter``)."""
    from jupyter_core.paths import ENV_CONFIG_PATH, jupyter_config_dir

    base = Path(jupyter_config_dir()) if user else Path(ENV_CONFIG_PATH[0])
    return base / "jupyter_server_config.d" / "emolib.json"


def enable(on: bool = True, user: bool = False) -> Path:
    """Enable (or with ``on=False`` disable) the extension for Jupyter servers started from
    now on; returns the file written. Restart a running server for it to take effect."""
    path = config_file(user)
    write_text(path, json.dumps({"ServerApp": {"jpserver_extensions": {"emolib.serverext": bool(on)}}}, indent=2)
               + "\n")
    return path


def is_enabled() -> bool:
    """Whether a Jupyter server started now from this environment would load the extension
    (read from all of Jupyter's configuration folders, as the server reads them)."""
    from jupyter_server.extension.config import ExtensionConfigManager
    from jupyter_core.paths import jupyter_config_path

    manager = ExtensionConfigManager(read_config_path=jupyter_config_path())
    return bool(manager.get_jpserver_extensions().get("emolib.serverext", False))
