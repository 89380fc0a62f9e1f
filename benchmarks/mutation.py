"""Mutation score of the fast suite, module by module, with mutmut (``make mutate``).

    python benchmarks/mutation.py [MODULE ...] [--tests own|fast] [--max-children N] [--stop-at HH:MM]
    python benchmarks/mutation.py --rerun MUTANT [MUTANT ...]   # e.g. survivors, after new tests
    python benchmarks/mutation.py --report-only [MODULE ...]    # rewrite the JSON from mutmut's state
    python benchmarks/mutation.py --time-fast-suite NOTE       # wall time of pytest -m "not slow"

For each module (default: the order of ``MODULES``; ``hands`` is a package: all of
``emolib/hands/*.py``) it runs ``mutmut run "emolib.<module>.*"`` (configured in pyproject.toml,
``[tool.mutmut]``: the fast suite, ``-m "not slow"``; each mutant is run against the tests that
reach its function), then writes ``results/mutation/<module>.json``: the counts per status, the
score ``killed / (killed + survived)``, the stricter ``killed / (killed + survived + no tests)``,
every surviving mutant with its diff (and a one-line reading of it, kept from the previous JSON
when the diff is the same), the command, the time and the load average.
``results/mutation/summary.json`` sums the module files present.

``--tests own`` (the default) restricts pytest to the module's own test files (``TESTS`` below)
by ignoring every other ``tests/test_*.py`` through ``PYTEST_ADDOPTS``: a module then takes
minutes instead of hours on two cores. The score is then a lower bound of the fast suite's: a
mutant killed by the module's own tests is killed by the whole fast suite too, but a survivor
might still be killed by another test file. ``--tests fast`` uses the whole fast suite.

mutmut keeps its own state under ``mutants/`` (git-ignored). A ``mutmut run`` with a name
pattern re-runs every mutant matching it. ``--stop-at HH:MM`` (UTC) interrupts mutmut at that
time: the mutants not run yet are counted as ``not checked`` and the remaining modules skipped.
Run it under ``nice -n 19`` on a shared machine. A module whose files are missing, or not listed
in ``[tool.mutmut] only_mutate`` (mutmut would make no mutant of it), is refused before anything
runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "mutation"
# smallest and most central first
MODULES = ["metrics", "labels", "transforms", "data", "fileio", "video", "faces", "pipeline", "train",
           "hands"]
# each module's own test files (those that call most of its public names; not the ones that train a model
# to reach it, such as test_train_batch.py for transforms), for --tests own
TESTS = {
    "metrics": ["tests/test_metrics.py"],
    "labels": ["tests/test_labels.py"],
    "transforms": ["tests/test_transforms.py"],
    "data": ["tests/test_data.py", "tests/test_labels.py"],
    "fileio": ["tests/test_reliability.py", "tests/test_pipeline.py", "tests/test_geometry.py",
               "tests/test_train_batch.py"],
    "video": ["tests/test_pipeline.py", "tests/test_geometry.py"],
    "faces": ["tests/test_pipeline.py", "tests/test_geometry.py"],
    "pipeline": ["tests/test_pipeline.py", "tests/test_geometry.py", "tests/test_pipeline_hands.py",
                 "tests/test_reliability.py"],
    "train": ["tests/test_train.py", "tests/test_train_batch.py", "tests/test_reliability.py"],
    "hands": ["tests/test_hands.py", "tests/test_pipeline_hands.py", "tests/test_gesture_training.py"],
}


def source_files(module: str) -> list[str]:
    """The files of ``emolib.<module>`` (one file, or each ``.py`` of a package), relative to the repo."""
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
            problems.append(f"{module}: {', '.join(left_out)} not in [tool.mutmut] only_mutate")
        missing = [t for t in TESTS.get(module, []) if not (REPO / t).is_file()]
        if missing:
            problems.append(f"{module}: its test files {', '.join(missing)} are missing")
    if problems:
        raise SystemExit("cannot run mutmut on:\n  " + "\n  ".join(problems))


def module_path(module: str) -> str:
    """``emolib/<module>.py``, or ``emolib/<module>/`` for a package."""
    return f"emolib/{module}/" if (REPO / "emolib" / module).is_dir() else f"emolib/{module}.py"


def module_of(mutant: str) -> str:
    """``emolib.hands.warp.x_f__mutmut_3`` -> ``hands``."""
    return mutant.split(".")[1]


def mutmut_env(test_files: list[str] | None) -> dict[str, str]:
    """The environment of mutmut: pytest limited to ``test_files`` (None: the whole fast suite), and the
    real data where the repository's tests would find it (they run from ``mutants/``, one level deeper)."""
    env = dict(os.environ)
    data = REPO.parent / "shared" / "data"
    if "EMOLIB_DATA" not in env and data.is_dir():
        env["EMOLIB_DATA"] = str(data)
    if test_files is not None:
        ignore = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "tests").glob("test_*.py")
                        if p.relative_to(REPO).as_posix() not in test_files)
        env["PYTEST_ADDOPTS"] = " ".join(f"--ignore={p}" for p in ignore)
    return env


def mutmut_command() -> list[str]:
    """The ``mutmut`` console script next to this Python (``python -m mutmut`` re-imports its main module)."""
    script = Path(sys.executable).with_name("mutmut")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mutmut"]


def _mutmut(*args: str, check: bool = True) -> str:
    proc = subprocess.run([*mutmut_command(), *args], check=False, cwd=REPO, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise SystemExit(f"mutmut {' '.join(args)} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
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


def loadavg() -> list[str] | None:
    return open("/proc/loadavg").read().split()[:3] if os.path.exists("/proc/loadavg") else None


def run_mutmut(patterns: list[str], *, max_children: int, test_files: list[str] | None,
               stop_at: dt.datetime | None, log: Path) -> dict:
    """Run ``mutmut run PATTERN...``; interrupt it at ``stop_at``. Returns what the JSON keeps of the run."""
    cmd = [*mutmut_command(), "run", "--max-children", str(max_children), *patterns]
    env = mutmut_env(test_files)
    started, before, t0 = dt.datetime.now(dt.timezone.utc), loadavg(), time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    interrupted = False
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        while proc.poll() is None:
            if stop_at and dt.datetime.now(dt.timezone.utc) >= stop_at and not interrupted:
                interrupted = True
                proc.send_signal(signal.SIGINT)  # mutmut stops its workers and keeps the finished results
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(2)
    seconds = time.perf_counter() - t0
    text = log.read_text(errors="replace").replace("\r", "\n")
    tail = "\n".join(line for line in text.splitlines()[-400:] if line.strip())
    if proc.returncode != 0 and not interrupted:
        print(tail[-3000:], file=sys.stderr)
        raise SystemExit(f"mutmut run failed ({proc.returncode}); log in {log}")
    return {
        "command": " ".join(shlex.quote(c) for c in cmd),
        "pytest_addopts": env.get("PYTEST_ADDOPTS"),
        "nice": os.nice(0),
        "tests": test_files or "fast suite (tests/, without the browser and notebook files)",
        "started_utc": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "interrupted_at_stop_time": interrupted,
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "log_tail": "\n".join(tail.splitlines()[-12:]),
    }


def report(module: str, run: dict | None) -> dict:
    """Write ``results/mutation/<module>.json`` from mutmut's state, keeping the readings of survivors whose
    diff is unchanged, the earlier runs, and the survivors of earlier runs that are killed now."""
    path = OUT / f"{module}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old_survivors = {s["mutant"]: s for s in old.get("survivors", []) + old.get("killed_since", [])
                     if old.get("files") == source_files(module)}
    st = statuses(module)
    counts: dict[str, int] = {}
    for s in st.values():
        counts[s] = counts.get(s, 0) + 1
    killed, survived, untested = counts.get("killed", 0), counts.get("survived", 0), counts.get("no tests", 0)
    survivors, killed_since = [], []
    for name in sorted(st):
        prev = old_survivors.get(name)
        if st[name] in ("survived", "no tests"):
            diff = "\n".join(_mutmut("show", name, check=False).splitlines()[1:])
            reading = prev.get("reading", "") if prev and prev.get("diff") == diff else ""
            survivors.append({"mutant": name, "status": st[name], "reading": reading, "diff": diff})
        elif st[name] == "killed" and prev and prev["status"] in ("survived", "no tests", "killed"):
            killed_since.append({**prev, "status": "killed"})
    runs = old.get("runs", []) if old.get("files") == source_files(module) else []
    if run is not None:
        runs.append({**run, "counts_after": counts})
    result = {
        "module": module_path(module),
        "files": source_files(module),
        "tool": "mutmut 3.8.1 (pyproject.toml [tool.mutmut])",
        "tests": runs[-1]["tests"] if runs else None,
        "mutants": len(st),
        "counts": counts,
        "score": round(killed / (killed + survived), 4) if killed + survived else None,
        "score_with_untested": round(killed / (killed + survived + untested), 4) if st else None,
        "score_note": "score: killed / (killed + survived); score_with_untested also counts the mutants no "
                      "selected test reaches ('no tests') as missed; 'not checked': not run before the stop "
                      "time; timeouts are in counts only",
        "runs": runs,
        "survivors": survivors,
        "killed_since": killed_since,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


def summary() -> dict:
    rows, killed, survived, untested = {}, 0, 0, 0
    for module in MODULES:
        path = OUT / f"{module}.json"
        if not path.exists():
            rows[module] = "not run"
            continue
        r = json.loads(path.read_text())
        c = r["counts"]
        k, s, u = c.get("killed", 0), c.get("survived", 0), c.get("no tests", 0)
        killed, survived, untested = killed + k, survived + s, untested + u
        rows[module] = {"mutants": r["mutants"], "killed": k, "survived": s, "no tests": u,
                        "not checked": c.get("not checked", 0), "score": r["score"],
                        "tests": r.get("tests"),
                        "other": {n: v for n, v in c.items() if n not in ("killed", "survived", "no tests")}}
    out = {"modules": rows, "killed": killed, "survived": survived, "no tests": untested,
           "score": round(killed / (killed + survived), 4) if killed + survived else None,
           "score_with_untested": (round(killed / (killed + survived + untested), 4)
                                   if killed + survived else None),
           "note": "sums of the modules run so far; see each module's file for its tests, command and load"}
    (OUT / "summary.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


def time_fast_suite(note: str) -> dict:
    """Run the fast suite once (``pytest -m "not slow" -q``) and write ``results/mutation/fast_suite.json``:
    wall time, pytest's last line, the load average before and after. Run it alone (``flock``)."""
    cmd = [sys.executable, "-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider", "--durations=15"]
    env = mutmut_env(None)
    env.pop("PYTEST_ADDOPTS", None)
    started, before, t0 = dt.datetime.now(dt.timezone.utc), loadavg(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    result = {
        "command": "python -m pytest -m 'not slow' -q -p no:cacheprovider --durations=15",
        "EMOLIB_DATA": env.get("EMOLIB_DATA"),
        "started_utc": started.isoformat(timespec="seconds"),
        "seconds": round(seconds, 1),
        "limit_seconds": 180,
        "under_limit": seconds < 180,
        "returncode": proc.returncode,
        "pytest_summary": lines[-1] if lines else proc.stderr[-500:],
        "failed": [line.split()[1] for line in lines if line.startswith("FAILED ")],
        "slowest": [line for line in lines if line.split()[:1] and line.split()[0].endswith("s")
                    and line.split()[0][:-1].replace(".", "").isdigit()][:15],
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "cpus": os.cpu_count(),
        "note": note,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fast_suite.json").write_text(json.dumps(result, indent=1) + "\n")
    if proc.returncode != 0:
        print("\n".join(lines[-40:]), file=sys.stderr)
    return result


def stop_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    hh, mm = (int(x) for x in text.split(":"))
    t = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return t if t > now else t + dt.timedelta(days=1)  # a time already past today is tomorrow's


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="*", metavar="MODULE", help=f"default: {' '.join(MODULES)}")
    p.add_argument("--tests", choices=["own", "fast"], default="own",
                   help="own: the module's own test files (TESTS); fast: the whole fast suite")
    p.add_argument("--max-children", type=int, default=2)
    p.add_argument("--stop-at", metavar="HH:MM", help="interrupt mutmut at this UTC time and stop there")
    p.add_argument("--rerun", nargs="+", metavar="MUTANT",
                   help="run these mutants again (e.g. after new tests)")
    p.add_argument("--report-only", action="store_true", help="rewrite the JSON from mutmut's stored results")
    p.add_argument("--time-fast-suite", metavar="NOTE",
                   help="time the fast suite once instead (results/mutation/fast_suite.json)")
    args = p.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        p.error(f"unknown modules {unknown}; choose from {' '.join(MODULES)}")
    args.modules = args.modules or MODULES
    if args.time_fast_suite:
        r = time_fast_suite(args.time_fast_suite)
        print(f"fast suite: {r['seconds']} s, {r['pytest_summary']}, load {r['loadavg_before']} -> "
              f"{r['loadavg_after']}")
        raise SystemExit(r["returncode"])
    stop_at = stop_time(args.stop_at)
    if args.rerun:
        modules = sorted({module_of(m) for m in args.rerun})
        check_modules(modules)
        files = (sorted({t for m in modules for t in TESTS[m]}) if args.tests == "own" else None)
        run = run_mutmut(args.rerun, max_children=args.max_children, test_files=files, stop_at=stop_at,
                         log=REPO / "mutants" / "rerun.log")
        for module in modules:
            report(module, {**run, "rerun": [m for m in args.rerun if module_of(m) == module]})
    else:
        check_modules(args.modules)
        for module in args.modules:
            if stop_at and dt.datetime.now(dt.timezone.utc) >= stop_at:
                print(f"stop time reached: {module} and the modules after it not run")
                break
            run = None
            if not args.report_only:
                run = run_mutmut([f"emolib.{module}.*"], max_children=args.max_children,
                                 test_files=TESTS[module] if args.tests == "own" else None,
                                 stop_at=stop_at, log=REPO / "mutants" / f"{module}.log")
            r = report(module, run)
            print(f"{module:12s} mutants {r['mutants']:4d}  {r['counts']}  score {r['score']}", flush=True)
    s = summary()
    print(f"all modules run so far: killed {s['killed']}, survived {s['survived']}, score {s['score']}")


if __name__ == "__main__":
    main()
