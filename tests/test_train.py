"""Trainer: learning, exact resume, checkpoints, and data-parallel equivalence."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from emolib.train import EpochSampler, ResumeMismatchError, TrainConfig, fit, predict, try_gpu
from emolib.data import ImageDataset
from tests.toy import tiny_cnn, tiny_mlp, toy_dataset

REPO = Path(__file__).resolve().parents[1]


def _strip(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_a_tiny_model_learns_a_learnable_problem(tmp_path):
    data = toy_dataset(240)
    train, val = data.subset(range(200)), data.subset(range(200, 240))
    history = fit(tiny_cnn(), train, val, TrainConfig(epochs=4, batch_size=20, lr=1e-2, device="cpu"),
                  out_dir=tmp_path, progress=False)
    assert history[-1]["val_acc"] >= 0.9  # chance is 0.25
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    keys = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "val_auc", "lr", "seconds"}
    assert set(history[0]) == keys
    saved = json.loads((tmp_path / "history.json").read_text())
    assert _strip(saved["history"]) == _strip(history)
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temporary files


class _Interrupt(Exception):
    pass


SCHEDULES = ["plateau", "cosine", "onecycle", "none"]


def _tensors(obj, prefix: str = "") -> dict:
    """Every tensor in a (nested) checkpoint object, by its path: compares files whatever their layout."""
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    out = {}
    for k, v in items:
        out.update(_tensors(v, f"{prefix}/{k}"))
    return out


def _same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), rtol=1e-5, atol=1e-6), k


def _cut_and_resume(model_fn, train, val, cfg, out: Path, cut: int) -> list[dict]:
    def stop(entry):
        if entry["epoch"] == cut:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        fit(model_fn(), train, val, cfg, out_dir=out, progress=False, on_epoch_end=stop)
    torch.manual_seed(12345)  # a fresh process starts from a fresh model and global RNG state
    model = model_fn()
    history = fit(model, train, val, cfg, out_dir=out, progress=False)
    return history, model


def _assert_same_run(tmp_path, model_fn, train, val, cfg, cut: int):
    """An interrupted and resumed run equals an uninterrupted one: history, final weights, best.pt,
    and (training one epoch more from each folder) optimizer, scheduler and RNG state."""
    full_model = model_fn()
    full = fit(full_model, train, val, cfg, out_dir=tmp_path / "full", progress=False)
    resumed, resumed_model = _cut_and_resume(model_fn, train, val, cfg, tmp_path / "cut", cut)
    assert len(resumed) == len(full)
    for a, b in zip(_strip(full), _strip(resumed)):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-7)
    _same_tensors(_tensors(full_model.state_dict()), _tensors(resumed_model.state_dict()))
    load = lambda p: _tensors(torch.load(p, map_location="cpu", weights_only=True))  # noqa: E731
    _same_tensors(load(tmp_path / "full" / "best.pt"), load(tmp_path / "cut" / "best.pt"))
    more = TrainConfig(**{**cfg.__dict__, "epochs": cfg.epochs + 1})
    if cfg.schedule in ("onecycle", "cosine"):
        # Laid out over the epoch count: a longer run is another schedule, refused without a new stage.
        with pytest.raises(ResumeMismatchError, match=r"epochs \d+ -> \d+ \(the (onecycle|cosine) schedule"):
            fit(model_fn(), train, val, more, out_dir=tmp_path / "full", progress=False)
        return full, full_model
    a, b = model_fn(), model_fn()
    fa = fit(a, train, val, more, out_dir=tmp_path / "full", progress=False)
    fb = fit(b, train, val, more, out_dir=tmp_path / "cut", progress=False)
    assert len(fa) == len(fb)
    for x, y in zip(_strip(fa), _strip(fb)):
        assert x == pytest.approx(y, rel=1e-6, abs=1e-7)
    _same_tensors(_tensors(a.state_dict()), _tensors(b.state_dict()))
    return full, full_model


def _best_weights_are_kept(history, model, val):
    """At the end the model holds the weights of the best validation epoch."""
    probs, targets = predict(model, val, progress=False)
    assert (probs.argmax(1) == targets).float().mean().item() == pytest.approx(max(h["val_acc"] for h in history))


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path, schedule):
    data = toy_dataset(160)
    train, val = data.subset(range(120)), data.subset(range(120, 160))
    cfg = TrainConfig(epochs=4, batch_size=16, lr=5e-3, schedule=schedule, label_smoothing=0.1, device="cpu")
    full, model = _assert_same_run(tmp_path, tiny_cnn, train, val, cfg, cut=2)
    assert len(full) == 4
    _best_weights_are_kept(full, model, val)


def _unlearnable_val(data, rows):
    """Validation labels shifted by one class: the better the model learns, the worse it scores, so the
    best epoch is an early one and early stopping comes."""
    val = data.subset(rows)
    return ImageDataset(val.images, (val.targets + 1) % 4, val.classes, transform=val.transform)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_resume_with_early_stopping_keeps_the_best_epoch_and_the_counter(tmp_path, schedule):
    data = toy_dataset(160)
    train, val = data.subset(range(120)), _unlearnable_val(data, range(120, 160))
    cfg = TrainConfig(epochs=8, batch_size=16, lr=1e-2, schedule=schedule, early_stopping=2, device="cpu")
    full, model = _assert_same_run(tmp_path, tiny_cnn, train, val, cfg, cut=2)
    accs = [h["val_acc"] for h in full]
    best = accs.index(max(accs)) + 1
    # the scenario: the best epoch comes before the cut and training stops early after it
    assert best <= 2 and len(full) == best + 2 < cfg.epochs, accs
    _best_weights_are_kept(full, model, val)
    last = torch.load(tmp_path / "full" / "best.pt", map_location="cpu", weights_only=True)
    assert _tensors(last)  # best.pt holds the best epoch's weights, which the model ends with
    model_t = _tensors(model.state_dict())
    best_t = _tensors(last)
    matched = [k for k in model_t if any(kk.endswith(k) for kk in best_t)]
    assert matched and all(torch.allclose(model_t[k], next(v for kk, v in best_t.items() if kk.endswith(k)))
                           for k in matched)


def test_early_stopping_counts_epochs_without_improvement(tmp_path):
    data = toy_dataset(80)
    train, val = data.subset(range(60)), data.subset(range(60, 80))
    cfg = TrainConfig(epochs=20, batch_size=20, lr=0.0, schedule="none", early_stopping=3, device="cpu")
    assert len(fit(tiny_mlp(), train, val, cfg, progress=False)) == 4  # lr 0: 1 improvement, then 3 without
    # cut after epoch 2 (one epoch without improvement so far): the resumed run stops at the same epoch
    resumed, _ = _cut_and_resume(tiny_mlp, train, val, cfg, tmp_path / "cut", cut=2)
    assert len(resumed) == 4


def test_early_stopping_stops(tmp_path):
    data = toy_dataset(80)
    train, val = data.subset(range(60)), data.subset(range(60, 80))
    cfg = TrainConfig(epochs=20, batch_size=20, lr=0.0, schedule="none", early_stopping=2, device="cpu")
    history = fit(tiny_mlp(), train, val, cfg, progress=False)
    assert len(history) == 3  # lr 0: no epoch after the first improves


def test_epoch_sampler_shards_partition_the_single_process_order():
    single = list(EpochSampler(10, seed=3))
    shards = [list(EpochSampler(10, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert sorted(single) == list(range(10))
    interleaved = [i for pair in zip(*shards) for i in pair]
    assert interleaved == single
    s = EpochSampler(10, seed=3)
    s.set_epoch(1)
    assert list(s) != single


def test_predict_with_tta_shapes():
    data = toy_dataset(20)
    model = tiny_cnn().eval()
    p, y = predict(model, data, tta=("flip", "shift"), progress=False)
    assert p.shape == (20, 4) and torch.allclose(p.sum(1), torch.ones(20), atol=1e-5)
    assert torch.equal(y, data.targets)


def test_try_gpu_falls_back_to_cpu():
    assert try_gpu().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.slow
def test_two_process_gloo_run_matches_a_single_process_run(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node"]
    subprocess.run([*run, "1", "tests/ddp_worker.py", str(single), "16"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=300)
    proc = subprocess.run([*run, "2", "tests/ddp_worker.py", str(ddp), "8"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    h1 = json.loads((single / "h.json").read_text())
    h2 = json.loads((ddp / "h.json").read_text())
    for a, b in zip(_strip(h1), _strip(h2)):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    w1, w2 = torch.load(single / "final.pt"), torch.load(ddp / "final.pt")
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-5), k
    assert (ddp / "last.pt").exists()  # rank 0 wrote the checkpoint


def test_plateau_patience_counts_as_keras_does():
    # Keras cuts after `patience` epochs without improvement (PyTorch natively after patience + 1):
    # with patience 2, accuracies 0.5, 0.4, 0.4 cut after the third epoch, and again two epochs later.
    from emolib.train import _make_scheduler

    opt = torch.optim.Adam(tiny_mlp().parameters(), lr=1.0)
    cfg = TrainConfig(schedule="plateau", plateau_patience=2, plateau_factor=0.5)
    sched = _make_scheduler(opt, cfg, steps_per_epoch=1)
    lrs = []
    for acc in (0.5, 0.4, 0.4, 0.4, 0.4):
        sched.step(acc)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]


# --------------------------------------------------------------------------- smaller parts, by behaviour


def test_epoch_sampler_pads_by_wrapping_and_changes_with_the_epoch():
    shards = [EpochSampler(10, seed=5, rank=r, world_size=3) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    single = list(EpochSampler(10, seed=5))
    padded = single + single[:2]
    assert [list(s) for s in shards] == [padded[r::3] for r in range(3)]
    fixed = EpochSampler(6, shuffle=False)
    fixed.set_epoch(3)
    assert list(fixed) == [0, 1, 2, 3, 4, 5]
    a, b = EpochSampler(50, seed=1), EpochSampler(50, seed=1)
    b.set_epoch(1)
    assert list(b) == list(EpochSampler(50, seed=2)) and list(a) != list(b)  # seed + epoch


def _old_epoch_sampler(n, seed, rank, world_size, epoch, shuffle=True):
    """emolib's hand-written EpochSampler before it became a DistributedSampler (kept here as the reference)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist() if shuffle \
        else list(range(n))
    per_rank = math.ceil(n / world_size)
    total = per_rank * world_size
    order += order[: total - len(order)]
    return order[rank:total:world_size]


@pytest.mark.parametrize("n,world", [(10, 1), (10, 3), (37, 4), (64, 2), (5, 2)])
def test_epoch_sampler_gives_the_old_order_so_old_runs_resume_identically(n, world):
    for epoch in (0, 1, 7):
        for rank in range(world):
            s = EpochSampler(n, seed=11, rank=rank, world_size=world)
            s.set_epoch(epoch)
            assert list(s) == _old_epoch_sampler(n, 11, rank, world, epoch)
            assert len(s) == math.ceil(n / world)
    fixed = EpochSampler(n, rank=world - 1, world_size=world, shuffle=False)
    assert list(fixed) == _old_epoch_sampler(n, 0, world - 1, world, 0, shuffle=False)


def test_fit_visits_the_training_set_in_a_new_order_each_epoch():
    """fit moves its sampler on every epoch: epoch e's batches are EpochSampler's order for epoch e (a
    forgotten ``set_epoch`` would train on the same order, the same batches, every epoch)."""
    data = toy_dataset(24)
    train, val = data.subset(range(16)), data.subset(range(16, 24))
    seen = []
    model = tiny_mlp()
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()) if m.training else None)
    fit(model, train, val, TrainConfig(epochs=3, batch_size=16, schedule="none", device="cpu", seed=7),
        progress=False)
    images = torch.stack([train[i][0] for i in range(len(train))]).flatten(1)
    orders = [[int((images == x.flatten()).all(1).nonzero()[0]) for x in batch] for batch in seen]
    expected = []
    for epoch in range(3):
        sampler = EpochSampler(16, seed=7)
        sampler.set_epoch(epoch)
        expected.append(list(sampler))
    assert orders == expected and len({tuple(o) for o in orders}) == 3


def test_epoch_sampler_is_torchs_distributed_sampler_without_a_process_group():
    assert not torch.distributed.is_initialized()
    s = EpochSampler(10, seed=2, rank=1, world_size=2)
    assert isinstance(s, torch.utils.data.DistributedSampler)
    ref = torch.utils.data.DistributedSampler(range(10), num_replicas=2, rank=1, seed=2)
    s.set_epoch(4)
    ref.set_epoch(4)
    assert list(s) == list(ref)
    with pytest.raises(ValueError, match="rank"):
        EpochSampler(10, rank=2, world_size=2)
    # more ranks than twice the images: every rank still gets its share (the old sampler left some empty)
    assert [len(list(EpochSampler(2, rank=r, world_size=5))) for r in range(5)] == [1] * 5


def test_predict_tta_averages_flipped_and_shifted_views():
    data = toy_dataset(12)
    model = tiny_cnn().eval()
    x = torch.stack([data[i][0] for i in range(12)])
    with torch.no_grad():
        soft = lambda v: torch.softmax(model(v), 1)  # noqa: E731
        plain = soft(x)
        flip = (plain + soft(torch.flip(x, dims=[-1]))) / 2
        views = [x] + [torch.roll(x, shifts=s, dims=(-2, -1)) for s in ((2, 0), (-2, 0), (0, 2), (0, -2))]
        shift = torch.stack([soft(v) for v in views]).mean(0)
    assert torch.allclose(predict(model, data, progress=False)[0], plain, atol=1e-6)
    assert torch.allclose(predict(model, data, tta=("flip",), progress=False)[0], flip, atol=1e-6)
    assert torch.allclose(predict(model, data, tta=("shift",), progress=False)[0], shift, atol=1e-6)
    assert not torch.allclose(flip, plain, atol=1e-4)


def test_fit_writes_its_config_and_history_and_caps_batches(tmp_path):
    from emolib.train import load_history

    data = toy_dataset(80)
    train, val = data.subset(range(60)), data.subset(range(60, 80))
    seen = []
    model = tiny_mlp()
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]) if m.training else None)
    cfg = TrainConfig(epochs=2, batch_size=8, max_batches=3, schedule="none", device="cpu", weight_decay=0.5)
    history = fit(model, train, val, cfg, out_dir=tmp_path, progress=False)
    assert seen == [8, 8, 8] * 2  # three batches an epoch
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["max_batches"] == 3 and saved["weight_decay"] == 0.5 and saved["epochs"] == 2
    assert _strip(load_history(tmp_path)) == _strip(history) and [h["epoch"] for h in history] == [1, 2]
    assert all(h["lr"] == 1e-3 for h in history) and all(h["seconds"] >= 0 for h in history)
    assert history[0]["train_acc"] * 24 == pytest.approx(round(history[0]["train_acc"] * 24))  # out of 24 seen


def test_weight_decay_and_label_smoothing_change_training(tmp_path):
    data = toy_dataset(80)
    train, val = data.subset(range(60)), data.subset(range(60, 80))
    base = dict(epochs=1, batch_size=20, schedule="none", device="cpu")
    runs = {}
    for name, extra in {"plain": {}, "decay": {"weight_decay": 0.5}, "smooth": {"label_smoothing": 0.3}}.items():
        model = tiny_mlp()
        runs[name] = (fit(model, train, val, TrainConfig(**base, **extra), progress=False), model.state_dict())
    w = {k: v[1]["1.weight"] for k, v in runs.items()}
    assert not torch.allclose(w["plain"], w["decay"]) and not torch.allclose(w["plain"], w["smooth"])
    assert runs["smooth"][0][0]["train_loss"] > runs["plain"][0][0]["train_loss"]  # smoothing raises the loss


def test_plateau_cuts_when_accuracy_stops_rising():
    from emolib.train import _make_scheduler

    opt = torch.optim.Adam(tiny_mlp().parameters(), lr=1.0)
    sched = _make_scheduler(opt, TrainConfig(schedule="plateau", plateau_patience=1, plateau_factor=0.1), 1)
    lrs = []
    for acc in (0.1, 0.2, 0.3, 0.4):  # rising accuracy: never cut
        sched.step(acc)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0] * 4
    with pytest.raises(ValueError, match="schedule must be"):
        _make_scheduler(opt, TrainConfig(schedule="step"), 1)


def test_progress_line_reports_the_epoch_numbers(capsys):
    data = toy_dataset(40)
    cfg = TrainConfig(epochs=1, batch_size=20, schedule="none", device="cpu")
    h = fit(tiny_mlp(), data.subset(range(20)), data.subset(range(20, 40)), cfg, progress=True)[0]
    out = capsys.readouterr()
    line = next(ln for ln in (out.out + out.err).splitlines() if ln.startswith("epoch "))
    assert line.split()[:2] == ["epoch", "1"]
    words = line.split()
    values = {words[i]: words[i + 1] for i in range(2, len(words) - 1, 2)}
    assert values["loss"] == f"{h['train_loss']:.3f}" and values["acc"] == f"{h['train_acc']:.3f}"
    assert values["val_loss"] == f"{h['val_loss']:.3f}" and values["val_acc"] == f"{h['val_acc']:.3f}"
    assert values["auc"] == f"{h['val_auc']:.3f}" and values["lr"] == f"{h['lr']:.1e}"
    assert len(line) <= 88, "the line must fit a book page (88 characters)"


def test_set_seed_is_the_one_in_utils():
    import random

    from emolib import train, utils

    assert train.set_seed is utils.set_seed  # re-exported: utils (a foundation) imports no trainer
    utils.set_seed(5)
    a = (random.random(), torch.rand(1).item())
    train.set_seed(5)
    assert (random.random(), torch.rand(1).item()) == a


# --------------------------------------------------------------------------- speed options of the step


def test_bfloat16_autocast_on_the_cpu_learns_and_resumes_exactly(tmp_path):
    """amp=True on the CPU: the forward pass in bfloat16 (weights, optimizer state and the result stay float32),
    no loss scaling, and an interrupted run resumes to the same result."""
    data = toy_dataset(160)
    train, val = data.subset(range(120)), data.subset(range(120, 160))
    cfg = TrainConfig(epochs=4, batch_size=16, lr=5e-3, schedule="onecycle", device="cpu", amp=True)
    full, model = _assert_same_run(tmp_path, tiny_cnn, train, val, cfg, cut=2)
    assert full[-1]["val_acc"] >= 0.9 and full[-1]["train_loss"] < full[0]["train_loss"]
    assert all(p.dtype == torch.float32 for p in model.state_dict().values() if p.is_floating_point())
    state = torch.load(tmp_path / "full" / "last.pt", map_location="cpu", weights_only=True)
    assert state["scaler"] == {}  # bfloat16 needs no gradient scaler
    assert state["optimizer"]["param_groups"][0]["fused"] is True


def test_train_step_runs_forward_backward_step_schedule_and_average():
    from emolib.optim import make_ema, make_optimizer
    from emolib.train import TrainStep

    model = tiny_cnn()
    opt = make_optimizer(model.parameters(), "sgd", lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    ema = make_ema(model, 0.5)
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append((args[0].dtype, torch.is_autocast_enabled("cpu"))))
    step = TrainStep(model, opt, torch.nn.CrossEntropyLoss(), "cpu", amp=True, sched=sched, ema=ema)
    x, y = torch.randn(6, 1, 16, 16), torch.arange(6) % 4
    before = [p.detach().clone() for p in model.parameters()]
    lr0 = opt.param_groups[0]["lr"]
    loss, logits = step(x, y)
    assert seen == [(torch.float32, True)]  # autocast casts inside the layers
    assert logits.dtype == torch.bfloat16 and logits.shape == (6, 4) and not loss.requires_grad
    assert all(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert opt.param_groups[0]["lr"] != lr0  # the per-step schedule moved
    assert ema.n_averaged.item() == 1 and not step.scaler.is_enabled()


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_cpu_optimizers_are_fused_and_a_resume_keeps_them(name):
    """The fused kernels give the loop's update (up to rounding), and loading a state the loop saved
    (``fused=None``) keeps them on."""
    from emolib.optim import load_optimizer_state, make_optimizer

    def run(fused: bool, steps: int, state=None):
        model = tiny_mlp()
        opt = make_optimizer(model.parameters(), name, lr=0.05, weight_decay=1e-2)
        if not fused:
            defaults = {k: v for k, v in opt.defaults.items() if k != "decoupled_weight_decay"}
            opt = type(opt)(model.parameters(), **{**defaults, "fused": None})
        if state is not None:
            load_optimizer_state(opt, state)
        g = torch.Generator().manual_seed(1)
        for _ in range(steps):
            for p in model.parameters():
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        return model, opt

    loop_model, loop_opt = run(False, 3)
    fused_model, fused_opt = run(True, 3)
    assert fused_opt.param_groups[0]["fused"] is True and loop_opt.param_groups[0]["fused"] is None
    for a, b in zip(loop_model.parameters(), fused_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    _, resumed = run(True, 1, state=loop_opt.state_dict())
    assert resumed.param_groups[0]["fused"] is True


# --------------------------------------------------------------------------- written from sampled mutants (issue 17)


def test_a_saved_cuda_random_state_is_restored_only_where_there_is_cuda(monkeypatch):
    from emolib import train as TR

    state = {**TR._rng_state(), "cuda": [torch.zeros(16, dtype=torch.uint8)]}  # as saved on a GPU machine
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    TR._set_rng_state(state)  # resumed on a machine without CUDA: CUDA left alone
    assert restored == []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    TR._set_rng_state(state)
    assert restored == [state["cuda"]]


def test_training_without_progress_prints_nothing_even_with_a_large_validation_set(tmp_path, capsys):
    data = toy_dataset(1320)  # 1,280 validation images: five batches of 256, enough for predict's own bar
    fit(tiny_cnn(), data.subset(range(40)), data.subset(range(40, 1320)),
        TrainConfig(epochs=1, batch_size=20, device="cpu"), out_dir=tmp_path / "run", progress=False)
    assert capsys.readouterr().err == ""


def test_mixed_precision_defaults_to_on_for_cuda_only():
    """TrainConfig(amp=None), fit's default, trains in mixed precision on CUDA and in float32 elsewhere;
    an explicit amp wins on every device (no GPU is needed to ask)."""
    from emolib.train import TrainConfig

    assert TrainConfig().uses_amp("cuda") and TrainConfig().uses_amp(torch.device("cuda", 1))
    assert not TrainConfig().uses_amp("cpu") and not TrainConfig().uses_amp(torch.device("cpu"))
    assert TrainConfig(amp=True).uses_amp("cpu") and not TrainConfig(amp=False).uses_amp("cuda")
