"""The exercise tests can fail: they fail on the untouched stubs and pass on the reference solutions.

For every ``exercises/tests/test_NN_topic.py`` this runs pytest twice in a subprocess, as
``minilm check NN`` does: on the student stubs (``MINILM_EXERCISES=student``) every test must fail,
and fail because of ``NotImplementedError``; on ``exercises/solutions/`` every test must pass. It
also checks that the stubs and solutions match (same functions, same signatures, the stubs'
docstring examples hold for the solutions) and that no solution imports ``minilm``, which would
make the exercise tests compare the package with itself.
"""

from __future__ import annotations

import ast
import doctest
import importlib.util
import inspect
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXERCISES = ROOT / "exercises"
CHAPTERS = sorted(path.stem.removeprefix("test_") for path in (EXERCISES / "tests").glob("test_*.py"))


def run_exercise_tests(chapter: str, kind: str, tmp_path: Path, *extra: str) -> tuple[int, list[dict], str]:
    """Run one chapter's exercise tests on ``kind`` files; return (exit code, test cases, output)."""
    report = tmp_path / f"{chapter}-{kind}.xml"
    env = {**os.environ, "MINILM_EXERCISES": kind}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXERCISES / "tests" / f"test_{chapter}.py"), "-q",
         "-p", "no:cacheprovider", f"--junitxml={report}", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    output = proc.stdout + proc.stderr
    cases = []
    if report.exists():
        for case in ET.parse(report).iter("testcase"):
            problems = [child for child in case if child.tag in ("failure", "error", "skipped")]
            cases.append({
                "name": case.get("name"),
                "outcome": problems[0].tag if problems else "passed",
                "message": " ".join(f"{p.get('message', '')} {p.text or ''}" for p in problems),
            })
    return proc.returncode, cases, output


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_functions(module) -> dict:
    return {name: obj for name, obj in vars(module).items()
            if inspect.isfunction(obj) and obj.__module__ == module.__name__ and not name.startswith("_")}


def test_there_are_exercises():
    assert "01_tokenization" in CHAPTERS


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_stubs_fail_with_not_implemented_error(chapter, tmp_path):
    code, cases, output = run_exercise_tests(chapter, "student", tmp_path)
    assert code == 1, f"pytest on the stubs should report failed tests (exit code 1), got {code}:\n{output[-3000:]}"
    assert cases, f"no test ran:\n{output[-3000:]}"
    passed = [case["name"] for case in cases if case["outcome"] == "passed"]
    assert not passed, f"these tests pass on the unfinished stubs, so they check nothing: {passed}"
    other = [case for case in cases if "NotImplementedError" not in case["message"]]
    assert not other, f"failed for another reason than NotImplementedError: {other[:3]}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solutions_pass(chapter, tmp_path):
    code, cases, output = run_exercise_tests(chapter, "solutions", tmp_path)
    assert code == 0, f"the exercise tests fail on the reference solutions:\n{output[-3000:]}"
    assert cases and all(case["outcome"] == "passed" for case in cases), [c for c in cases if c["outcome"] != "passed"]


def test_an_unknown_choice_is_a_clear_error(tmp_path):
    code, _, output = run_exercise_tests(CHAPTERS[0], "bogus", tmp_path)
    assert code != 0
    assert "MINILM_EXERCISES='bogus'" in output and "solutions" in output


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_stubs_and_solutions_match(chapter):
    stub = load(EXERCISES / f"{chapter}.py", f"stub_{chapter}")
    solution = load(EXERCISES / "solutions" / f"{chapter}.py", f"solution_{chapter}")
    stubs, solutions = public_functions(stub), public_functions(solution)
    assert stubs, f"exercises/{chapter}.py defines no functions"
    assert set(stubs) <= set(solutions), f"no solution for {sorted(set(stubs) - set(solutions))}"
    for name, function in stubs.items():
        assert inspect.signature(function) == inspect.signature(solutions[name]), f"{name}: signatures differ"
        assert function.__doc__ and ">>>" in function.__doc__, f"{name}: the stub's docstring needs an example"
        source = inspect.getsource(function)
        assert "raise NotImplementedError" in source, f"{name}: the stub should raise NotImplementedError"

    # The examples in the stubs' docstrings are true of the reference solutions.
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder().find(stub):
        test.globs = dict(vars(solution))
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.attempted > 0 and results.failed == 0, f"{results.failed} docstring examples are wrong"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solutions_do_not_use_the_package(chapter):
    path = EXERCISES / "solutions" / f"{chapter}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "minilm"], (
        f"{path.name} imports minilm: the exercise tests would compare the package with itself")
