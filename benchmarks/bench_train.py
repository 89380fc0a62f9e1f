"""Training throughput of a model on FER2013 on this machine, and the data-loading share.

Runs the recipe's DataLoader and training step (its optimizer, label smoothing and weight
average) for a number of batches and splits the time into preparing the data and
computing. A recipe with per-image augmentation (``baseline-fer2013``) augments in the
DataLoader, so its data time is the wait for the loader; a recipe with ``batch_augment``
(``baseline_batch-fer2013``, ``vgg-fer2013``) reads the stored ``uint8`` images and augments
whole batches as :func:`emolib.train.fit` does: its data time is the wait plus that
augmentation (``augment_share``). ``data_wait_share`` is the data time over the total in both.

    flock /tmp/heavy.lock python benchmarks/bench_train.py [--models baseline:baseline-fer2013 ...]
        [--batches 60] [--workers 0 1]  -> results/benchmarks/train_throughput.json

The machine is shared: every row records the load average before and after it; numbers
taken with a load above the number of CPUs are slowed by other work.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from torch import nn


def measure(model_name: str, recipe_name: str, batches: int, workers: int, data: str) -> dict:
    from emolib.experiment import load_splits
    from emolib.models import create_model
    from emolib.optim import make_ema, make_optimizer
    from emolib.recipes import get_recipe
    from emolib.train import batch_transforms

    load_before = os.getloadavg()
    recipe = get_recipe(recipe_name)
    cfg = recipe.config
    train, val, _ = load_splits(recipe, data)
    augment, prepare = batch_transforms(cfg, train, val)
    if augment is not None:
        train = train.with_transform(None)
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=len(train.classes)).to(memory_format=torch.channels_last).train()
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    ema = make_ema(model, cfg.ema) if cfg.ema else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    loader = torch.utils.data.DataLoader(train, batch_size=cfg.batch_size, shuffle=True,
                                         num_workers=workers, drop_last=True)
    gen = torch.Generator().manual_seed(0)

    def step(x, y):
        loss = loss_fn(model(x.contiguous(memory_format=torch.channels_last)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update_parameters(model)

    it = iter(loader)
    for _ in range(3):  # warm-up
        x, y = next(it)
        step(prepare(augment(x, generator=gen)) if augment is not None else x, y)
    wait = aug_time = compute = 0.0
    n = 0
    for _ in range(batches):
        t0 = time.perf_counter()
        x, y = next(it)
        t1 = t2 = time.perf_counter()
        if augment is not None:
            x = prepare(augment(x, generator=gen))
            t2 = time.perf_counter()
        step(x, y)
        t3 = time.perf_counter()
        wait, aug_time, compute = wait + t1 - t0, aug_time + t2 - t1, compute + t3 - t2
        n += len(y)
    total = wait + aug_time + compute
    return {"model": model_name, "recipe": recipe_name, "batch_size": cfg.batch_size,
            "augmentation": "batch" if augment is not None else "per image", "optimizer": cfg.optimizer,
            "ema": cfg.ema, "num_workers": workers, "images": n, "images_per_second": n / total,
            "data_wait_share": (wait + aug_time) / total, "augment_share": aug_time / total,
            "compute_images_per_second": n / compute,
            "epoch_minutes_estimate": len(train) / (n / total) / 60,
            "load_average_before": load_before, "load_average_after": os.getloadavg()}


def main() -> None:
    from emolib.recipes import get_recipe

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", nargs="+", default=["baseline:baseline-fer2013", "baseline:baseline_batch-fer2013",
                                                   "vgg:vgg-fer2013", "emonet:emonet-fer2013"],
                   help="MODEL:RECIPE pairs")
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    p.add_argument("--data", default=os.path.join(os.environ.get("EMOLIB_DATA", "../shared/data"), "fer2013"))
    p.add_argument("--out", default="results/benchmarks/train_throughput.json")
    args = p.parse_args()
    rows = []
    for pair in args.models:
        model, recipe = pair.split(":")
        batch_aug = get_recipe(recipe).config.batch_augment is not None
        for w in args.workers[:1] if batch_aug else args.workers:  # batch path: the loader only indexes stored images
            row = measure(model, recipe, args.batches, w, args.data)
            print(json.dumps(row))
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
