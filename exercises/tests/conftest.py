"""Load the exercise file under test: the student's by default, the reference solution on request.

``MINILM_EXERCISES`` chooses which file the tests import (``minilm check NN`` sets it for you):

* unset or ``student``: ``exercises/NN_topic.py``, the file a student edits;
* ``solutions``: ``exercises/solutions/NN_topic.py``, what CI checks so the tests are known to pass.

Exercise files start with digits, so they are not importable by name; ``load_exercise`` loads them
from their path. A test file ``test_NN_topic.py`` gets its exercise through the ``exercise`` fixture
(the name is read from the test file's name), or calls ``load_exercise("NN_topic")`` itself.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

EXERCISES_DIR = Path(__file__).resolve().parent.parent
ENV_VAR = "MINILM_EXERCISES"
CHOICES = {"student": EXERCISES_DIR, "solutions": EXERCISES_DIR / "solutions"}


def exercise_kind() -> str:
    """``student`` or ``solutions``, from ``$MINILM_EXERCISES`` (unset means ``student``)."""
    kind = os.environ.get(ENV_VAR, "").strip() or "student"
    if kind not in CHOICES:
        raise pytest.UsageError(f"{ENV_VAR}={kind!r}: choose one of {sorted(CHOICES)}")
    return kind


def exercise_path(name: str, kind: str | None = None) -> Path:
    """The file for exercise ``name`` (e.g. ``"01_tokenization"``) of ``kind`` (default: from the env)."""
    return CHOICES[kind or exercise_kind()] / f"{name}.py"


def load_exercise(name: str, kind: str | None = None) -> ModuleType:
    """Import ``exercises/<name>.py`` (or ``exercises/solutions/<name>.py``) from its path.

    Each call executes the file afresh, so an edited file is picked up on the next test run.
    """
    kind = kind or exercise_kind()
    path = exercise_path(name, kind)
    if not path.is_file():
        raise FileNotFoundError(f"no exercise file {path} (MINILM_EXERCISES={kind})")
    module_name = f"minilm_exercise_{kind}_{name}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


@pytest.fixture(scope="module")
def exercise(request) -> ModuleType:
    """The exercise module matching this test file: ``test_01_tokenization.py`` -> ``01_tokenization``."""
    stem = request.path.stem
    if not stem.startswith("test_"):
        raise pytest.UsageError(f"{request.path.name}: name exercise test files test_NN_topic.py")
    return load_exercise(stem.removeprefix("test_"))


def pytest_configure(config):
    exercise_kind()  # a misspelt MINILM_EXERCISES stops the run at once, with the choices


def pytest_report_header(config):
    return f"exercises: testing the {exercise_kind()} files ({ENV_VAR})"
