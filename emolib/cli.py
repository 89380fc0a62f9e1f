"""Command line: ``emolib train``, ``emolib evaluate``, ``emolib models`` (also ``python -m emolib``)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .data import DatasetFormatError, DatasetNotFoundError, ImageFolderDataset
from .experiment import run_recipe, ship
from .fileio import CheckpointError, FolderBusyError
from .gesture_data import gesture_report
from .gestures import evaluate_gestures, is_gesture_model, landmark_source
from .hands import HandsUnavailableError
from .metrics import classification_report, evaluate_probs, format_report
from .models import count_parameters, create_model, list_models, list_pretrained, load_model, model_card
from .onnx_export import export_onnx, onnx_names
from .pipeline_cli import register
from .recipes import LANDMARK_MODELS, RECIPES, Recipe, get_recipe
from .train import ResumeMismatchError, TrainConfig, predict
from .transforms import eval_transform

__all__ = ["main"]


def _cmd_train(args: argparse.Namespace) -> int:
    if args.recipe:
        recipe = get_recipe(args.recipe, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            device=args.device, seed=args.seed, max_batches=args.max_batches)
    else:
        if not (args.model and args.dataset):
            print("emolib train: give --recipe, or --model and --dataset", file=sys.stderr)
            return 2
        base = RECIPES.get(f"{args.model}-{args.dataset}")
        cfg = base.config if base else TrainConfig()
        recipe = Recipe(args.model, args.dataset, cfg, pretrained=bool(base and base.pretrained),
                        size=base.size if base else None)
        overrides = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, device=args.device,
                         seed=args.seed, max_batches=args.max_batches)
        recipe = replace(recipe, config=replace(recipe.config, **{k: v for k, v in overrides.items()
                                                                   if v is not None}))
    if args.num_workers is not None:
        recipe = replace(recipe, config=replace(recipe.config, num_workers=args.num_workers))
    # a landmark model reads hand landmarks: the hand detector (inference) is passed in from here
    landmarks = landmark_source(progress=True) if recipe.model in LANDMARK_MODELS else None
    try:
        result = run_recipe(recipe, args.out, root=args.data, limit=args.limit,
                            pretrained=False if args.no_pretrained else None, init_from=args.init_from,
                            new_stage=args.new_stage, landmarks=landmarks)
    except (CheckpointError, FolderBusyError, ResumeMismatchError, DatasetNotFoundError, DatasetFormatError,
            HandsUnavailableError) as err:
        print(f"emolib train: {err}", file=sys.stderr)
        return 2
    summary = {k: result.get(k) for k in ("model", "dataset", "parameters", "epochs_run", "best_val_acc",
                                          "train_seconds")}
    if "test" in result:
        summary["test_accuracy"] = result["test"]["accuracy"]
    print(json.dumps(summary))
    return 0


def _evaluate_gestures(args: argparse.Namespace) -> int:
    """``emolib evaluate`` for gesture models (:func:`emolib.gestures.is_gesture_model`)."""
    try:
        tta = tuple(t for t in (getattr(args, "tta", "") or "").split(",") if t)
        result = evaluate_gestures(args.model, args.data, tta=tta,
                                   progress=not getattr(args, "json", False))
    except HandsUnavailableError as err:
        print(f"emolib evaluate: {args.model} is a landmark model: {err}", file=sys.stderr)
        return 2
    except (DatasetNotFoundError, DatasetFormatError, CheckpointError, ValueError) as err:
        print(f"emolib evaluate: {err}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(result))
        return 0
    # the confusion matrix holds the photos with a hand (rows: true class); each class's photos
    # without one are a miss, predicted -1, as gesture_metrics counts them
    cm = np.asarray(result["confusion"])
    no_hand = [result.get("no_hand_per_class", {}).get(c, 0) for c in result["classes"]]
    y_true = np.concatenate([np.repeat(i, row.sum() + no_hand[i]) for i, row in enumerate(cm)])
    y_pred = np.concatenate([np.concatenate([np.repeat(np.arange(len(cm)), row), np.full(no_hand[i], -1)])
                             for i, row in enumerate(cm)])
    report = gesture_report(y_true, y_pred, result["classes"])
    print(format_report(report))
    print(f"\naccuracy {result['accuracy']:.4f} on {result['n']} images; macro AUC {result['auc']:.4f}")
    if result["kind"] == "landmarks":
        print(f"no hand found in {result['no_hand']} image(s) (counted as errors); accuracy on the "
              f"{result['hands_found']} with a hand {result['accuracy_with_hand']:.4f}")
    if result["skipped"]:
        print(f"{result['skipped']} unreadable file(s) skipped")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if is_gesture_model(args.model):
        return _evaluate_gestures(args)
    try:
        model = load_model(args.model)
    except CheckpointError as err:
        print(f"emolib evaluate: {err}", file=sys.stderr)
        return 2
    cfg = model.input_config
    classes = tuple(model.classes)
    folder_map = {c: c for c in classes}
    meta = getattr(model, "meta", {}) or {}
    folder_map.update(meta.get("folder_to_class", {}))
    try:
        ds = ImageFolderDataset(args.data, classes, folder_map, mode="L" if cfg.channels == 1 else "RGB",
                                size=meta.get("stored_size", cfg.size),
                                transform=eval_transform(cfg.size, cfg.channels, cfg.mean, cfg.std))
    except (DatasetNotFoundError, DatasetFormatError) as err:
        print(f"emolib evaluate: {err}", file=sys.stderr)
        return 2
    tta = tuple(t for t in (args.tta or "").split(",") if t)
    probs, targets = predict(model, ds, tta=tta)
    result = evaluate_probs(targets.numpy(), probs.numpy(), classes)
    result.update(model=str(args.model), data=str(args.data), skipped=len(ds.skipped), skipped_files=ds.skipped)
    if args.json:
        print(json.dumps(result))
    else:
        print(format_report(classification_report(targets.numpy(), probs.argmax(1).numpy(), classes)))
        print(f"\naccuracy {result['accuracy']:.4f} on {result['n']} images; macro AUC {result['auc']:.4f}")
        if ds.skipped:
            print(f"{len(ds.skipped)} unreadable file(s) skipped")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    if args.onnx:
        return _cmd_export_onnx(args)
    if not (args.run and args.name and args.command):
        print("emolib export: give RUN --name --command (ship a run), or --onnx NAME", file=sys.stderr)
        return 2
    try:
        card = ship(args.run, args.name, args.command, half=not args.fp32, root=args.data, note=args.note,
                    checkpoint_dir=args.checkpoint_dir, results_dir=args.results_dir)
    except (CheckpointError, FileNotFoundError, DatasetFormatError) as err:
        print(f"emolib export: {err}", file=sys.stderr)
        return 2
    summary = {k: card.get(k) for k in ("name", "parameters", "size_bytes")}
    if "test" in card or "val" not in card:
        summary["test_accuracy"] = card.get("test", {}).get("accuracy")
    else:  # a gesture model: its test photos are kept elsewhere
        summary["val_accuracy"] = card["val"]["accuracy"]
    print(json.dumps(summary))
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    if args.onnx not in onnx_names() and not Path(args.onnx).is_file():
        print(f"emolib export: --onnx takes one of {', '.join(onnx_names())} or a checkpoint file, "
              f"not {args.onnx!r}", file=sys.stderr)
        return 2
    try:
        paths = export_onnx(args.onnx, args.out)
    except (CheckpointError, FileNotFoundError) as err:
        print(f"emolib export: {err}", file=sys.stderr)
        return 2
    for path in paths:
        print(json.dumps({"onnx": str(path), "size_bytes": path.stat().st_size}))
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    for name in list_models():
        with torch.device("meta"):  # shapes only: no memory, no initialisation
            n = count_parameters(create_model(name))
        print(f"{name:20s} {n:>12,d} parameters")
    print("\nshipped checkpoints:")
    for name in list_pretrained():
        card = model_card(name)
        acc = card.get("test", {}).get("accuracy")
        val = card.get("val", {}).get("accuracy")
        print(f"  {name:24s} test accuracy {acc:.4f}" if acc is not None else
              f"  {name:24s} validation accuracy {val:.4f}" if val is not None else f"  {name}")
    return 0


def _cmd_serverext(args: argparse.Namespace) -> int:
    try:
        from . import serverext
    except ImportError as err:
        print(f"error: the Jupyter server extension needs jupyter_server ({err}); pip install jupyterlab",
              file=sys.stderr)
        return 2
    if args.action != "status":
        path = serverext.enable(args.action == "enable", user=args.user)
        print(f"wrote {path}")
    state = "enabled" if serverext.is_enabled() else "not enabled"
    print(f"emolib.serverext (TCP_NODELAY on kernel websockets) is {state} for Jupyter servers started from "
          f"{sys.prefix}" + ("; restart a running server" if args.action != "status" else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emolib", description="Emotion recognition from faces and hands.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (resumes if OUT already holds a run)")
    t.add_argument("--recipe", help="a named recipe from emolib.recipes (e.g. baseline-fer2013)")
    t.add_argument("--model", help="model name (see 'emolib models')")
    t.add_argument("--dataset", choices=["fer2013", "rafdb", "asl"])
    t.add_argument("--data", type=Path, help="data root (default: $EMOLIB_DATA/<dataset>)")
    t.add_argument("--out", type=Path, required=True, help="output folder (checkpoints, history, result)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--device")
    t.add_argument("--limit", type=int, help="use at most this many training images (smoke runs)")
    t.add_argument("--max-batches", type=int, help="cap the batches per epoch (smoke runs)")
    t.add_argument("--no-pretrained", action="store_true", help="do not load ImageNet weights")
    t.add_argument("--init-from", help="start from this shipped model or checkpoint's weights (same architecture)")
    t.add_argument("--num-workers", type=int, help="data-loading processes (default: the recipe's)")
    t.add_argument("--new-stage", action="store_true",
                   help="OUT holds a run made with other settings or data: continue from its weights as a new "
                        "stage with these settings, recorded in history.json and the model card (without this "
                        "flag such a resume is refused)")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="evaluate a model on a folder of class sub-folders")
    e.add_argument("--model", required=True, help="a shipped name (baseline-fer2013) or a checkpoint file")
    e.add_argument("--data", type=Path, required=True, help="a folder with one sub-folder per class")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--tta", help="test-time augmentation, e.g. 'flip' or 'flip,shift'")
    e.set_defaults(func=_cmd_evaluate)

    x = sub.add_parser("export", help="ship a finished run as a named checkpoint with a model card, "
                                      "or (--onnx) write ONNX files for the browser")
    x.add_argument("run", type=Path, nargs="?", help="the run folder (holds result.json and model.pt)")
    x.add_argument("--name", help="checkpoint name, <model>-<dataset> (e.g. baseline-fer2013)")
    x.add_argument("--command", help="the command that trained it (recorded in the card)")
    x.add_argument("--onnx", metavar="NAME", help="write ONNX file(s) instead: a shipped emotion model, "
                                                  "gestures-asl, hands, mtcnn, blazeface or all "
                                                  "(see emolib.onnx_export)")
    x.add_argument("--out", type=Path, default=Path("onnx"), help="folder for --onnx (default: ./onnx)")
    x.add_argument("--data", type=Path, help="data root for the test metrics (default: $EMOLIB_DATA/<dataset>)")
    x.add_argument("--note", default="", help="a remark for the card, e.g. how the machine was shared")
    x.add_argument("--fp32", action="store_true", help="store float32 weights (default: float16)")
    x.add_argument("--checkpoint-dir", type=Path, help="where the checkpoint and its card go (default: emolib's "
                                                       "shipped checkpoints, emolib/checkpoints/)")
    x.add_argument("--results-dir", type=Path, default=Path("results/runs"),
                   help="where the run's history, result and card are copied for the book (default: results/runs)")
    x.set_defaults(func=_cmd_export)

    m = sub.add_parser("models", help="list models and shipped checkpoints")
    m.set_defaults(func=_cmd_models)

    j = sub.add_parser("serverext", help="turn on the Jupyter server setting that speeds up the webcam widget")
    j.add_argument("action", choices=["enable", "disable", "status"])
    j.add_argument("--user", action="store_true", help="in ~/.jupyter instead of this Python environment")
    j.set_defaults(func=_cmd_serverext)

    register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
