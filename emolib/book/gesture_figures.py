"""Chapter 6's figures and tables: the comparison of the gesture models, photo grids, and the
hand landmarks before and after normalisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from ..fileio import load_image
from ..hands import HAND_CONNECTIONS, normalize_landmarks
from .plots import image_grid

__all__ = ["comparison_markdown", "plot_comparison", "plot_photos", "plot_normalisation"]

def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def comparison_markdown(comparison: Mapping) -> str:
    """The models of ``results/06_hand_gestures/comparison.json`` as a Markdown table, with the thesis's reference."""
    lines = ["| model | input | validation accuracy | macro F1 | no hand | training | ms per hand | hands/s | "
             "hands per CPU-second | parameters |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in comparison["rows"]:
        v = r["val"]
        params = f"{r['parameters']:,}" if r.get("parameters") else "–"
        train = _duration(r["train_seconds"])
        if r.get("landmark_seconds"):
            train += f" (+ landmarks {_duration(r['landmark_seconds'])})"
        lines.append(f"| {r['name']}{' (ships)' if r.get('ships') else ''} | {r['input']} | "
                     f"{100 * v['accuracy']:.2f} % | {v['macro_f1']:.3f} | {v['no_hand']} | {train} | "
                     f"{r['end_to_end_ms_per_hand']:.1f} | {r['hands_per_second']:.0f} | "
                     f"{r.get('hands_per_cpu_second', float('nan')):.0f} | {params} |")
    t = comparison.get("thesis_smoke") or {}
    ref = comparison.get("thesis_reference") or {}
    if ref:
        lines.append(f"| ResNet50v2 (ImageNet weights), as the thesis reports it | 224x224 photo | "
                     f"{100 * ref['val_acc']:.2f} % | – | – | GPU | "
                     f"{t.get('ms_per_image_batch1', float('nan')):.0f} (this CPU) | – | – | "
                     f"{t.get('parameters', 0):,} |")
    return "\n".join(lines)


def plot_comparison(comparison: Mapping, axes=None):
    """Two bar charts: validation accuracy, and hands per second on this CPU; returns the figure."""

    rows = comparison["rows"]
    names = [r["name"].replace(" (", "\n(").replace(" on ", "\non ") for r in rows]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    colors = ["tab:green" if r.get("ships") else "tab:blue" for r in rows]
    acc = [100 * r["val"]["accuracy"] for r in rows]
    bars = axes[0].barh(names, acc, color=colors)
    axes[0].bar_label(bars, labels=[f"{a:.2f} %" for a in acc], fontsize=8, padding=2)
    ref = comparison.get("thesis_reference", {}).get("val_acc")
    if ref:
        axes[0].axvline(100 * ref, color="gray", ls="--", lw=1)
        axes[0].text(100 * ref, -0.55, "thesis (ResNet50 v2)", color="gray", fontsize=8, ha="right", va="bottom")
    lo = min(acc + [100 * (ref or 1)])
    axes[0].set_xlim(max(0, lo - 4), 100.6)
    axes[0].set_xlabel("validation accuracy (%)")
    axes[0].invert_yaxis()
    hps = [r["hands_per_second"] for r in rows]
    bars = axes[1].barh(names, hps, color=colors)
    axes[1].bar_label(bars, labels=[f"{h:.0f}" for h in hps], fontsize=8, padding=2)
    axes[1].set_xlim(0, 1.15 * max(hps + [30]))
    axes[1].axvline(30, color="gray", ls="--", lw=1)
    axes[1].set_xlabel("hands per second on this CPU (dashed: 30)")
    axes[1].invert_yaxis()
    axes[1].set_yticklabels([])
    fig = axes[0].figure
    fig.tight_layout()
    return fig


def plot_photos(paths: Sequence[str], titles: Sequence[str], cols: int = 6, cell: float = 1.6, suptitle: str = ""):
    """A grid of photos with a title each (for failure cases): :func:`emolib.book.plots.image_grid`
    on the decoded files; returns the figure."""
    images = [load_image(p) for p in paths]
    return image_grid(images, list(titles), cols=cols, cell=cell, title=suptitle, fontsize=7)


def plot_normalisation(samples: Sequence[Mapping], classes: Sequence[str], axes=None):
    """Landmarks of a few hands before (pixels) and after :func:`emolib.hands.normalize_landmarks`, by class."""

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    colors = dict(zip(classes, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    seen = set()
    for s in samples:
        raw = np.asarray(s["landmarks"], dtype=np.float32)
        norm = normalize_landmarks(raw, s["handedness"])
        for ax, pts in ((axes[0], raw), (axes[1], norm)):
            for a, b in HAND_CONNECTIONS:
                ax.plot(pts[[a, b], 0], pts[[a, b], 1], color=colors[s["label"]], lw=1, alpha=0.7)
        axes[1].scatter(norm[:, 0], norm[:, 1], s=4, color=colors[s["label"]],
                        label=s["label"] if s["label"] not in seen else None)
        seen.add(s["label"])
    axes[0].set_title("landmarks in pixels (224x224 photos)", fontsize=9)
    axes[1].set_title("normalised: wrist at 0, unit palm, upright, right hand", fontsize=9)
    for ax in axes:
        ax.set_aspect("equal")
        ax.invert_yaxis()
    axes[1].legend(fontsize=8, frameon=False, loc="lower right")
    fig = axes[0].figure
    fig.tight_layout()
    return fig
