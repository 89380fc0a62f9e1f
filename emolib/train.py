"""The trainer: one loop for every model, on CPU or CUDA, in one process or many.

:func:`fit` trains with Adam and the thesis's ``ReduceLROnPlateau`` (factor 0.3,
patience 5) by default, or a cosine or one-cycle schedule; label smoothing, mixed
precision (``amp``: float16 on CUDA, bfloat16 autocast on the CPU) and channels-last are
options. Each batch goes through one :class:`TrainStep` (forward, loss, backward, the
optimizer's fused kernels of :func:`emolib.optim.make_optimizer`, a per-step schedule, the
weight average), the object ``benchmarks/bench_train.py`` times. After every epoch it writes
``last.pt`` atomically (write, then rename) with the model, optimizer, scheduler,
RNG states and history, and ``best.pt`` when validation accuracy improves;
``history.json`` holds the per-epoch record. Called again on the same folder it
resumes exactly where the last finished epoch left off.

The resume state holds tensors and plain data only, and is read with
``torch.load(weights_only=True)`` (:func:`emolib.fileio.load_torch`): a ``last.pt`` that
asks to run code is refused. A resume with other hyper-parameters or other data is
refused with the list of what differs (:class:`ResumeMismatchError`), unless
``new_stage=True`` records it as a new stage. While it runs, ``fit`` holds a lock on
the output folder (:func:`emolib.fileio.lock_folder`), so a second process on the same
folder stops at once with an error naming the folder and the first process's id.

Every epoch's shuffling and augmentation draw from generators seeded by
``(seed, epoch)``, so a resumed run sees the same batches as an uninterrupted one.

Three options run the recipe of ``benchmarks/fer_gpu_study.py`` (see :mod:`emolib.optim`):
``optimizer`` ("adam", "adamw", or "sgd" with Nesterov momentum 0.9); ``ema`` (a decay such as
0.999): an exponential moving average of the weights and batch-norm buffers, updated after
every step; when set, validation, ``best.pt`` and the model ``fit`` leaves behind are the
*averaged* weights, and the average is part of the resume state; and ``batch_augment`` (the
keyword arguments of :class:`emolib.augment.BatchAugment`): the training set then yields its
stored ``uint8`` images unchanged, each batch is augmented on the training device with a
generator seeded by ``(seed, epoch, batch index, rank)``, and then passed, like every
validation batch, through the validation set's transform (the eval transform: resize, gray
<-> RGB, normalise, applied to the whole batch), so training and validation see the input
the per-image path would give.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the same call trains data-parallel with
:class:`~torch.nn.parallel.DistributedDataParallel` (NCCL on GPUs, gloo on CPU): each
process gets its shard of every epoch's permutation, rank 0 alone writes files, and
validation predictions are gathered from all ranks before metrics are computed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from .augment import BatchAugment
from .distill import DistillationLoss, check_distill, load_teacher, teacher_logits
from .fileio import CheckpointError, load_torch, lock_folder, save_torch, write_text
from .metrics import roc_auc
from .optim import load_optimizer_state, make_ema, make_optimizer
from .transforms import tta_views
from .utils import set_seed

__all__ = ["TrainConfig", "fit", "predict", "try_gpu", "set_seed", "EpochSampler", "load_history",
           "ResumeMismatchError", "RESUME_FREE_SETTINGS", "data_signature", "batch_transforms", "TrainStep"]

#: Settings a resumed run may change without a new stage: they do not change what is learnt
#: (``epochs`` only under the plateau schedule and none: one-cycle and cosine are laid out over it).
RESUME_FREE_SETTINGS = ("epochs", "device", "num_workers")


class ResumeMismatchError(ValueError):
    """A run folder's checkpoint was made with other settings or data than the resumed run's."""


@dataclass
class TrainConfig:
    """Hyper-parameters of a run (all saved in the checkpoint and ``config.json``)."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "plateau"  # "plateau" (the thesis), "cosine", "onecycle" or "none"
    plateau_factor: float = 0.3
    plateau_patience: int = 5  # epochs without improvement before the cut, counted as Keras does
    label_smoothing: float = 0.0
    early_stopping: int | None = None  # epochs without a better val accuracy before stopping
    amp: bool | None = None  # None: on for CUDA, off on CPU
    channels_last: bool = True
    seed: int = 0
    num_workers: int = 0
    device: str | None = None  # None: try_gpu()
    max_batches: int | None = None  # cap batches per epoch (smoke runs)
    optimizer: str = "adam"  # "adam" (the thesis), "adamw" or "sgd" (Nesterov momentum 0.9)
    pct_start: float = 0.2  # share of the steps the one-cycle schedule spends warming up
    ema: float | None = None  # decay of an average of the weights; validation and the result use it
    batch_augment: dict | None = None  # BatchAugment keyword arguments: augment whole batches on the device
    distill: dict | None = None  # {"teacher": name or file, "weight": 0.7, "temperature": 4.0}: emolib.distill
    extra: dict = field(default_factory=dict)

    def uses_amp(self, device: str | torch.device) -> bool:
        """Whether :func:`fit` trains in mixed precision on ``device``: ``amp`` when set, otherwise
        on for CUDA (float16 with a gradient scaler) and off elsewhere."""
        return self.amp if self.amp is not None else torch.device(device).type == "cuda"


def try_gpu() -> torch.device:
    """The first CUDA device if there is one, else the CPU (as ``d2l.try_gpu``)."""
    return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")


class EpochSampler(DistributedSampler):
    """:class:`torch.utils.data.DistributedSampler` over ``n`` indices, with the rank given, not asked of a
    process group (so it works in one process too).

    Each epoch's order is ``torch.randperm(n)`` from a generator seeded with ``seed + epoch``
    (:meth:`set_epoch`); rank ``r`` of ``world_size`` takes every ``world_size``-th index starting at ``r``,
    the order padded by wrap-around to equal length. Consecutive per-rank batches of size ``b`` therefore
    together hold exactly the single-process batch of size ``b * world_size``. This is the order emolib's own
    sampler gave before it became this subclass, so runs written before resume identically.
    """

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        super().__init__(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)

    def batches(self, batch_size: int) -> list[torch.Tensor]:
        """This epoch's indices (after :meth:`set_epoch`) cut into the batches a
        :class:`~torch.utils.data.DataLoader` with this sampler and ``batch_size`` yields, in order."""
        return list(torch.tensor(list(iter(self)), dtype=torch.long).split(batch_size))


# --------------------------------------------------------------------------- distributed helpers


def _dist_info() -> tuple[int, int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))
    return 0, 1, 0


def _maybe_init_distributed(device: torch.device) -> bool:
    """Start the process group under torchrun; returns True if this call started it."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return True
    return False


def _gather(t: torch.Tensor, n_total: int) -> torch.Tensor:
    """Concatenate equal-length per-rank tensors in sampler order and drop the padding."""
    rank, world, _ = _dist_info()
    if world == 1:
        return t[:n_total]
    parts = [torch.empty_like(t) for _ in range(world)]
    dist.all_gather(parts, t.contiguous())
    # rank r held positions r, r + world, ...: interleave back to the sampler's order.
    return torch.stack(parts, dim=1).reshape(-1, *t.shape[1:])[:n_total]


# --------------------------------------------------------------------------- prediction


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    tta: tuple[str, ...] = (),
    num_workers: int = 0,
    progress: bool = True,
    _sampler: EpochSampler | None = None,
    batch_transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities ``(N, classes)`` and targets ``(N,)`` for a dataset.

    ``batch_transform`` is applied to each batch on ``device`` (for a dataset that yields
    raw ``uint8`` images: an eval transform of :mod:`emolib.transforms` takes whole batches).

    ``tta`` adds test-time augmentation: ``"flip"`` averages the prediction of the
    horizontally flipped image, ``"shift"`` those of the image shifted by two pixels
    in the four directions.
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=_sampler, num_workers=num_workers)
    probs, targets = [], []
    for x, y in tqdm(loader, desc="predict", leave=False, disable=not progress or len(loader) < 5):
        x = x.to(device)
        if batch_transform is not None:
            x = batch_transform(x)
        p = torch.stack([torch.softmax(model(v).float(), dim=1) for v in tta_views(x, tta)]).mean(0)
        probs.append(p.cpu())
        targets.append(torch.as_tensor(y))
    return torch.cat(probs), torch.cat(targets)


# --------------------------------------------------------------------------- fit


def batch_transforms(cfg: TrainConfig, train_set, val_set):
    """What ``fit`` does to a batch with ``cfg.batch_augment``: ``(augment, prepare)``, or ``(None, None)``.

    ``augment`` is a :class:`~emolib.augment.BatchAugment` returning floats in [0, 1] at the
    stored size; ``prepare`` is the validation set's transform (the eval transform), which
    resizes, converts channels and normalises the augmented batch, and every validation batch.
    The training set is then read without its per-image transform.
    """
    if cfg.batch_augment is None:
        return None, None
    for name, ds in (("training", train_set), ("validation", val_set)):
        if not hasattr(ds, "with_transform"):
            raise ValueError(f"batch_augment needs the {name} set as an emolib ImageDataset (its stored uint8 "
                             f"images), got {type(ds).__name__}")
    if val_set.transform is None:
        raise ValueError("batch_augment prepares batches with the validation set's transform (the eval transform), "
                         "but the validation set has none")
    if {"mean", "std"} & set(cfg.batch_augment):
        raise ValueError("batch_augment: mean and std come from the validation set's eval transform; leave them out")
    # Augment to floats in [0, 1] (mean 0, std 1), then the eval transform resizes, converts channels, normalises.
    return BatchAugment(mean=(0.0,), std=(1.0,), **cfg.batch_augment), val_set.transform


class TrainStep:
    """One optimisation step of :func:`fit` on a prepared batch (``benchmarks/bench_train.py`` times it).

    Calling it with a batch ``(x, y)`` runs the forward pass and the loss (under autocast when
    ``amp``: bfloat16 on the CPU, float16 with a gradient scaler on CUDA), the backward pass, the
    optimizer step, ``sched.step()`` (a per-step schedule: one-cycle, cosine) and the weight average
    ``ema``, and returns the detached loss and logits. With ``teacher`` (the batch's teacher logits)
    the loss is ``loss_fn(logits, y, teacher)`` (:class:`~emolib.distill.DistillationLoss`).
    ``net`` is what is called (the model, or its
    :class:`~torch.nn.parallel.DistributedDataParallel` wrapper), ``model`` the module the average
    follows (default: ``net``).

    bfloat16 has float32's range, so the CPU's autocast needs no loss scaling: the scaler is on
    for float16 (CUDA) only.
    """

    def __init__(self, net: nn.Module, opt: torch.optim.Optimizer, loss_fn: Callable,
                 device: str | torch.device, amp: bool = False, sched=None, ema=None,
                 model: nn.Module | None = None, channels_last: bool = True) -> None:
        self.net, self.opt, self.loss_fn, self.device = net, opt, loss_fn, torch.device(device)
        self.amp, self.sched, self.ema, self.channels_last = amp, sched, ema, channels_last
        self.model = model if model is not None else net
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=amp and self.dtype == torch.float16)

    def __call__(self, x: torch.Tensor, y: torch.Tensor,
                 teacher: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.amp):
            logits = self.net(x)
            # teacher: the batch's teacher logits, for a loss_fn(logits, y, teacher) (emolib.distill)
            loss = self.loss_fn(logits, y) if teacher is None else self.loss_fn(logits, y, teacher)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.sched is not None:
            self.sched.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss.detach(), logits.detach()


def _batch_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    """The seed of one batch's augmentation: a function of (seed, epoch, batch index, rank) alone."""
    return (((seed * 1_000_003 + epoch) * 1_000_003 + batch) * 4_099 + rank) % 2**63


def _make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int, epochs: int | None = None):
    epochs = cfg.epochs if epochs is None else max(epochs, 1)
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=cfg.plateau_factor, patience=_torch_patience(cfg.plateau_patience)
        )
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=epochs * steps_per_epoch, pct_start=cfg.pct_start
        )
    if cfg.schedule == "none":
        return None
    raise ValueError(f"schedule must be plateau, cosine, onecycle or none, got {cfg.schedule!r}")


def _eval_view(train_set, val_set):
    """The training images as the validation set's (evaluation) transform shows them: what a teacher sees."""
    if not hasattr(train_set, "with_transform"):
        raise ValueError("distill shows the teacher the training images through the validation set's eval "
                         f"transform: the training set must be an emolib ImageDataset, got {type(train_set).__name__}")
    if getattr(val_set, "transform", None) is None:
        raise ValueError("distill shows the teacher the training images through the validation set's eval "
                         "transform, but the validation set has none")
    return train_set.with_transform(val_set.transform)


def _torch_patience(keras_patience: int) -> int:
    """PyTorch's ReduceLROnPlateau cuts after ``patience + 1`` epochs without improvement, Keras's
    (the thesis's) after ``patience``: ``plateau_patience`` follows Keras."""
    return max(keras_patience - 1, 0)


def _rng_state() -> dict:
    """The global RNG states as tensors and plain data (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": [version, list(internal), gauss],
             "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def data_signature(dataset) -> dict:
    """What identifies a training or validation set for a resume check: its size, and a hash of its
    labels and of up to 256 evenly spaced images (of an :class:`~emolib.data.ImageDataset`)."""
    sig = {"n": len(dataset)}
    images, targets = getattr(dataset, "images", None), getattr(dataset, "targets", None)
    if isinstance(images, torch.Tensor) and isinstance(targets, torch.Tensor):
        h = hashlib.sha1(str((tuple(images.shape), list(getattr(dataset, "classes", ())))).encode())
        h.update(targets.to(torch.int64).numpy().tobytes())
        step = max(1, len(images) // 256)
        h.update(images[::step].contiguous().numpy().tobytes())
        sig["hash"] = h.hexdigest()[:16]
    return sig


def _differences(saved_cfg: dict, cfg: dict, saved_data: dict | None, data: dict) -> list[str]:
    saved_cfg = {**asdict(TrainConfig()), **saved_cfg}  # settings added since the checkpoint: their defaults
    diffs = [f"{k} {saved_cfg.get(k)!r} -> {cfg.get(k)!r}" for k in sorted(set(saved_cfg) | set(cfg))
             if k not in RESUME_FREE_SETTINGS and saved_cfg.get(k) != cfg.get(k)]
    if cfg.get("schedule") in ("onecycle", "cosine") and saved_cfg.get("epochs") != cfg.get("epochs"):
        # These schedules are laid out over the whole run: another length is another schedule.
        diffs.append(f"epochs {saved_cfg.get('epochs')!r} -> {cfg.get('epochs')!r} (the {cfg['schedule']} "
                     f"schedule is laid out over the epoch count)")
    for part in ("train", "val"):
        old, new = (saved_data or {}).get(part), data[part]
        if old is None or old == new:
            continue
        if old.get("n") != new.get("n"):
            diffs.append(f"{part} data {old.get('n')} -> {new.get('n')} images")
        else:
            diffs.append(f"{part} data: the same number of images ({new.get('n')}), but other images or labels")
    return diffs


def _read_resume_state(path: Path, device: torch.device) -> dict:
    # numpy_arrays: states written before the RNG states were stored as plain data held numpy arrays
    ckpt = load_torch(path, map_location=device, what="resume checkpoint", numpy_arrays=True)
    needed = {"model", "optimizer", "history", "best_acc", "stale", "rng"}
    if not isinstance(ckpt, dict) or not needed <= set(ckpt):
        missing = sorted(needed - set(ckpt)) if isinstance(ckpt, dict) else ["everything"]
        raise CheckpointError(f"{path} is not a training state written by emolib.train.fit (missing {missing}); "
                              f"move it away to start afresh")
    return ckpt


def load_history(out_dir: str | os.PathLike) -> list[dict]:
    """The per-epoch history a run wrote to ``out_dir/history.json``."""
    return json.loads((Path(out_dir) / "history.json").read_text())["history"]


def fit(
    model: nn.Module,
    train_set,
    val_set,
    config: TrainConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: bool = True,
    on_epoch_end: Callable[[dict], None] | None = None,
    new_stage: bool = False,
) -> list[dict]:
    """Train ``model`` and return the per-epoch history.

    Each history entry has ``epoch``, ``train_loss``, ``train_acc``, ``val_loss``,
    ``val_acc``, ``val_auc`` (macro one-vs-rest), ``lr`` and ``seconds``. With
    ``out_dir``, checkpoints and ``history.json`` are written there each epoch and
    an existing ``last.pt`` is resumed (unless ``resume=False``). At the end the
    model holds the weights of the best validation epoch: with ``config.ema`` set, the
    averaged weights of that epoch (the ones validated and written to ``best.pt``).

    A resume whose settings (all of :class:`TrainConfig` but ``epochs``, ``device`` and
    ``num_workers``) or data differ from the checkpoint's raises
    :class:`ResumeMismatchError` listing the differences. With ``new_stage=True`` the run
    continues instead from the checkpoint's weights as a new stage: a fresh optimizer and
    schedule with the new settings, for the epochs up to ``config.epochs``; its history
    entries carry ``"stage"`` and ``history.json`` lists the stages with their settings.
    """
    cfg = config or TrainConfig()
    if out_dir is None or int(os.environ.get("RANK", "0")) != 0:
        return _fit(model, train_set, val_set, cfg, None if out_dir is None else Path(out_dir), resume,
                    progress, on_epoch_end, new_stage)
    with lock_folder(out_dir):
        return _fit(model, train_set, val_set, cfg, Path(out_dir), resume, progress, on_epoch_end, new_stage)


def _fit(model, train_set, val_set, cfg: TrainConfig, out: Path | None, resume: bool, progress: bool,
         on_epoch_end, new_stage: bool) -> list[dict]:
    from tqdm.auto import tqdm

    device = torch.device(cfg.device) if cfg.device else try_gpu()
    started_pg = _maybe_init_distributed(device)
    rank, world, local_rank = _dist_info()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
    is_main = rank == 0
    amp = cfg.uses_amp(device)

    set_seed(cfg.seed)
    model = model.to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    train_model = nn.parallel.DistributedDataParallel(model) if world > 1 else model

    sampler = EpochSampler(len(train_set), cfg.seed, rank, world)
    batch_aug, batch_tf = batch_transforms(cfg, train_set, val_set)
    if batch_aug is not None:  # the loader yields the stored uint8 images; fit augments whole batches
        train_set, val_set = train_set.with_transform(None), val_set.with_transform(None)
    g = torch.Generator()
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers,
        drop_last=False, pin_memory=device.type == "cuda", generator=g,
        persistent_workers=False,
    )
    val_sampler = EpochSampler(len(val_set), rank=rank, world_size=world, shuffle=False)
    steps = min(len(loader), cfg.max_batches or len(loader))
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    sched = _make_scheduler(opt, cfg, steps)
    if cfg.distill:
        check_distill(cfg.distill)  # before anything is written
        loss_fn = DistillationLoss(cfg.distill.get("weight", 0.7), cfg.distill.get("temperature", 4.0),
                                   cfg.label_smoothing)
    else:
        loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    history: list[dict] = []
    best_acc, best_state, start_epoch, stale, exact_resume = -1.0, None, 0, 0, None
    data = {"train": data_signature(train_set), "val": data_signature(val_set)}
    stages = [{"stage": 1, "first_epoch": 1, "config": asdict(cfg)}]
    if out is not None and resume and (out / "last.pt").exists():
        ckpt = _read_resume_state(out / "last.pt", device)
        saved_cfg = ckpt.get("config") or {}
        stages = ckpt.get("stages") or [{"stage": 1, "first_epoch": 1, "config": saved_cfg}]
        diffs = _differences(saved_cfg, asdict(cfg), ckpt.get("data"), data) if saved_cfg else []
        model.load_state_dict(ckpt["model"])
        history = ckpt["history"]
        start_epoch = len(history)
        if diffs and not new_stage:
            raise ResumeMismatchError(
                f"{out} holds a run made with other settings; resuming it would mix them in one record. "
                f"Differences: {'; '.join(diffs)}. Resume with the same settings, use another output folder, "
                f"or continue from these weights as a new stage (new_stage=True, emolib train --new-stage)"
            )
        if diffs:  # a new stage: the saved weights, a fresh optimizer and schedule with the new settings
            for h in history:
                h.setdefault("stage", 1)
            stages.append({"stage": len(stages) + 1, "first_epoch": start_epoch + 1, "config": asdict(cfg),
                           "changed": diffs})
            sched = _make_scheduler(opt, cfg, steps, cfg.epochs - start_epoch)
        else:
            exact_resume = ckpt
            load_optimizer_state(opt, ckpt["optimizer"])
            if sched is not None and ckpt.get("scheduler") is not None:
                sched.load_state_dict(ckpt["scheduler"])
                if cfg.schedule == "plateau":  # the config, not the checkpoint, sets the hyper-parameters
                    sched.factor, sched.patience = cfg.plateau_factor, _torch_patience(cfg.plateau_patience)
            best_acc, stale = ckpt["best_acc"], ckpt["stale"]
            best_state = ckpt.get("best_state")
            _set_rng_state(ckpt["rng"])
    ema = make_ema(model, cfg.ema) if cfg.ema else None  # after a resume: starts from the loaded weights
    if ema is not None and exact_resume is not None and exact_resume.get("ema") is not None:
        ema.load_state_dict(exact_resume["ema"])
    step = TrainStep(train_model, opt, loss_fn, device, amp=amp, ema=ema, model=model,
                     channels_last=cfg.channels_last,
                     sched=sched if cfg.schedule in ("cosine", "onecycle") else None)
    if exact_resume is not None and step.scaler.is_enabled() and exact_resume.get("scaler"):
        step.scaler.load_state_dict(exact_resume["scaler"])  # a CPU bfloat16 run saved none, or an unused one
    eval_model = ema.module if ema is not None else model
    stage = stages[-1]["stage"] if len(stages) > 1 else None
    if out is not None and is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.json", json.dumps(asdict(cfg), indent=2))

    soft, teacher_seconds = None, 0.0
    stopped = cfg.early_stopping is not None and stale >= cfg.early_stopping
    if cfg.distill and start_epoch < cfg.epochs and not stopped:  # the teacher's logits, once per call
        t_start = time.time()
        teacher = load_teacher(cfg.distill, getattr(train_set, "classes", None), getattr(model, "input_config", None),
                               device)
        shown = train_set if batch_tf is not None else _eval_view(train_set, val_set)
        soft = teacher_logits(teacher, shown, batch_tf, device, amp, max(cfg.batch_size, 256),
                              progress and is_main).to(device)
        del teacher
        teacher_seconds = time.time() - t_start  # counted in this call's first epoch: it is training time

    for epoch in range(start_epoch, cfg.epochs):
        if cfg.early_stopping is not None and stale >= cfg.early_stopping:
            break
        t0 = time.time() - teacher_seconds
        sampler.set_epoch(epoch)
        batch_idx = sampler.batches(cfg.batch_size) if soft is not None else None
        # Augmentation randomness is a function of (seed, epoch, rank): resumed runs match.
        torch.manual_seed(cfg.seed * 100_003 + epoch * 1_009 + rank)
        g.manual_seed(cfg.seed + epoch)
        train_model.train()
        tot_loss = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
        bar = tqdm(loader, total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not (progress and is_main))
        for i, (x, y) in enumerate(bar):
            if i >= steps:
                break
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if batch_aug is not None:
                gen = torch.Generator(device=device).manual_seed(_batch_seed(cfg.seed, epoch, i, rank))
                x = batch_tf(batch_aug(x, generator=gen))
            loss, logits = step(x, y, soft[batch_idx[i].to(device)] if soft is not None else None)
            n = len(y)
            tot_loss += torch.tensor([loss.item() * n, (logits.argmax(1) == y).sum().item(), n], dtype=torch.float64)
            if i % 10 == 0:
                bar.set_postfix(loss=f"{tot_loss[0] / tot_loss[2]:.3f}", acc=f"{tot_loss[1] / tot_loss[2]:.3f}")
        if world > 1:
            dist.all_reduce(tot_loss)

        probs, targets = predict(eval_model, val_set, batch_size=max(cfg.batch_size, 256), device=device,
                                 progress=False, _sampler=val_sampler, batch_transform=batch_tf)
        probs, targets = _gather(probs.to(device), len(val_set)).cpu(), _gather(targets.to(device), len(val_set)).cpu()
        val_loss = nn.functional.nll_loss(torch.log(probs.clamp_min(1e-12)), targets).item()
        val_acc = (probs.argmax(1) == targets).float().mean().item()
        entry = {
            "epoch": epoch + 1,
            "train_loss": (tot_loss[0] / tot_loss[2]).item(),
            "train_acc": (tot_loss[1] / tot_loss[2]).item(),
            "val_loss": val_loss,
            "val_acc": val_acc,
            "val_auc": roc_auc(targets.numpy(), probs.numpy()),
            "lr": opt.param_groups[0]["lr"],
            "seconds": time.time() - t0,
        }
        if teacher_seconds:
            entry["teacher_seconds"], teacher_seconds = teacher_seconds, 0.0
        if stage is not None:
            entry["stage"] = stage
        if sched is not None and cfg.schedule == "plateau":
            sched.step(val_acc)
        history.append(entry)
        if val_acc > best_acc:
            best_acc, stale = val_acc, 0
            best_state = {k: v.detach().cpu().clone() for k, v in eval_model.state_dict().items()}
        else:
            stale += 1
        if out is not None and is_main:
            if stale == 0:
                save_torch(best_state, out / "best.pt")
            save_torch(
                {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict() if sched is not None else None,
                 "scaler": step.scaler.state_dict(),
                 "history": history, "best_acc": best_acc, "stale": stale, "best_state": best_state,
                 "rng": _rng_state(), "config": asdict(cfg), "data": data, "stages": stages,
                 "ema": ema.state_dict() if ema is not None else None},
                out / "last.pt",
            )
            record = {"config": asdict(cfg), "history": history}
            if len(stages) > 1:
                record["stages"] = stages
            write_text(out / "history.json", json.dumps(record, indent=1))
        if is_main and progress:
            tqdm.write(
                f"epoch {entry['epoch']:3d} loss {entry['train_loss']:.3f} acc {entry['train_acc']:.3f} "
                f"val_loss {val_loss:.3f} val_acc {val_acc:.3f} auc {entry['val_auc']:.3f} "
                f"lr {entry['lr']:.1e} {entry['seconds']:.0f}s"
            )
        if on_epoch_end is not None and is_main:
            on_epoch_end(entry)

    if best_state is not None:
        model.load_state_dict(best_state)
    model.to(memory_format=torch.contiguous_format)
    if started_pg:
        dist.barrier()
        dist.destroy_process_group()
    return history
