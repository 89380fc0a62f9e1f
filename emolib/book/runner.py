"""Running the book's chapters with papermill, and the command ``python -m emolib.book``.

Command line (from the repository root)::

    python -m emolib.book execute [--smoke] [CHAPTER ...]   # run chapters in place (full by default)
    python -m emolib.book smoke OUTDIR [CHAPTER ...]        # run with smoke=True into OUTDIR
    python -m emolib.book list                              # the chapter notebooks, in book order
    python -m emolib.book sync-reference [--check]          # copy results/ into the packaged reference

``execute`` refreshes the outputs that the published pages show (the book is built
with ``execute_notebooks: "off"``); ``smoke`` is what the tests run: every chapter on a
few images, without touching the committed notebooks. A CHAPTER is a notebook path or
a prefix of its name (``02`` or ``02_data``; ``03`` is ``03_baseline`` alone, ``03b`` its
section ``03b_better_model``). ``sync-reference`` refreshes the copies of the committed
reference runs that ship inside the package (see :mod:`emolib.book.runs`).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..utils import repo_root
from .runs import sync_reference

__all__ = ["KERNEL", "chapters", "execute_chapter", "execute", "smoke", "main"]

#: Kernel the notebooks run in (the Makefile installs it: ``ipykernel install --sys-prefix --name python3``).
KERNEL = "python3"


def _book_dir(root: str | os.PathLike | None = None) -> Path:
    return Path(root) if root is not None else Path(repo_root())


def chapters(root: str | os.PathLike | None = None) -> list[Path]:
    """The chapter notebooks listed in ``_toc.yml`` (in book order), as absolute paths.

    Markdown pages of the table of contents are left out; so are entries whose
    notebook does not exist.
    """
    import yaml

    base = _book_dir(root).resolve()
    toc_file = base / "_toc.yml"
    if not toc_file.is_file():
        raise FileNotFoundError(f"no _toc.yml in {base}: run this from the book's repository")
    toc = yaml.safe_load(toc_file.read_text())
    entries: list[str] = [toc["root"]]

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(item["file"])
            walk(item.get("sections"))
            walk(item.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    found = []
    for entry in entries:
        path = base / entry
        nb = path if path.suffix == ".ipynb" else path.with_suffix(".ipynb")
        if nb.is_file():
            found.append(nb)
    return found


def _select(names: Sequence[str] | None, root=None) -> list[Path]:
    available = chapters(root)
    if not names:
        return available
    picked = []
    for name in names:
        p = Path(name)
        if p.suffix == ".ipynb" and p.is_file():
            picked.append(p.resolve())
            continue
        matches = [nb for nb in available if nb.stem.startswith(p.stem)]
        if len(matches) > 1:  # "03" is 03_baseline, not also 03b_better_model: the number alone wins
            matches = [nb for nb in matches if nb.stem.split("_")[0] == p.stem] or matches
        if len(matches) != 1:
            choices = ", ".join(nb.stem for nb in available)
            raise SystemExit(f"chapter {name!r} matches {len(matches)} notebooks; choose from: {choices}")
        picked.append(matches[0])
    return picked


@contextmanager
def _inline_backend():
    """Let the kernel pick the inline matplotlib backend even when ``MPLBACKEND=Agg`` is exported
    (the Makefile does, for the tests; with Agg a notebook would show no figures), and tell the
    webcam widget that no browser is attached (``EMOLIB_HEADLESS=1``)."""
    settings = {"MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "EMOLIB_HEADLESS": "1"}  # no live camera in a papermill kernel (emolib.widgets.is_headless)
    old = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


_WIDGET = "application/vnd.jupyter.widget-view+json"


def _clean(path: Path, drop_injected: bool) -> None:
    """Remove papermill's run metadata (timings, status) and progress-bar widgets, so that
    committed notebooks diff cleanly and render without widget state."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    cells = []
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            # Progress bars (tqdm widgets) keep no state in a saved notebook: drop them.
            cell.outputs = [o for o in cell.outputs if _WIDGET not in o.get("data", {})]
        tags = cell.metadata.get("tags", [])
        if drop_injected and "injected-parameters" in tags:
            continue
        cells.append(cell)
    nb.cells = cells
    nbformat.write(nb, path)


def execute_chapter(
    notebook: str | os.PathLike,
    output: str | os.PathLike | None = None,
    parameters: Mapping | None = None,
    kernel_name: str = KERNEL,
    timeout: int | None = None,
) -> Path:
    """Run one notebook with papermill (in its own folder) and write it to ``output`` (default: in place).

    ``parameters`` replace the values of the notebook's ``parameters`` cell. Returns the
    path of the executed notebook. A failing cell raises papermill's
    ``PapermillExecutionError`` (the partly run notebook is still written).
    """
    import papermill as pm

    notebook = Path(notebook).resolve()
    output = Path(output).resolve() if output is not None else notebook
    output.parent.mkdir(parents=True, exist_ok=True)
    with _inline_backend():
        pm.execute_notebook(
            str(notebook), str(output), parameters=dict(parameters or {}), kernel_name=kernel_name,
            cwd=str(notebook.parent), progress_bar=False, log_output=False, execution_timeout=timeout,
        )
    _clean(output, drop_injected=not parameters)
    return output


def execute(names: Sequence[str] | None = None, smoke_mode: bool = False, root=None) -> list[Path]:
    """Run chapters in place (all of ``_toc.yml`` by default): full runs unless ``smoke_mode``."""
    done = []
    for nb in _select(names, root):
        t0 = time.time()
        print(f"executing {nb.name} ({'smoke' if smoke_mode else 'full'}) ...", flush=True)
        execute_chapter(nb, parameters={"smoke": True} if smoke_mode else None)
        print(f"  done in {time.time() - t0:.0f} s", flush=True)
        done.append(nb)
    return done


def smoke(outdir: str | os.PathLike, names: Sequence[str] | None = None, data_root=None, root=None) -> list[Path]:
    """Run chapters with ``smoke=True`` into ``outdir`` (the committed notebooks are not touched).

    Each chapter writes its files under ``outdir/results/<chapter>``. ``data_root``
    overrides ``$EMOLIB_DATA`` for the run.
    """
    out = Path(outdir).resolve()
    done = []
    for nb in _select(names, root):
        params = {"smoke": True, "output_dir": str(out / "results" / nb.stem)}
        if data_root is not None:
            params["data_root"] = str(data_root)
        t0 = time.time()
        print(f"smoke {nb.name} ...", flush=True)
        done.append(execute_chapter(nb, out / nb.name, params))
        print(f"  done in {time.time() - t0:.0f} s", flush=True)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emolib.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("execute", help="run chapters in place with papermill (full runs by default)")
    p.add_argument("--smoke", action="store_true", help="run with smoke=True (a few images, seconds)")
    p.add_argument("chapters", nargs="*", help="notebook paths or name prefixes (default: all of _toc.yml)")
    p = sub.add_parser("smoke", help="run chapters with smoke=True into OUTDIR")
    p.add_argument("outdir")
    p.add_argument("chapters", nargs="*")
    p.add_argument("--data-root", default=None, help="data folder (default: $EMOLIB_DATA)")
    sub.add_parser("list", help="print the chapter notebooks in book order")
    p = sub.add_parser("sync-reference", help="copy the reference results (results/) into emolib/book/reference/")
    p.add_argument("--check", action="store_true", help="only report copies that differ (exit status 1 if any)")
    args = parser.parse_args(argv)
    if args.command == "execute":
        execute(args.chapters, smoke_mode=args.smoke)
    elif args.command == "smoke":
        smoke(args.outdir, args.chapters, data_root=args.data_root)
    elif args.command == "sync-reference":
        changed = sync_reference(check=args.check)
        for rel in changed:
            print(("differs: " if args.check else "copied: ") + rel)
        return 1 if args.check and changed else 0
    else:
        for nb in chapters():
            print(nb.relative_to(Path(repo_root()).resolve()))
    return 0
