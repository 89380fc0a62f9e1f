"""Run a recipe end to end (data, model, training, test metrics, files) and ship a run with its card.

This is what ``emolib train`` and ``emolib export`` and the chapters call, so a chapter
stays a few lines. One path serves every model kind: image models (faces, hand photos) and
the landmark model ``landmark_mlp`` (hand gestures from 21 hand landmarks). A landmark
recipe needs a *landmark source* (see :mod:`emolib.gesture_data`), passed in by the caller
because the hand detector is an inference module: ``emolib train`` passes
:func:`emolib.gestures.landmark_source`.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from . import data as D
from . import transforms as T
from .cards import card_markdown, write_card
from .fileio import lock_folder, write_text
from .gesture_data import LandmarkDataset, LandmarkSource, asl_split, gesture_metrics
from .labels import DEFAULT_LETTER_TO_GESTURE, GESTURE_EMOTIONS, gesture_folder_names
from .metrics import evaluate_probs
from .models import (CHECKPOINT_DIR, CheckpointError, count_parameters, create_model, input_config, load_model,
                     save_checkpoint)
from .recipes import LANDMARK_MODELS, RECIPES, Recipe, landmark_options
from .train import TrainConfig, fit, predict, set_seed, try_gpu

__all__ = ["load_splits", "run_recipe", "evaluate_model", "ship", "write_card", "card_markdown"]


def _raw_dataset(name: str, root, split: str, size: int | None):
    if name == "fer2013":
        return D.FER2013(root, split)
    if name == "rafdb":
        return D.RAFDB(root, split)
    if name == "asl":
        return D.ASLGestures(root, split, size=size or 224)
    raise ValueError(f"unknown dataset {name!r}; choose fer2013, rafdb or asl")


def load_splits(recipe: Recipe, root=None, seed: int = 0, limit: int | None = None):
    """``(train, val, test)`` datasets with the recipe's transforms; ``test`` is None when the data has none.

    ``limit`` keeps a stratified sample of at most that many training images (smoke runs).
    """
    cfg = input_config(recipe.model, size=recipe.size)
    if recipe.dataset == "asl":
        train_tf = T.hand_train_transform(cfg.size, cfg.channels, cfg.mean, cfg.std, **recipe.augment)
        full = _raw_dataset("asl", root, "train", min(cfg.size, 224))
        test = None
    else:
        train_tf = T.face_train_transform(cfg.size, cfg.channels, cfg.mean, cfg.std, **recipe.augment)
        full = _raw_dataset(recipe.dataset, root, "train", cfg.size)
        try:
            test = _raw_dataset(recipe.dataset, root, "test", cfg.size)
        except D.DatasetNotFoundError:
            test = None
    eval_tf = T.eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std)
    if limit is not None and limit < len(full):
        full, _ = D.train_val_split(full, 1 - limit / len(full), seed=seed)
        if test is not None and len(test) > limit:
            test, _ = D.train_val_split(test, 1 - limit / len(test), seed=seed)
    train, val = D.train_val_split(full, recipe.val_fraction, seed, train_tf, eval_tf)
    return train, val, (test.with_transform(eval_tf) if test is not None else None)


def _init_weights(model, arch: str, source) -> None:
    """Copy the weights of the checkpoint ``source`` (shipped name or file) into ``model``."""
    src = load_model(source)
    src_arch = getattr(src, "emolib_name", type(src).__name__)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in src.state_dict().items()})
    except RuntimeError as err:
        raise CheckpointError(f"--init-from {source}: a {src_arch} checkpoint does not fit {arch}: "
                              f"{str(err).splitlines()[0]}") from None


def evaluate_model(model, dataset, tta: tuple[str, ...] = (), batch_size: int = 256) -> dict:
    """Metrics of ``model`` on a dataset (see :func:`emolib.metrics.evaluate_probs`)."""
    probs, targets = predict(model, dataset, batch_size=batch_size, tta=tta)
    return evaluate_probs(targets.numpy(), probs.numpy(), dataset.classes)


def run_recipe(
    recipe: Recipe,
    out_dir: str | os.PathLike,
    root=None,
    limit: int | None = None,
    pretrained: bool | None = None,
    resume: bool = True,
    progress: bool = True,
    init_from: str | os.PathLike | None = None,
    new_stage: bool = False,
    landmarks: LandmarkSource | None = None,
    split: dict | None = None,
) -> dict:
    """Train ``recipe`` into ``out_dir`` and evaluate on the test split.

    The global generators are seeded with the recipe's seed before the model is built,
    so one command gives the same starting weights, and the same run, in every process.
    ``out_dir`` is locked while the run writes to it (a second process there stops at
    once, see :func:`emolib.fileio.lock_folder`). Resuming a run with other settings or
    data is refused unless ``new_stage`` (see :func:`emolib.train.fit`).

    ``init_from``: start from the weights of a shipped model or checkpoint of the same
    architecture (fine-tuning, or a second stage at a lower learning rate) instead of
    random or ImageNet weights; the optimizer and schedule start afresh.

    Writes ``history.json``, ``model.pt`` (an emolib checkpoint), and ``result.json``
    (recipe, parameter count, training time, machine, test metrics with and without
    flip TTA). Returns the content of ``result.json``.

    A landmark recipe (model ``landmark_mlp``, e.g. ``landmark_mlp-asl``) reads the landmarks
    of the ASL photos from ``landmarks`` (a landmark source, :mod:`emolib.gesture_data`), splits
    them as :func:`emolib.gesture_data.asl_split` does (or as ``split``, e.g.
    :func:`~emolib.gesture_data.asl_block_split`), trains on the photos where a hand was
    found and reports validation metrics over **all** validation photos (no hand: an error);
    it also writes ``val_predictions.json`` and ``val_features.npz`` (what :func:`ship`
    measures the stored weights on). ``limit`` keeps a stratified sample of that many photos.
    """
    out = Path(out_dir)
    if recipe.model in LANDMARK_MODELS:
        if landmarks is None:
            raise ValueError(f"the recipe's model {recipe.model!r} reads hand landmarks: pass landmarks=a landmark "
                             "source (emolib.gestures.landmark_source(); emolib train does)")
        run = (lambda: _run_landmark_recipe(recipe, out, root, limit, resume, progress, init_from, new_stage,
                                            landmarks, split))
    else:
        run = (lambda: _run_recipe(recipe, out, root, limit, pretrained, resume, progress, init_from, new_stage))
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 alone owns the folder
        return run()
    with lock_folder(out):
        return run()


def _run_recipe(recipe: Recipe, out: Path, root, limit, pretrained, resume, progress, init_from, new_stage) -> dict:
    train, val, test = load_splits(recipe, root, recipe.config.seed, limit)
    cfg = input_config(recipe.model, size=recipe.size)
    use_pretrained = recipe.pretrained if pretrained is None else pretrained
    set_seed(recipe.config.seed)  # the starting weights depend on the seed alone, not on the process
    model = create_model(recipe.model, pretrained=use_pretrained, num_classes=len(train.classes),
                         in_chans=cfg.channels)
    model.input_config = cfg
    if init_from is not None:
        _init_weights(model, recipe.model, init_from)
    t0 = time.time()
    history = fit(model, train, val, recipe.config, out, resume=resume, progress=progress, new_stage=new_stage)
    train_seconds = sum(h["seconds"] for h in history)
    device = torch.device(recipe.config.device) if recipe.config.device else try_gpu()
    result = {
        "recipe": {**asdict(recipe), "config": asdict(recipe.config)},
        "model": recipe.model,
        "dataset": recipe.dataset,
        "pretrained": use_pretrained,
        "init_from": str(init_from) if init_from is not None else None,
        "parameters": count_parameters(model),
        "train_images": len(train),
        "val_images": len(val),
        "epochs_run": len(history),
        "best_epoch": max(history, key=lambda h: h["val_acc"])["epoch"] if history else None,
        "best_val_acc": max((h["val_acc"] for h in history), default=None),
        "train_seconds": train_seconds,
        "wall_seconds_this_call": time.time() - t0,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "limit": limit,
    }
    record = out / "history.json"
    stages = json.loads(record.read_text()).get("stages") if record.is_file() else None
    if stages:  # settings changed within this run (new_stage)
        result["stages"] = stages
    if int(os.environ.get("RANK", "0")) != 0:
        # torchrun: the other ranks' batch-norm statistics differ slightly from rank 0's (each saw its own
        # shard last); rank 0 alone evaluates and writes the folder, as fit does.
        return result
    if test is not None:
        model.eval()
        result["test"] = evaluate_model(model, test)
        result["test_tta_flip"] = evaluate_model(model, test, tta=("flip",))
    save_checkpoint(model, out / "model.pt", train.classes, recipe=result["recipe"],
                    test_accuracy=result.get("test", {}).get("accuracy"))
    write_text(out / "result.json", json.dumps(result, indent=1))
    return result


def ship(run_dir: str | os.PathLike, name: str, command: str, results_dir: str | os.PathLike = "results/runs",
         half: bool = True, root=None, checkpoint_dir: str | os.PathLike | None = None, note: str = "",
         extra: dict | None = None) -> dict:
    """Ship a finished run as a named checkpoint inside the package, with its model card.

    Writes ``emolib/checkpoints/<name>.pt`` (float16 weights when ``half``),
    ``<name>.json`` (the model card, :mod:`emolib.cards`: data, recipe, command, time,
    metrics of the *stored* weights) and ``<name>.md`` (the same, for people), and copies
    ``history.json`` and ``result.json`` to ``results_dir/<name>/`` for the book. The
    metrics are the test split's, with and without flip TTA, for a dataset that has one;
    for a landmark run, the validation photos' (its ``val_features.npz``; no hand: an error).
    ``extra`` adds keys to the card (e.g. a measured ``speed`` with its ``text``). Returns the card.
    """
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else CHECKPOINT_DIR
    run = Path(run_dir)
    result = json.loads((run / "result.json").read_text())
    # A run that continued the shipped model of the same name (--init-from NAME) is its next stage:
    # read the earlier stages' card and history before they are overwritten.
    earlier_card = earlier_history = None
    init = result.get("init_from")
    continues = init is not None and (init == name or Path(init).resolve() == (ckpt_dir / f"{name}.pt").resolve())
    if continues and (ckpt_dir / f"{name}.json").is_file():
        earlier_card = json.loads((ckpt_dir / f"{name}.json").read_text())
        hist_path = Path(results_dir) / name / "history.json"
        earlier_history = json.loads(hist_path.read_text())["history"] if hist_path.is_file() else None
    src = load_model(run / "model.pt")
    landmark = result.get("kind") == "landmarks"
    meta = {k: result[k] for k in _LANDMARK_META if k in result} if landmark else {}
    path = save_checkpoint(src, ckpt_dir / f"{name}.pt", src.classes, half=half,
                           recipe=result["recipe"], dataset=result["dataset"], **meta)
    card = {
        "name": name,
        "arch": result["model"],
        "dataset": result["dataset"],
        "classes": list(src.classes),
        "parameters": result["parameters"],
        "input": asdict(src.input_config),
        "data": {"train_images": result["train_images"], "val_images": result["val_images"],
                 "test_split": _TEST_SPLITS.get(result["dataset"], "held-out split")},
        "recipe": result["recipe"],
        "command": command,
        "epochs_run": result["epochs_run"],
        "best_epoch": result["best_epoch"],
        "best_val_acc": result["best_val_acc"],
        "train_seconds": result["train_seconds"],
        "device": result["device"],
        "note": note,
        "stored_as": "float16" if half else "float32",
        "size_bytes": path.stat().st_size,
    }
    if result.get("stages"):  # settings changed within the run (emolib train --new-stage)
        card["run_stages"] = result["stages"]
    if landmark:
        card.update(meta, description=result.get("description"), input_text=result.get("input_text"),
                    recipe_name=result.get("recipe_name"), torch_threads=result.get("torch_threads"))
        card["data"].update(train_hands=result.get("train_hands"), val_hands=result.get("val_hands"),
                            split=result.get("split"))
        card["val"] = _landmark_val_metrics(load_model(path), run, result)
    if "test" in result:
        # Re-measure with the weights as stored, so the card describes the file that ships.
        shipped = load_model(path)
        _, _, test = load_splits(_recipe_from_dict(result["recipe"]), root)
        card["test_fp32"] = {k: result["test"][k] for k in ("accuracy", "auc", "macro_f1")}
        card["test"] = evaluate_model(shipped, test)
        card["test_tta_flip"] = evaluate_model(shipped, test, tta=("flip",))
    card.update(extra or {})
    merged = _add_stage(card, earlier_card, earlier_history, run) if earlier_card is not None else None
    write_card(card, ckpt_dir, run, results_dir)
    if merged is not None:  # the book's history: every stage, epochs numbered on
        write_text(Path(results_dir) / name / "history.json", json.dumps(merged, indent=1))
    return card


# What a landmark run records about its landmarks and labels (checkpoint meta and card, for inference).
_LANDMARK_META = ("kind", "normalization", "detector", "letter_to_gesture", "folder_to_class", "gesture_emotions",
                  "requires")
_TEST_SPLITS = {
    "fer2013": "FER2013 PublicTest (3,589 images), never used for training or model selection",
    "asl": "held-out test photos, kept outside this project (never used here)",
}


def _run_landmark_recipe(recipe: Recipe, out: Path, root, limit, resume, progress, init_from, new_stage,
                         source: LandmarkSource, split: dict | None,
                         letter_to_gesture=DEFAULT_LETTER_TO_GESTURE) -> dict:
    opts = landmark_options(recipe)
    if split is None:
        split = asl_split(root, recipe.val_fraction, recipe.config.seed, letter_to_gesture)
    paths, labels, classes = split["paths"], np.asarray(split["labels"]), split["classes"]
    train_idx, val_idx = np.asarray(split["train_idx"]), np.asarray(split["val_idx"])
    if limit is not None and limit < len(paths):  # a stratified sample (smoke runs)
        rng = np.random.default_rng(recipe.config.seed)
        keep: set[int] = set()
        for c in range(len(classes)):
            idx = np.flatnonzero(labels == c)
            keep |= set(rng.choice(idx, min(len(idx), max(2, limit // len(classes))), replace=False).tolist())
        train_idx = np.array([i for i in train_idx if i in keep], dtype=int)
        val_idx = np.array([i for i in val_idx if i in keep], dtype=int)
    needed = sorted(set(train_idx.tolist()) | set(val_idx.tolist()))
    got = source([paths[i] for i in needed], rotate=opts["rotate"])
    feats = np.zeros((len(paths), 21, 3), np.float32)
    found = np.zeros(len(paths), bool)
    hand = np.full(len(paths), "", dtype="<U5")
    seconds = np.zeros(len(paths), np.float32)
    feats[needed], found[needed] = np.asarray(got["features"], np.float32), np.asarray(got["found"], bool)
    hand[needed] = np.asarray(got["handedness"]).astype(str)
    if "seconds" in got:
        seconds[needed] = got["seconds"]
    tr, va = train_idx[found[train_idx]], val_idx[found[val_idx]]
    if len(tr) == 0 or len(va) == 0:
        raise ValueError(f"the landmark source found a hand in {len(tr)} training and {len(va)} validation photos "
                         f"of {len(needed)}: too few to train on")
    train_set = LandmarkDataset(feats[tr], labels[tr], classes, recipe.augment, opts["use_z"])
    val_set = LandmarkDataset(feats[va], labels[va], classes, None, opts["use_z"])
    set_seed(recipe.config.seed)  # the initial weights too: the same run gives the same model
    model = create_model(recipe.model, num_classes=len(classes), in_chans=3 if opts["use_z"] else 2)
    if init_from is not None:
        _init_weights(model, recipe.model, init_from)
    history = fit(model, train_set, val_set, recipe.config, out, resume=resume, progress=progress, new_stage=new_stage)
    model.eval()
    # validation over all photos of the split, no-hand photos counted as errors
    all_val = LandmarkDataset(feats[val_idx], labels[val_idx], classes, None, opts["use_z"])
    t0 = time.perf_counter()
    probs, _ = predict(model, all_val, batch_size=1024, device="cpu", progress=False)
    mlp_seconds = time.perf_counter() - t0
    val_found = found[val_idx]
    metrics = gesture_metrics(labels[val_idx], probs.numpy(), val_found, classes)
    src_meta = dict(got.get("meta") or {})
    meta = {
        "kind": "landmarks",
        "normalization": {**src_meta.get("normalization", {}), **opts},
        "detector": src_meta.get("detector"),
        "letter_to_gesture": dict(letter_to_gesture),
        "folder_to_class": gesture_folder_names(letter_to_gesture),
        "gesture_emotions": {c: GESTURE_EMOTIONS.get(c) for c in classes},
        "requires": src_meta.get("requires"),
    }
    recipe_dict = {**asdict(recipe), "config": asdict(recipe.config)}
    save_path = save_checkpoint(model, out / "model.pt", classes, recipe=recipe_dict, **meta)
    det_ms = seconds[val_idx][val_found] * 1000
    root_path = D.dataset_path(root, "asl")
    base = root_path / "train" if (root_path / "train").is_dir() else root_path
    result = {
        "recipe": recipe_dict,
        "recipe_name": next((k for k, r in RECIPES.items() if r.model == recipe.model and r.dataset == recipe.dataset),
                            None),
        "model": recipe.model,
        "dataset": recipe.dataset,
        "description": "hand-gesture classifier on hand landmarks (an MLP on 21 normalised points)",
        "input_text": f"21 hand landmarks x ({'x, y, z' if opts['use_z'] else 'x, y'}), normalised (see below)",
        "init_from": str(init_from) if init_from is not None else None,
        "parameters": count_parameters(model),
        "split": split.get("description", "a given split"),
        "train_images": int(len(train_idx)),
        "train_hands": int(len(tr)),
        "val_images": int(len(val_idx)),
        "val_hands": int(len(va)),
        "epochs_run": len(history),
        "best_epoch": max(history, key=lambda h: h["val_acc"])["epoch"] if history else None,
        "best_val_acc_with_hand": max((h["val_acc"] for h in history), default=None),
        "best_val_acc": metrics["accuracy"],
        "train_seconds": sum(h["seconds"] for h in history),
        "val": metrics,
        "classifier_ms_per_hand": 1000 * mlp_seconds / max(len(val_idx), 1),
        "detector_ms_per_image_median": float(np.median(det_ms)) if det_ms.any() else None,
        "device": platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "limit": limit,
        "data_root": str(root_path),
        "checkpoint": str(save_path),
        **meta,
    }
    write_text(out / "result.json", json.dumps(result, indent=1))
    pred = np.where(val_found, probs.numpy().argmax(1), -1)
    write_text(out / "val_predictions.json", json.dumps({
        "classes": list(classes), "root": str(base),
        "paths": [os.path.relpath(paths[i], base) for i in val_idx],
        "y_true": labels[val_idx].tolist(), "y_pred": pred.tolist(),
        "probs": np.round(probs.numpy(), 4).tolist(),
        "handedness": [str(hand[i]) for i in val_idx],
    }))
    np.savez(out / "val_features.npz", features=feats[val_idx], found=val_found, y_true=labels[val_idx])
    return result


def _landmark_val_metrics(model, run: Path, result: dict) -> dict:
    """Validation metrics of ``model`` (the stored weights) on a landmark run's validation features."""
    file = run / "val_features.npz"
    if not file.is_file():
        raise CheckpointError(f"{file} is missing: ship a landmark run made by emolib.experiment.run_recipe")
    with np.load(file, allow_pickle=False) as z:
        feats, found, y_true = z["features"], z["found"].astype(bool), z["y_true"]
    use_z = bool((result.get("normalization") or {}).get("use_z", True))
    ds = LandmarkDataset(feats, y_true, model.classes, None, use_z)
    probs, _ = predict(model, ds, batch_size=1024, device="cpu", progress=False)
    return gesture_metrics(y_true, probs.numpy(), found, model.classes)


def _stage(card: dict) -> dict:
    return {k: card.get(k) for k in ("command", "epochs_run", "best_epoch", "best_val_acc", "train_seconds",
                                     "device", "note")} | {"config": card["recipe"]["config"]}


def _add_stage(card: dict, earlier: dict, earlier_history: list | None, run: Path) -> dict:
    """Make ``card`` (of a run started from the shipped ``earlier``) describe all stages together;
    returns the history of all stages (``history.json``'s content), epochs numbered on."""
    stages = earlier.get("stages") or [_stage(earlier)]
    stages.append(_stage(card))
    offset = sum(st["epochs_run"] for st in stages[:-1])
    this = json.loads((run / "history.json").read_text())
    history = [dict(h, stage=h.get("stage", 1)) for h in (earlier_history or [])]
    history += [dict(h, epoch=h["epoch"] + offset, stage=len(stages)) for h in this["history"]]
    card["stages"] = stages
    card["epochs_run"] = offset + card["epochs_run"]
    card["train_seconds"] = sum(st["train_seconds"] for st in stages)
    card["command"] = " && ".join(st["command"] for st in stages)
    best = max(history, key=lambda h: h["val_acc"]) if history else None
    if best is not None:
        card["best_epoch"], card["best_val_acc"] = best["epoch"], best["val_acc"]
    return {"config": this.get("config"), "stages": len(stages), "history": history}


def _recipe_from_dict(d: dict) -> Recipe:
    return Recipe(**{**d, "config": TrainConfig(**d["config"])})
