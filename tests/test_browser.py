"""The built book in a real browser: headless Chromium loads every page from a local server.

Needs ``/usr/bin/chromium`` (Debian: ``apt-get install -y chromium``); skipped without it.
Installs nothing. The book is built once per session by ``test_book.built_book``
(``jupyter-book build . --path-output TMP -W --keep-going``) and served with
``python -m http.server`` on 127.0.0.1. For each page: the title is rendered, no Python
traceback appears in the DOM, and the pages whose notebooks hold figures show them (and
the image files are served). A screenshot of the data chapter is taken; it is kept in
``$EMOLIB_SCREENSHOTS`` when set (``EMOLIB_SCREENSHOTS=results/screenshots`` refreshes the
committed one), else only in the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from tests.browser_page import CHROMIUM, chromium, free_port, wait_for

try:
    from test_book import ROOT, STEMS, built_book
except ImportError:  # pragma: no cover - collected as a package by another import mode
    from .test_book import ROOT, STEMS, built_book

SCREENSHOTS = os.environ.get("EMOLIB_SCREENSHOTS")
BROWSER_TIMEOUT = 120

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="/usr/bin/chromium is missing: install it with `apt-get install -y chromium`"),
]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``python -m http.server`` on a free port of 127.0.0.1, serving the built book; yields its base URL."""
    html = built_book(tmp_path_factory)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(html)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/index.html", timeout=2).read()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"http.server exited with {proc.returncode}")
                time.sleep(0.1)
        else:
            pytest.fail("http.server did not answer within 10 s")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BROWSER_TIMEOUT)
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}): {proc.stderr[-3000:]}"
    return proc


def dump_dom(url: str, profile: Path) -> str:
    """The DOM of ``url`` after load (and redirects, scripts: 5 s of virtual time), as headless
    Chromium serialises it."""
    return _chromium(["--virtual-time-budget=5000", "--dump-dom", url], profile).stdout


class _Page(HTMLParser):
    """Collects the text of ``<h1>`` elements and the ``src`` of ``<img>`` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.h1: list[str] = []
        self.images: list[str] = []
        self._in_h1 = False

    def handle_starttag(self, tag, attrs):
        if tag == "h1":
            self._in_h1 = True
            self.h1.append("")
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if self._in_h1:
            self.h1[-1] += data


def _title(page: str) -> str:
    """The title a page should show: the first ``# `` heading of its notebook or Markdown file."""
    path = ROOT / "book" / page
    if path.with_suffix(".ipynb").is_file():
        text = nbformat.read(path.with_suffix(".ipynb"), as_version=4).cells[0].source
    else:
        text = path.with_suffix(".md").read_text()
    return next(line[2:].strip() for line in text.splitlines() if line.startswith("# "))


def _figures(page: str) -> int:
    path = ROOT / "book" / f"{page}.ipynb"
    if not path.is_file():
        return 0
    nb = nbformat.read(path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


TRACEBACK = re.compile(r"Traceback \(most recent call last\)|output traceback|highlight-ipythontb")


@pytest.mark.parametrize("page", ["intro", *STEMS, "references"])
def test_page_renders(page, server, tmp_path):
    url = f"{server}/book/{page}.html"
    dom = dump_dom(url, tmp_path / "profile")
    parsed = _Page()
    parsed.feed(dom)
    title = _title(page)
    assert any(title in h.replace("\xa0", " ") for h in parsed.h1), f"{page}: title {title!r} not in {parsed.h1}"
    assert not TRACEBACK.search(dom), f"{page}: a Python traceback is shown"
    figures = [src for src in parsed.images if "_images/" in src]
    expected = _figures(page)
    assert len(figures) >= expected, f"{page}: {expected} figures in the notebook, {len(figures)} <img> on the page"
    for src in figures:
        with urllib.request.urlopen(urllib.parse.urljoin(url, src), timeout=10) as response:
            assert response.status == 200 and response.read(8).startswith(b"\x89PNG"), src
    if page == "references":
        assert "deep residual learning for image recognition" in dom.lower()


def test_index_redirects_to_the_first_page(server, tmp_path):
    dom = dump_dom(f"{server}/index.html", tmp_path / "profile")
    assert _title("intro") in dom


def test_screenshot_of_the_data_chapter(server, tmp_path):
    from PIL import Image, ImageStat

    shot = tmp_path / "02_data.png"
    _chromium([f"--screenshot={shot}", "--window-size=1280,2000", f"{server}/book/02_data.html"],
              tmp_path / "profile")
    with Image.open(shot) as im:
        assert im.size == (1280, 2000)
        stat = ImageStat.Stat(im.convert("L"))
        assert stat.stddev[0] > 10, "the screenshot is blank"
    if SCREENSHOTS:
        folder = Path(SCREENSHOTS) if Path(SCREENSHOTS).is_absolute() else ROOT / SCREENSHOTS
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, folder / "02_data.png")


WIDE_BLOCKS = """[...document.querySelectorAll('div.highlight pre, div.cell_output pre, div.output pre')]
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
  .map(e => e.textContent.split('\\n').reduce((a, b) => (a.length >= b.length ? a : b)).slice(0, 120))"""


def test_no_code_block_scrolls_sideways(server, tmp_path):
    """At a 1280-pixel-wide window (a common laptop), no code cell and no printed output of a
    chapter is wider than its box: lines of up to 88 characters fit (book/_static/book.css)."""
    wide = {}
    with chromium(tmp_path / "profile", None, tmp_path / "chromium.log") as cdp:
        cdp.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        for page in STEMS:
            url = f"{server}/book/{page}.html"
            cdp.call("Page.navigate", url=url)
            wait_for(lambda: cdp.js("location.href") == url and cdp.js("document.readyState") == "complete",
                     60, f"{page} to load")
            cdp.js("document.fonts.ready.then(() => true)", await_promise=True)
            blocks = cdp.js("document.querySelectorAll('div.highlight pre').length")
            assert blocks, f"{page}: no code block found (did the theme's markup change?)"
            found = cdp.js(WIDE_BLOCKS)
            if found:
                wide[page] = found
    assert not wide, "blocks wider than their box at 1280 px (longest line of each):\n" + "\n".join(
        f"{page}: {line!r}" for page, lines in wide.items() for line in lines)
