"""``python -m emolib.book``: see :mod:`emolib.book.runner`."""

import sys

from .runner import main

sys.exit(main())
