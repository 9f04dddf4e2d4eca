"""The locked environment: one lock file, consistent with pyproject.toml, the Makefile and this venv."""

import os
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def locked() -> dict[str, tuple[Version, Marker | None]]:
    """Package name -> (version, marker) for the lines of requirements.lock that apply here."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if not line or line.startswith(("#", " ")):
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"not an exact pin: {line}"
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = (Version(spec.version), requirement.marker)
    return pins


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def makefile_variable(name: str) -> str:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return re.search(rf"^{name}\s*:=\s*(.*)$", text, re.M).group(1).strip()


def test_every_requirement_is_pinned_within_its_range():
    pins = locked()
    requirements = [*project()["dependencies"], *project()["optional-dependencies"]["dev"]]
    for line in requirements:
        requirement = Requirement(line)
        version, _ = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version, prereleases=True), (line, version)


def test_torch_is_one_version_everywhere_and_never_the_cuda_packages():
    version = makefile_variable("TORCH_VERSION")
    assert f"torch=={version}" in project()["dependencies"]
    assert locked()["torch"][0] == Version(version)
    cuda_only = set(makefile_variable("CUDA_ONLY").split())
    names = {canonicalize_name(line.split("==")[0]) for line in (ROOT / "requirements.lock").read_text().splitlines()
             if line and not line.startswith(("#", " "))}
    assert not names & cuda_only and not any(name.startswith("nvidia-") for name in names)


def test_the_lock_covers_python_3_11_and_newer():
    assert project()["requires-python"] == ">=3.11"
    header = (ROOT / "requirements.lock").read_text()
    assert "--python-version 3.11" in (ROOT / "Makefile").read_text() and "make lock" in header


def test_conda_environment_installs_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert "- -r requirements.lock" in text and "- -e ." in text


@pytest.mark.skipif(os.environ.get("MINILM_UNLOCKED") == "1", reason="make test-latest runs unlocked on purpose")
def test_this_environment_is_the_lock():
    """`make setup` installs exactly the lock (torch's local build tag, +cpu or +cu128, aside)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("not in a virtual environment made by make setup")
    wrong = {}
    for name, (version, _) in locked().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            wrong[name] = (str(version), "missing")
            continue
        if Version(installed.public) != version:
            wrong[name] = (str(version), str(installed))
    assert not wrong, f"installed versions differ from requirements.lock (run make setup): {wrong}"
