"""Where the chapters' files lie: result files, training runs, and the reference runs that ship.

**How the book finds its runs.** A training run named ``NAME`` (``baseline-fer2013``...)
can be found in three places, and :func:`load_run` takes the first that exists:

1. the reader's own run: ``runs/NAME/`` (``history.json``, and ``result.json`` once it
   has finished), written by ``emolib train`` or a chapter that trains
   (:func:`reader_run`);
2. the *reference run* the book was written from: ``results/runs/NAME/`` in a checkout of
   the repository, else the copy of it that ships inside the package,
   ``emolib/book/reference/runs/NAME/`` (:func:`reference_run`), so that a chapter opened
   alone (on Colab, with emolib installed as a package) shows it too;
3. the model card of a shipped checkpoint (``emolib/checkpoints/NAME.json``; no history).

:func:`compare_runs` returns the reader's run and the reference run side by side.
Relative folders are taken from the repository root (the current folder outside a
checkout). The packaged reference (the small JSON files of :data:`REFERENCE_FILES`, and the webcam chapter's screenshot, under
``results/``) is a copy of the committed ``results/``; ``python -m emolib.book
sync-reference`` refreshes it and a test checks that the two are equal.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

from ..experiment import run_recipe
from ..fileio import write_text
from ..models import CHECKPOINT_DIR
from ..recipes import get_recipe
from ..train import load_history
from ..utils import repo_root
from .sample_data import sample_data_root

__all__ = [
    "REFERENCE_DIR",
    "REFERENCE_FILES",
    "keep_results",
    "write_result",
    "repo_path",
    "output_path",
    "result_file",
    "reference_file",
    "reference_run",
    "reader_run",
    "load_run",
    "compare_runs",
    "recipe_command",
    "smoke_run",
    "sync_reference",
]

#: The packaged copy of the reference results (package data of emolib).
REFERENCE_DIR = Path(__file__).parent / "reference"

#: The files of ``results/`` that ship in :data:`REFERENCE_DIR` (glob patterns relative to
#: ``results/``): the reference runs' histories, results, evaluations and model cards, the
#: chapters' recorded results and the benchmarks the chapters show. Small JSON only: no
#: weights, images or videos.
REFERENCE_FILES = (
    "runs/*/*.json",
    "02_data/*.json",
    "04_transfer_learning/*.json",
    "05_evaluation/*.json",
    "06_hand_gestures/*.json",
    "06_hand_gestures/*/*.json",
    "07_pipeline/*.json",
    "08_webcam/*.json",
    "08_webcam/webcam.png",  # the recorded widget, shown where no camera can run (200 kB)
    "benchmarks/*.json",
)


def keep_results() -> bool:
    """Whether chapters must leave their result files alone: ``$EMOLIB_KEEP_RESULTS=1`` (the
    test suite's nbval pass runs the committed chapters in the repository, perhaps without
    the data, and must not rewrite what they record)."""
    return os.environ.get("EMOLIB_KEEP_RESULTS") == "1"


def write_result(path: str | os.PathLike, text: str) -> bool:
    """Write a chapter's result file unless :func:`keep_results`; returns whether it wrote."""
    if keep_results():
        return False
    write_text(path, text)
    return True


def repo_path(path: str | os.PathLike) -> Path:
    """``path``, taken from the repository root when relative (where ``_toc.yml`` lies; the
    current folder on Colab)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else Path(repo_root()) / path


def output_path(output_dir: str | os.PathLike) -> Path:
    """A chapter's output folder (:func:`repo_path`). The folder is created."""
    path = repo_path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _relative(path: str | os.PathLike) -> Path:
    """``path`` relative to ``results/`` (a leading ``results/`` is dropped)."""
    rel = Path(path)
    if rel.is_absolute():
        raise ValueError(f"expected a path relative to results/, got {path}")
    return Path(*rel.parts[1:]) if rel.parts[:1] == ("results",) else rel


def reference_file(path: str | os.PathLike) -> Path:
    """The packaged copy of the committed result file ``path`` (``results/benchmarks/pipeline.json``
    or ``benchmarks/pipeline.json``). Raises :class:`FileNotFoundError` naming it when it does not ship."""
    packaged = REFERENCE_DIR / _relative(path)
    if not packaged.is_file():
        raise FileNotFoundError(f"{packaged} is not part of the packaged reference results "
                                f"(see emolib.book.runs.REFERENCE_FILES)")
    return packaged


def result_file(path: str | os.PathLike) -> Path:
    """A result file the chapters read, ``results/...``: the one under the repository root (or, outside
    a checkout, the current folder, where a chapter writes its own) when it exists, else the packaged
    reference copy when there is one, else the (absent) local path, so that the caller's error names it."""
    local = repo_path(path)
    if local.is_file() or Path(path).is_absolute():
        return local
    packaged = REFERENCE_DIR / _relative(path)
    return packaged if packaged.is_file() else local


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _run_in(folder: Path, status: str, source: str) -> dict | None:
    if not (folder / "card.json").is_file():
        if not (folder / "result.json").is_file():
            return None
        status = "not shipped"  # a reference run kept for the book, without a shipped checkpoint
    history = _read(folder / "history.json")
    return {"status": status, "source": source, "history": history["history"] if history else None,
            "result": _read(folder / "result.json"), "card": _read(folder / "card.json"),
            "evaluation": _read(folder / "evaluation.json"), "path": folder}


def reference_run(name: str, results_dir: str | os.PathLike = "results/runs") -> dict | None:
    """The reference run ``name``, or None: ``results_dir/<name>/`` (a shipped run: ``card.json``,
    ``history.json``, ``result.json``, as ``emolib export`` writes them) when it exists, else the copy
    in the package. Returns ``{"status": "shipped", "source": "reference", "history", "result",
    "card", "evaluation", "path"}`` (missing files are None). A reference run kept without a shipped
    checkpoint (``history.json`` and ``result.json``, no card) has the status ``"not shipped"``."""
    local = _run_in(repo_path(results_dir) / name, "shipped", "reference")
    return local or _run_in(REFERENCE_DIR / "runs" / name, "shipped", "reference")


def reader_run(name: str, runs_dir: str | os.PathLike = "runs") -> dict | None:
    """The reader's own run ``name`` in ``runs_dir/<name>/`` (``history.json`` written), or None.

    ``status`` is ``"in progress"`` until ``result.json`` is written, then ``"finished, not shipped"``;
    ``source`` is ``"reader"``; ``config`` is the training configuration of the history file.
    """
    run = repo_path(runs_dir) / name
    history = _read(run / "history.json")
    if history is None:
        return None
    result = _read(run / "result.json")
    return {"status": "finished, not shipped" if result else "in progress", "source": "reader",
            "history": history["history"], "result": result, "card": None, "evaluation": None,
            "path": run, "config": history.get("config")}


def load_run(name: str, results_dir: str | os.PathLike = "results/runs",
             runs_dir: str | os.PathLike | None = "runs") -> dict | None:
    """What is known of a training run named ``name``, or None: the reader's own run
    (:func:`reader_run`, unless ``runs_dir`` is None) before the reference run
    (:func:`reference_run`) before the packaged model card alone (``status`` ``"card"``,
    no history). The dict's ``source`` says which (``"reader"``, ``"reference"``, ``"card"``)."""
    if runs_dir is not None and (run := reader_run(name, runs_dir)) is not None:
        return run
    if (run := reference_run(name, results_dir)) is not None:
        return run
    card = _read(CHECKPOINT_DIR / f"{name}.json")
    if card is not None:
        return {"status": "card", "source": "card", "history": None, "result": None, "card": card,
                "evaluation": None, "path": CHECKPOINT_DIR}
    return None


def compare_runs(name: str, results_dir: str | os.PathLike = "results/runs",
                 runs_dir: str | os.PathLike = "runs") -> dict:
    """``{"reader": reader_run(name) or None, "reference": reference_run(name) or None}``."""
    return {"reader": reader_run(name, runs_dir), "reference": reference_run(name, results_dir)}


def recipe_command(name: str, data: str = "$EMOLIB_DATA/fer2013", out: str | None = None) -> str:
    """The shell command that trains recipe ``name`` (resumable), as the README gives it."""
    return f"emolib train --recipe {name} --data {data} --out {out or f'runs/{name}'}"


def smoke_run(recipe, out_dir: str | os.PathLike, data_root: str | os.PathLike | None = None, per_class: int = 45,
              limit: int | None = 300, max_batches: int = 3, batch_size: int | None = None, size: int | None = None,
              device: str | None = None, seed: int = 0) -> dict:
    """Train a tiny version of a recipe (a name of :mod:`emolib.recipes` or a ``Recipe``) in seconds.

    One epoch of at most ``max_batches`` batches on at most ``limit`` training images drawn
    from ``per_class`` images per class (:func:`sample_data_root`; RAF-DB and other
    layouts are read in full, then limited), no ImageNet weights, no data-loader
    processes, ``size`` overriding the input side. The run is written to
    ``out_dir/<model>-<dataset>/`` (replacing an earlier smoke run there) by
    :func:`emolib.experiment.run_recipe`. Returns a dict shaped like :func:`load_run`'s,
    with ``status`` ``"smoke"``. Only shows that the code runs: the numbers mean nothing.
    """
    r = get_recipe(recipe) if isinstance(recipe, str) else recipe
    r = replace(r, config=replace(r.config, epochs=1, max_batches=max_batches, num_workers=0, seed=seed,
                                  device=device, batch_size=batch_size or r.config.batch_size))
    if size is not None:
        r = replace(r, size=size)
    root = sample_data_root(r.dataset, data_root, per_class=per_class, seed=seed)
    folder = Path(out_dir) / f"{r.model}-{r.dataset}"
    if folder.exists():
        shutil.rmtree(folder)
    result = run_recipe(r, folder, root=root, limit=limit, pretrained=False, resume=False, progress=False)
    return {"status": "smoke", "source": "smoke", "history": load_history(folder), "result": result, "card": None, "path": folder,
            "config": result["recipe"]["config"]}


def _reference_sources(results: Path) -> dict[str, Path]:
    found = {}
    for pattern in REFERENCE_FILES:
        for path in sorted(results.glob(pattern)):
            if path.is_file():
                found[path.relative_to(results).as_posix()] = path
    return found


def sync_reference(check: bool = False, results: str | os.PathLike | None = None,
                   dest: str | os.PathLike | None = None) -> list[str]:
    """Make the packaged reference (``dest``, default :data:`REFERENCE_DIR`) a copy of the files of
    :data:`REFERENCE_FILES` under ``results`` (default: the repository's ``results/``).

    Returns the paths (relative to ``results/``) that differed: copied, or, with ``check=True``,
    only reported (a packaged file with no source counts as differing, and is deleted unless
    ``check``).
    """
    results = Path(results) if results is not None else Path(repo_root()) / "results"
    dest = Path(dest) if dest is not None else REFERENCE_DIR
    if not results.is_dir():
        raise FileNotFoundError(f"no results/ folder at {results}: run this in the repository")
    sources = _reference_sources(results)
    packaged = {p.relative_to(dest).as_posix(): p for p in dest.rglob("*.json")} if dest.is_dir() else {}
    changed = []
    for rel, src in sources.items():
        target = dest / rel
        if target.is_file() and filecmp.cmp(src, target, shallow=False):
            continue
        changed.append(rel)
        if not check:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    for rel, path in packaged.items():
        if rel not in sources:
            changed.append(rel)
            if not check:
                path.unlink()
    return sorted(changed)
