"""Chapters 7 and 8 (the pipeline and the webcam): the example files' fetch cell, and pages
that read well (no visible code that mentions ``smoke``, no code or printed line over 88
characters).

The fetch cell of chapter 7 (tagged ``remove-input``: plumbing) is run here on its own, with
``RAW`` pointed at a local ``file://`` mirror of the upstream layout, so that the download,
the SHA-256 check and the offline notice are tested without a network.
"""

from __future__ import annotations

import hashlib
import shutil
import types
from pathlib import Path

import nbformat
import pytest

from emolib import book
from tests.conftest import needs_real

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_7 = ROOT / "book" / "07_pipeline.ipynb"
WIDTH = 77  # what a code box holds at 1280 px, beside the page-contents sidebar (measured)


def _fetch_cell() -> str:
    nb = nbformat.read(CHAPTER_7, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "def fetch_example" in c.source]
    assert len(cells) == 1, "chapter 7 has one cell that fetches the example files"
    return cells[0]


def _run_fetch_cell(data_root: Path, raw: str | None = None, smoke: bool = False):
    """Run the fetch cell; returns its namespace and the Markdown it showed."""
    shown: list[str] = []
    proxy = types.SimpleNamespace(**{n: getattr(book, n) for n in dir(book) if not n.startswith("__")})
    proxy.markdown = shown.append
    source = _fetch_cell()
    if raw is not None:  # the URL template, pointed elsewhere before the downloads run
        source = source.replace('RAW = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"',
                                f"RAW = {raw!r}")
        assert f"RAW = {raw!r}" in source
    ns = {"book": proxy, "data_root": str(data_root), "smoke": smoke}
    exec("import hashlib, json, os, tempfile, urllib.request\nfrom pathlib import Path\n"
         "from emolib import data as D\n" + source, ns)
    return ns, shown


def _mirror(tmp_path: Path, photos: Path, video: Path) -> str:
    """A file:// tree laid out as raw.githubusercontent.com is, from the shared copies."""
    ns, _ = _run_fetch_cell(photos.parent)  # data present: nothing is downloaded
    root = tmp_path / "raw"
    for name, ((repo, commit), path, _) in ns["UPSTREAM"].items():
        source = video if name == book.EXAMPLE_VIDEO else photos / name
        target = root / repo / commit / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return root.as_uri() + "/{repo}/{commit}/{path}"


def test_pinned_hashes_are_those_of_the_shared_copies():
    photos = needs_real("photos")
    video = needs_real("video") / book.EXAMPLE_VIDEO
    ns, shown = _run_fetch_cell(photos.parent)
    assert ns["photos"] == photos and ns["video"] == video and not shown
    assert set(ns["UPSTREAM"]) == set(book.EXAMPLE_PHOTOS) | {book.EXAMPLE_VIDEO}
    for name, (_, _, sha) in ns["UPSTREAM"].items():
        path = video if name == book.EXAMPLE_VIDEO else photos / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, name


def test_fetch_downloads_checks_and_caches(tmp_path, monkeypatch):
    photos = needs_real("photos")
    raw = _mirror(tmp_path, photos, needs_real("video") / book.EXAMPLE_VIDEO)
    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "no-data"
    empty.mkdir()
    ns, shown = _run_fetch_cell(empty, raw)
    assert not shown
    cache = tmp_path / "cache" / "examples"
    assert ns["photos"] == cache / "photos" and ns["video"] == cache / "video" / book.EXAMPLE_VIDEO
    assert ns["counted"] == book.EXAMPLE_PHOTOS
    for name in book.EXAMPLE_PHOTOS:
        assert (cache / "photos" / name).read_bytes() == (photos / name).read_bytes()
    # A verified copy in the cache is not downloaded again; a changed file upstream is refused.
    (_, commit), path, _ = ns["UPSTREAM"]["obama.jpg"]
    upstream = Path(raw.split("://", 1)[1].split("{repo}")[0]) / "ageitgey/face_recognition" / commit / path
    upstream.write_bytes(b"not the photo")
    assert ns["fetch_example"]("obama.jpg", cache / "photos") == cache / "photos" / "obama.jpg"
    (cache / "photos" / "obama.jpg").unlink()
    with pytest.raises(OSError, match="SHA-256"):
        ns["fetch_example"]("obama.jpg", cache / "photos")
    assert not (cache / "photos" / "obama.jpg").exists() and not list((cache / "photos").glob("*.part"))


def test_offline_without_data_gives_one_notice(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLIB_CACHE", str(tmp_path / "cache"))
    empty = tmp_path / "no-data"
    empty.mkdir()
    nowhere = (tmp_path / "offline").as_uri() + "/{repo}/{commit}/{path}"
    ns, shown = _run_fetch_cell(empty, nowhere)
    assert ns["photos"] is None and ns["video"] is None
    assert len(shown) == 1 and "not available here" in shown[0] and str(empty) in shown[0]
    ns, shown = _run_fetch_cell(empty, nowhere, smoke=True)  # a smoke run: noise stand-ins
    assert ns["photo_source"] == "generated" and (ns["photos"] / "faces.json").is_file()
    assert len(shown) == 1 and "PLACEHOLDER" in shown[0]


@pytest.mark.parametrize("stem", ["07_pipeline", "08_webcam"])
def test_pages_read_well(stem):
    nb = nbformat.read(ROOT / "book" / f"{stem}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        tags = cell.metadata.get("tags", [])
        if not {"remove-input", "remove-cell", "hide-input", "hide-cell"} & set(tags):
            assert "smoke" not in cell.source, f"a visible cell of {stem} mentions smoke"
        if not {"remove-input", "remove-cell"} & set(tags):  # hidden ones can be opened
            long = [line for line in cell.source.splitlines() if len(line) > WIDTH]
            assert not long, f"{stem}: code lines over {WIDTH} characters: {long}"
        if "remove-cell" in tags:
            continue
        for out in cell.get("outputs", []):
            text = out.get("text", "") if out.get("output_type") == "stream" else ""
            long = [line for line in text.splitlines() if len(line) > WIDTH]
            assert not long, f"{stem}: printed lines over {WIDTH} characters: {long}"
    assert "## Exercises" in "".join(c.source for c in nb.cells if c.cell_type == "markdown")
