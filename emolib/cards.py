"""Model cards: the one writer of the card of a shipped checkpoint (a foundation module).

A card is a JSON object (``<name>.json`` beside ``<name>.pt``) and its Markdown rendering
(``<name>.md``), written for every shipped model by :func:`write_card`, which
:func:`emolib.experiment.ship` calls for face and gesture models alike. Every card has the
same keys (``name``, ``arch``, ``dataset``, ``classes``, ``parameters``, ``input``, ``data``,
``recipe``, ``command``, ``epochs_run``, ``best_epoch``, ``best_val_acc``, ``train_seconds``,
``device``, ``stored_as``, ``size_bytes``) and its measurements of the weights *as stored*:
``test`` (and ``test_tta_flip``) where the dataset has a test split, ``val`` where the test
photos are kept elsewhere (the gesture models: photos without a hand count as errors). A
gesture card adds what inference needs (``kind``, ``normalization``, ``detector``,
``letter_to_gesture``, ``gesture_emotions``, ``requires``). A card may record ``multiply_adds``
(``per_face``, and ``pipeline_default`` with its ``pipeline_default_per_face``), rendered as one line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .fileio import copy_file, write_text

__all__ = ["write_card", "card_markdown"]


def write_card(card: dict, checkpoint_dir: str | os.PathLike, run_dir: str | os.PathLike | None = None,
               results_dir: str | os.PathLike | None = None) -> None:
    """Write a shipped model's card, ``<name>.json`` and ``<name>.md`` (:func:`card_markdown`), beside its checkpoint.

    With ``results_dir``, also copy the run's ``history.json`` and ``result.json`` (from
    ``run_dir``), with the card as ``card.json``, to ``results_dir/<name>/`` for the book.
    """
    name = card["name"]
    write_text(Path(checkpoint_dir) / f"{name}.json", json.dumps(card, indent=1))
    write_text(Path(checkpoint_dir) / f"{name}.md", card_markdown(card))
    if results_dir is not None:
        dest = Path(results_dir) / name
        if run_dir is not None:
            for f in ("history.json", "result.json"):
                copy_file(Path(run_dir) / f, dest / f)
        write_text(dest / "card.json", json.dumps(card, indent=1))


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _optimizer(cfg: dict) -> str:
    return {"adamw": "AdamW", "sgd": "SGD (Nesterov)"}.get(cfg.get("optimizer", "adam"), "Adam")


def _recipe_line(card: dict) -> str:
    cfg = card["recipe"]["config"]
    stages = card.get("stages") or []
    name = f" `{card['recipe_name']}`" if card.get("recipe_name") else ""
    augment = card["recipe"].get("augment")
    kd = cfg.get("distill")
    return (f"- recipe{name}: {_optimizer(cfg)}"
            f"{'' if stages else ' lr ' + str(cfg['lr'])}, batch {cfg['batch_size']}, schedule {cfg['schedule']}, "
            f"label smoothing {cfg['label_smoothing']}, weight decay {cfg['weight_decay']}"
            + (f", augmentation {augment}" if augment else "")
            + (f", distilled from `{kd['teacher']}` (weight {kd.get('weight', 0.7)}, temperature "
               f"{kd.get('temperature', 4.0)}; its logits computed once)" if kd else "")
            + f", {card['epochs_run']} epochs run{f' in {len(stages)} stages' if stages else ''} "
            + (f"(best validation epoch {card['best_epoch']})" if card.get("best_epoch") is not None
               else "(the weights after the last epoch: no best-epoch selection)"))


def _header(card: dict) -> list[str]:
    inp = card["input"]
    d = card["data"]
    stages = card.get("stages") or []
    hands = f" ({d['train_hands']:,} with a hand found)" if d.get("train_hands") is not None else ""
    emotions = card.get("gesture_emotions") or {}
    lines = [f"# Model card: {card['name']}", ""]
    if card.get("description"):
        lines.append(f"- what: {card['description']}")
    lines += [
        f"- architecture: `{card['arch']}`, {card['parameters']:,} parameters, input "
        + (card.get("input_text") or f"{inp['size']}x{inp['size']}x{inp['channels']}"),
    ]
    macs = card.get("multiply_adds")
    if macs:  # per face, beside the pipeline's default model's
        lines.append(f"- multiply-adds per face: {macs['per_face'] / 1e6:.0f} M, "
                     f"{macs['per_face'] / macs['pipeline_default_per_face']:.1f}x those of "
                     f"`{macs['pipeline_default']}` (the pipeline's default model, "
                     f"{macs['pipeline_default_per_face'] / 1e6:.0f} M)")
    if card.get("requires"):
        lines.append(f"- needs: {card['requires']}")
    lines += [
        f"- data: {card.get('dataset_text') or card['dataset']}, {d['train_images']:,} training{hands} and "
        f"{d['val_images']:,} validation images ({d.get('split') or 'a stratified split of the training set'}); "
        f"test: {d['test_split']}",
        "- classes: " + ", ".join(f"{c} ({emotions[c]})" if c in emotions else c for c in card["classes"])
        + (" (gesture, with the emotion the thesis pairs it with)" if emotions else ""),
    ]
    if card.get("letter_to_gesture"):
        lines.append("- letters: " + ", ".join(f"{k} {v}" for k, v in card["letter_to_gesture"].items()))
    norm = card.get("normalization")
    if norm:
        lines.append(f"- landmark normalisation: origin {norm.get('origin')}, scale {norm.get('scale')}, left hands "
                     f"mirrored: {norm.get('mirror_left')}, rotated upright: {norm.get('rotate')}, z used: "
                     f"{norm.get('use_z')}")
    threads = f" ({card['torch_threads']} thread(s))" if card.get("torch_threads") else ""
    lines += [
        _recipe_line(card),
        f"- command: `{card['command']}`",
        f"- training time: {card['train_seconds'] / 60:.1f} min on {card['device']}{threads}"
        + (f" ({card['note']})" if card.get("note") and not stages else "")
        + (f"; landmark extraction (once, cached): {card['landmark_seconds'] / 60:.1f} min"
           if card.get("landmark_seconds") else ""),
    ]
    for k, st in enumerate(stages, 1):
        c = st["config"]
        lines.append(f"- stage {k}: {st['epochs_run']} epochs, {_optimizer(c)} lr {c['lr']}, schedule {c['schedule']}, "
                     f"{st['train_seconds'] / 60:.1f} min on {st['device']}; `{st['command']}`"
                     + (f" ({st['note']})" if st.get("note") else ""))
    for st in card.get("run_stages") or []:  # settings changed within one run (emolib train --new-stage)
        if st.get("changed"):
            lines.append(f"- from epoch {st['first_epoch']}, a new stage with other settings: "
                         f"{'; '.join(st['changed'])}")
    lines.append(f"- stored as {card['stored_as']} ({_size(card['size_bytes'])})")
    return lines


def _per_class(metrics: dict, no_hand: bool) -> list[str]:
    extra = " no hand |" if no_hand else ""
    lines = [f"| class | precision | recall | F1 | support |{extra}",
             "|---|---|---|---|---|" + ("---|" if no_hand else "")]
    for c, r in metrics["per_class"].items():
        row = f"| {c} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1-score']:.3f} | {int(r['support'])} |"
        lines.append(row + (f" {metrics.get('no_hand_per_class', {}).get(c, 0)} |" if no_hand else ""))
    return lines


def card_markdown(card: dict) -> str:
    """A model card (as :func:`emolib.experiment.ship` writes it, face or gesture model) as Markdown."""
    lines = _header(card)
    if "test" in card:
        t, tf = card["test"], card.get("test_tta_flip")
        flip = f" ({100 * tf['accuracy']:.2f} % with flip TTA)" if tf else ""
        lines += ["", "## Test metrics (weights as stored)", "",
                  f"accuracy {100 * t['accuracy']:.2f} %{flip}, macro F1 {t['macro_f1']:.3f}, macro AUC "
                  f"{t['auc']:.3f} on {t['n']:,} images", ""] + _per_class(t, False)
    if "val" in card:
        v = card["val"]
        hands = "no_hand" in v
        lines += ["", "## Validation metrics (weights as stored)", "",
                  f"accuracy {100 * v['accuracy']:.2f} % over all {v['n']:,} validation images"
                  + (f" (images where the hand detector found no hand, {v['no_hand']}, count as errors; "
                     f"{100 * v['accuracy_with_hand']:.2f} % on the {v['hands_found']:,} with a hand)" if hands else "")
                  + f", macro F1 {v['macro_f1']:.3f}, macro AUC {v['auc']:.3f}."
                  + ("" if "test" in card else f" Test: {card['data']['test_split']}."), ""] + _per_class(v, hands)
    if card.get("speed", {}).get("text"):
        lines += ["", "## Speed", "", card["speed"]["text"]]
    return "\n".join(lines) + "\n"
