"""What the benchmark scripts write beside their numbers: the checkout's commit, and the record itself.

``from benchmarks.provenance import commit, write_record`` (the scripts put the repository root on
``sys.path`` first).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str | None:
    """The checkout's commit (short), or None outside a git checkout."""
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or None


def write_record(path: Path, record: dict) -> None:
    """``record`` as indented JSON at ``path`` (its folder made if missing), and a line saying so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")
