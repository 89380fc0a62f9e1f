"""The book: its helpers, every chapter in smoke mode, the committed notebooks, the build.

* smoke runs: every chapter of ``_toc.yml`` is executed with papermill and ``smoke=True``
  into a temporary folder (the committed notebooks are not touched), on the real data
  when ``$EMOLIB_DATA`` (default ``../shared/data``) has it, else on generated data;
  the data chapter is also run on generated data and on an empty folder, where it must
  say that the data is missing instead of failing;
* committed notebooks: ``pytest --nbval-lax book/`` re-runs them as committed (full
  mode). *Lax* mode because outputs legitimately vary between runs (timings, progress
  bars, figures' bytes, training numbers): a cell fails only if it raises, and only the
  cells tagged ``nbval-check-output`` (data-independent tables) must reproduce their
  committed output exactly;
* the build: ``jupyter-book build . --path-output TMP -W --keep-going`` (warnings are
  errors) must produce ``index.html`` and one page per chapter. The build is shared with
  ``tests/test_browser.py`` through :func:`built_book`.

The slow ones are marked ``slow``; ``make test`` runs them all.
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from emolib import book
from emolib import data as D
from tests.toy import make_fake_data

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = book.chapters(ROOT)
STEMS = [nb.stem for nb in CHAPTERS]
REAL_DATA = Path(os.environ.get("EMOLIB_DATA") or ROOT.parent / "shared" / "data")
HAVE_REAL_DATA = (REAL_DATA / "fer2013" / "train").is_dir() and (REAL_DATA / "asl").is_dir()
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")
CELL_TIMEOUT = 300  # seconds per cell; the slowest committed cell (chapter 5 evaluating every shipped model) took 127 s


def _kernel_env() -> dict:
    """The environment for a kernel run in a subprocess: inline figures even if MPLBACKEND=Agg."""
    env = dict(os.environ)
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.setdefault("EMOLIB_DATA", str(REAL_DATA))
    return env


def _outputs(nb_path: Path) -> list[dict]:
    nb = nbformat.read(nb_path, as_version=4)
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _markdown_text(outputs) -> str:
    return "\n".join(o.get("data", {}).get("text/markdown", "") for o in outputs)


def _images(outputs) -> int:
    return sum("image/png" in o.get("data", {}) for o in outputs)


@pytest.fixture(scope="session")
def fake_data(tmp_path_factory) -> Path:
    """A generated data root with fer2013/, rafdb/ and asl/ (smooth noise images)."""
    return make_fake_data(tmp_path_factory.mktemp("fake-data"), n_per_class=6)


# --------------------------------------------------------------------------- the table of contents


def test_toc_lists_the_chapters_in_order():
    assert STEMS[0] == "01_introduction" and STEMS[1] == "02_data"
    assert STEMS == sorted(STEMS), "chapters must be in numbered order"
    assert STEMS == [
        "01_introduction", "02_data", "03_baseline", "03b_better_model", "04_transfer_learning",
        "05_evaluation", "06_hand_gestures", "07_pipeline", "08_webcam",
    ]
    assert (ROOT / "book" / "references.md").is_file() and (ROOT / "book" / "intro.md").is_file()
    assert "{bibliography}" in (ROOT / "book" / "references.md").read_text()


@pytest.mark.parametrize("stem", STEMS)
def test_chapter_has_colab_and_parameters_cells(stem):
    nb = nbformat.read(ROOT / "book" / f"{stem}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "title first"
    assert '"google.colab" in sys.modules' in code[0].source, "first code cell installs emolib on Colab"
    assert "pip" in code[0].source and not any(line.lstrip().startswith("!") for line in code[0].source.splitlines())
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and params[0] is code[1], "the second code cell is the papermill parameters cell"
    namespace: dict = {}
    exec(params[0].source, namespace)  # plain assignments only
    assert namespace["data_root"] is None and namespace["smoke"] is False
    assert namespace["output_dir"].startswith("results/")
    assert nb.metadata["kernelspec"]["name"] == book.KERNEL


HIDDEN = {"remove-input", "remove-cell"}  # `hide-input` cells are one click away: they count as shown


@pytest.mark.parametrize("stem", STEMS)
def test_chapter_reads_as_a_lesson(stem):
    """Issue 13: every chapter ends with a summary and exercises, no code a reader sees mentions
    the smoke setting (smoke is a size, set in the hidden parameters cell), and no line of shown
    code is over 88 characters."""
    nb = nbformat.read(ROOT / "book" / f"{stem}.ipynb", as_version=4)
    headings = [line.strip("# ").lower() for c in nb.cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("#")]
    assert "summary" in headings and "exercises" in headings, f"{stem}: headings {headings}"
    assert headings.index("exercises") > headings.index("summary")
    shown = [c for c in nb.cells if c.cell_type == "code" and not HIDDEN & set(c.metadata.get("tags", []))]
    assert shown, f"{stem} shows no code"
    smoke = [c.source.splitlines()[0] for c in shown if re.search(r"\bsmoke\b", c.source)]
    assert not smoke, f"{stem}: shown cells mention smoke: {smoke}"
    long = [line for c in shown for line in c.source.splitlines() if len(line) > 88]
    assert not long, f"{stem}: shown code lines over 88 characters: {long}"


def test_cited_keys_exist_in_the_bibliography():
    import re

    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M))
    assert "thesis2024" in keys
    sources = [p.read_text() for p in (ROOT / "book").glob("*.ipynb")] + [(ROOT / "book" / "intro.md").read_text()]
    cited = {k.strip() for s in sources for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", s)
             for k in group.split(",")}
    assert cited, "the book cites nothing"
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"


# --------------------------------------------------------------------------- helpers


def test_make_fake_rafdb_is_read_by_the_rafdb_loader(tmp_path):
    root = book.make_fake_rafdb(tmp_path / "rafdb", n_per_class=4)
    lines = (root / "EmoLabel" / "list_patition_label.txt").read_text().split()
    assert lines[:2] == ["test_00001.jpg", "1"]
    train, test = D.RAFDB(root, "train", cache=False), D.RAFDB(root, "test", cache=False)
    assert len(train) == 7 * 3 and len(test) == 7 * 1
    assert tuple(train.images.shape[1:]) == (3, 100, 100)
    assert set(train.class_counts.values()) == {3}


def test_load_dataset_smoke_samples_per_class(fake_data):
    fer = book.load_dataset("fer2013", "train", fake_data, smoke=True, per_class=2)
    assert fer.classes == D.EMOTIONS and set(fer.class_counts.values()) == {2}
    hands = book.load_dataset("asl", "train", fake_data, smoke=True, size=32, per_class=3)
    assert hands.classes == D.GESTURES and tuple(hands.images.shape[1:]) == (3, 32, 32)
    raf = book.load_dataset("rafdb", "train", fake_data, smoke=True, per_class=1)
    assert len(raf) == 7
    full = book.load_dataset("fer2013", "test", fake_data / "fer2013")
    assert len(full) == 7 * 3


def test_load_dataset_missing_raises(tmp_path):
    for name in ("fer2013", "rafdb", "asl"):
        for smoke in (False, True):
            with pytest.raises(D.DatasetNotFoundError):
                book.load_dataset(name, "train", tmp_path, smoke=smoke)


def test_tables_and_plots(fake_data):
    import matplotlib

    matplotlib.use("Agg")
    table = book.gesture_table()
    assert "| A | punch | angry |" in table and "| V | victory | happy |" in table
    counts = {"train": {"a": 3, "b": 1}, "test": {"a": 1, "b": 1}}
    assert "| **total** | **4** | 100.0 | **2** | 100.0 |" in book.counts_table(counts)
    assert book.plot_class_counts(counts, "t").get_title() == "t"
    fer = book.load_dataset("fer2013", "train", fake_data, smoke=True, per_class=3)
    fig = book.plot_samples(fer, per_class=3)
    assert len(fig.axes) == 7 * 3
    assert len(book.plot_samples(fer, per_class=1).axes) == 7


def test_per_class_auc_is_sklearns_and_the_macro_is_metrics_roc_auc():
    from sklearn.metrics import roc_auc_score

    from emolib import metrics

    rng = np.random.default_rng(0)
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])  # class 3 absent
    probs = rng.dirichlet(np.ones(4), size=len(y))
    aucs = book.per_class_auc(y, probs, ["a", "b", "c", "d"])
    for k, c in enumerate("abc"):
        assert aucs[c] == pytest.approx(roc_auc_score(y == k, probs[:, k]))
    assert np.isnan(aucs["d"])
    assert aucs["macro"] == pytest.approx(metrics.roc_auc(y, probs))

    import matplotlib

    matplotlib.use("Agg")
    ax = book.plot_roc(y, probs, ["a", "b", "c", "d"])
    curves = [line for line in ax.lines if line.get_label().startswith(("a", "b", "c", "d"))]
    assert len(curves) == 3, "one curve per class present in y_true"
    assert f"{aucs['a']:.2f}" in curves[0].get_label() and f"{aucs['macro']:.3f}" in ax.get_title()


def test_image_grid_draws_every_image_and_leaves_empty_cells_blank():
    import matplotlib

    matplotlib.use("Agg")
    gray = np.full((8, 6), 200, np.uint8)
    chw = torch.zeros(3, 8, 6, dtype=torch.uint8)
    fig = book.image_grid([gray, chw, None], ["g", "c", ""], cols=2, cell=1.0, row_labels=["r0", "r1"])
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 4 and len(drawn) == 2
    assert drawn[0].images[0].get_array().shape == (8, 6) and drawn[1].images[0].get_array().shape == (8, 6, 3)
    assert drawn[0].images[0].get_clim() == (0, 255), "8-bit gray is not stretched"
    assert [ax.get_title() for ax in fig.axes[:2]] == ["g", "c"] and fig.axes[2].get_ylabel() == "r1"


def test_plot_predictions_colours_right_and_wrong(fake_data):
    import matplotlib

    matplotlib.use("Agg")
    fer = book.load_dataset("fer2013", "train", fake_data, smoke=True, per_class=2)
    probs = torch.nn.functional.one_hot(fer.targets, 7).float()
    probs[0] = torch.roll(probs[0], 1)  # one wrong prediction
    fig = book.plot_predictions(fer, probs, n=len(fer), correct=False)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 1 and titled[0].title.get_color() == "tab:red"


def test_placeholder_data_for_each_data_set_the_chapters_fall_back_on(tmp_path):
    """Chapter 3 falls back on a FER2013 placeholder and chapter 4 on ASL photos when the real data
    cannot be had (offline); RAF-DB always (it cannot be redistributed)."""
    root = book.placeholder_data("rafdb", n_per_class=2, dest=tmp_path / "r")
    assert len(D.RAFDB(root / "rafdb", "train", cache=False)) == 7
    root = book.placeholder_data("fer2013", n_per_class=2, dest=tmp_path / "f")
    assert len(D.FER2013(root / "fer2013", "train", cache=False)) == 14
    root = book.make_fake_asl(tmp_path / "a" / "asl", n_per_class=2)
    assert sorted(p.name for p in (root / "train").iterdir()) == ["A", "F", "L", "V"]
    with pytest.raises(ValueError, match="no placeholder for 'imagenet'"):
        book.placeholder_data("imagenet", dest=tmp_path)


# --------------------------------------------------------------------------- runs: the reader's and the reference


def test_packaged_reference_equals_the_committed_results():
    differ = book.sync_reference(check=True)
    assert not differ, f"the packaged reference differs from results/ ({differ}): " \
                       f"run python -m emolib.book sync-reference"
    assert (book.REFERENCE_DIR / "runs" / "baseline-fer2013" / "history.json").is_file()
    files = [p for p in book.REFERENCE_DIR.rglob("*") if p.is_file()]
    other = [p.relative_to(book.REFERENCE_DIR).as_posix() for p in files if p.suffix != ".json"]
    assert other == ["08_webcam/webcam.png"], f"small JSON only, and the webcam screenshot: {other}"
    assert sum(p.stat().st_size for p in files) < 2_000_000, "the packaged reference must stay small"


def test_sync_reference_copies_and_removes(tmp_path):
    results, dest = tmp_path / "results", tmp_path / "ref"
    (results / "runs" / "r").mkdir(parents=True)
    (results / "runs" / "r" / "card.json").write_text("{}")
    (results / "runs" / "r" / "model.pt").write_bytes(b"weights")
    (dest / "benchmarks").mkdir(parents=True)
    (dest / "benchmarks" / "gone.json").write_text("{}")
    assert book.sync_reference(check=True, results=results, dest=dest) == ["benchmarks/gone.json", "runs/r/card.json"]
    assert (dest / "benchmarks" / "gone.json").is_file(), "check changes nothing"
    assert book.sync_reference(results=results, dest=dest) == ["benchmarks/gone.json", "runs/r/card.json"]
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.*")) == ["runs/r/card.json"]
    assert book.sync_reference(check=True, results=results, dest=dest) == []


def _write_run(folder: Path, epochs: int, finished: bool) -> None:
    folder.mkdir(parents=True)
    history = [{"epoch": e, "train_loss": 1.0, "val_loss": 1.0, "train_acc": 0.5, "val_acc": 0.5}
               for e in range(1, epochs + 1)]
    (folder / "history.json").write_text(json.dumps({"history": history, "config": {"epochs": 3}}))
    if finished:
        (folder / "result.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))


def test_load_run_outside_a_checkout_prefers_the_readers_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no _toc.yml above: as on Colab, relative folders are the current one
    ref = book.load_run("baseline-fer2013")
    assert ref["source"] == "reference" and ref["status"] == "shipped"
    assert ref["path"] == book.REFERENCE_DIR / "runs" / "baseline-fer2013"
    assert len(ref["history"]) > 1 and ref["card"]["name"] == "baseline-fer2013"
    assert book.reader_run("baseline-fer2013") is None

    _write_run(tmp_path / "runs" / "baseline-fer2013", epochs=2, finished=False)
    mine = book.load_run("baseline-fer2013")
    assert mine["source"] == "reader" and mine["status"] == "in progress" and len(mine["history"]) == 2
    both = book.compare_runs("baseline-fer2013")
    assert both["reader"]["path"] == tmp_path / "runs" / "baseline-fer2013"
    assert both["reference"]["history"] == ref["history"]
    assert book.load_run("baseline-fer2013", runs_dir=None)["source"] == "reference"

    _write_run(tmp_path / "mine" / "x", epochs=3, finished=True)
    assert book.load_run("x", runs_dir="mine")["status"] == "finished, not shipped"
    assert book.load_run("no-such-run") is None
    card_only = book.load_run("gestures-asl")
    assert card_only["source"] == "card" and card_only["history"] is None
    kept = book.load_run("vgg_kd-fer2013", runs_dir=None)  # a reference run that was not shipped
    assert kept["source"] == "reference" and kept["status"] == "not shipped" and kept["card"] is None
    assert len(kept["history"]) == kept["result"]["epochs_run"] and kept["result"]["test"]["accuracy"] > 0

    import matplotlib

    matplotlib.use("Agg")
    fig = book.plot_runs({"your run": both["reader"], "reference": both["reference"], "absent": None})
    assert [len(ax.lines) for ax in fig.axes] == [4, 4]
    with pytest.raises(ValueError, match="no.*history|has a training history"):
        book.plot_runs({"absent": None})


def test_pipeline_benchmark_table_puts_other_models_beside_the_default(tmp_path):
    """``bench_pipeline.py --also``: each other face model gets its milliseconds and its speed-up over ``fer``
    (computed from the two medians), and the multiply-adds per face of both models are named."""
    photo = {"size": [640, 480], "faces": 2, "ms_median": 100.0, "faces_per_s": 20.0}
    bench = {"emolib": {"a.jpg": photo}, "macs_per_face": 27_906_944,
             "fer": {"version": "x", "images": {"a.jpg": {"ms_median": 300.0, "faces": 2}}},
             "also": {"vgg_cpu-fer2013": {"macs_per_face": 117_450_496,
                                          "images": {"a.jpg": {**photo, "ms_median": 120.0}}}},
             "settings": {"repeats": 5, "model": "baseline-fer2013"},
             "machine": {"cpus": 2, "torch_threads": 1, "loadavg_1min_during": [1.2, 1.6]}, "when": "2026-11-28T07:00"}
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(bench))
    table = book.pipeline_benchmark_table(path)
    head, _, row = table.splitlines()[:3]
    assert head.endswith("| with `vgg_cpu-fer2013` (ms) | its speed-up |")
    assert row.endswith("| 120 | 2.5× |") and "| 3.0× |" in row
    assert "27.9 M multiply-adds per face" in table and "`vgg_cpu-fer2013`: 117.5 M" in table
    assert "load average 1.2-1.6" in table


def _detectors_record(**emotion) -> dict:
    return {"blazeface_ms": 6.9, "mtcnn_pyramid": [[181, 241]] * 8, "mtcnn_pnet_ms": 13.1,
            "mtcnn_rnet_ms": {"8": 1.6, "32": 5.3, "64": 10.6}, "mtcnn_onet_ms": {"1": 1.2, "4": 4.3},
            "mtcnn_networks_per_frame_ms": 19.6, "loadavg_before": [1.92, 1.2, 0.5], **emotion}


def test_live_page_table_names_the_emotion_model_the_detector_benchmark_timed(tmp_path):
    live = {"runs": [{"fps": 28.0, "loadavg_before": [0.9]}], "fps_median": 28.0, "first_ms_median": 900.0,
            "load_s_median": 1.5, "model_bytes": {"a.onnx": 2_000_000, "b.onnx": 500_000}}
    (tmp_path / "live_fps.json").write_text(json.dumps(live))
    (tmp_path / "browser_detectors.json").write_text(json.dumps(
        _detectors_record(emotion_model="vgg_cpu-fer2013", emotion_input=[1, 1, 48, 48], emotion_ms=8.6)))
    table = book.live_page_table(tmp_path)
    assert "| the emotion model (`vgg_cpu-fer2013`), one face | 8.6 ms |" in table
    assert "| MTCNN's R-Net per candidate (from a batch of 8) and O-Net on one face | 0.2 ms and 1.2 ms |" \
        in table
    assert "| load average before the detector measurement | 1.9 |" in table
    # a record made before the model was named timed baseline-fer2013
    (tmp_path / "browser_detectors.json").write_text(json.dumps(_detectors_record(emotion_baseline_ms=3.5)))
    assert "| the emotion model (`baseline-fer2013`), one face | 3.5 ms |" in book.live_page_table(tmp_path)


def test_engine_transfer_table_puts_the_default_model_first_and_sums_the_groups(tmp_path):
    assert book.engine_transfer(tmp_path) is None and book.engine_transfer_table(tmp_path) is None

    def model(emotion_file, emotion_bytes):
        binaries = {"ort.wasm": 14_000_000, "blaze.onnx": 400_000, "pnet.onnx": 30_000,
                    emotion_file: emotion_bytes}
        modules = {"engine.js": 9_000, "ort.mjs": 73_000}
        total = sum(binaries.values()) + sum(modules.values())
        return {"binaries": binaries, "modules": modules, "modules_bytes": 82_000, "total_bytes": total,
                "total_bytes_base64": total + 1_000_000, "emotion_file": emotion_file}

    rec = {"default_model": "vgg", "models": {"base": model("base.onnx", 3_400_000),
                                              "vgg": model("vgg.onnx", 2_400_000)}}
    (tmp_path / "engine_transfer.json").write_text(json.dumps(rec))
    assert book.engine_transfer(tmp_path) == rec
    rows = book.engine_transfer_table(tmp_path).splitlines()
    assert rows[0] == "| sent once by the kernel | `vgg` (the default) | `base` |"
    assert rows[2] == "| the emotion model (ONNX) | 2.4 MB | 3.4 MB |"
    assert rows[3] == "| BlazeFace and MTCNN's three networks (ONNX) | 430 kB | 430 kB |"
    assert rows[4] == "| ONNX Runtime Web's WebAssembly binary | 14.0 MB | 14.0 MB |"
    assert rows[5] == "| JavaScript: `engine.js`, `ort.mjs` | 82 kB | 82 kB |"
    assert rows[6] == "| **in all** | **16.9 MB** | **17.9 MB** |"
    assert rows[7] == "| in all as base64 text (Colab) | 17.9 MB | 18.9 MB |"


def test_result_file_falls_back_to_the_packaged_copy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert book.result_file("results/benchmarks/pipeline.json") == book.REFERENCE_DIR / "benchmarks" / "pipeline.json"
    assert "| photo |" in book.pipeline_benchmark_table()
    assert book.webcam_record()[1] is not None and book.live_page_table() is not None
    assert "| faces followed, as the page opens |" in book.live_agreement_table()
    own = tmp_path / "results" / "benchmarks" / "pipeline.json"
    own.parent.mkdir(parents=True)
    own.write_text("{}")
    assert book.result_file("results/benchmarks/pipeline.json") == own, "the reader's own file first"
    assert book.result_file("results/none.json") == tmp_path / "results" / "none.json"
    with pytest.raises(FileNotFoundError, match="none.json"):
        book.reference_file("results/none.json")


def test_output_path_is_under_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "book")
    assert book.output_path("results/_test_book") == ROOT / "results" / "_test_book"
    (ROOT / "results" / "_test_book").rmdir()
    assert book.output_path(tmp_path / "x") == tmp_path / "x"


def test_cli_list():
    out = subprocess.run([sys.executable, "-m", "emolib.book", "list"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [f"book/{s}.ipynb" for s in STEMS]


def test_a_chapter_number_selects_that_chapter_and_not_its_sections():
    """``python -m emolib.book execute 03`` runs chapter 3 alone, though 03b_better_model (its
    section) also starts with 03; ``03b`` selects the section."""
    from emolib.book.runner import _select

    assert [p.stem for p in _select(["03"], ROOT)] == ["03_baseline"]
    assert [p.stem for p in _select(["03b"], ROOT)] == ["03b_better_model"]
    with pytest.raises(SystemExit, match="matches 0 notebooks"):
        _select(["99"], ROOT)


def test_recipe_table_names_the_optimizer_the_batch_augmentation_and_the_average():
    table = book.recipe_table("vgg_cpu-fer2013", "baseline-fer2013")
    assert "| optimizer | SGD with Nesterov momentum 0.9, learning rate 0.1 | Adam, learning rate 0.001 |" \
        in table
    assert "| `BatchAugment` (whole batches): rotation 10.0, scale (0.9, 1.1), shift 0.1," in table
    assert "| weight average (EMA) | decay 0.999 | no |" in table
    assert "| autocast | on (bfloat16 on a CPU, float16 on a GPU) |" in table
    alone = book.recipe_table("baseline-fer2013")
    assert "weight average" not in alone and "autocast" not in alone, "rows only where a recipe uses them"


# --------------------------------------------------------------------------- smoke runs


def _smoke(stem: str, outdir: Path, data_root: Path) -> Path:
    t0 = time.time()
    nb = book.smoke(outdir, [stem], data_root=data_root)[0]
    elapsed = time.time() - t0
    print(f"{stem}: {elapsed:.0f} s")
    assert nb == outdir / f"{stem}.ipynb" and nb.is_file()
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("stem", STEMS)
def test_chapter_smoke(stem, tmp_path, fake_data):
    """Every chapter at smoke size in the repository, on generated data. With the real data,
    ``tests/test_run_alone.py`` runs each chapter alone (stricter: every figure cell, from an
    installed wheel), so this one is not repeated there."""
    if HAVE_REAL_DATA:
        pytest.skip("the real data is here: tests/test_run_alone.py runs every chapter alone on it")
    data_root = fake_data
    nb = _smoke(stem, tmp_path, data_root)
    outputs = _outputs(nb)
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert "is not available here" not in _markdown_text(outputs)
    committed = _images(_outputs(ROOT / "book" / f"{stem}.ipynb"))
    if committed:
        assert _images(outputs) > 0, f"{stem} draws figures when run in full but none in the smoke run"
    original = nbformat.reads((ROOT / "book" / f"{stem}.ipynb").read_text(), as_version=4)
    assert original.metadata.get("papermill") is None, "the committed notebook was touched"


@pytest.mark.slow
def test_data_chapter_on_generated_data(tmp_path, fake_data):
    nb = _smoke("02_data", tmp_path, fake_data)
    outputs = _outputs(nb)
    assert _images(outputs) >= 7
    text = "".join(o.get("text", "") for o in outputs)
    assert "RAF-DB: train" in text, "the generated data root has rafdb/, which must be used"
    counts = json.loads((tmp_path / "results" / "02_data" / "class_counts.json").read_text())
    assert set(counts) == {"fer2013", "asl"}


@pytest.mark.slow
@pytest.mark.parametrize("stem", ["01_introduction", "02_data"])
def test_chapter_without_data_says_so(stem, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    nb = _smoke(stem, tmp_path / "out", empty)
    text = _markdown_text(_outputs(nb))
    assert "is not available here" in text and book.DATA_CHAPTER in text
    if stem == "02_data":
        assert "GENERATED PLACEHOLDER DATA" in "".join(o.get("text", "") for o in _outputs(nb))


# --------------------------------------------------------------------------- committed notebooks


@pytest.mark.slow
def test_committed_notebooks_run_with_nbval():
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
           f"--nbval-cell-timeout={CELL_TIMEOUT}", "--durations=8", "book/"]
    env = dict(_kernel_env(), EMOLIB_KEEP_RESULTS="1")  # the chapters run in the repository: keep its results
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    # which cells failed, and the slowest cells, first: a long traceback fills the tail of the output
    lines = proc.stdout.splitlines()
    failed = [ln for ln in lines if ln.startswith(("FAILED", "ERROR"))]
    slowest = [ln for ln in lines if re.match(r"\s*[0-9.]+s (call|setup|teardown)\s", ln)]
    assert proc.returncode == 0, "\n".join(failed + slowest) + "\n" + proc.stdout[-6000:] + proc.stderr[-3000:]


def test_committed_notebooks_have_outputs():
    for stem in ("01_introduction", "02_data"):
        outputs = _outputs(ROOT / "book" / f"{stem}.ipynb")
        assert _images(outputs) >= 2, f"{stem} must be committed executed (python -m emolib.book execute)"
        assert not [o for o in outputs if o["output_type"] == "error"]
        assert not [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]


# --------------------------------------------------------------------------- the build

_BUILD: dict = {}


def built_book(tmp_path_factory) -> Path:
    """Build the book once per test session into a temporary folder; returns ``.../_build/html``.

    Shared by this module and ``test_browser.py``. Fails (in every caller) if the build
    fails or warns.
    """
    if "proc" not in _BUILD:
        out = tmp_path_factory.mktemp("book-build")
        cmd = [str(JUPYTER_BOOK), "build", str(ROOT), "--path-output", str(out), "-W", "--keep-going"]
        _BUILD["proc"] = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
        _BUILD["html"] = out / "_build" / "html"
    proc = _BUILD["proc"]
    if proc.returncode != 0:
        pytest.fail(f"jupyter-book build failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}")
    return _BUILD["html"]


@pytest.mark.slow
def test_book_builds_without_warnings(tmp_path_factory):
    html = built_book(tmp_path_factory)
    assert (html / "index.html").is_file()
    for page in ["intro", *STEMS, "references"]:
        assert (html / "book" / f"{page}.html").is_file(), f"no page for {page}"
    refs = (html / "book" / "references.html").read_text()
    assert "deep residual learning for image recognition" in refs.lower()
    assert "Emotion recognition from facial expressions and hand gestures with deep learning" in refs
    data_page = (html / "book" / "02_data.html").read_text()
    assert data_page.count("_images/") >= 7, "the data chapter shows its figures"
    assert "<table" in data_page, "markdown tables that cells display are rendered"
