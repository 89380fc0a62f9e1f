"""Training throughput of a model on FER2013 on this machine, and the data-loading share.

Runs the recipe's DataLoader (augmentation included) and training step for a number of
batches and splits the time into waiting for data and computing.

    python benchmarks/bench_train.py [--model baseline] [--batches 60] [--workers 0 1]
        -> results/benchmarks/train_throughput.json
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
    from emolib.recipes import get_recipe

    recipe = get_recipe(recipe_name)
    train, _, _ = load_splits(recipe, data)
    model = create_model(model_name).to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    loader = torch.utils.data.DataLoader(train, batch_size=recipe.config.batch_size, shuffle=True,
                                         num_workers=workers, drop_last=True)
    it = iter(loader)
    for _ in range(3):  # warm-up
        x, y = next(it)
        loss_fn(model(x.contiguous(memory_format=torch.channels_last)), y).backward()
    wait = compute = 0.0
    n = 0
    for _ in range(batches):
        t0 = time.perf_counter()
        x, y = next(it)
        t1 = time.perf_counter()
        x = x.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        wait += t1 - t0
        compute += t2 - t1
        n += len(y)
    total = wait + compute
    return {"model": model_name, "recipe": recipe_name, "batch_size": recipe.config.batch_size,
            "num_workers": workers, "images": n, "images_per_second": n / total,
            "data_wait_share": wait / total, "compute_images_per_second": n / compute,
            "epoch_minutes_estimate": len(train) / (n / total) / 60}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--models", nargs="+", default=["baseline:baseline-fer2013", "emonet:emonet-fer2013"],
                   help="MODEL:RECIPE pairs")
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    p.add_argument("--data", default=os.path.join(os.environ.get("EMOLIB_DATA", "../shared/data"), "fer2013"))
    p.add_argument("--out", default="results/benchmarks/train_throughput.json")
    args = p.parse_args()
    rows = []
    for pair in args.models:
        model, recipe = pair.split(":")
        for w in args.workers:
            row = measure(model, recipe, args.batches, w, args.data)
            print(json.dumps(row))
            rows.append(row)
    result = {"runs": rows, "machine": {"processor": platform.processor() or platform.machine(),
                                        "cpus": os.cpu_count(), "torch": torch.__version__,
                                        "threads": torch.get_num_threads(),
                                        # other work on the machine slows every number here
                                        "load_average_at_end": os.getloadavg()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
