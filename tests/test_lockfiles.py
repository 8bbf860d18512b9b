"""The lock files (requirements/runtime.txt, requirements/dev.txt) agree with pyproject.toml.

``make run`` and ``make test`` install from the locks with ``--require-hashes``; a dependency
added to pyproject.toml without ``make lock`` would be missing from the install, and a lock
that drifted from its specifiers would install what pyproject.toml forbids. These tests read
the files as pip does: every pin ``name==version`` followed by its hashes.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins(name: str) -> dict[str, tuple[str, int]]:
    """Package → (version, number of hashes) of one lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / "requirements" / name).read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            assert current not in pins, f"{name}: {current} pinned twice"
            pins[current] = (match.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif line and not line.startswith((" ", "#")):
            pytest.fail(f"{name}: an unexpected line {line!r} (only pins and hashes belong here)")
    return pins


@pytest.mark.parametrize("lock", ["runtime.txt", "dev.txt"])
def test_every_pin_is_exact_and_hashed(lock):
    pins = _pins(lock)
    assert len(pins) > 50
    unhashed = [package for package, (_, hashes) in pins.items() if hashes == 0]
    assert unhashed == []
    # What the editable install of the project is built with, without build isolation.
    assert {"setuptools", "wheel"} <= set(pins)


@pytest.mark.parametrize(
    ("lock", "extras"), [("runtime.txt", ()), ("dev.txt", ("dev",))], ids=["runtime", "dev"]
)
def test_the_lock_satisfies_pyproject(lock, extras):
    project = _project()
    requirements = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        requirements += [Requirement(text) for text in project["optional-dependencies"][extra]]
    pins = _pins(lock)
    problems = []
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{name} is not in {lock}: run `make lock`")
        elif not requirement.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{name}=={pins[name][0]} does not satisfy {requirement.specifier}")
    assert problems == []


def test_dev_lock_pins_the_runtime_versions():
    runtime, dev = _pins("runtime.txt"), _pins("dev.txt")
    differing = {
        package: (version, dev.get(package, ("absent",))[0])
        for package, (version, _) in runtime.items()
        if dev.get(package, ("absent",))[0] != version
    }
    assert differing == {}


def test_output_changing_dependencies_have_an_upper_bound():
    """WeasyPrint renders differently from one major release to the next (the conclusions
    promise the same bytes), openpyxl changes the XLSX it writes between minor releases."""
    bounded = {
        canonicalize_name(requirement.name): requirement.specifier
        for requirement in map(Requirement, _project()["dependencies"])
    }
    for package in ("weasyprint", "openpyxl"):
        assert any(spec.operator == "<" for spec in bounded[package]), package


def test_make_installs_from_the_locks_with_hashes():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--require-hashes -r requirements/runtime.txt" in makefile
    assert "--require-hashes -r requirements/dev.txt" in makefile
    # The project itself adds nothing: its dependencies are all in the lock already.
    assert makefile.count("--no-deps --no-build-isolation -e .") == 2
