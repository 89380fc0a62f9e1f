"""Add the load average sampled during a training run to a shipped model's card (or to the
``result.json`` of a reference run that was not shipped).

The run is started beside a sampler that appends ``HH:MM:SS load1 load5 load15`` every 30 s:

    (while true; do echo "$(date +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)"; sleep 30; done) > load.log &

and after ``emolib export`` this script writes the samples' summary into the card as
``load_average`` (1-minute minimum, maximum and mean, the number of samples, the wall
time they span), in ``emolib/checkpoints/NAME.json``, the card's Markdown and the copy
under ``results/runs/NAME/``; for a run that was not shipped (no card), into
``results/runs/NAME/result.json``, with ``--note`` (how the machine was shared) as its ``note``:

    python tools/card_load_average.py NAME load.log [--from HH:MM:SS] [--to HH:MM:SS] [--note TEXT]

``--from`` and ``--to`` compare the times as text: a window that passes midnight needs the log cut by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emolib.cards import card_markdown  # noqa: E402
from emolib.fileio import write_text  # noqa: E402
from emolib.models import CHECKPOINT_DIR  # noqa: E402


def seconds(hms: str) -> int:
    h, m, s = (int(v) for v in hms.split(":"))
    return 3600 * h + 60 * m + s


def summary(log: Path, start: str | None, end: str | None, every: int = 30) -> dict:
    samples = []
    for n, line in enumerate(log.read_text().splitlines(), 1):
        parts = line.split()
        if len(parts) != 4:
            raise ValueError(f"{log}, line {n}: expected 'HH:MM:SS load1 load5 load15', got {line!r}")
        if (start and parts[0] < start) or (end and parts[0] > end):
            continue
        samples.append((parts[0], float(parts[1])))
    if not samples:
        raise ValueError(f"{log}: no samples between {start or 'the start'} and {end or 'the end'}")
    ones = [v for _, v in samples]
    span = (seconds(samples[-1][0]) - seconds(samples[0][0])) % 86400  # a run may pass midnight
    return {"sampled_every_s": every, "samples": len(ones), "one_minute_min": round(min(ones), 2),
            "one_minute_max": round(max(ones), 2), "one_minute_mean": round(sum(ones) / len(ones), 2),
            "first_sample": samples[0][0], "last_sample": samples[-1][0], "span_seconds": span}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name")
    p.add_argument("log", type=Path)
    p.add_argument("--from", dest="start")
    p.add_argument("--to", dest="end")
    p.add_argument("--note", help="for a run that was not shipped: its note (a shipped card has --note "
                                  "from emolib export)")
    args = p.parse_args()
    load = summary(args.log, args.start, args.end)
    card_path = CHECKPOINT_DIR / f"{args.name}.json"
    result_path = REPO / "results" / "runs" / args.name / "result.json"
    if not card_path.is_file():
        if not result_path.is_file():
            raise SystemExit(f"neither {card_path} nor {result_path} exists")
        result = json.loads(result_path.read_text())
        result["load_average"] = load
        if args.note:
            result["note"] = args.note
        write_text(result_path, json.dumps(result, indent=1))
        print(json.dumps(load))
        return
    card = json.loads(card_path.read_text())
    card["load_average"] = load
    text = json.dumps(card, indent=1)
    write_text(card_path, text)
    write_text(CHECKPOINT_DIR / f"{args.name}.md", card_markdown(card))
    copy = REPO / "results" / "runs" / args.name / "card.json"
    if copy.is_file():
        write_text(copy, text)
    print(json.dumps(load))


if __name__ == "__main__":
    main()
