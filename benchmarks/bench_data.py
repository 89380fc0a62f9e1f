"""Load time of the full FER2013 train split: first decode (no cache) and cached reload.

    python benchmarks/bench_data.py [--data PATH/fer2013]   ->  results/benchmarks/data_loading.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", default=os.path.join(os.environ.get("EMOLIB_DATA", "../shared/data"), "fer2013"))
    p.add_argument("--out", default="results/benchmarks/data_loading.json")
    args = p.parse_args()

    from emolib.data import FER2013

    with tempfile.TemporaryDirectory() as cache:
        os.environ["EMOLIB_CACHE"] = cache
        t0 = time.perf_counter()
        ds = FER2013(args.data, "train", cache=True)  # decode every JPEG once, write the cache
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = FER2013(args.data, "train", cache=True)
        cached = time.perf_counter() - t0
        assert torch.equal(ds.images, again.images)
        cache_bytes = sum(f.stat().st_size for f in Path(cache).iterdir())
    # One pass over the decoded tensor as a training epoch would index it (no model).
    t0 = time.perf_counter()
    for i in torch.randperm(len(ds)).tolist():
        ds[i]
    index_pass = time.perf_counter() - t0
    result = {
        "images": len(ds),
        "first_load_seconds": first,
        "cached_load_seconds": cached,
        "images_per_second_first_load": len(ds) / first,
        "epoch_of_indexing_seconds": index_pass,
        "tensor_bytes": ds.images.numel(),
        "cache_file_bytes": cache_bytes,
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "threads": torch.get_num_threads()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
