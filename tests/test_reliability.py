"""Reliability (issue 12): no code from a checkpoint, reproducible runs, no lost work, no silent wrong answers.

Every test runs on generated inputs; several start real processes (two runs on one
folder, a run killed and resumed, Ctrl-C on a video).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from emolib import data as D
from emolib.cli import main
from emolib.fileio import (LOCK_NAME, MAX_PIXELS_ENV, CheckpointError, FolderBusyError, lock_folder, save_torch,
                           to_8bit)
from emolib.models import create_model, save_checkpoint
from emolib.train import ResumeMismatchError, TrainConfig, fit
from tests.toy import tiny_cnn, toy_dataset

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict:
    """This process's environment (with the test's private EMOLIB_CACHE), importing this checkout's emolib."""
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _toy_split(n=160):
    data = toy_dataset(n)
    return data.subset(range(n * 3 // 4)), data.subset(range(n * 3 // 4, n))


def _state(path: Path) -> dict:
    blob = torch.load(path, weights_only=True)
    for key in ("state_dict", "model"):  # model.pt, last.pt; best.pt is the state dict itself
        if key in blob:
            return blob[key]
    return blob


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


class _Evil:
    """A pickle that, when loaded unsafely, creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# --------------------------------------------------------------------------- 1, 9: checkpoints


def test_malicious_last_pt_runs_nothing_and_the_error_names_it(tmp_path, fer_folders, capsys):
    train, val = _toy_split(80)
    out = tmp_path / "run"
    out.mkdir()
    marker = tmp_path / "pwned"
    torch.save({"model": _Evil(marker), "history": []}, out / "last.pt")
    with pytest.raises(CheckpointError, match=re.escape(str(out / "last.pt")) + ".*refused"):
        fit(tiny_cnn(), train, val, TrainConfig(epochs=1, device="cpu"), out_dir=out, progress=False)
    assert not marker.exists()
    # the same through the command line: one line on stderr, exit 2, nothing run
    code = main(["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders),
                 "--out", str(out), "--epochs", "1", "--batch-size", "8"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert str(out / "last.pt") in err and len(err.strip().splitlines()) == 1
    assert "weights_only" not in err


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_last_pt_gives_one_clear_line_with_its_path(tmp_path, damage):
    train, val = _toy_split(80)
    out = tmp_path / "run"
    cfg = TrainConfig(epochs=1, batch_size=20, device="cpu")
    fit(tiny_cnn(), train, val, cfg, out_dir=out, progress=False)
    last = out / "last.pt"
    last.write_bytes(b"not a checkpoint at all" if damage == "garbage" else last.read_bytes()[:3000])
    with pytest.raises(CheckpointError) as info:
        fit(tiny_cnn(), train, val, TrainConfig(epochs=2, batch_size=20, device="cpu"), out_dir=out, progress=False)
    msg = str(info.value)
    assert str(last) in msg and "not a readable" in msg
    assert "\n" not in msg and "weights_only" not in msg


def test_a_training_state_of_the_earlier_format_still_resumes(tmp_path):
    train, val = _toy_split(80)
    out = tmp_path / "run"
    fit(tiny_cnn(), train, val, TrainConfig(epochs=1, batch_size=20, device="cpu"), out_dir=out, progress=False)
    state = torch.load(out / "last.pt", weights_only=True)
    import random

    state["rng"] |= {"python": random.getstate(), "numpy": np.random.get_state()}  # as written before
    torch.save(state, out / "last.pt")
    history = fit(tiny_cnn(), train, val, TrainConfig(epochs=2, batch_size=20, device="cpu"), out_dir=out,
                  progress=False)
    assert len(history) == 2


def test_refused_model_checkpoint_is_one_line_without_pytorch_advice(tmp_path, fer_folders, capsys):
    bad = tmp_path / "evil.pt"
    torch.save({"arch": "baseline", "state_dict": _Evil(tmp_path / "pwned")}, bad)
    assert main(["evaluate", "--model", str(bad), "--data", str(fer_folders / "test")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(bad) in err and "refused" in err
    assert "weights_only" not in err and not (tmp_path / "pwned").exists()


def test_every_torch_load_in_emolib_is_weights_only():
    if os.environ.get("MUTANT_UNDER_TEST"):  # mutmut's copy of emolib holds every mutant's text beside the code
        pytest.skip("reads emolib's source text, which mutmut's copy fills with its mutants")
    calls = []
    for path in (REPO / "emolib").glob("*.py"):
        text = path.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            depth, i = 1, m.end()
            while depth:
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            calls.append((path.name, text[m.start():i]))
    assert calls, "no torch.load found: the test looks in the wrong place"
    unsafe = [(name, call) for name, call in calls if "weights_only=True" not in call]
    assert not unsafe


# --------------------------------------------------------------------------- 2: reproducible runs


def test_same_command_in_two_processes_gives_identical_runs(tmp_path, fer_folders):
    # one run in this process (after every test before it has used its random generators), one in a fresh one
    runs = [tmp_path / "run0", tmp_path / "run1"]
    args = ["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders), "--epochs", "2",
            "--batch-size", "8", "--seed", "3"]
    assert main([*args, "--out", str(runs[0])]) == 0
    proc = subprocess.run([sys.executable, "-m", "emolib", *args, "--out", str(runs[1])], check=False,
                          capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    histories = [_strip(json.loads((r / "history.json").read_text())["history"]) for r in runs]
    assert histories[0] == histories[1]
    assert _same_weights(_state(runs[0] / "model.pt"), _state(runs[1] / "model.pt"))


_KILL_SCRIPT = """
import os, signal, sys
from emolib.train import TrainConfig, fit
from tests.toy import tiny_cnn, toy_dataset
out, kill_at = sys.argv[1], int(sys.argv[2])
print(os.getpid(), flush=True)
data = toy_dataset(160)
train, val = data.subset(range(120)), data.subset(range(120, 160))
cfg = TrainConfig(epochs=4, batch_size=16, lr=5e-3, schedule="onecycle", label_smoothing=0.1, device="cpu")
def cut(entry):
    if entry["epoch"] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
fit(tiny_cnn(), train, val, cfg, out_dir=out, progress=False, on_epoch_end=cut)
"""


def _uninterrupted(out: Path) -> None:
    """_KILL_SCRIPT's run, never killed (a run already in ``out`` is resumed)."""
    data = toy_dataset(160)
    train, val = data.subset(range(120)), data.subset(range(120, 160))
    cfg = TrainConfig(epochs=4, batch_size=16, lr=5e-3, schedule="onecycle", label_smoothing=0.1, device="cpu")
    fit(tiny_cnn(), train, val, cfg, out_dir=out, progress=False)


def test_a_killed_and_resumed_run_equals_the_uninterrupted_one(tmp_path):
    _uninterrupted(tmp_path / "full")  # in this process; the run killed after epoch 2 in its own
    killed = subprocess.run([sys.executable, "-c", _KILL_SCRIPT, str(tmp_path / "cut"), "2"], cwd=REPO, env=_env(),
                            capture_output=True, text=True, timeout=600, check=False)
    assert killed.returncode == -signal.SIGKILL
    assert len(json.loads((tmp_path / "cut" / "history.json").read_text())["history"]) == 2
    dead_pid = killed.stdout.split()[0]
    assert dead_pid != str(os.getpid())
    assert (tmp_path / "cut" / LOCK_NAME).read_text().strip() == dead_pid  # the dead process's lock stays
    _uninterrupted(tmp_path / "cut")  # resumed here: the dead process's lock is taken over
    full, cut = (json.loads((tmp_path / d / "history.json").read_text())["history"] for d in ("full", "cut"))
    assert _strip(full) == _strip(cut)
    for name in ("last.pt", "best.pt"):
        assert _same_weights(_state(tmp_path / "full" / name), _state(tmp_path / "cut" / name))


# --------------------------------------------------------------------------- 3: two processes


_LONG_RUN = """
import sys
from emolib.train import TrainConfig, fit
from tests.toy import tiny_cnn, toy_dataset
data = toy_dataset(400)
fit(tiny_cnn(), data.subset(range(300)), data.subset(range(300, 400)),
    TrainConfig(epochs=10_000, batch_size=4, device="cpu"), out_dir=sys.argv[1], progress=False)
"""


def test_a_second_process_on_the_same_out_folder_is_refused_naming_the_first(tmp_path, fer_folders, capsys):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-c", _LONG_RUN, str(out)], cwd=REPO, env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while not ((out / LOCK_NAME).exists() and (out / LOCK_NAME).read_text().strip() == str(first.pid)):
            assert first.poll() is None, first.stderr.read()
            assert time.time() < deadline, "the first run never took the lock"
            time.sleep(0.2)
        # the second: this process (an exception would reach pytest instead of exit code 2 and one line)
        code = main(["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders),
                     "--out", str(out), "--epochs", "1"])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1
        assert str(out) in err and f"process {first.pid}" in err
        assert first.poll() is None  # the first run goes on
        assert (out / LOCK_NAME).read_text().strip() == str(first.pid)  # and keeps its lock
    finally:
        first.kill()
        first.wait()


def test_stale_lock_of_a_dead_process_is_taken_over_and_locks_nest(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{_dead_pid()}\n")
    train, val = _toy_split(80)
    with lock_folder(out):  # re-entrant: fit inside a caller's lock (as run_recipe does)
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
        fit(tiny_cnn(), train, val, TrainConfig(epochs=1, batch_size=20, device="cpu"), out_dir=out, progress=False)
    assert not (out / LOCK_NAME).exists()  # released


def test_without_flock_the_pid_in_the_lock_file_decides(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)  # as on Windows, or a file system without flock
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(f"{os.getppid()}\n")  # a live process
    with pytest.raises(FolderBusyError, match=f"{re.escape(str(out))} is in use by process {os.getppid()}"):
        with lock_folder(out):
            pass
    (out / LOCK_NAME).write_text(f"{_dead_pid()}\n")
    with lock_folder(out):
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())


# both processes import torch first, then wait for each other (a file each in the gate folder) and start together
_START_TOGETHER = """
import os, sys, time
from pathlib import Path
def start_together(gate, n=2):
    (Path(gate) / f"ready-{os.getpid()}").touch()
    deadline = time.time() + 300
    while len(list(Path(gate).glob("ready-*"))) < n:
        assert time.time() < deadline, "the other process never got ready"
        time.sleep(0.002)
"""

_CACHE_RACE = _START_TOGETHER + """
from emolib.fileio import save_torch
import torch
path = sys.argv[1]
blob = {"x": torch.arange(200_000)}
start_together(sys.argv[2])
for _ in range(40):
    save_torch(blob, path)
"""

_DATA_RACE = _START_TOGETHER + """
from emolib.data import FER2013
root = sys.argv[1]
cache = Path(os.environ["EMOLIB_CACHE"])
start_together(sys.argv[2])
sizes = set()
for _ in range(25):  # build the cache again and again, as the other process does
    for f in cache.glob("images-*.pt"):
        f.unlink(missing_ok=True)
    sizes.add(len(FER2013(root, "train", cache=True)))
print(*sizes)
"""


@pytest.mark.parametrize("script", ["save", "dataset"])
def test_two_processes_writing_one_file_both_succeed(tmp_path, fer_folders, script):
    target = tmp_path / "shared.pt"
    gate = tmp_path / "gate"
    gate.mkdir()
    arg = str(target) if script == "save" else str(fer_folders)
    procs = [subprocess.Popen([sys.executable, "-c", _CACHE_RACE if script == "save" else _DATA_RACE, arg, str(gate)],
                              cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e[-1500:] for _, e in outs]
    assert len(list(gate.iterdir())) == 2  # both were ready before either started
    if script == "save":
        assert torch.equal(torch.load(target, weights_only=True)["x"], torch.arange(200_000))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["fer2013", "gate", "shared.pt"]  # no temporary file
    else:
        assert [o.strip() for o, _ in outs] == ["21", "21"]
        cache = Path(os.environ["EMOLIB_CACHE"])
        assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- 4: Ctrl-C keeps what was done


def _write_video(path: Path, frames: int = 600, size: int = 64) -> Path:
    av = pytest.importorskip("av", reason="PyAV writes the test video (pip install av)")
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(create_model("baseline"), tmp_path_factory.mktemp("ckpt") / "m.pt", D.EMOTIONS)


def _default_sigint() -> None:
    """In the child, before exec: Ctrl-C's default action, as a terminal gives it. A child inherits an
    *ignored* SIGINT from its parent, and a command started in the background by a non-interactive shell
    (`bash -c 'make test &'`) runs with SIGINT ignored (POSIX: no job control). The fresh-clone CI of
    2026-11-28 was started that way: pytest ignored SIGINT from its start, no test had changed it, and both
    Ctrl-C tests saw their child finish with exit 0."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when(proc: subprocess.Popen, ready, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)


def test_ctrl_c_on_a_video_keeps_the_csv_rows_so_far(tmp_path, checkpoint):
    # 256-pixel frames: enough work per frame that the run is still going when the rows appear (64-pixel
    # noise frames were all done within one poll on a quiet machine)
    clip = _write_video(tmp_path / "clip.mp4", size=256)
    csv_path = tmp_path / "clip.csv"
    proc = subprocess.Popen([sys.executable, "-m", "emolib", "predict", str(clip), "--every", "1", "--csv",
                             str(csv_path), "--model", str(checkpoint), "--hands", "off", "--no-progress"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    _interrupt_when(proc, lambda: csv_path.exists() and len(csv_path.read_text().splitlines()) > 3)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "interrupted after" in err
    lines = csv_path.read_text().splitlines()
    header = lines[0].split(",")
    assert header[:3] == ["time_s", "frame", "face"]
    rows = [line.split(",") for line in lines[1:]]
    assert 3 <= len(rows) < 600 and all(len(r) == len(header) for r in rows)  # whole rows only
    assert [int(r[1]) for r in rows] == list(range(len(rows)))  # noise: one face-less row per frame
    said = int(re.search(r"their (\d+) row", err).group(1))
    assert said <= len(rows) <= said + 1  # Ctrl-C may land between writing a frame's rows and counting them


def test_ctrl_c_on_a_folder_keeps_the_json_lines_so_far(tmp_path, checkpoint):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(400):
        Image.fromarray(rng.integers(0, 255, (160, 160, 3), dtype=np.uint8)).save(folder / f"p{i:03d}.png")
    out = tmp_path / "out.jsonl"
    with open(out, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "emolib", "predict", str(folder), "--json", "--model",
                                 str(checkpoint), "--hands", "off", "--no-progress"],
                                env=_env(), stdout=fh, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_default_sigint)
        _interrupt_when(proc, lambda: len(out.read_text().splitlines()) > 3)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "interrupted after" in err
    lines = out.read_text().splitlines()
    assert 3 < len(lines) < 400 and all("faces" in json.loads(line) for line in lines)


# --------------------------------------------------------------------------- 5: no silent wrong answers


@pytest.fixture(scope="module")
def face_gray() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the astronaut photo")
    return np.asarray(Image.fromarray(skdata.astronaut()).convert("L").resize((256, 256), Image.BILINEAR))


def test_a_16_bit_gray_png_gives_the_same_face_as_its_8_bit_version(tmp_path, checkpoint, face_gray):
    from emolib.pipeline import EmotionPipeline, load_image

    p8, p16 = tmp_path / "face8.png", tmp_path / "face16.png"
    Image.fromarray(face_gray).save(p8)
    Image.fromarray(face_gray.astype(np.uint16) * 257).save(p16)  # 0..65535, the same picture
    assert Image.open(p16).mode.startswith("I")
    assert np.array_equal(np.asarray(load_image(p16)), np.asarray(load_image(p8)))
    pipe = EmotionPipeline(checkpoint, device="cpu", hands=False)
    r8, r16 = pipe(p8), pipe(p16)
    assert len(r8.faces) == 1 and len(r16.faces) == 1
    assert r16.faces[0].box == pytest.approx(r8.faces[0].box)
    assert r16.faces[0].probabilities == pytest.approx(r8.faces[0].probabilities)


def test_high_bit_depth_modes_are_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
    for img in (Image.fromarray(ramp), Image.fromarray(ramp.astype(np.int32), "I"),
                Image.fromarray(ramp.astype(np.float32) / 65535, "F")):
        out = np.asarray(to_8bit(img))
        assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
        assert np.abs(out.astype(int) - np.rint(ramp / 257)).max() <= 1


def test_fer_folder_16_bit_and_wrong_size_images(fer_folders):
    happy = fer_folders / "train" / "happy"
    gray = np.asarray(Image.open(next(happy.iterdir())))
    Image.fromarray(gray.astype(np.uint16) * 257).save(happy / "deep.png")
    Image.fromarray(np.full((60, 60), 128, np.uint8)).save(happy / "big.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = D.FER2013(fer_folders, "train", cache=False)
    reports = [str(w.message) for w in caught if "wrong size" in str(w.message)]
    assert len(reports) == 1 and "left out 1 image" in reports[0] and "big.png (60x60, not 48x48)" in reports[0]
    assert len(ds) == 22 and [Path(p).name for p in ds.skipped] == ["big.png"]
    deep = ds.images[ds.paths.index(str(happy / "deep.png"))][0].numpy()
    assert np.array_equal(deep, gray)


def _fer_csv(path: Path, rows) -> Path:
    lines = ["emotion,pixels,Usage"] + [f"{label},{pixels},{usage}" for label, pixels, usage in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unknown_usage_values_are_counted_and_named(tmp_path):
    good = " ".join(["7"] * 2304)
    rows = [(k, good, "Training") for k in range(7)] + [(0, good, "Trainig"), (1, good, "Trainig"),
                                                        (2, good, "Validation")]
    path = _fer_csv(tmp_path / "fer2013.csv", rows)
    with pytest.warns(UserWarning, match=r"left out 3 row\(s\) with an unknown Usage value: 'Trainig' "
                                         r"\(lines 9, 10\), 'Validation' \(line 11\)"):
        ds = D.FER2013(path, "train")
    assert len(ds) == 7


@pytest.mark.parametrize("value", ["300", "-1"])
def test_a_csv_pixel_value_out_of_range_names_the_file_and_line(tmp_path, value):
    good = " ".join(["7"] * 2304)
    bad = " ".join(["7"] * 100 + [value] + ["7"] * 2203)
    path = _fer_csv(tmp_path / "fer2013.csv", [(0, good, "Training"), (1, bad, "Training")])
    with pytest.raises(D.DatasetFormatError, match=re.escape(f"{path}, line 3: pixel value {value} is outside 0..255")):
        D.FER2013(path, "train")


# --------------------------------------------------------------------------- 6: decompression bombs


def test_a_decompression_bomb_in_a_folder_is_skipped_with_one_line(tmp_path, checkpoint, monkeypatch, capsys):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # instead of writing a 200-megapixel file
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, side in (("a_ok.png", 30), ("b_bomb.png", 100), ("c_warned.png", 40)):
        Image.fromarray(np.full((side, side, 3), 120, np.uint8)).save(folder / name)
    args = ["predict", str(folder), "--json", "--model", str(checkpoint), "--hands", "off", "--no-progress"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's own warning must not get out
        assert main(args) == 0
    cap = capsys.readouterr()
    assert [json.loads(line)["image"].endswith("a_ok.png") for line in cap.out.splitlines()] == [True]
    for name, pixels in (("b_bomb.png", "10,000"), ("c_warned.png", "1,600")):
        line = next(line for line in cap.err.splitlines() if name in line)
        assert f"{pixels} pixels, over the limit of 1,000" in line and MAX_PIXELS_ENV in line
    assert "Traceback" not in cap.err and "DecompressionBomb" not in cap.err
    monkeypatch.setenv(MAX_PIXELS_ENV, "20000")  # the documented way to raise the limit
    assert main(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_a_decompression_bomb_in_a_dataset_is_skipped_and_reported(fer_folders, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 48 * 48)
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(fer_folders / "train" / "sad" / "bomb.png")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image.*bomb\.png.*over the limit"):
        ds = D.FER2013(fer_folders, "train", cache=True)
    assert len(ds) == 21
    monkeypatch.setenv(MAX_PIXELS_ENV, "0")  # no limit: the file is read this time (not an old cache)...
    with pytest.warns(UserWarning, match=r"left out 1 image.*bomb\.png \(100x100, not 48x48\)"):
        D.FER2013(fer_folders, "train", cache=True)  # ...and, 100x100, left out as FER2013's wrong size


# --------------------------------------------------------------------------- 7: outputs never collide


def test_annotated_outputs_never_collide_nor_overwrite_an_input(tmp_path, checkpoint, face_gray, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(face_gray).save(folder / "p.jpg")
    Image.fromarray(face_gray[:, ::-1]).save(folder / "p.png")
    base = ["--model", str(checkpoint), "--hands", "off", "--no-progress"]
    assert main(["predict", str(folder), "--out", str(tmp_path / "out"), *base]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["p_jpg_emotions.jpg", "p_png_emotions.jpg"]
    # an input with an output's name, and --out the input folder: the input is left alone
    Image.fromarray(face_gray[::-1]).save(folder / "p_jpg_emotions.jpg")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    capsys.readouterr()
    assert main(["predict", str(folder), "--out", str(folder), *base]) == 0
    err = capsys.readouterr().err
    assert "not writing" in err and "p_jpg_emotions.jpg" in err
    assert all((folder / name).read_bytes() == data for name, data in before.items())
    assert main(["predict", str(folder / "p.jpg"), "--out", str(folder / "p.jpg"), *base]) == 2
    assert (folder / "p.jpg").read_bytes() == before["p.jpg"]


# --------------------------------------------------------------------------- 8: resume checks the settings


def test_resume_with_other_settings_or_data_is_refused_listing_the_differences(tmp_path):
    train, val = _toy_split()
    out = tmp_path / "run"
    cfg = TrainConfig(epochs=2, batch_size=16, lr=5e-3, device="cpu")
    fit(tiny_cnn(), train, val, cfg, out_dir=out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".json", ".pt")}
    changed = TrainConfig(epochs=3, batch_size=16, lr=0.1, device="cpu")
    with pytest.raises(ResumeMismatchError, match=r"lr 0\.005 -> 0\.1") as info:
        fit(tiny_cnn(), train.subset(range(60)), val, changed, out_dir=out, progress=False)
    assert "train data 120 -> 60 images" in str(info.value) and "epochs" not in str(info.value).split("Differences")[1]
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".json", ".pt")} == before
    # more epochs with the same settings is a plain resume
    assert len(fit(tiny_cnn(), train, val, TrainConfig(epochs=3, batch_size=16, lr=5e-3, device="cpu"),
                   out_dir=out, progress=False)) == 3
    # asked for explicitly, the change becomes a recorded new stage
    history = fit(tiny_cnn(), train, val, TrainConfig(epochs=4, batch_size=16, lr=1e-3, device="cpu"),
                  out_dir=out, progress=False, new_stage=True)
    assert [h["stage"] for h in history] == [1, 1, 1, 2] and history[-1]["lr"] == 1e-3
    record = json.loads((out / "history.json").read_text())
    assert [(s["stage"], s["first_epoch"]) for s in record["stages"]] == [(1, 1), (2, 4)]
    assert record["stages"][1]["changed"] == ["lr 0.005 -> 0.001"]


def test_cli_resume_with_other_settings_needs_new_stage(tmp_path, fer_folders, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "baseline", "--dataset", "fer2013", "--data", str(fer_folders), "--out", str(out),
            "--batch-size", "8"]
    assert main([*args, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--epochs", "2", "--lr", "0.1", "--limit", "18"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "lr 0.001 -> 0.1" in err and "train data" in err
    assert "--new-stage" in err
    assert main([*args, "--epochs", "2", "--lr", "0.1", "--limit", "18", "--new-stage"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["epochs_run"] == 2 and result["stages"][1]["first_epoch"] == 2
    assert any(d.startswith("lr ") for d in result["stages"][1]["changed"])


def test_fileio_save_leaves_no_temporary_file_on_failure(tmp_path):
    target = tmp_path / "x.pt"
    save_torch({"a": torch.zeros(2)}, target)
    with pytest.raises(Exception):
        save_torch({"a": lambda: 0}, target)  # cannot be pickled
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.zeros(2))


# --------------------------------------------------------------------------- 9: fileio's helpers lose nothing
# (tests for the sampled mutation survivors of emolib/fileio.py: results/mutation/sample/fileio.json)


def test_copy_file_and_save_arrays_keep_every_byte_and_array(tmp_path):
    from emolib.fileio import copy_file, save_arrays

    src = tmp_path / "weights.bin"
    payload = bytes(range(256)) * 3 + b"\r\n\x00\xff\xfe"  # every byte value, line ends, not UTF-8
    src.write_bytes(payload)
    dest = copy_file(src, tmp_path / "new folder" / "copy.bin")
    assert dest == tmp_path / "new folder" / "copy.bin" and dest.read_bytes() == payload
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"]  # no temporary file left beside it

    arrays = {"landmarks": np.arange(42, dtype=np.float32).reshape(2, 21) / 7,
              "ids": np.array([3, 1], np.int64)}
    path = save_arrays(arrays, tmp_path / "cache" / "hands.npz")
    assert path == tmp_path / "cache" / "hands.npz"
    with np.load(path) as back:
        assert sorted(back.files) == ["ids", "landmarks"]
        for name, arr in arrays.items():
            assert back[name].dtype == arr.dtype and np.array_equal(back[name], arr)


def test_write_text_writes_utf8_whatever_the_platform_encoding(tmp_path):
    """JSON and CSV files with accents or emoji must read back the same on a machine whose locale is
    not UTF-8 (Windows' cp1252, a POSIX "C" locale): ``write_text`` always writes UTF-8."""
    import locale
    import sys

    from emolib.fileio import write_text

    text = "émotion: 😀 joie, ÿ, ñ\n"
    assert write_text(tmp_path / "here.txt", text).read_bytes() == text.encode("utf-8")
    if sys.flags.utf8_mode:
        pytest.skip("Python's UTF-8 mode is on: the platform encoding cannot be made ASCII here")
    before = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")  # open()'s default encoding is now ASCII
        assert locale.getpreferredencoding(False).lower() in ("ansi_x3.4-1968", "ascii", "us-ascii")
        path = write_text(tmp_path / "ascii locale" / "labels.txt", text)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    assert path.read_bytes() == text.encode("utf-8")


def test_cache_dir_defaults_to_the_user_cache_and_follows_emolib_cache(tmp_path, monkeypatch):
    from emolib.fileio import cache_dir

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EMOLIB_CACHE", raising=False)
    assert cache_dir() == tmp_path / "home" / ".cache" / "emolib"
    monkeypatch.setenv("EMOLIB_CACHE", "~/elsewhere")
    assert cache_dir() == tmp_path / "home" / "elsewhere"


def test_to_8bit_scales_values_above_16_bits_by_their_maximum():
    """A 32-bit integer or float image over 65535 (e.g. a summed exposure) is scaled by its own
    maximum: its brightest pixel is white and the others keep their proportions."""
    values = np.array([[0, 50_000, 100_000, 200_000]])
    for img in (Image.fromarray(values.astype(np.int32), "I"),
                Image.fromarray(values.astype(np.float32), "F")):
        out = np.asarray(to_8bit(img))
        assert out.dtype == np.uint8 and out.tolist() == [[0, 64, 128, 255]], img.mode


def test_load_image_composites_a_palette_image_with_alpha_on_white():
    """A ``PA`` image (palette and alpha): its transparent pixels become white, as those of RGBA, LA and
    P images with transparency do, instead of showing the colour hidden under them."""
    from emolib.fileio import load_image

    pal = Image.new("P", (4, 2), 1)
    pal.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    pa = pal.convert("PA")
    pa.putalpha(Image.fromarray(np.array([[0, 0, 255, 255]] * 2, np.uint8)))  # left half transparent
    assert pa.mode == "PA"
    out = np.asarray(load_image(pa))
    assert out.shape == (2, 4, 3)
    assert (out[:, :2] == 255).all() and (out[:, 2:] == [200, 30, 30]).all()


def test_a_zero_size_image_is_refused_with_its_size():
    from emolib.fileio import PipelineInputError, load_image

    for size in ((0, 5), (3, 0)):
        with pytest.raises(PipelineInputError) as err:
            load_image(Image.new("RGB", size))
        assert f"zero-size image ({size[0]}x{size[1]})" in str(err.value)
