"""The package's layout: every module is reachable from ``import emolib``."""

from __future__ import annotations

import importlib
from pathlib import Path

import emolib

PACKAGE = Path(emolib.__file__).parent


def _modules() -> list[str]:
    files = [p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("_")]
    packages = [p.parent.name for p in PACKAGE.glob("*/__init__.py")]
    return sorted(files + packages)


def test_every_module_is_an_attribute_of_emolib():
    missing = [m for m in _modules() if m not in emolib._SUBMODULES]
    assert not missing, f"add {missing} to emolib._SUBMODULES so that emolib.<name> finds them"
    for name in ("augment", "fileio", "optim", "hands"):
        assert getattr(emolib, name) is importlib.import_module(f"emolib.{name}")
