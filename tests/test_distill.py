"""Knowledge distillation: the loss, the teacher's checks, the teacher's logits, and fit's use of them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import emolib.train as train_mod
from emolib.distill import DistillationLoss, load_teacher, teacher_logits
from emolib.fileio import CheckpointError
from emolib.models import InputConfig
from emolib.train import EpochSampler, ResumeMismatchError, TrainConfig, fit
from tests.toy import fit_cut_and_resumed, tiny_cnn, toy_dataset

AUG = {"rotation": 5.0, "shift": 0.05, "flip": 0.0, "brightness": 0.2, "fill": "zeros"}
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def _splits(n=160, cut=120):
    data = toy_dataset(n)
    return data.subset(range(cut)), data.subset(range(cut, n))


# --------------------------------------------------------------------------- the loss


def test_the_loss_is_the_weighted_sum_of_smoothed_cross_entropy_and_tempered_kl():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g) * 3
    y = torch.tensor([0, 3, 6, 2, 2])
    w, temp, eps = 0.7, 4.0, 0.1
    # by hand, in numpy: smoothed targets, and KL(p_t || p_s) at temperature T times T^2
    sn, tn = s.double().numpy(), t.double().numpy()
    logp = sn - np.log(np.exp(sn).sum(1, keepdims=True))
    target = np.full((5, 7), eps / 7) + (1 - eps) * np.eye(7)[y.numpy()]
    ce = -(target * logp).sum(1).mean()
    pt = np.exp(tn / temp) / np.exp(tn / temp).sum(1, keepdims=True)
    logps = sn / temp - np.log(np.exp(sn / temp).sum(1, keepdims=True))
    kl = (pt * (np.log(pt) - logps)).sum(1).mean() * temp**2
    got = DistillationLoss(w, temp, eps)(s, y, t).item()
    assert got == pytest.approx((1 - w) * ce + w * kl, rel=1e-5)
    # weight 0, or no teacher: the cross-entropy alone
    assert DistillationLoss(0.0, temp, eps)(s, y, t).item() == pytest.approx(ce, rel=1e-5)
    assert DistillationLoss(w, temp, eps)(s, y).item() == pytest.approx(ce, rel=1e-5)
    # a student equal to its teacher has no distillation loss left
    assert DistillationLoss(1.0, temp)(t, y, t).item() == pytest.approx(0.0, abs=1e-5)


def test_the_loss_takes_bfloat16_logits_and_refuses_bad_settings_and_shapes():
    s, t, y = torch.randn(3, 7), torch.randn(3, 7), torch.tensor([1, 2, 3])
    full = DistillationLoss()(s, y, t)
    assert DistillationLoss()(s.bfloat16(), y, t).dtype == torch.float32
    assert DistillationLoss()(s.bfloat16(), y, t).item() == pytest.approx(full.item(), rel=0.05)
    with pytest.raises(ValueError, match="weight must be between 0 and 1"):
        DistillationLoss(weight=1.5)
    with pytest.raises(ValueError, match="temperature must be positive"):
        DistillationLoss(temperature=0)
    with pytest.raises(ValueError, match=r"teacher logits of shape \(3, 4\)"):
        DistillationLoss()(s, y, torch.randn(3, 4))


# --------------------------------------------------------------------------- the teacher


def test_load_teacher_checks_the_classes_the_input_and_the_keys():
    spec = {"teacher": "vgg_large-fer2013", "weight": 0.7, "temperature": 4.0}
    teacher = load_teacher(spec, CLASSES, InputConfig(48, 1, (0.5,), (0.5,)))
    assert teacher.classes == CLASSES and not teacher.training
    with pytest.raises(ValueError, match="student's classes in the same order"):
        load_teacher(spec, CLASSES[::-1])
    with pytest.raises(ValueError, match="distillation shows the teacher the student's prepared images"):
        load_teacher(spec, CLASSES, InputConfig(64, 1, (0.5,), (0.5,)))
    with pytest.raises(ValueError, match="takes only teacher, weight, temperature"):
        load_teacher({**spec, "alpha": 0.5}, CLASSES)
    with pytest.raises(ValueError, match="needs a 'teacher'"):
        load_teacher({"weight": 0.5}, CLASSES)
    with pytest.raises(CheckpointError, match="no-such-teacher.pt"):
        load_teacher({"teacher": "no-such-teacher.pt"}, CLASSES)


def test_teacher_logits_are_the_teachers_outputs_on_the_prepared_images_in_dataset_order():
    data = toy_dataset(70)
    raw = data.with_transform(None)
    teacher = tiny_cnn().eval()
    got = teacher_logits(teacher, raw, data.transform, batch_size=16, progress=False)
    with torch.no_grad():
        want = teacher(torch.stack([data[i][0] for i in range(len(data))]))
    assert got.shape == (70, 4) and got.dtype == torch.float32
    assert torch.allclose(got, want, atol=1e-5)
    # under bfloat16 autocast: close, not equal
    bf = teacher_logits(teacher, raw, data.transform, amp=True, batch_size=16, progress=False)
    assert torch.allclose(bf, want, atol=0.1) and not torch.equal(bf, want)


# --------------------------------------------------------------------------- fit


@pytest.mark.parametrize("world", [1, 2])
def test_the_samplers_batches_are_the_loaders_batches(world):
    class Index(torch.utils.data.Dataset):
        def __len__(self):
            return 53

        def __getitem__(self, i):
            return torch.zeros(1), i

    for rank in range(world):
        sampler = EpochSampler(53, seed=3, rank=rank, world_size=world)
        loader = torch.utils.data.DataLoader(Index(), batch_size=8, sampler=sampler)
        for epoch in (0, 1, 5):
            sampler.set_epoch(epoch)
            assert [y.tolist() for _, y in loader] == [b.tolist() for b in sampler.batches(8)]


def _label_teacher(monkeypatch, seen):
    """fit's teacher replaced by logits that encode each training image's own label, and a spy on the
    loss: every batch's teacher rows must then point at the batch's labels."""
    def fake_logits(teacher, dataset, batch_transform, device, amp, batch_size, progress):
        seen.update(dataset_transform=dataset.transform, batch_transform=batch_transform, amp=amp)
        return F.one_hot(dataset.targets.long(), 4).float() * 5.0

    monkeypatch.setattr(train_mod, "load_teacher", lambda spec, classes, inp, device: tiny_cnn())
    monkeypatch.setattr(train_mod, "teacher_logits", fake_logits)
    forward = DistillationLoss.forward

    def spy(self, logits, y, teacher=None):
        seen.setdefault("batches", []).append(bool(teacher is not None and torch.equal(teacher.argmax(1), y)))
        return forward(self, logits, y, teacher)

    monkeypatch.setattr(DistillationLoss, "forward", spy)


@pytest.mark.parametrize("batch_augment", [AUG, None])
def test_fit_gives_every_batch_the_teacher_logits_of_its_own_images(monkeypatch, batch_augment):
    train, val = _splits()
    seen = {}
    _label_teacher(monkeypatch, seen)
    cfg = TrainConfig(epochs=3, batch_size=16, lr=1e-2, device="cpu", batch_augment=batch_augment,
                      distill={"teacher": "x", "weight": 0.5, "temperature": 2.0})
    history = fit(tiny_cnn(), train, val, cfg, progress=False)
    assert len(seen["batches"]) == 3 * 8 and all(seen["batches"])  # 120 images in batches of 16, 3 epochs
    # the teacher is shown the eval transform's view: on the batch (the stored uint8 images read raw) or per image
    assert seen["dataset_transform"] is (None if batch_augment else val.transform)
    assert seen["batch_transform"] is (val.transform if batch_augment else None)
    assert seen["amp"] is False  # as fit's autocast on this device
    # the teacher's pass is training time: in the first epoch's seconds, and recorded apart
    assert history[0]["teacher_seconds"] > 0 and history[0]["seconds"] >= history[0]["teacher_seconds"]
    assert all("teacher_seconds" not in h for h in history[1:])


def test_a_distilled_student_learns_the_teachers_answers(monkeypatch):
    # weight 1: the labels are not used at all; a teacher that swaps classes 0 and 1 is followed
    train, val = _splits(200, 160)
    swap = torch.tensor([1, 0, 2, 3])

    def swapped(teacher, dataset, batch_transform, device, amp, batch_size, progress):
        return F.one_hot(swap[dataset.targets.long()], 4).float() * 5.0

    monkeypatch.setattr(train_mod, "load_teacher", lambda spec, classes, inp, device: tiny_cnn())
    monkeypatch.setattr(train_mod, "teacher_logits", swapped)
    model = tiny_cnn()
    cfg = TrainConfig(epochs=12, batch_size=16, lr=1e-2, device="cpu", batch_augment=AUG,
                      distill={"teacher": "x", "weight": 1.0, "temperature": 1.0})
    fit(model, train, val, cfg, progress=False)
    with torch.no_grad():
        pred = model(torch.stack([val[i][0] for i in range(len(val))])).argmax(1)
    assert (pred == swap[val.targets]).float().mean() > 0.8


def test_a_bad_distill_setting_is_refused_before_anything_is_written(tmp_path):
    train, val = _splits()
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu", distill={"teacher": "x", "alpha": 0.5})
    with pytest.raises(ValueError, match="takes only teacher, weight, temperature"):
        fit(tiny_cnn(), train, val, cfg, out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "config.json").exists()


def test_the_teacher_needs_an_eval_view_of_the_training_images(monkeypatch):
    train, val = _splits()
    monkeypatch.setattr(train_mod, "load_teacher", lambda spec, classes, inp, device: tiny_cnn())
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu", distill={"teacher": "x"})
    with pytest.raises(ValueError, match="the validation set has none"):
        fit(tiny_cnn(), train, val.with_transform(None), cfg, progress=False)


def test_resuming_with_another_distillation_setting_is_refused(monkeypatch, tmp_path):
    train, val = _splits()
    _label_teacher(monkeypatch, {})
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu", distill={"teacher": "x", "weight": 0.5})
    fit(tiny_cnn(), train, val, cfg, out_dir=tmp_path, progress=False)
    other = TrainConfig(epochs=2, batch_size=16, device="cpu", distill={"teacher": "x", "weight": 0.9})
    with pytest.raises(ResumeMismatchError, match="distill"):
        fit(tiny_cnn(), train, val, other, out_dir=tmp_path, progress=False)


def test_a_distilled_models_card_names_its_teacher():
    import copy

    from emolib.cards import card_markdown
    from emolib.models import model_card

    card = copy.deepcopy(model_card("vgg_cpu-fer2013"))
    assert "distilled" not in card_markdown(card)
    card["recipe"]["config"]["distill"] = {"teacher": "vgg_large-fer2013", "weight": 0.7, "temperature": 4.0}
    assert ("distilled from `vgg_large-fer2013` (weight 0.7, temperature 4.0; its logits computed once)"
            in card_markdown(card))


def test_a_killed_and_resumed_distilled_run_equals_an_uninterrupted_one(monkeypatch, tmp_path):
    # the real teacher pass (teacher_logits) with a tiny teacher; the resumed call runs it again
    def teacher(spec, classes, inp, device):
        torch.manual_seed(7)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16 * 16, 4))

    monkeypatch.setattr(train_mod, "load_teacher", teacher)
    train, val = _splits()
    cfg = TrainConfig(epochs=3, batch_size=16, lr=0.05, optimizer="sgd", schedule="onecycle", batch_augment=AUG,
                      device="cpu", distill={"teacher": "tiny", "weight": 0.7, "temperature": 4.0})
    full, resumed = fit_cut_and_resumed(tiny_cnn, train, val, cfg, tmp_path)

    def strip(history):
        return [{k: v for k, v in h.items() if k not in ("seconds", "teacher_seconds")} for h in history]

    assert strip(full) == strip(resumed)
    assert "teacher_seconds" in resumed[0] and "teacher_seconds" in resumed[2]  # each call's pass is counted
    assert "teacher_seconds" not in resumed[1]
