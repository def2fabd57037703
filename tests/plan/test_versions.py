"""The Django gate: which versions are refused, in one line, and that the floor declared in
code is pyproject.toml's. (That `launch` refuses one before anything starts, with a real
Django 4.2 installed, is tests/e2e/test_installed.py's, in scripts/installed.)"""

from __future__ import annotations

import tomllib
from importlib.metadata import version

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from launcher.plan.versions import DJANGO_MIN, django_refusal, release
from tests.conftest import ROOT


def declared(package: str) -> SpecifierSet:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    [requirement] = [Requirement(d) for d in dependencies if Requirement(d).name == package]
    return requirement.specifier


def test_the_floor_in_code_is_pyprojects_bound_and_there_is_no_ceiling() -> None:
    specifier = declared("django")
    floor = ".".join(map(str, DJANGO_MIN))
    assert [(s.operator, s.version) for s in specifier] == [(">=", floor)]


@pytest.mark.parametrize(
    ("installed", "refused"),
    [
        ("5.2", False), ("5.2.20", False), ("6.0.10", False), ("6.1.3", False),
        ("7.0a1", False), ("6.1rc1", False), ("10.0", False),
        ("5.1.15", True), ("4.2.30", True), ("4.2", True), ("3.2.25", True), ("5.0", True),
        (None, True),
    ],
)
def test_which_django_is_refused(installed: str | None, refused: bool) -> None:
    refusal = django_refusal(installed)
    assert (refusal is not None) == refused
    if refusal is not None:
        assert "\n" not in refusal
        assert "Django 5.2 or newer" in refusal
        if installed is not None:
            assert f"Django {installed} is installed" in refusal


def test_the_gate_agrees_with_pip_about_every_version_it_decides() -> None:
    specifier = declared("django")
    for text in ("4.2.30", "5.1.15", "5.2", "5.2.20", "6.0.10", "6.1.3"):
        assert (django_refusal(text) is None) == (text in specifier), text


def test_release_reads_the_leading_numbers() -> None:
    assert release("5.2.20") == (5, 2, 20)
    assert release("6.1rc1") == (6, 1)
    assert release("6.0.post1") == (6, 0)
    assert release("dev") == ()


def test_the_installed_django_passes() -> None:
    assert django_refusal(version("django")) is None
