"""The thesis's hand model, a real run: ``resnetv2_50`` with the recipe ``resnetv2_50-asl`` on a GPU.

The thesis fine-tunes an ImageNet-pretrained ResNet50 v2 on its ASL photos (50 epochs,
batches of 32, Adam 1e-3 with ReduceLROnPlateau, its hand augmentation, 224x224) and
reports 99.91 % validation accuracy. This script runs that recipe on the book's ASL photos
on the two validation splits chapter 6 compares every model on:

* ``random``: stratified 20 % of ``asl/train``, seed 0 (:func:`emolib.gestures.asl_split`);
* ``block``: the last 20 % of each letter's photos in file order, whole video sequences
  unseen (:func:`emolib.gestures.asl_block_split`).

It starts from ImageNet weights when ``--pretrained`` is given and they can be had; where
they cannot (no network), from random weights, and the JSON says which. It needs a GPU in
practice (about 2 minutes per split on an H100/H200; days on a 2-core CPU) and no MediaPipe.
Writes ``results/06_hand_gestures/thesis_resnetv2_50.json`` (or ``--out``) with each
split's per-epoch history, validation metrics of the best-validation epoch's weights (as
the thesis reports it) and of the last epoch, the validation predictions, and the machine.

    python benchmarks/thesis_hands_gpu.py --data $EMOLIB_DATA/asl --workers 12
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emolib import data as D  # noqa: E402
from emolib import gestures as G  # noqa: E402
from emolib import models as M  # noqa: E402
from emolib import transforms as T  # noqa: E402
from emolib.recipes import get_recipe  # noqa: E402
from emolib.train import fit, predict, try_gpu  # noqa: E402

THESIS_VAL_ACC = 0.9991


def run_split(full: D.ImageDataset, split: dict, recipe, pretrained: bool) -> dict:
    cfg = M.input_config("resnetv2_50", size=recipe.size)
    train = full.subset(split["train_idx"], T.hand_train_transform(cfg.size, cfg.channels, cfg.mean, cfg.std,
                                                                   **recipe.augment))
    val = full.subset(split["val_idx"], T.eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std))
    loaded = False
    if pretrained:
        try:
            model = M.create_model("resnetv2_50", pretrained=True, num_classes=4)
            loaded = True
        except M.PretrainedWeightsError as err:
            print(f"no ImageNet weights ({str(err).splitlines()[0]}): training from random weights", flush=True)
    if not loaded:
        model = M.create_model("resnetv2_50", pretrained=False, num_classes=4)
    last_epoch_acc = {}

    def on_epoch_end(row: dict) -> None:
        last_epoch_acc["val_acc"] = row["val_acc"]
        print(f"epoch {row['epoch']:2d}  loss {row['train_loss']:.3f}  val_acc {row['val_acc']:.4f}  "
              f"lr {row['lr']:.2e}  {row['seconds']:.1f} s", flush=True)

    t0 = time.time()
    history = fit(model, train, val, recipe.config, out_dir=None, progress=False, on_epoch_end=on_epoch_end)
    wall = time.time() - t0
    probs, targets = predict(model, val, progress=False)  # the best validation epoch's weights
    metrics = G.gesture_metrics(targets.numpy(), probs.numpy(), np.ones(len(targets), bool), full.classes)
    return {
        "pretrained": loaded,
        "train_images": len(train), "val_images": len(val),
        "history": history,
        "epochs_run": len(history),
        "best_epoch": max(history, key=lambda h: h["val_acc"])["epoch"],
        "val": metrics,
        "val_acc_last_epoch": history[-1]["val_acc"],
        "train_seconds": sum(h["seconds"] for h in history),
        "wall_seconds": wall,
        "val_paths": [Path(split["paths"][i]).name for i in split["val_idx"]],
        "y_pred": probs.argmax(1).tolist(),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="the asl folder (default: $EMOLIB_DATA/asl)")
    p.add_argument("--out", type=Path, default=REPO / "results/06_hand_gestures/thesis_resnetv2_50.json")
    p.add_argument("--splits", default="random,block")
    p.add_argument("--epochs", type=int, help="default: the recipe's 50")
    p.add_argument("--workers", type=int, default=8, help="data-loading processes")
    p.add_argument("--max-batches", type=int, help="cap the batches per epoch (a smoke check of this script)")
    p.add_argument("--pretrained", action="store_true", help="start from ImageNet weights (needs the network)")
    args = p.parse_args(argv)

    recipe = get_recipe("resnetv2_50-asl", epochs=args.epochs, num_workers=args.workers,
                        max_batches=args.max_batches)
    device = try_gpu()
    if device.type != "cuda":
        print("warning: no GPU; this recipe takes days on a small CPU", file=sys.stderr)
    root = args.data
    full = D.ASLGestures(root, size=recipe.size)
    out: dict = {
        "what": "the thesis's hand model (resnetv2_50, recipe resnetv2_50-asl) trained on the ASL photos; "
                "val metrics are those of the best validation epoch's weights, as the thesis reports them",
        "recipe": {**asdict(recipe), "config": asdict(recipe.config)},
        "parameters": M.count_parameters(M.create_model("resnetv2_50", num_classes=4)),
        "thesis_val_acc": THESIS_VAL_ACC,
        "machine": {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
                    "torch": torch.__version__, "cpus": len(__import__("os").sched_getaffinity(0))},
        "splits": {},
    }
    for name in args.splits.split(","):
        split = G.asl_split(root, recipe.val_fraction, recipe.config.seed) if name == "random" \
            else G.asl_block_split(root, recipe.val_fraction)
        assert [Path(p).name for p in split["paths"]] == [Path(p).name for p in full.paths]
        print(f"split {name}: {len(split['train_idx'])} train, {len(split['val_idx'])} val", flush=True)
        out["splits"][name] = run_split(full, split, recipe, args.pretrained)
        print(f"split {name}: val accuracy {out['splits'][name]['val']['accuracy']:.4f}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
