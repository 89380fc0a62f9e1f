"""Mutation score of the fast suite, module by module, with mutmut (``make mutate``).

    python benchmarks/mutation.py [MODULE ...] [--max-children N]

For each module (default: data labels transforms metrics train pipeline faces video fileio hands;
``hands`` is a package: all of ``emolib/hands/*.py``) it runs ``mutmut run "emolib.<module>.*"``
(configured in pyproject.toml, ``[tool.mutmut]``:
the fast suite, ``-m "not slow"``, each mutant against the tests that cover its
function), then writes ``results/mutation/<module>.json``: the counts per status, the
score ``killed / (killed + survived)`` and every surviving mutant with its diff.
``results/mutation/summary.json`` sums all the module files present. mutmut keeps its
own state under ``mutants/`` (git-ignored), so a module already run is not re-run
unless its code or tests changed. A module whose files are missing, or not listed in
``[tool.mutmut] only_mutate`` (mutmut would make no mutant of it and report nothing), is refused
before anything runs.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "mutation"
MODULES = ["data", "labels", "transforms", "metrics", "train", "pipeline", "faces", "video", "fileio", "hands"]


def source_files(module: str) -> list[str]:
    """The files of ``emolib.<module>`` (a module, or every ``.py`` of a package), relative to the repository."""
    package = REPO / "emolib" / module
    files = sorted(package.glob("*.py")) if package.is_dir() else [REPO / "emolib" / f"{module}.py"]
    return [f.relative_to(REPO).as_posix() for f in files if f.is_file()]


def check_modules(modules: list[str]) -> None:
    """Refuse a module with no source file, or with a file that ``[tool.mutmut] only_mutate`` leaves out."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mutmut"]
    patterns = config.get("only_mutate", [])
    problems = []
    for module in modules:
        files = source_files(module)
        if not files:
            problems.append(f"{module}: no emolib/{module}.py nor emolib/{module}/*.py")
        left_out = [f for f in files if patterns and not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
        if left_out:
            problems.append(f"{module}: {', '.join(left_out)} not in pyproject.toml [tool.mutmut] only_mutate")
    if problems:
        raise SystemExit("cannot run mutmut on:\n  " + "\n  ".join(problems))


def module_path(module: str) -> str:
    """``emolib/<module>.py``, or ``emolib/<module>/`` for a package."""
    return f"emolib/{module}/" if (REPO / "emolib" / module).is_dir() else f"emolib/{module}.py"


def _mutmut(*args: str, check: bool = True) -> str:
    proc = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=REPO, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"mutmut {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def statuses(module: str) -> dict[str, str]:
    """``{mutant name: status}`` of one module, from mutmut's stored results."""
    prefix = f"emolib.{module}."
    out = {}
    for line in _mutmut("results", "--all", "true").splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name.startswith(prefix):
            out[name] = status
    return out


def report(module: str, seconds: float | None, log_tail: str) -> dict:
    st = statuses(module)
    counts: dict[str, int] = {}
    for s in st.values():
        counts[s] = counts.get(s, 0) + 1
    killed, survived = counts.get("killed", 0), counts.get("survived", 0)
    survivors = []
    for name in sorted(n for n, s in st.items() if s in ("survived", "no tests")):
        diff = _mutmut("show", name, check=False)
        survivors.append({"mutant": name, "status": st[name], "diff": "\n".join(diff.splitlines()[1:])})
    result = {
        "module": module_path(module),
        "files": source_files(module),
        "tool": "mutmut 3.8.1 (pyproject.toml [tool.mutmut])",
        "tests": 'fast suite, pytest -m "not slow" (tests each mutant against the tests covering its function)',
        "mutants": len(st),
        "counts": counts,
        "score": killed / (killed + survived) if killed + survived else None,
        "score_note": "killed / (killed + survived); timeouts and mutants no test reaches are listed in counts",
        "seconds": round(seconds, 1) if seconds is not None else None,
        "loadavg_after": open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None,
        "survivors": survivors,
        "log_tail": log_tail,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{module}.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def summary() -> dict:
    rows, killed, survived = {}, 0, 0
    for module in MODULES:
        path = OUT / f"{module}.json"
        if not path.exists():
            rows[module] = "not run"
            continue
        r = json.loads(path.read_text())
        k, s = r["counts"].get("killed", 0), r["counts"].get("survived", 0)
        killed, survived = killed + k, survived + s
        rows[module] = {"mutants": r["mutants"], "killed": k, "survived": s, "score": r["score"],
                        "other": {c: n for c, n in r["counts"].items() if c not in ("killed", "survived")}}
    out = {"modules": rows, "killed": killed, "survived": survived,
           "score": killed / (killed + survived) if killed + survived else None}
    (OUT / "summary.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", default=MODULES, choices=MODULES + [[]], metavar="MODULE")
    p.add_argument("--max-children", type=int, default=2)
    p.add_argument("--report-only", action="store_true", help="rewrite the JSON from mutmut's stored results")
    args = p.parse_args()
    check_modules(args.modules)
    for module in args.modules:
        seconds, tail = None, ""
        if not args.report_only:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children),
                                   f"emolib.{module}.*"], cwd=REPO, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            tail = "\n".join((proc.stdout + proc.stderr).replace("\r", "\n").splitlines()[-15:])
            if proc.returncode != 0:
                print(tail, file=sys.stderr)
                raise SystemExit(f"mutmut run failed for {module} ({proc.returncode})")
        r = report(module, seconds, tail)
        print(f"{module:12s} mutants {r['mutants']:4d}  {r['counts']}  score "
              f"{r['score'] if r['score'] is None else round(r['score'], 3)}", flush=True)
    s = summary()
    print(f"all modules run so far: killed {s['killed']}, survived {s['survived']}, score {s['score']}")


if __name__ == "__main__":
    main()
