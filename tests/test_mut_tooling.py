"""benchmarks/mutation.py (``make mutate``): the modules and tests mutmut gets, and how results are summed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11's (the mutation script reads pyproject.toml)")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mutation():
    spec = importlib.util.spec_from_file_location("mutation_script", ROOT / "benchmarks" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_module_has_its_files_in_the_config_and_its_own_tests(mutation):
    mutation.check_modules(mutation.MODULES)  # raises SystemExit naming the module otherwise
    assert set(mutation.TESTS) == set(mutation.MODULES)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert config["pytest_add_cli_args"][:2] == ["-m", "not slow"]  # the fast suite
    assert mutation.source_files("hands") == sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "emolib" / "hands").glob("*.py"))


def test_a_module_left_out_of_the_config_is_refused(mutation, tmp_path, monkeypatch):
    (tmp_path / "emolib").mkdir()
    (tmp_path / "emolib" / "metrics.py").write_text("")
    (tmp_path / "emolib" / "labels.py").write_text("")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_metrics.py").write_text("")
    (tmp_path / "pyproject.toml").write_text('[tool.mutmut]\nonly_mutate = ["emolib/metrics.py"]\n')
    monkeypatch.setattr(mutation, "REPO", tmp_path)
    tests = {"metrics": ["tests/test_metrics.py"], "labels": ["tests/test_labels.py"], "video": []}
    monkeypatch.setattr(mutation, "TESTS", tests)
    mutation.check_modules(["metrics"])
    with pytest.raises(SystemExit, match=r"labels: emolib/labels.py not in \[tool.mutmut\] only_mutate") as e:
        mutation.check_modules(["metrics", "labels", "video"])
    assert "labels: its test files tests/test_labels.py are missing" in str(e.value)
    assert "video: no emolib/video.py" in str(e.value)


def test_own_tests_ignore_every_other_test_file_and_find_the_real_data(mutation, monkeypatch):
    monkeypatch.delenv("EMOLIB_DATA", raising=False)
    env = mutation.mutmut_env(["tests/test_metrics.py"])
    ignored = env["PYTEST_ADDOPTS"].split()
    assert "--ignore=tests/test_metrics.py" not in ignored
    assert set(ignored) == {f"--ignore=tests/{p.name}" for p in (ROOT / "tests").glob("test_*.py")} - {
        "--ignore=tests/test_metrics.py"}
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    assert "PYTEST_ADDOPTS" not in mutation.mutmut_env(None)  # the whole fast suite
    data = ROOT.parent / "shared" / "data"
    assert env.get("EMOLIB_DATA") == (str(data) if data.is_dir() else None)  # tests run one level deeper


def test_summary_sums_the_modules_run_and_says_which_were_not(mutation, tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "OUT", tmp_path)
    for name, counts in (("metrics", {"killed": 90, "survived": 10}),
                         ("labels", {"killed": 6, "survived": 2, "no tests": 2, "not checked": 1})):
        (tmp_path / f"{name}.json").write_text(json.dumps({"mutants": sum(counts.values()), "counts": counts,
                                                           "score": None, "tests": ["x"]}))
    s = mutation.summary()
    assert (s["killed"], s["survived"], s["no tests"]) == (96, 12, 2)
    assert s["score"] == round(96 / 108, 4) and s["score_with_untested"] == round(96 / 110, 4)
    assert s["modules"]["transforms"] == "not run" and s["modules"]["labels"]["not checked"] == 1
    assert json.loads((tmp_path / "summary.json").read_text()) == s


def test_mutant_names_map_to_their_module(mutation):
    assert mutation.module_of("emolib.metrics.x_confusion__mutmut_12") == "metrics"
    assert mutation.module_of("emolib.hands.warp.x__invert3__mutmut_1") == "hands"
    assert mutation.module_path("hands") == "emolib/hands/"
    assert mutation.module_path("data") == "emolib/data.py"


def test_an_unknown_module_is_refused_by_name():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "mutation.py"), "metrics", "bogus"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "unknown modules ['bogus']" in proc.stderr


def test_wilson_interval_matches_hand_worked_values(mutation):
    # 45 of 50: p = 0.9, z = 1.96: centre 0.9384 / 1.0768 = 0.8715, half-width 0.0851 (worked by hand)
    assert mutation.wilson(45, 50) == [0.7864, 0.9565]
    assert mutation.wilson(0, 10)[0] == 0.0 and mutation.wilson(10, 10)[1] == 1.0
    assert mutation.wilson(10, 10)[0] == 0.7225  # all killed still leaves room below
    assert mutation.wilson(0, 0) is None


def test_the_sample_is_reproducible_uniform_and_without_repeats(mutation):
    names = [f"emolib.data.x_f__mutmut_{i}" for i in range(200)]
    a = mutation.draw_sample(names, 40, 17, "data")
    assert a == mutation.draw_sample(list(reversed(names)), 40, 17, "data")  # order of the list does not matter
    assert len(set(a)) == 40 and set(a) <= set(names)
    assert a != mutation.draw_sample(names, 40, 18, "data") != mutation.draw_sample(names, 40, 17, "train")
    assert mutation.draw_sample(names[:5], 40, 17, "data") == sorted(names[:5])  # all of a small module
    hits = {n: 0 for n in names}  # every name equally likely: 2,000 draws of 40 of 200, 400 hits expected
    for seed in range(2000):
        for n in mutation.draw_sample(names, 40, seed, "data"):
            hits[n] += 1
    assert 320 < min(hits.values()) and max(hits.values()) < 480


def test_sample_score_leaves_equivalent_mutants_timeouts_and_unchecked_out(mutation):
    st = {"a": "killed", "b": "killed", "c": "killed", "d": "survived", "e": "survived", "f": "no tests",
          "g": "timeout", "h": "not checked"}
    r = mutation.sample_score(st, {"d": "equivalent: x * 1.0", "e": "real gap: test_x"})
    assert (r["killed"], r["missed"], r["equivalent"], r["decided"]) == (3, 2, 1, 5)
    assert r["score"] == 0.6 and r["ci95_wilson"] == mutation.wilson(3, 5)
    assert r["score_counting_equivalent_as_missed"] == 0.5
    assert r["counts"] == {"killed": 3, "survived": 2, "no tests": 1, "timeout": 1, "not checked": 1}


def test_summary_pools_the_sampled_modules(mutation, tmp_path, monkeypatch):
    monkeypatch.setattr(mutation, "OUT", tmp_path)
    monkeypatch.setattr(mutation, "SAMPLE_OUT", tmp_path / "sample")
    (tmp_path / "sample").mkdir()
    for name, (k, d) in (("data", (36, 40)), ("hands", (27, 30)), ("faces", (10, 20))):
        (tmp_path / "sample" / f"{name}.json").write_text(json.dumps(
            {"population": 900, "sample_size": 40, "killed": k, "missed": d - k, "equivalent": 0, "decided": d,
             "score": k / d, "ci95_wilson": mutation.wilson(k, d), "seed": 17, "counts": {"killed": k}}))
    s = mutation.summary()["sampled"]
    assert set(s["modules"]) == {"data", "hands", "faces"}
    assert s["pooled"] == {"killed": 73, "decided": 90, "score": 0.8111, "ci95_wilson": mutation.wilson(73, 90)}
    assert "not full runs" in s["note"]
    table = mutation.sampled_table(s).splitlines()
    assert table[2].startswith("| `data` | 40 of 900 | 36 | 4 | 0 |") and table[2].endswith(
        f"| 90.0 % | {100 * mutation.wilson(36, 40)[0]:.1f} % - {100 * mutation.wilson(36, 40)[1]:.1f} % |")
    assert table[-2].startswith("| pooled | | 73 | 17 |")
    # faces is not among issue 17's modules
    assert s["pooled_issue_modules"] == {"killed": 63, "decided": 70, "score": 0.9,
                                         "ci95_wilson": mutation.wilson(63, 70), "modules": ["data", "hands"]}
    assert table[-1].startswith("| pooled, issue 17's modules | | 63 | 7 |")
