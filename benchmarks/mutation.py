"""Mutation score of the fast suite, module by module, with mutmut (``make mutate``).

    python benchmarks/mutation.py [MODULE ...] [--tests own|fast] [--max-children N] [--stop-at HH:MM]
    python benchmarks/mutation.py --rerun MUTANT [MUTANT ...]   # e.g. survivors, after new tests
    python benchmarks/mutation.py --report-only [MODULE ...]    # rewrite the JSON from mutmut's state
    python benchmarks/mutation.py --time-fast-suite NOTE       # wall time of pytest -m "not slow"
    python benchmarks/mutation.py --sample 40 --seed 17 data train  # 40 mutants of each, drawn at random

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
in ``[tool.mutmut] only_mutate`` (mutmut would make no mutant of it), is refused before anything runs.

``--sample N --seed S`` estimates a module's score from N of its mutants instead of all of them
(thousands of mutants do not fit in a day on two cores): mutmut generates every mutant (without
running any), the script draws N names uniformly without replacement from the sorted list of the
module's mutants (``random.Random("S:<module>")``: the same source, N and S give the same names),
runs only those, and writes ``results/mutation/sample/<module>.json``: every drawn name, the size
and a hash of the list it was drawn from, the counts, the score with its 95 % Wilson interval, the
survivors with their diffs and readings. The same command again runs only the drawn mutants not
checked yet (after ``--stop-at``); ``--rerun`` of drawn mutants updates the sample's file. A
survivor whose ``reading`` starts with "equivalent" (no test can tell it from the original) leaves
the denominator; timeouts and mutants not checked are left out of it and counted apart.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fnmatch
import hashlib
import json
import math
import os
import random
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "mutation"
SAMPLE_OUT = OUT / "sample"
# smallest and most central first
MODULES = ["metrics", "labels", "transforms", "data", "fileio", "video", "faces", "pipeline", "train",
           "hands"]
# each module's own test files (those that call most of its public names; not the ones that train a model
# to reach it, such as test_train_batch.py for transforms), for --tests own
TESTS = {
    "metrics": ["tests/test_metrics.py"],
    "labels": ["tests/test_labels.py"],
    "transforms": ["tests/test_transforms.py"],
    "data": ["tests/test_data.py", "tests/test_labels.py", "tests/test_reliability.py"],  # CSV, bombs
    "fileio": ["tests/test_reliability.py", "tests/test_pipeline.py", "tests/test_geometry.py",
               "tests/test_train_batch.py"],
    "video": ["tests/test_video.py", "tests/test_pipeline.py", "tests/test_geometry.py"],
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


def read_survivors(names, st: dict, old_survivors: dict) -> tuple[list[dict], list[dict]]:
    """(survivors, killed_since) of ``names`` with statuses ``st``: each survivor with its diff and the
    reading it had in ``old_survivors`` when its diff is unchanged; earlier survivors killed now."""
    survivors, killed_since = [], []
    for name in names:
        prev = old_survivors.get(name)
        if st[name] in ("survived", "no tests"):
            diff = "\n".join(_mutmut("show", name, check=False).splitlines()[1:])
            reading = prev.get("reading", "") if prev and prev.get("diff") == diff else ""
            survivors.append({"mutant": name, "status": st[name], "reading": reading, "diff": diff})
        elif st[name] == "killed" and prev:  # prev entries are survivors or earlier killed_since
            killed_since.append({**prev, "status": "killed"})
    return survivors, killed_since


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
    survivors, killed_since = read_survivors(sorted(st), st, old_survivors)
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


def wilson(k: int, n: int, z: float = 1.959964) -> list[float] | None:
    """The 95 % Wilson score interval of a proportion k / n (None for n = 0)."""
    if n == 0:
        return None
    p = k / n
    d = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / d
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def generate_mutants() -> None:
    """Let mutmut write every mutant under ``mutants/`` (and list them in its state) without running any."""
    code = ("import os\n"
            "from mutmut.__main__ import copy_src_dir, copy_also_copy_files, setup_source_paths, create_mutants\n"
            "os.makedirs('mutants', exist_ok=True)\n"
            "copy_src_dir(); copy_also_copy_files(); setup_source_paths(); create_mutants(2)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"mutmut could not generate the mutants:\n{proc.stderr[-3000:]}")


def draw_sample(names: list[str], n: int, seed: int, module: str) -> list[str]:
    """N names drawn uniformly without replacement from the sorted ``names``; the same inputs, the same draw."""
    pool = sorted(names)
    return sorted(random.Random(f"{seed}:{module}").sample(pool, min(n, len(pool))))


def sample_score(statuses_: dict[str, str], readings: dict[str, str]) -> dict:
    """Counts and score of a sample: killed / (killed + survived + no tests - equivalent), Wilson 95 %."""
    counts: dict[str, int] = {}
    for s in statuses_.values():
        counts[s] = counts.get(s, 0) + 1
    killed = counts.get("killed", 0)
    missed = [m for m, s in statuses_.items() if s in ("survived", "no tests")]
    equivalent = sum(1 for m in missed if readings.get(m, "").startswith("equivalent"))
    n = killed + len(missed) - equivalent
    return {
        "counts": counts,
        "killed": killed,
        "missed": len(missed) - equivalent,
        "equivalent": equivalent,
        "decided": n,
        "score": round(killed / n, 4) if n else None,
        "ci95_wilson": wilson(killed, n),
        "score_counting_equivalent_as_missed": (round(killed / (killed + len(missed)), 4)
                                                if killed + len(missed) else None),
    }


def sample_report(module: str, names: list[str], population: list[str], seed: int, run: dict | None) -> dict:
    """Write ``results/mutation/sample/<module>.json`` for the drawn ``names``, keeping the readings of
    survivors whose diff is unchanged and the earlier runs (when the drawn names are the same)."""
    path = SAMPLE_OUT / f"{module}.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    same = old.get("sample") == names
    # readings belong to a mutant (and its diff), whatever draw it came in; runs belong to the draw
    old_survivors = {s["mutant"]: s for s in old.get("survivors", []) + old.get("killed_since", [])}
    everything = statuses(module)
    st = {name: everything.get(name, "not checked") for name in names}
    survivors, killed_since = read_survivors(names, st, old_survivors)
    readings = {s["mutant"]: s["reading"] for s in survivors}
    runs = old.get("runs", []) if same else []
    if run is not None:
        runs.append(run)
    score = sample_score(st, readings)
    result = {
        "module": module_path(module),
        "files": source_files(module),
        "files_sha256": {f: hashlib.sha256((REPO / f).read_bytes()).hexdigest()[:16] for f in source_files(module)},
        "tool": "mutmut 3.8.1 (pyproject.toml [tool.mutmut])",
        "estimate": (f"sampled estimate: {len(names)} of the module's {len(population)} mutants, drawn uniformly "
                     f"without replacement (random.Random('{seed}:{module}').sample over mutmut's sorted list "
                     "of generated mutant names); not a full run"),
        "tests": runs[-1]["tests"] if runs else None,
        "seed": seed,
        "population": len(population),
        "population_sha256": hashlib.sha256("\n".join(sorted(population)).encode()).hexdigest()[:16],
        "sample_size": len(names),
        **score,
        "score_note": "score: killed / decided, decided = killed + survived + no tests - equivalent (survivors "
                      "read as equivalent cannot be killed by any test); ci95_wilson: the 95 % Wilson score "
                      "interval of that proportion; timeouts and 'not checked' (not run before the stop time) "
                      "are left out of decided and shown in counts",
        "runs": runs,
        "sample": names,
        "survivors": survivors,
        "killed_since": killed_since,
    }
    SAMPLE_OUT.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    return result


#: the modules issue 17 names that are sampled (metrics, also named, is run in full: results/mutation/metrics.json)
ISSUE_SAMPLED = ("data", "transforms", "train", "pipeline", "hands")


def pool(rows: dict, modules) -> dict:
    """Killed over decided, summed over ``modules`` of ``rows`` present, with its Wilson interval."""
    killed = sum(rows[m]["killed"] for m in modules if m in rows)
    decided = sum(rows[m]["decided"] for m in modules if m in rows)
    return {"killed": killed, "decided": decided, "score": round(killed / decided, 4) if decided else None,
            "ci95_wilson": wilson(killed, decided)}


def sampled_summary() -> dict | None:
    """Per module and pooled sampled estimates, from ``results/mutation/sample/*.json``: ``pooled`` over
    every sampled module, ``pooled_issue_modules`` over those of :data:`ISSUE_SAMPLED` present."""
    rows, killed, decided = {}, 0, 0
    for module in MODULES:
        path = SAMPLE_OUT / f"{module}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        rows[module] = {k: r[k] for k in ("population", "sample_size", "killed", "missed", "equivalent",
                                          "decided", "score", "ci95_wilson", "seed")}
        rows[module]["other"] = {k: v for k, v in r["counts"].items() if k not in ("killed", "survived", "no tests")}
        killed, decided = killed + r["killed"], decided + r["decided"]
    if not rows:
        return None
    issue = [m for m in ISSUE_SAMPLED if m in rows]
    return {"modules": rows, "pooled": pool(rows, rows),
            "pooled_issue_modules": {**pool(rows, issue), "modules": issue},
            "note": "sampled estimates (results/mutation/sample/<module>.json), not full runs; the pooled "
                    "score counts every decided sampled mutant once, so each module weighs by its sample size, "
                    "not by its number of mutants"}


def sampled_table(sampled: dict | None) -> str:
    """The README's table of the sampled estimates (Markdown), from ``summary.json``'s ``sampled``."""
    if not sampled:
        return "no sampled module yet"
    def pct(x: float) -> str:
        return f"{100 * x:.1f} %"

    rows = ["| module | mutants (drawn of all) | killed | missed | equivalent | other | score | 95 % CI (Wilson) |",
            "|---|---|---|---|---|---|---|---|"]
    for module, r in sampled["modules"].items():
        other = ", ".join(f"{v} {k}" for k, v in r["other"].items()) or "-"
        ci = r["ci95_wilson"]
        rows.append(f"| `{module}` | {r['sample_size']} of {r['population']} | {r['killed']} | {r['missed']} | "
                    f"{r['equivalent']} | {other} | {pct(r['score']) if r['score'] is not None else '-'} | "
                    f"{pct(ci[0]) + ' - ' + pct(ci[1]) if ci else '-'} |")
    for label, key in (("pooled", "pooled"), ("pooled, issue 17's modules", "pooled_issue_modules")):
        p = sampled.get(key)
        if p and p["decided"]:
            rows.append(f"| {label} | | {p['killed']} | {p['decided'] - p['killed']} | | | {pct(p['score'])} | "
                        f"{pct(p['ci95_wilson'][0])} - {pct(p['ci95_wilson'][1])} |")
    return "\n".join(rows)


def run_sample(modules: list[str], n: int, seed: int, *, tests: str, max_children: int,
               stop_at: dt.datetime | None) -> None:
    """Draw ``n`` mutants of each module and run those not checked yet; write the sample reports."""
    generate_mutants()
    for module in modules:
        everything = statuses(module)
        population = sorted(everything)
        if not population:
            raise SystemExit(f"mutmut generated no mutant of {module}")
        names = draw_sample(population, n, seed, module)
        todo = [m for m in names if everything[m] == "not checked"]
        run = None
        if todo and not (stop_at and dt.datetime.now(dt.timezone.utc) >= stop_at):
            run = run_mutmut(todo, max_children=max_children,
                             test_files=TESTS[module] if tests == "own" else None,
                             stop_at=stop_at, log=REPO / "mutants" / f"sample_{module}.log")
            run["mutants_run"] = len(todo)
        r = sample_report(module, names, population, seed, run)
        print(f"{module:12s} sample {r['sample_size']:3d} of {r['population']:4d}  {r['counts']}  score "
              f"{r['score']} 95 % CI {r['ci95_wilson']}", flush=True)
        if stop_at and dt.datetime.now(dt.timezone.utc) >= stop_at:
            print(f"stop time reached after {module}")
            break


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
           "note": "sums of the modules run in full so far; see each module's file for its tests, command and load",
           "sampled": sampled_summary()}
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
    p.add_argument("--sample", type=int, metavar="N",
                   help="run N mutants of each module drawn at random (results/mutation/sample/)")
    p.add_argument("--seed", type=int, default=17, help="the seed of --sample's draw (default 17)")
    p.add_argument("--table", action="store_true", help="print the sampled estimates as README's Markdown table")
    p.add_argument("--time-fast-suite", metavar="NOTE",
                   help="time the fast suite once instead (results/mutation/fast_suite.json)")
    args = p.parse_args()
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        p.error(f"unknown modules {unknown}; choose from {' '.join(MODULES)}")
    args.modules = args.modules or MODULES
    if args.table:
        print(sampled_table(summary()["sampled"]))
        return
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
            rerun = [m for m in args.rerun if module_of(m) == module]
            sampled = SAMPLE_OUT / f"{module}.json"
            drawn = json.loads(sampled.read_text()) if sampled.exists() else None
            if drawn and set(rerun) <= set(drawn["sample"]):  # a sampled module: its sample report
                generate_mutants()
                sample_report(module, drawn["sample"], sorted(statuses(module)), drawn["seed"],
                              {**run, "rerun": rerun})
            else:
                report(module, {**run, "rerun": rerun})
    elif args.sample:
        if args.sample < 1:
            p.error("--sample N needs N >= 1")
        run_sample(args.modules, args.sample, args.seed, tests=args.tests, max_children=args.max_children,
                   stop_at=stop_at)
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
    print(f"all modules run in full so far: killed {s['killed']}, survived {s['survived']}, score {s['score']}")
    if s["sampled"]:
        pooled = s["sampled"]["pooled"]
        print(f"sampled, pooled: {pooled['killed']} of {pooled['decided']} killed, score {pooled['score']}, "
              f"95 % CI {pooled['ci95_wilson']}")


if __name__ == "__main__":
    main()
