"""Named training recipes: the one place where the book's runs are configured.

A recipe names a model, a dataset, the transforms and a :class:`~emolib.train.TrainConfig`.
``emolib train --recipe NAME`` and the chapters both read them, so a number in the book
can be reproduced from one command.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .train import TrainConfig

__all__ = ["Recipe", "RECIPES", "THESIS_FACE_AUGMENT", "LANDMARK_MODELS", "get_recipe", "landmark_options"]

#: Models that read hand landmarks, not pixels: emolib.experiment.run_recipe needs a landmark source for them.
LANDMARK_MODELS = frozenset({"landmark_mlp"})


@dataclass(frozen=True)
class Recipe:
    model: str
    dataset: str  # "fer2013", "rafdb" or "asl"
    config: TrainConfig
    augment: dict = field(default_factory=dict)  # keyword arguments of the train transform
    pretrained: bool = False
    size: int | None = None  # input size; None: the model's default
    val_fraction: float = 0.1
    notes: str = ""


#: The thesis's face augmentation (emolib.transforms.face_train_transform) as BatchAugment arguments.
THESIS_FACE_AUGMENT = {"rotation": 10.0, "brightness": 0.2, "shift": 0.1, "crop_padding": 4, "flip": 0.5,
                       "fill": "zeros"}

RECIPES: dict[str, Recipe] = {
    # The thesis's recipe: Adam 1e-3, ReduceLROnPlateau(factor 0.3, patience 5), its face augmentation.
    "baseline-fer2013": Recipe(
        "baseline", "fer2013",
        TrainConfig(epochs=26, batch_size=64, lr=1e-3, schedule="plateau", early_stopping=12, num_workers=1),
        notes="thesis recipe; shipped: 26 epochs, then 12 from those weights at lr 3e-4 (--init-from)",
    ),
    # The same recipe with the same augmentation done on whole batches on the training device
    # (emolib.augment.BatchAugment, crop_padding for the padded random crop), and mixed precision (amp: bfloat16
    # autocast on the CPU, float16 on CUDA; weights, optimizer and batch-norm statistics stay float32): faster
    # than the per-image recipe on this CPU (benchmarks/bench_train.py). One run of this recipe (26 epochs, 15.3
    # min, 2026-11-27, load average 1.4-6.7, other jobs): best validation 62.45 % (baseline-fer2013's first
    # stage: 61.83 %), PublicTest 61.10 % (62.11 % with flip TTA); not shipped, no second stage yet.
    "baseline_batch-fer2013": Recipe(
        "baseline", "fer2013",
        TrainConfig(epochs=26, batch_size=64, lr=1e-3, schedule="plateau", early_stopping=12, num_workers=0,
                    amp=True, batch_augment=dict(THESIS_FACE_AUGMENT)),
        notes="thesis recipe, its face augmentation on batches (BatchAugment) instead of per image, bfloat16 "
              "autocast on the CPU",
    ),
    # The base recipe of benchmarks/fer_gpu_study.py (its PublicTest accuracy: results/benchmarks/fer_gpu_study.json):
    # VGG 32-256, SGD + Nesterov 0.1, one-cycle (25 % warm-up), weight decay 5e-4, label smoothing 0.1,
    # EMA 0.999, batch 128, affine + photometric augmentation on batches, 45 epochs.
    "vgg-fer2013": Recipe(
        "vgg", "fer2013",
        TrainConfig(epochs=45, batch_size=128, lr=0.1, optimizer="sgd", schedule="onecycle", pct_start=0.25,
                    weight_decay=5e-4, label_smoothing=0.1, ema=0.999, num_workers=0,
                    batch_augment=dict(rotation=10.0, scale=(0.9, 1.1), shift=0.1, flip=0.5, brightness=0.2,
                                       contrast=0.2)),
        notes="the GPU study's base recipe (benchmarks/fer_gpu_study.py); validation and the result use the EMA",
    ),
    # The GPU study's base recipe sized for this 2-core CPU (issue 16): bfloat16 autocast (the CPU's
    # avx512_bf16; weights, the average and batch norm stay float32) about doubles the VGG's training
    # throughput here (benchmarks/bench_train.py), and the epochs are what fits 60 minutes of training.
    "vgg_cpu-fer2013": Recipe(
        "vgg", "fer2013",
        TrainConfig(epochs=42, batch_size=128, lr=0.1, optimizer="sgd", schedule="onecycle", pct_start=0.25,
                    weight_decay=5e-4, label_smoothing=0.1, ema=0.999, num_workers=0, amp=True, device="cpu",
                    batch_augment=dict(rotation=10.0, scale=(0.9, 1.1), shift=0.1, flip=0.5, brightness=0.2,
                                       contrast=0.2)),
        notes="vgg-fer2013 with bfloat16 autocast on the CPU; budget: 60 minutes of training on this 2-core CPU",
    ),
    # vgg_cpu-fer2013 distilled from the GPU study's teacher (shipped as vgg_large-fer2013): the teacher's
    # logits of every clean training image, computed once at the start (counted in the training time),
    # weight 0.7 and temperature 4 as the study's kd row, where the average of the weights did worse
    # than the raw weights (so no EMA here).
    "vgg_kd-fer2013": Recipe(
        "vgg", "fer2013",
        TrainConfig(epochs=42, batch_size=128, lr=0.1, optimizer="sgd", schedule="onecycle", pct_start=0.25,
                    weight_decay=5e-4, label_smoothing=0.1, ema=None, num_workers=0, amp=True, device="cpu",
                    batch_augment=dict(rotation=10.0, scale=(0.9, 1.1), shift=0.1, flip=0.5, brightness=0.2,
                                       contrast=0.2),
                    distill={"teacher": "vgg_large-fer2013", "weight": 0.7, "temperature": 4.0}),
        notes="vgg_cpu-fer2013 distilled from vgg_large-fer2013 (teacher logits computed once), no weight average; "
              "budget: 60 minutes of training on this 2-core CPU",
    ),
    # Ours: same data and augmentation, one-cycle schedule, label smoothing, weight decay.
    "emonet-fer2013": Recipe(
        "emonet", "fer2013",
        TrainConfig(epochs=10, batch_size=128, lr=3e-3, schedule="onecycle", label_smoothing=0.1,
                    weight_decay=1e-4, num_workers=1),
        notes="one-cycle, label smoothing 0.1, weight decay; budget: 60 minutes on this 2-core CPU",
    ),
    "mobilenetv3_large-fer2013": Recipe(
        "mobilenetv3_large", "fer2013", TrainConfig(epochs=30, batch_size=64, lr=1e-3, num_workers=2),
        pretrained=True, size=224),
    "resnet34-fer2013": Recipe(
        "resnet34", "fer2013", TrainConfig(epochs=30, batch_size=64, lr=1e-3, num_workers=2),
        pretrained=True, size=224),
    "wide_resnet50_2-fer2013": Recipe(
        "wide_resnet50_2", "fer2013", TrainConfig(epochs=30, batch_size=64, lr=1e-3, num_workers=2),
        pretrained=True, size=224),
    "mobilenetv3_large-rafdb": Recipe(
        "mobilenetv3_large", "rafdb", TrainConfig(epochs=30, batch_size=64, lr=1e-3, num_workers=2),
        pretrained=True, size=224),
    "resnet34-rafdb": Recipe(
        "resnet34", "rafdb", TrainConfig(epochs=30, batch_size=64, lr=1e-3, num_workers=2),
        pretrained=True, size=224),
    "wide_resnet50_2-rafdb": Recipe(
        "wide_resnet50_2", "rafdb", TrainConfig(epochs=30, batch_size=64, lr=1e-3, num_workers=2),
        pretrained=True, size=224),
    # The thesis's hand recipe: ResNet50v2, 50 epochs, Adam 1e-3 with ReduceLROnPlateau.
    "resnetv2_50-asl": Recipe(
        "resnetv2_50", "asl", TrainConfig(epochs=50, batch_size=32, lr=1e-3, num_workers=2),
        pretrained=True, size=224, val_fraction=0.2,
        notes="the thesis's recipe; validated on the same 20 % split as the CPU models of chapter 6"),
    # Hand gestures on the CPU (chapter 6); all compared on one stratified 20 % validation split, seed 0.
    # A small image CNN: EmoNet unchanged (gray input) on 64x64 photos, the thesis's hand augmentation with
    # shifts of 20 % instead of 40 % (at 40 % a shifted hand often leaves the 64-pixel frame).
    "emonet-asl": Recipe(
        "emonet", "asl",
        TrainConfig(epochs=16, batch_size=64, lr=3e-3, schedule="onecycle", label_smoothing=0.1,
                    weight_decay=1e-4, num_workers=0),
        augment={"shift": 0.2}, size=64, val_fraction=0.2,
        notes="from scratch, 64x64 gray, one-cycle; its training time: benchmarks/bench_hands.py (chapter 6)"),
    # The landmark model: an MLP on the 21 MediaPipe hand landmarks (normalised: wrist at the origin,
    # divided by the wrist-to-middle-knuckle distance, left hands mirrored, rotated upright). Trained by
    # emolib.experiment.run_recipe with a landmark source (emolib train passes the hand detector's, which needs
    # emolib[hands]). augment: Gaussian noise on the normalised coordinates (emolib.gesture_data.LandmarkDataset),
    # scale jitter, and a random mirror (a wrong handedness label costs little). config.extra may set
    # rotate (rotate hands upright, default True) and use_z (use the depth coordinate, default True).
    "landmark_mlp-asl": Recipe(
        "landmark_mlp", "asl",
        TrainConfig(epochs=60, batch_size=64, lr=3e-3, schedule="onecycle", label_smoothing=0.1,
                    weight_decay=1e-4, channels_last=False, device="cpu"),
        augment={"noise": 0.02, "scale": 0.1, "mirror": 0.5}, val_fraction=0.2,
        notes="MediaPipe landmarks + MLP; shipped as gestures-asl"),
}


def get_recipe(name: str, **overrides) -> Recipe:
    """A recipe by name; ``overrides`` replace fields of its :class:`TrainConfig` (``epochs=1``...)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    r = RECIPES[name]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return replace(r, config=replace(r.config, **overrides)) if overrides else r


def landmark_options(recipe: Recipe) -> dict:
    """Landmark options of a recipe (``config.extra``): ``rotate`` (upright hands, default True), ``use_z`` (True)."""
    extra = recipe.config.extra or {}
    return {"rotate": bool(extra.get("rotate", True)), "use_z": bool(extra.get("use_z", True))}
