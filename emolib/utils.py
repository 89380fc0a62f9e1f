"""Small helpers for the chapters: one call to seed and set plotting defaults.

A foundation: it imports no other emolib module. :func:`set_seed` lives here (and is
re-exported by :mod:`emolib.train`, where the trainer uses it).
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

__all__ = ["setup", "set_seed", "in_colab", "repo_root"]


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def setup(seed: int = 0, dpi: int = 100) -> None:
    """Seed every random generator and set matplotlib defaults (as fastbook's ``setup_book``)."""
    set_seed(seed)
    try:
        import matplotlib.pyplot as plt

        plt.rcParams.update({"figure.dpi": dpi, "axes.spines.top": False, "axes.spines.right": False,
                             "image.cmap": "gray"})
    except ImportError:
        pass


def repo_root() -> str:
    """The checkout's top folder (where ``_toc.yml`` lies), or the current folder outside a checkout."""
    here = os.path.abspath(os.getcwd())
    while True:
        if os.path.exists(os.path.join(here, "_toc.yml")):
            return here
        parent = os.path.dirname(here)
        if parent == here:
            return os.getcwd()
        here = parent
