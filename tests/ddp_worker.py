"""Run under torchrun by tests/test_train.py: trains the toy MLP data-parallel and saves the result."""

import json
import sys

import torch

from emolib.train import TrainConfig, fit
from tests.toy import tiny_mlp, toy_dataset

out = sys.argv[1]
per_rank_batch = int(sys.argv[2])
data = toy_dataset(96)
train, val = data.subset(range(64)), data.subset(range(64, 85))  # 21 validation images: uneven shards
model = tiny_mlp()
cfg = TrainConfig(epochs=3, batch_size=per_rank_batch, lr=3e-3, schedule="none", channels_last=False, device="cpu")
history = fit(model, train, val, cfg, out_dir=out, progress=False)
if torch.distributed.is_available() and not torch.distributed.is_initialized():
    import os

    if int(os.environ.get("RANK", 0)) == 0:
        torch.save(model.state_dict(), f"{out}/final.pt")
        with open(f"{out}/h.json", "w") as f:
            json.dump(history, f)
