"""The photo pipeline with hands: per person, the face's emotion and each hand's gesture.

Runs ``EmotionPipeline(hands=True)`` (MTCNN + the default ``vgg_cpu-fer2013`` + MediaPipe Hands +
``gestures-asl``) on the example photos, with MediaPipe looking around each person
(``hand_regions="person"``, the default) and, for comparison, once over the whole image
(``"image"``). Writes ``results/07_pipeline/hands.json`` (each photo's result, hands
found and attached, milliseconds per photo: the median of 3 runs at 1 thread) and an
annotated JPEG per photo, ``results/07_pipeline/hands_<photo>.jpg``, which the pipeline
chapter shows where the hand detector is not installed.

Needs the hand detector (onnxruntime: ``pip install "emolib[hands]"``, in the main environment)::

    python benchmarks/pipeline_hands.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emolib.data import data_root  # noqa: E402
from emolib.pipeline import DEFAULT_MODEL, EmotionPipeline, draw  # noqa: E402

PHOTOS = ("ivan.jpg", "obama.jpg", "multiface.jpg", "two_people.jpg", "bald_guys.jpg")


def _ms(pipe: EmotionPipeline, path: Path, repeats: int = 3) -> tuple[float, object]:
    result = pipe(path)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = pipe(path)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times), result


def _count(result) -> tuple[int, int]:
    attached = sum(h is not None for f in result.faces for h in f.hands.values())
    return attached, len(result.hands)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--photos", type=Path, help="default: $EMOLIB_DATA/photos")
    p.add_argument("--out", type=Path, default=REPO / "results/07_pipeline")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    photos = args.photos or data_root() / "photos"
    person = EmotionPipeline(device="cpu", hands=True, hand_regions="person")
    whole = EmotionPipeline(device="cpu", hands=True, hand_regions="image", detector=person.detector)
    record: dict = {
        "what": f"EmotionPipeline(hands=True) on the example photos: MTCNN, {DEFAULT_MODEL}, MediaPipe Hands "
                "(model_complexity from the gestures-asl card), gestures-asl; ms: median of 3 runs, 1 thread",
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "loadavg_before": [round(v, 2) for v in os.getloadavg()]},
        "pipeline": repr(person),
        "photos": {},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        path = photos / name
        if not path.is_file():
            print(f"skipped {name}: not in {photos}")
            continue
        ms, result = _ms(person, path)
        ms_image, result_image = _ms(whole, path)
        attached, loose = _count(result)
        attached_image, loose_image = _count(result_image)
        record["photos"][name] = {
            "faces": len(result.faces), "hands_attached": attached, "hands_unattached": loose, "ms": round(ms, 1),
            "whole_image": {"hands_attached": attached_image, "hands_unattached": loose_image,
                            "ms": round(ms_image, 1)},
            "result": result.to_dict(),
        }
        image = draw(path, result, bars=len(result.faces) <= 2)
        image.thumbnail((1000, 1000))
        image.save(args.out / f"hands_{Path(name).stem}.jpg", quality=85)
        print(f"{name}: {len(result.faces)} faces, {attached} hands attached, {loose} not; {ms:.0f} ms "
              f"(whole image: {attached_image} attached, {ms_image:.0f} ms)", flush=True)
    record["machine"]["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    (args.out / "hands.json").write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out / 'hands.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
