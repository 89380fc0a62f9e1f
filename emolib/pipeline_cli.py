"""``emolib predict``: emotions of the faces in a photo, a folder of photos, or a video.

Wire it into ``emolib/cli.py`` with one line in ``build_parser``::

    from .pipeline_cli import register; register(sub)

and run it standalone with ``python -m emolib.pipeline_cli predict ...``.

Examples::

    emolib predict photo.jpg                          # per face: box, emotion, probabilities, hands
    emolib predict photo.jpg --out annotated.jpg      # also draw boxes and bars
    emolib predict photos/ --json > faces.jsonl       # one JSON object per image and line
    emolib predict clip.mp4 --every 10 --csv clip.csv # every 10th frame, one CSV row per face

Exit status: 0 when at least one input was processed, 1 when none could be, 2 for a
usage error (missing input, unknown model), 130 after Ctrl-C (what was processed until
then is kept: JSON lines and CSV rows are written as they come, annotated images as
each is done).

Annotated images of a folder are named after the whole file name, ``p.jpg`` ->
``p_jpg_emotions.jpg`` and ``p.png`` -> ``p_png_emotions.jpg``, so they never collide;
an output that would replace an input is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from .drawing import draw
from .fileio import VIDEO_EXTENSIONS, PipelineInputError, list_images, save_image
from .models import CheckpointError
from .pipeline import DEFAULT_MODEL, EmotionPipeline, process_video

__all__ = ["register", "build_parser", "main", "annotated_name"]


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``predict`` sub-command to an ``argparse`` sub-parsers object; returns its parser."""
    p = subparsers.add_parser(
        "predict",
        help="find faces and read their emotions in an image, a folder of images or a video",
        description="Find the faces in an image, a folder of images or a video and classify their emotions.",
    )
    p.add_argument("input", type=Path, help="an image, a folder of images, or a video (.mp4 .avi .mov .mkv ...)")
    p.add_argument("--model", default=None,
                   help="a shipped checkpoint name or a checkpoint file (default: vgg_cpu-fer2013)")
    p.add_argument("--out", type=Path,
                   help="annotated output: a file for one image, a folder for a folder or a video's frames")
    p.add_argument("--json", action="store_true", help="one JSON object per image (or video frame) per line")
    p.add_argument("--every", type=int, default=10, help="video: process every N-th frame (default 10)")
    p.add_argument("--csv", type=Path, help="video: write the per-face rows here (default: stdout)")
    p.add_argument("--max-frames", type=int, help="video: stop after this many processed frames")
    p.add_argument("--device", help="cpu, cuda, ... (default: cuda when available)")
    p.add_argument("--contrast", choices=["clahe", "equalize", "none"], default="clahe",
                   help="contrast enhancement of the face crops (default clahe)")
    p.add_argument("--margin", type=float, default=0.2, help="fraction of the box added around the face")
    p.add_argument("--min-face-size", type=int, default=None, help="smallest face, in detection pixels")
    p.add_argument("--max-side", type=int, default=None, help="downscale larger images to this side for detection")
    p.add_argument("--hands", choices=["auto", "on", "off"], default="auto",
                   help="hand gestures per person: auto (when onnxruntime is installed, the default), on "
                        "(fail without it), off")
    p.add_argument("--hand-regions", choices=["image", "person"], default="person",
                   help="look for hands around each person (default; finds the small hands of group photos) "
                        "or in the whole image at once (faster with many faces)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_predict)
    return p


def _pipeline(args: argparse.Namespace):
    kwargs = dict(model=args.model or DEFAULT_MODEL, device=args.device,
                  contrast=None if args.contrast == "none" else args.contrast, margin=args.margin,
                  hands={"auto": "auto", "on": True, "off": False}[args.hands], hand_regions=args.hand_regions)
    if args.min_face_size is not None:
        kwargs["min_face_size"] = args.min_face_size
    if args.max_side is not None:
        kwargs["max_side"] = args.max_side
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # said below, once, without a source line
        pipe = EmotionPipeline(**kwargs)
    if args.hands == "auto" and not pipe.hands_on:
        print(f"emolib predict: hands are off, faces only ({pipe.hands_off_reason})", file=sys.stderr)
    return pipe


def _format_hand(side: str, hand) -> str:
    if hand is None:
        return f"{side} hand -"
    emotion = hand.extra.get("emotion") if hand.extra else None
    p = (hand.probabilities or {}).get(hand.gesture, float("nan"))
    return f"{side} hand {hand.gesture} {p:.2f}" + (f" ({emotion})" if emotion else "")


def _format(result, name: str) -> str:
    w, h = result.image_size
    n = len(result.faces)
    lines = [f"{name}: {n} face{'s' if n != 1 else ''} ({w}x{h})"]
    for k, face in enumerate(result.faces, 1):
        box = ", ".join(f"{v:.0f}" for v in face.box)
        if face.emotion:
            lines.append(f"  face {k}  box [{box}]  score {face.score:.3f}  "
                         f"{face.emotion} {face.probabilities[face.emotion]:.2f}")
            ranked = sorted(face.probabilities.items(), key=lambda kv: -kv[1])
            lines.append("          " + "  ".join(f"{c} {p:.2f}" for c, p in ranked))
        else:
            lines.append(f"  face {k}  box [{box}]  score {face.score:.3f}")
        if result.hands_on:
            lines.append("          " + "   ".join(_format_hand(side, face.hands.get(side))
                                                   for side in ("left", "right")))
    if result.hands_on and result.hands:
        lines.append(f"  {len(result.hands)} hand(s) attached to no face: "
                     + ", ".join(f"{h.handedness} {h.gesture}" for h in result.hands))
    return "\n".join(lines)


def _emit(result, name: str, as_json: bool) -> None:
    if as_json:
        d = result.to_dict()
        d["image"] = name
        print(json.dumps(d), flush=True)
    else:
        print(_format(result, name), flush=True)


def _cmd_predict(args: argparse.Namespace) -> int:
    src: Path = args.input
    if not src.exists():
        print(f"emolib predict: {src}: no such file or folder", file=sys.stderr)
        return 2
    is_video = src.is_file() and src.suffix.lower() in VIDEO_EXTENSIONS
    if args.every < 1:
        print("emolib predict: --every must be at least 1", file=sys.stderr)
        return 2
    try:
        pipe = _pipeline(args)
    except (CheckpointError, ValueError, ImportError) as err:  # ImportError: --hands on without onnxruntime
        print(f"emolib predict: {err}", file=sys.stderr)
        return 2
    if is_video:
        return _predict_video(args, pipe)

    if src.is_dir():
        items = list_images(src)
        if not items:
            print(f"emolib predict: no image files in {src}", file=sys.stderr)
            return 1
        if args.out is not None and args.out.suffix:
            print("emolib predict: for a folder, --out must be a folder", file=sys.stderr)
            return 2
    else:
        items = [src]
    inputs = {p.resolve() for p in items}
    if args.out is not None and not src.is_dir() and args.out.resolve() in inputs:
        print(f"emolib predict: --out {args.out} is the input image; give another file name", file=sys.stderr)
        return 2
    ok, bad, seen = 0, [], 0
    try:
        for name, result, error in pipe.iter_many(items, progress=src.is_dir() and not args.no_progress):
            seen += 1
            if result is None:
                bad.append((name, error))
                if not src.is_dir():
                    print(f"emolib predict: {error}", file=sys.stderr)
                continue
            ok += 1
            _emit(result, name, args.json)
            if args.out is not None:
                _write_annotated(name, result, annotated_name(args.out, Path(name)) if src.is_dir() else args.out,
                                 inputs)
    except KeyboardInterrupt:
        print(f"emolib predict: interrupted after {seen} of {len(items)} image(s); the {ok} result(s) printed "
              f"so far are complete", file=sys.stderr)
        return 130
    if bad and src.is_dir():
        print(f"emolib predict: skipped {len(bad)} unreadable file(s):", file=sys.stderr)
        for name, error in bad:
            print(f"  {error}", file=sys.stderr)
    if src.is_dir():
        print(f"emolib predict: {ok} image(s) processed, {len(bad)} skipped", file=sys.stderr)
    return 0 if ok else 1


def annotated_name(out_dir: Path, image: Path) -> Path:
    """Where ``predict DIR --out OUT`` writes the annotated copy of ``image``: the whole file name is kept
    (``p.jpg`` -> ``OUT/p_jpg_emotions.jpg``), so ``p.jpg`` and ``p.png`` never share an output."""
    return out_dir / f"{image.stem}_{image.suffix.lstrip('.').lower()}_emotions.jpg"


def _write_annotated(name: str, result, target: Path, inputs: set[Path]) -> None:
    if target.resolve() in inputs:
        print(f"emolib predict: not writing {target}: it is one of the input images", file=sys.stderr)
        return
    try:
        save_image(draw(name, result), target)
    except (OSError, ValueError, PipelineInputError) as err:
        print(f"emolib predict: could not write {target}: {err}", file=sys.stderr)


def _predict_video(args: argparse.Namespace, pipe) -> int:
    done = {"frames": 0, "rows": 0}

    def each(index, t, img, result):
        done["frames"] += 1
        done["rows"] += max(1, len(result.faces))
        if args.json:
            d = result.to_dict()
            d.update(image=str(args.input), frame=index, time_s=round(t, 4))
            print(json.dumps(d), flush=True)

    # CSV rows go out as each frame is done: to --csv, or to stdout unless --json is asked for
    out_csv = args.csv if args.csv is not None else (None if args.json else sys.stdout)
    try:
        process_video(args.input, every=args.every, pipeline=pipe, out_csv=out_csv, max_frames=args.max_frames,
                      progress=not args.no_progress, out_frames=args.out, callback=each)
    except (PipelineInputError, ImportError) as err:
        print(f"emolib predict: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        where = f" in {args.csv}" if args.csv is not None else ""
        print(f"emolib predict: interrupted after {done['frames']} frame(s); their {done['rows']} row(s) are "
              f"kept{where}", file=sys.stderr)
        return 130
    if args.csv is not None:
        print(f"emolib predict: {done['rows']} row(s) written to {args.csv}", file=sys.stderr)
    return 0 if done["frames"] else 1


def build_parser() -> argparse.ArgumentParser:
    """A parser with only the ``predict`` sub-command (the full CLI is :mod:`emolib.cli`)."""
    p = argparse.ArgumentParser(prog="emolib", description="Emotion recognition from faces.")
    sub = p.add_subparsers(dest="command", required=True)
    register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """``main(["predict", "photo.jpg", "--json"])``; the leading ``"predict"`` may be left out."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "predict":
        argv = ["predict", *argv]
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
