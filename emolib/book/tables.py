"""Markdown tables the chapters show: data counts, gestures, a network's layers, recipes, the
pipeline's results on photos and its benchmark."""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict

import torch
from torch import nn

from .. import data as D
from .. import transforms as T
from ..labels import GESTURE_EMOTIONS
from ..models import ResidualUnit, input_config
from ..recipes import get_recipe
from .runs import result_file

__all__ = ["GESTURE_EMOTIONS", "gesture_table", "counts_table", "layer_summary", "layer_table", "recipe_table",
           "photo_table", "hands_table", "pipeline_benchmark_table"]


def gesture_table() -> str:
    """The thesis's gestures as a Markdown table: ASL letter, gesture, paired emotion."""
    letters = {g: l for l, g in D.DEFAULT_LETTER_TO_GESTURE.items()}
    rows = ["| ASL letter | gesture | emotion the thesis pairs it with |", "|---|---|---|"]
    rows += [f"| {letters[g]} | {g} | {GESTURE_EMOTIONS[g]} |" for g in D.GESTURES]
    return "\n".join(rows)


def counts_table(counts: Mapping[str, Mapping[str, int]]) -> str:
    """Per-class image counts of several splits (``{"train": {...}, "test": {...}}``) as a Markdown table
    with shares in per cent and a total row."""
    splits = list(counts)
    classes = list(dict.fromkeys(c for s in splits for c in counts[s]))
    totals = {s: sum(counts[s].values()) for s in splits}
    head = "| class | " + " | ".join(f"{s} | {s} %" for s in splits) + " |"
    rows = [head, "|---|" + "---:|---:|" * len(splits)]
    for c in classes:
        cells = [f"{counts[s].get(c, 0):,} | {100 * counts[s].get(c, 0) / max(totals[s], 1):.1f}" for s in splits]
        rows.append(f"| {c} | " + " | ".join(cells) + " |")
    rows.append("| **total** | " + " | ".join(f"**{totals[s]:,}** | 100.0" for s in splits) + " |")
    return "\n".join(rows)


def _describe(module: torch.nn.Module) -> str:
    """A short description of one layer for :func:`layer_table`."""
    if isinstance(module, ResidualUnit):
        conv = module.body[0]
        shortcut = "identity" if isinstance(module.shortcut, nn.Identity) else "1x1 projection"
        return (f"residual unit {conv.in_channels}→{conv.out_channels}, stride {conv.stride[0]}, "
                f"{shortcut} shortcut")
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size, module.stride
        return f"conv {k[0]}x{k[1]}, {module.out_channels} filters, stride {s[0]}"
    if isinstance(module, nn.BatchNorm2d):
        return "batch norm"
    if isinstance(module, nn.MaxPool2d):
        k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        return f"max-pool {k}x{k}"
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return "global average pool"
    if isinstance(module, nn.Linear):
        return f"dense {module.in_features}→{module.out_features}"
    if isinstance(module, nn.Dropout):
        return f"dropout {module.p}"
    return type(module).__name__


def _rows_of(model: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The modules :func:`layer_summary` reports: children, with ``nn.Sequential`` containers opened."""
    rows = []

    def walk(module, prefix):
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, nn.Sequential):
                walk(child, full + ".")
            else:
                rows.append((full, child))

    walk(model, "")
    return rows


def layer_summary(model: torch.nn.Module, input_size: Sequence[int] = (1, 1, 48, 48),
                  device: str | torch.device = "cpu") -> list[dict]:
    """Run one input of ``input_size`` (batch first) through ``model`` and describe each layer.

    The layers are the model's children, with ``nn.Sequential`` containers opened (so a
    residual unit is one row, a stem of conv, batch norm, ReLU and pool is four). Each row
    is a dict: ``name``, ``what`` (a short description), ``output`` (the output shape
    without the batch dimension, recorded by a forward hook), ``parameters`` (of that
    layer and everything in it) and ``macs`` (multiply-adds of its convolutions and dense
    layers for one image). Works on ``torch.device("meta")`` models too (shapes only).
    """
    rows = _rows_of(model)
    shapes: dict[str, tuple] = {}
    macs: dict[str, int] = {name: 0 for name, _ in rows}
    owner = {id(m): name for name, row in rows for m in row.modules()}
    hooks = []

    def record(name):
        def hook(_module, _inputs, output):
            shapes[name] = tuple(output.shape[1:])
        return hook

    def count(module, _inputs, output):
        name = owner.get(id(module))
        if name is None:
            return
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs[name] += int(output[0].numel()) * k
        elif isinstance(module, nn.Linear):
            macs[name] += module.in_features * module.out_features

    for name, module in rows:
        hooks.append(module.register_forward_hook(record(name)))
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            hooks.append(module.register_forward_hook(count))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(*input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return [
        {"name": name, "what": _describe(module), "output": shapes.get(name),
         "parameters": sum(p.numel() for p in module.parameters()), "macs": macs[name]}
        for name, module in rows
    ]


def layer_table(model: torch.nn.Module, input_size: Sequence[int] = (1, 1, 48, 48), macs: bool = False) -> str:
    """:func:`layer_summary` as a Markdown table (layer, what, output C×H×W, parameters), with totals.

    The total is checked against the model's own parameter count. ``macs=True`` adds a
    column of multiply-adds per image (in millions).
    """
    rows = layer_summary(model, input_size)
    total = sum(p.numel() for p in model.parameters())
    if sum(r["parameters"] for r in rows) != total:  # pragma: no cover - parameters outside the children
        raise ValueError("the layers do not hold all of the model's parameters")
    head = "| layer | what | output (C×H×W) | parameters |" + (" multiply-adds (M) |" if macs else "")
    lines = [head, "|---|---|---|---:|" + ("---:|" if macs else "")]
    for r in rows:
        shape = "×".join(str(d) for d in r["output"]) if r["output"] else "–"
        line = f"| `{r['name']}` | {r['what']} | {shape} | {r['parameters']:,} |"
        lines.append(line + (f" {r['macs'] / 1e6:.1f} |" if macs else ""))
    total_macs = sum(r["macs"] for r in rows)
    lines.append(f"| **total** | | | **{total:,}** |" + (f" **{total_macs / 1e6:.1f}** |" if macs else ""))
    return "\n".join(lines)


_OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD with Nesterov momentum 0.9"}


def recipe_table(*recipes) -> str:
    """Recipes of :mod:`emolib.recipes` (names or ``Recipe`` objects) side by side, as a Markdown table.

    Rows: model, data set, input size, ImageNet weights, epochs, batch size, optimizer and
    learning rate, schedule, label smoothing, weight decay, early stopping, validation
    share, and the augmentation with its settings: the face or hand transform's defaults
    updated by the recipe's ``augment``, or the ``BatchAugment`` settings of a recipe that
    augments whole batches (``config.batch_augment``). The rows "weight average (EMA)" and
    "autocast" appear when one of the recipes uses them.
    """
    names = [r if isinstance(r, str) else f"{r.model}-{r.dataset}" for r in recipes]
    objs = [get_recipe(r) if isinstance(r, str) else r for r in recipes]

    def augmentation(r) -> str:
        if r.config.batch_augment is not None:
            return "`BatchAugment` (whole batches): " + ", ".join(
                f"{k} {v}" for k, v in r.config.batch_augment.items())
        fn = T.hand_train_transform if r.dataset == "asl" else T.face_train_transform
        skip = {"size", "channels", "mean", "std"}
        params = {k: p.default for k, p in inspect.signature(fn).parameters.items() if k not in skip}
        params.update(r.augment)
        return f"`{fn.__name__}`: " + ", ".join(f"{k} {v}" for k, v in params.items())

    def schedule(c) -> str:
        if c.schedule == "plateau":
            return f"ReduceLROnPlateau (factor {c.plateau_factor}, patience {c.plateau_patience})"
        if c.schedule == "onecycle":
            return "one-cycle"
        return c.schedule

    fields = [
        ("model", lambda r: f"`{r.model}`"),
        ("data set", lambda r: r.dataset),
        ("input", lambda r: "{0}×{0}, {1} channel(s)".format(input_config(r.model, size=r.size).size,
                                                             input_config(r.model, size=r.size).channels)),
        ("ImageNet weights", lambda r: "yes" if r.pretrained else "no (from scratch)"),
        ("epochs", lambda r: r.config.epochs),
        ("batch size", lambda r: r.config.batch_size),
        ("optimizer", lambda r: f"{_OPTIMIZER_NAMES.get(r.config.optimizer, r.config.optimizer)}, "
                                f"learning rate {r.config.lr:g}"),
        ("schedule", lambda r: schedule(r.config)),
        ("label smoothing", lambda r: r.config.label_smoothing),
        ("weight decay", lambda r: r.config.weight_decay),
        ("early stopping", lambda r: f"after {r.config.early_stopping} epochs without progress"
         if r.config.early_stopping else "no"),
        ("validation share", lambda r: f"{100 * r.val_fraction:g} % of the training images"),
        ("augmentation", augmentation),
        ("seed", lambda r: asdict(r.config)["seed"]),
    ]
    if any(r.config.ema for r in objs):
        fields.insert(-1, ("weight average (EMA)", lambda r: f"decay {r.config.ema}" if r.config.ema else "no"))
    if any(r.config.amp for r in objs):
        fields.insert(-1, ("autocast", lambda r: "on (bfloat16 on a CPU, float16 on a GPU)" if r.config.amp
                           else "off on a CPU, on (float16) on a GPU" if r.config.amp is None else "off"))
    lines = ["| | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(str(fn(r)) for r in objs) + " |" for label, fn in fields]
    return "\n".join(lines)


def photo_table(results: Sequence[tuple[str, object]], counted: Mapping[str, int]) -> str:
    """The pipeline's results on photos as a Markdown table: photo, size, faces counted by eye,
    faces found, and the emotions (left to right, with their probabilities)."""
    lines = ["| photo | size | faces (by eye) | faces found | emotions, left to right |", "|---|---|---:|---:|---|"]
    for name, result in results:
        w, h = result.image_size
        emotions = ", ".join(f"{f.emotion} {f.probabilities[f.emotion]:.0%}" if f.emotion else f"face {f.score:.2f}"
                             for f in result.faces[:8])
        if len(result.faces) > 8:
            emotions += f", ... ({len(result.faces) - 8} more)"
        lines.append(f"| `{name}` | {w}×{h} | {counted.get(name, '?')} | {len(result.faces)} | {emotions or '–'} |")
    return "\n".join(lines)


def hands_table(result: Mapping | object) -> str:
    """One photo's result read per person, as a Markdown table: face, emotion, left hand, right hand.

    ``result``: a :class:`~emolib.pipeline.PipelineResult` or its ``to_dict()``. A hand
    shows its gesture, the gesture model's probability and the emotion the thesis pairs
    with it; hands attached to no face are listed under the table.
    """
    d = result if isinstance(result, Mapping) else result.to_dict()

    def hand(h) -> str:
        if not h:
            return "–"
        p = (h.get("probabilities") or {}).get(h.get("gesture"))
        emotion = (h.get("extra") or {}).get("emotion")
        return f"{h.get('gesture')}" + (f" {p:.0%}" if p is not None else "") + (f" ({emotion})" if emotion else "")

    lines = ["| person (face, left to right) | face emotion | left hand | right hand |", "|---:|---|---|---|"]
    for k, f in enumerate(d["faces"]):
        emo = f.get("emotion")
        p = (f.get("probabilities") or {}).get(emo)
        lines.append(f"| {k} | {emo or '–'}{f' {p:.0%}' if p is not None else ''} | "
                     f"{hand(f['hands'].get('left'))} | {hand(f['hands'].get('right'))} |")
    loose = d.get("hands") or []
    if loose:
        lines.append("")
        lines.append("Attached to no face: " + ", ".join(f"{h['handedness']} hand {hand(h)}" for h in loose))
    return "\n".join(lines)


def pipeline_benchmark_table(path: str | os.PathLike = "results/benchmarks/pipeline.json") -> str:
    """``benchmarks/bench_pipeline.py``'s results (emolib next to the ``fer`` package) as a Markdown
    table, with the machine and settings in a line under it. ``path`` is relative to the repository root; outside a checkout the packaged reference copy
    is read (:func:`emolib.book.runs.result_file`)."""
    path = result_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"no benchmark results at {path}: run benchmarks/bench_pipeline.py")
    bench = json.loads(path.read_text())
    ours, fer = bench["emolib"], (bench.get("fer") or {}).get("images", {})
    ablation = (bench.get("emolib_facenet_settings") or {}).get("images", {})
    also = bench.get("also") or {}  # other face models timed in the same rounds (--also)
    head = ("| photo | size | faces | emolib (ms) | faces/s | `fer` (ms) | `fer` faces | speed-up | "
            "emolib, facenet's detector settings (ms) |")
    rule = "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    for name in also:
        head += f" with `{name}` (ms) | its speed-up |"
        rule += "---:|---:|"
    lines = [head, rule]
    for name, r in ours.items():
        f = fer.get(name, {})
        speed = f"{f['ms_median'] / r['ms_median']:.1f}×" if f else "–"
        line = (f"| `{name}` | {r['size'][0]}×{r['size'][1]} | {r['faces']} | {r['ms_median']:.0f} | "
                f"{r['faces_per_s']:.1f} | {f.get('ms_median', float('nan')):.0f} | {f.get('faces', '–')} | "
                f"{speed} | {ablation.get(name, {}).get('ms_median', float('nan')):.0f} |")
        for entry in also.values():
            o = entry["images"].get(name, {})
            line += (f" {o.get('ms_median', float('nan')):.0f} | "
                     + (f"{f['ms_median'] / o['ms_median']:.1f}× |" if f and o else "– |"))
        lines.append(line)
    m = bench.get("machine", {})
    load = m.get("loadavg_1min_during")
    lines.append("")
    lines.append(f"Median of {bench['settings']['repeats']} runs, {m.get('cpus', '?')} CPU cores, "
                 f"{m.get('torch_threads', '?')} torch thread(s), measured {bench.get('when', '?')[:10]}"
                 + (f" (1-minute load average {min(load):.1f}-{max(load):.1f})" if load else "") + "; "
                 f"`fer` {(bench.get('fer') or {}).get('version', '?')}; emolib's model: {bench['settings']['model']}"
                 + (f" ({bench['macs_per_face'] / 1e6:.1f} M multiply-adds per face)" if bench.get("macs_per_face")
                    else "")
                 + "".join(f"; `{k}`: {v['macs_per_face'] / 1e6:.1f} M" for k, v in also.items()) + ".")
    return "\n".join(lines)
