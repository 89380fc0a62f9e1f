"""Ship the GPU teacher of benchmarks/fer_gpu_study.py (variant 'teacher', run h200-run2) as vgg_large-fer2013.

Every number of the card comes from a file or a measurement here: the recipe, history, device and
time from results/benchmarks/fer_gpu_study.json; the test metrics from `python -m emolib evaluate`
on the stored checkpoint (with and without flip TTA); multiply-adds from emolib.book.tables.
Run from the repository root with EMOLIB_DATA set: `python tools/ship_gpu_teacher.py` (about a minute).
When the pipeline's default model changes, `python tools/ship_gpu_teacher.py --refresh-macs` rewrites
only the card's `multiply_adds` and the ratio in its note (no data, nothing re-evaluated).
"""
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from emolib.book.tables import layer_summary
from emolib.cards import write_card
from emolib.data import FER2013, train_val_split
from emolib.models import CHECKPOINT_DIR, count_parameters, load_model, save_checkpoint
from emolib.pipeline import DEFAULT_MODEL
from emolib.train import TrainConfig

NAME = "vgg_large-fer2013"
SRC = Path("results/runs/vgg_large-fer2013-h200/model.pt")


def multiply_adds(model) -> dict:
    """The model's multiply-adds per face beside the pipeline's default model's (emolib.book.tables)."""
    default = sum(row["macs"] for row in layer_summary(load_model(DEFAULT_MODEL)))
    return {"per_face": sum(row["macs"] for row in layer_summary(model)), "pipeline_default": DEFAULT_MODEL,
            "pipeline_default_per_face": default}


def default_note(macs: dict) -> str:
    return (f"not the pipeline's default model "
            f"({macs['per_face'] / macs['pipeline_default_per_face']:.1f}x its multiply-adds per face)")


if "--refresh-macs" in sys.argv[1:]:  # the pipeline's default changed: the card's cost line follows it
    card = json.loads((CHECKPOINT_DIR / f"{NAME}.json").read_text())
    old = default_note(card["multiply_adds"])
    if not card["note"].endswith(old):
        sys.exit(f"ship_gpu_teacher: the card's note does not end with {old!r}")
    card["multiply_adds"] = multiply_adds(load_model(CHECKPOINT_DIR / f"{NAME}.pt"))
    card["note"] = card["note"][: -len(old)] + default_note(card["multiply_adds"])
    write_card(card, CHECKPOINT_DIR)
    print(json.dumps(card["multiply_adds"]))
    sys.exit(0)
study = json.loads(Path("results/benchmarks/fer_gpu_study.json").read_text())
v = study["variants"]["teacher"]
run_note = next(r["note"] for r in study["runs"] if r["folder"] == v["run"])
r = v["recipe"]
config = asdict(TrainConfig(
    epochs=r["epochs"], batch_size=r["batch"], lr=r["lr"], weight_decay=r["wd"], schedule=r["schedule"],
    pct_start=0.25, label_smoothing=r["smoothing"], optimizer=r["opt"], ema=r["ema"], amp=True, device="cuda",
    batch_augment={k: x for k, x in r["aug"].items() if x}, channels_last=True, seed=r["seed"],
    extra={"widths": r["widths"], "convs": r["convs"], "dropout": r["dropout"], "autocast": "bfloat16",
           "trainer": "benchmarks/fer_gpu_study.py (its own loop: images on the GPU, BatchAugment on each batch)"}))
recipe = {"model": "vgg_large", "dataset": "fer2013", "config": config, "augment": {}, "pretrained": False,
          "size": None, "val_fraction": 0.1,
          "notes": "benchmarks/fer_gpu_study.py variant 'teacher': the GPU study's base recipe with widths "
                   "64-512 and random erasing; the weights are the average (EMA) after the last epoch"}

src = load_model(SRC)
path = save_checkpoint(src, CHECKPOINT_DIR / f"{NAME}.pt", src.classes, half=True, recipe=recipe,
                       dataset="fer2013", trained_on=v["device"], torch=v["torch"])
data = os.environ["EMOLIB_DATA"] + "/fer2013"


def evaluate(*tta):
    cmd = [sys.executable, "-m", "emolib", "evaluate", "--model", str(path), "--data", data + "/test", "--json",
           *(["--tta", ",".join(tta)] if tta else [])]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    return {k: out[k] for k in ("accuracy", "n", "auc", "macro_f1", "per_class", "confusion", "classes")}


train, val = train_val_split(FER2013(data, "train"), 0.1, seed=0)
shipped = load_model(path)
macs = multiply_adds(shipped)
hist = v["history"]
command = re.search(r"command: ([^)]*)\)", run_note).group(1)
card = {
    "name": NAME, "arch": "vgg_large", "dataset": "fer2013", "classes": list(shipped.classes),
    "parameters": count_parameters(shipped), "input": asdict(shipped.input_config),
    "data": {"train_images": len(train), "val_images": len(val),
             "test_split": "FER2013 PublicTest (3,589 images), never used for training or model selection"},
    "recipe": recipe,
    "command": f"python benchmarks/fer_gpu_study.py {command} --npz .gpu/fer2013.npz --out OUT",
    "epochs_run": len(hist), "best_epoch": None, "best_val_acc": None,  # the last epoch's weights, not selected
    "final_val_acc": v["final"]["val_ema"],
    "train_seconds": v["final"]["seconds"], "device": v["device"],
    "note": f"one {v['device']} lent by the device tool, torch {v['torch']}, bfloat16 autocast, the images held "
            f"on the GPU (packed here by benchmarks/fer_gpu_study.py pack); trained by that script's own loop, not "
            f"emolib.train.fit; the weights are the "
            f"average after the last epoch (no best-epoch selection); {default_note(macs)}",
    "stored_as": "float16", "size_bytes": path.stat().st_size,
    "multiply_adds": macs,
    "test_gpu_study": {"accuracy": v["final"]["test_ema"], "accuracy_tta_flip": v["final"]["test_ema_tta"],
                       "where": f"{v['device']}, float32 weights, bfloat16 autocast (fer_gpu_study.py)"},
    "test": evaluate(), "test_tta_flip": evaluate("flip"),
}
write_card(card, CHECKPOINT_DIR)
print(json.dumps({k: card[k] for k in ("parameters", "train_seconds", "multiply_adds", "test_gpu_study")}))
print("test", card["test"]["accuracy"], "tta", card["test_tta_flip"]["accuracy"])
