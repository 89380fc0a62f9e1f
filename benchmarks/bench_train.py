"""Training throughput of a model on FER2013 on this machine, and the data-loading share.

Runs the recipe's DataLoader and :class:`emolib.train.TrainStep` (the step :func:`emolib.train.fit`
takes: its optimizer, autocast, label smoothing, weight average) for a number of batches and
splits the time into preparing the data and computing. A recipe with per-image augmentation
(``baseline-fer2013``) augments in the DataLoader, so its data time is the wait for the loader;
a recipe with ``batch_augment`` (``baseline_batch-fer2013``, ``vgg_cpu-fer2013``) reads the stored
``uint8`` images and augments whole batches as ``fit`` does: its data time is the wait plus that
augmentation (``augment_share``). ``data_wait_share`` is the data time over the total in both.

A row may change one thing of its recipe, for an ablation's cost: ``MODEL:RECIPE:VARIANT`` with
VARIANT ``fp32`` (no autocast), ``bf16`` (bfloat16 autocast), ``no_ema`` (no weight average) or
``per_image`` (the recipe's batch augmentation done per image in the DataLoader instead: the same
steps with torchvision's transforms v2, then the eval transform); ``compile`` times the step on
``torch.compile(model)`` (inductor), which ``fit`` does not do. Each row records the memory allocator:
glibc's, or the library preloaded for the run (``LD_PRELOAD=/path/libtcmalloc_minimal.so.4``).

    flock /tmp/heavy.lock python benchmarks/bench_train.py [--models baseline:baseline_batch-fer2013 ...]
        [--batches 60] [--workers 0 1] [--profile 10] [--procs 2 [--batch-per-process 32]] [--append]
        -> results/benchmarks/train_throughput.json

``--procs N`` times a data-parallel run on the CPU as ``torchrun --nproc_per_node N -m emolib train``
makes it (README, "More than one GPU (or CPU process)"): N processes of ``cpus / N`` threads
each under ``torch.distributed.run`` (gloo), each running the same
``TrainStep`` on :class:`~torch.nn.parallel.DistributedDataParallel` (its gradient all-reduce
included) on its share of every batch; the rate is all processes' images over the slowest
process's time. The global batch stays the recipe's (each process takes ``batch / N``)
unless ``--batch-per-process`` says otherwise; batch-norm statistics are then computed over
each process's share, not the whole batch. ``--append`` adds the rows to the JSON's earlier ones.

The machine is shared: every row records the load average before and after it; numbers
taken with a load above the number of CPUs are slowed by other work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

DEFAULT_ROWS = ["baseline:baseline-fer2013", "baseline:baseline_batch-fer2013",
                "baseline:baseline_batch-fer2013:fp32", "vgg:vgg_cpu-fer2013", "vgg:vgg_cpu-fer2013:fp32",
                "vgg:vgg_cpu-fer2013:no_ema", "vgg:vgg_cpu-fer2013:per_image", "emonet:emonet-fer2013"]
VARIANTS = {"fp32": "without bfloat16 autocast", "bf16": "with bfloat16 autocast",
            "no_ema": "without the EMA", "per_image": "augmentation per image in the DataLoader",
            "compile": "with torch.compile (inductor)"}


def per_image_transform(batch_augment: dict, eval_tf, size: int):
    """The steps of a ``batch_augment`` dict as a per-image transforms v2 pipeline on ``size`` x ``size``
    images, then ``eval_tf`` (uncovered pixels are black: transforms v2 has no "border" fill)."""
    from torchvision.transforms import v2

    a = batch_augment
    steps = [v2.RandomAffine(degrees=a.get("rotation", 10.0), translate=(a.get("shift", 0.1),) * 2,
                             scale=tuple(a.get("scale", (1.0, 1.0))))]
    if a.get("brightness", 0.2) or a.get("contrast", 0.0):
        steps.append(v2.ColorJitter(brightness=a.get("brightness", 0.2), contrast=a.get("contrast", 0.0)))
    if a.get("crop_padding"):
        steps.append(v2.RandomCrop(size, padding=a["crop_padding"], padding_mode="reflect"))
    if a.get("flip", 0.5):
        steps.append(v2.RandomHorizontalFlip(a.get("flip", 0.5)))
    if a.get("erase"):
        raise NotImplementedError("per_image: random erasing has no per-image twin here")
    return v2.Compose([*steps, eval_tf])


def measure(model_name: str, recipe_name: str, variant: str | None, batches: int, workers: int,
            data: str, profile: int = 0, batch_per_process: int | None = None) -> dict:
    from emolib.experiment import load_splits
    from emolib.models import create_model
    from emolib.optim import make_ema, make_optimizer
    from emolib.recipes import get_recipe
    from emolib.train import TrainStep, batch_transforms

    load_before = os.getloadavg()
    recipe = get_recipe(recipe_name)
    cfg = recipe.config
    if cfg.distill:
        raise ValueError(f"{recipe_name} distils a teacher: this benchmark times the step without the teacher's "
                         "logits and pass, so it would not be that recipe's rate")
    if variant in ("fp32", "bf16"):
        cfg = dataclasses.replace(cfg, amp=variant == "bf16")
    elif variant == "no_ema":
        cfg = dataclasses.replace(cfg, ema=None)
    elif variant == "per_image":
        if cfg.batch_augment is None:
            raise ValueError(f"{recipe_name} already augments per image")
    elif variant is not None and variant != "compile":
        raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    train, val, _ = load_splits(recipe, data)
    if variant == "per_image":
        size = train.images.shape[-1]
        train = train.with_transform(per_image_transform(cfg.batch_augment, val.transform, size))
        cfg = dataclasses.replace(cfg, batch_augment=None)
    augment, prepare = batch_transforms(cfg, train, val)
    if augment is not None:
        train = train.with_transform(None)
    device = torch.device("cpu")
    amp = cfg.uses_amp(device)  # as fit decides it
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    per_process = batch_per_process or cfg.batch_size // world
    if world > 1 and batch_per_process is None and cfg.batch_size % world:
        raise ValueError(f"{recipe_name}'s batch {cfg.batch_size} does not split over {world} processes")
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=len(train.classes)).train()
    model = model.to(memory_format=torch.channels_last) if cfg.channels_last else model
    net = nn.parallel.DistributedDataParallel(model) if world > 1 else model  # as fit wraps it
    if variant == "compile":  # not what fit does: a measured option (the warm-up batches compile)
        net = torch.compile(net)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    ema = make_ema(model, cfg.ema) if cfg.ema else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    step = TrainStep(net, opt, loss_fn, device, amp=amp, ema=ema, model=model, channels_last=cfg.channels_last)
    loader = torch.utils.data.DataLoader(train, batch_size=per_process, shuffle=True, num_workers=workers,
                                         drop_last=True, generator=torch.Generator().manual_seed(rank))
    gen = torch.Generator().manual_seed(rank)
    it = iter(loader)
    for _ in range(3):  # warm-up
        x, y = next(it)
        step(prepare(augment(x, generator=gen)) if augment is not None else x, y)
    wait = aug_time = compute = 0.0
    n = 0
    if world > 1:
        dist.barrier()
    for _ in range(batches):
        t0 = time.perf_counter()
        x, y = next(it)
        t1 = t2 = time.perf_counter()
        if augment is not None:
            x = prepare(augment(x, generator=gen))
            t2 = time.perf_counter()
        loss, logits = step(x, y)
        loss.item()  # what fit reads each step
        t3 = time.perf_counter()
        wait, aug_time, compute = wait + t1 - t0, aug_time + t2 - t1, compute + t3 - t2
        n += len(y)
    total = wait + aug_time + compute
    if world > 1:  # all processes' images over the slowest process's time; its split of that time
        times = [None] * world
        dist.all_gather_object(times, (total, wait, aug_time, compute))
        total, wait, aug_time, compute = max(times)
        n *= world
    top_ops = None
    if profile:  # where the time goes: more batches under torch.profiler, the top operators by self time
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(profile):
                x, y = next(it)
                step(prepare(augment(x, generator=gen)) if augment is not None else x, y)[0].item()
        events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
        whole = sum(e.self_cpu_time_total for e in events)
        top_ops = [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / whole, "calls": e.count}
                   for e in events[:12]]
    label = recipe_name if variant is None else f"{recipe_name}, {VARIANTS[variant]}"
    if world > 1:
        label += f", {world} processes of {torch.get_num_threads()} thread(s), {per_process} images each"
    return {"model": model_name, "recipe": label, "recipe_name": recipe_name, "variant": variant,
            "batch_size": per_process * world, "processes": world, "batch_per_process": per_process,
            "threads_per_process": torch.get_num_threads(),
            # the memory allocator: glibc's, or a library preloaded for the run (LD_PRELOAD=.../libtcmalloc...)
            "allocator": Path(os.environ["LD_PRELOAD"]).name if os.environ.get("LD_PRELOAD") else "glibc",
            "augmentation": "batch" if augment is not None else "per image",
            "precision": "bfloat16 autocast" if amp else "float32", "optimizer": cfg.optimizer,
            "fused_optimizer": bool(opt.defaults.get("fused")), "ema": cfg.ema, "num_workers": workers,
            "images": n, "images_per_second": n / total,
            "data_wait_share": (wait + aug_time) / total, "augment_share": aug_time / total,
            "compute_images_per_second": n / compute,
            "epoch_minutes_estimate": len(train) / (n / total) / 60,
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            **({"profile_top_ops": top_ops} if top_ops else {})}


def measure_in_processes(spec: str, procs: int, batches: int, workers: int, data: str, profile: int,
                         batch_per_process: int | None) -> dict:
    """One row timed in ``procs`` processes under ``torch.distributed.run`` (this script, rank mode)."""
    import subprocess
    import sys
    import tempfile

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
               __file__, "--models", spec, "--batches", str(batches), "--workers", str(workers), "--data", data,
               "--profile", str(profile), "--row-out", str(out)]
        if batch_per_process:
            cmd += ["--batch-per-process", str(batch_per_process)]
        threads = max(1, (os.cpu_count() or 1) // procs)
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        row = json.loads(out.read_text())
    return {**row, "load_average_before": load_before, "load_average_after": os.getloadavg()}


def main() -> None:
    from emolib.recipes import get_recipe

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=DEFAULT_ROWS, help="MODEL:RECIPE or MODEL:RECIPE:VARIANT")
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    p.add_argument("--data", default=os.path.join(os.environ.get("EMOLIB_DATA", "../shared/data"), "fer2013"))
    p.add_argument("--out", default="results/benchmarks/train_throughput.json")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="after timing, profile N more batches and record the top operators by self CPU time")
    p.add_argument("--procs", type=int, default=1,
                   help="data-parallel processes (gloo), each with cpus/N threads, as torchrun runs emolib train")
    p.add_argument("--batch-per-process", type=int,
                   help="with --procs: each process's batch (default: the recipe's batch / N)")
    p.add_argument("--append", action="store_true", help="add the rows to those already in --out")
    p.add_argument("--row-out", help=argparse.SUPPRESS)  # a rank under torch.distributed.run: rank 0 writes its row
    args = p.parse_args()
    if args.row_out:
        dist.init_process_group("gloo")
        model, recipe, variant = (args.models[0].split(":") + [None])[:3]
        row = measure(model, recipe, variant, args.batches, args.workers[0], args.data, args.profile,
                      args.batch_per_process)
        if dist.get_rank() == 0:
            Path(args.row_out).write_text(json.dumps(row))
        dist.destroy_process_group()
        return
    rows = json.loads(Path(args.out).read_text())["runs"] if args.append and Path(args.out).is_file() else []
    for spec in args.models:
        model, recipe, variant = (spec.split(":") + [None])[:3]
        per_image = get_recipe(recipe).config.batch_augment is None or variant == "per_image"
        # The batch path's loader only indexes stored images: one row, in the main process.
        for w in args.workers if per_image else args.workers[:1]:
            if args.procs > 1:
                row = measure_in_processes(spec, args.procs, args.batches, w, args.data, args.profile,
                                           args.batch_per_process)
            else:
                row = measure(model, recipe, variant, args.batches, w, args.data, args.profile)
            print(json.dumps(row), flush=True)
            rows.append(row)
    result = {"runs": rows, "machine": {"processor": platform.processor() or platform.machine(),
                                        "cpus": os.cpu_count(), "torch": torch.__version__,
                                        "threads": torch.get_num_threads(),
                                        # other work on the machine slows every number here
                                        "load_average_at_end": os.getloadavg()},
              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
