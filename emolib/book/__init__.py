"""Helpers for the book's chapters, and the command that runs them (``python -m emolib.book``).

One module per job; every public name is re-exported here, so a chapter writes
``from emolib import book`` and ``book.load_run(...)``:

- :mod:`~emolib.book.runner`: runs the chapter notebooks with papermill
  (``python -m emolib.book execute|smoke|list|sync-reference``);
- :mod:`~emolib.book.runs`: where result files and training runs are found, the reader's
  own run before the reference run that ships inside the package, and smoke runs;
- :mod:`~emolib.book.sample_data`: data sets by name, small samples for smoke runs, and the
  RAF-DB placeholder (RAF-DB cannot be redistributed);
- :mod:`~emolib.book.notices`: the boxes a chapter shows the reader (missing data, ...);
- :mod:`~emolib.book.tables`: Markdown tables; :mod:`~emolib.book.plots`: figures;
- :mod:`~emolib.book.gesture_figures`: chapter 6's comparison table and figures;
- :mod:`~emolib.book.examples`: the pipeline chapters' photos, video and model;
- :mod:`~emolib.book.webcam_timing`: the webcam chapter's measurements.
"""

from __future__ import annotations

from . import examples, gesture_figures, notices, plots, runner, runs, sample_data, tables, webcam_timing
from .examples import *  # noqa: F401,F403
from .gesture_figures import *  # noqa: F401,F403
from .notices import *  # noqa: F401,F403
from .plots import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
from .runs import *  # noqa: F401,F403
from .sample_data import *  # noqa: F401,F403
from .tables import *  # noqa: F401,F403
from .webcam_timing import *  # noqa: F401,F403

__all__ = [name for module in (runner, runs, sample_data, notices, tables, plots, gesture_figures, examples,
                                        webcam_timing)
           for name in module.__all__]
