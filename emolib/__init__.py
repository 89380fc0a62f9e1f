"""emolib: the small library under the emotion-book.

One concept per module::

    from emolib import data, transforms, models, train, metrics
"""

__version__ = "0.1.0"

from . import data, metrics, models, train, transforms  # noqa: E402
from .models import create_model, list_models, list_pretrained, load_model  # noqa: E402
from .train import fit, predict, try_gpu  # noqa: E402
from .utils import setup  # noqa: E402

__all__ = [
    "data", "transforms", "models", "train", "metrics",
    "create_model", "list_models", "list_pretrained", "load_model",
    "fit", "predict", "try_gpu", "setup",
]
