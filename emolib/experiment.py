"""Run a recipe end to end: data, model, training, test metrics, files.

This is what ``emolib train`` and the chapters call, so a chapter stays a few lines.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from . import data as D
from . import transforms as T
from .fileio import copy_file, lock_folder, write_text
from .metrics import evaluate_probs
from .models import count_parameters, create_model, input_config, save_checkpoint
from .recipes import Recipe
from .train import fit, predict, set_seed, try_gpu

__all__ = ["load_splits", "run_recipe", "evaluate_model"]


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
    from .models import CheckpointError, load_model

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
    """
    out = Path(out_dir)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 alone owns the folder
        return _run_recipe(recipe, out, root, limit, pretrained, resume, progress, init_from, new_stage)
    with lock_folder(out):
        return _run_recipe(recipe, out, root, limit, pretrained, resume, progress, init_from, new_stage)


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
    if test is not None:
        model.eval()
        result["test"] = evaluate_model(model, test)
        result["test_tta_flip"] = evaluate_model(model, test, tta=("flip",))
    save_checkpoint(model, out / "model.pt", train.classes, recipe=result["recipe"],
                    test_accuracy=result.get("test", {}).get("accuracy"))
    write_text(out / "result.json", json.dumps(result, indent=1))
    return result


def ship(run_dir: str | os.PathLike, name: str, command: str, results_dir: str | os.PathLike = "results/runs",
         half: bool = True, root=None, checkpoint_dir: str | os.PathLike | None = None, note: str = "") -> dict:
    """Ship a finished run as a named checkpoint inside the package, with its model card.

    Writes ``emolib/checkpoints/<name>.pt`` (float16 weights when ``half``),
    ``<name>.json`` (the model card: data, recipe, command, time, test metrics of the
    *stored* weights, with and without flip TTA) and ``<name>.md`` (the same, for
    people), and copies ``history.json`` and ``result.json`` to ``results_dir/<name>/``
    for the book. Returns the card.
    """
    from .models import CHECKPOINT_DIR, load_model, model_card_markdown

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
    path = save_checkpoint(src, ckpt_dir / f"{name}.pt", src.classes, half=half,
                           recipe=result["recipe"], dataset=result["dataset"])
    card = {
        "name": name,
        "arch": result["model"],
        "dataset": result["dataset"],
        "classes": list(src.classes),
        "parameters": result["parameters"],
        "input": asdict(src.input_config),
        "data": {"train_images": result["train_images"], "val_images": result["val_images"],
                 "test_split": "FER2013 PublicTest (3,589 images), never used for training or model selection"
                 if result["dataset"] == "fer2013" else "held-out split"},
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
    if "test" in result:
        # Re-measure with the weights as stored, so the card describes the file that ships.
        shipped = load_model(path)
        _, _, test = load_splits(_recipe_from_dict(result["recipe"]), root)
        card["test_fp32"] = {k: result["test"][k] for k in ("accuracy", "auc", "macro_f1")}
        card["test"] = evaluate_model(shipped, test)
        card["test_tta_flip"] = evaluate_model(shipped, test, tta=("flip",))
    merged = _add_stage(card, earlier_card, earlier_history, run) if earlier_card is not None else None
    write_card(card, model_card_markdown(card), ckpt_dir, run, results_dir)
    if merged is not None:  # the book's history: every stage, epochs numbered on
        write_text(Path(results_dir) / name / "history.json", json.dumps(merged, indent=1))
    return card


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


def write_card(card: dict, markdown: str, checkpoint_dir: str | os.PathLike, run_dir: str | os.PathLike,
               results_dir: str | os.PathLike) -> None:
    """Write a shipped model's card (``<name>.json`` and ``<name>.md`` beside its checkpoint) and copy
    the run's ``history.json`` and ``result.json``, with the card, to ``results_dir/<name>/`` for the book."""
    name = card["name"]
    write_text(Path(checkpoint_dir) / f"{name}.json", json.dumps(card, indent=1))
    write_text(Path(checkpoint_dir) / f"{name}.md", markdown)
    dest = Path(results_dir) / name
    for f in ("history.json", "result.json"):
        copy_file(Path(run_dir) / f, dest / f)
    write_text(dest / "card.json", json.dumps(card, indent=1))


def _recipe_from_dict(d: dict) -> Recipe:
    from .train import TrainConfig

    return Recipe(**{**d, "config": TrainConfig(**d["config"])})
