"""launcher/child/devsaved.py as tables, without a process: which saved import list the base
uses and why it ignores one (another key, unreadable, not the user's own, writable by others,
not a file), and what the key holds. tests/run/test_devsaved.py runs the wiring: a list learned,
saved, used by the next start, and one made for another project told and learned again."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from launcher.child import devsaved

MODULES = ["django.core.handlers.asgi", "_sysconfigdata__linux_x86_64-linux-gnu"]


@pytest.fixture
def want(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The key a base of the project at tmp_path/site computes."""
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "site.settings")
    return devsaved.key([tmp_path / "site"], "site.asgi:application")


def _saved(key: dict[str, Any], modules: object = MODULES) -> str:
    return json.dumps({"key": key, "modules": modules})


def _with(part: str, value: object) -> Callable[[dict[str, Any]], str]:
    return lambda key: _saved({**key, part: value})


# (what is at the path, given the key the base wants) -> why it is not used
IGNORED: dict[str, tuple[Callable[[dict[str, Any]], str | bytes], str]] = {
    "another format": (_with("format", devsaved.FORMAT + 1), "it is of another format"),
    "another project": (_with("project", {"roots": ["/srv/other"]}),
                        "it was made for another project"),
    "another interpreter": (_with("python", {"executable": "/opt/other/python3",
                                             "version": "3.99"}),
                            "it was made by another interpreter"),
    "packages changed": (_with("packages", [["/venv/site-packages", 1]]),
                         "the installed packages changed since"),
    "cut short": (lambda key: '{"key": {"format": 1}, "modules": [1, 2', "it is unreadable"),
    "random bytes": (lambda key: os.urandom(64), "it is unreadable"),
    "no key": (lambda key: json.dumps({"modules": MODULES}), "it is unreadable"),
    "modules not a list": (lambda key: _saved(key, "django"), "it is unreadable"),
    "a name with a space": (lambda key: _saved(key, ["django", "os path"]), "it is unreadable"),
    "an empty part": (lambda key: _saved(key, ["django..core"]), "it is unreadable"),
    "key not a mapping": (lambda key: json.dumps({"key": [], "modules": MODULES}),
                          "it is unreadable"),
}


@pytest.mark.parametrize("case", sorted(IGNORED))
def test_a_list_of_another_key_or_unreadable_is_ignored(
    tmp_path: Path, want: dict[str, Any], case: str
) -> None:
    content, why = IGNORED[case]
    path = tmp_path / "dev.devimports"
    text = content(want)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    path.chmod(0o600)
    assert devsaved.load(path, want) == (None, why)


def test_the_list_saved_under_the_same_key_is_used(tmp_path: Path, want: dict[str, Any]) -> None:
    path = tmp_path / "dev.devimports"
    assert devsaved.save(path, want, MODULES)
    assert (path.stat().st_mode & 0o777, path.stat().st_uid) == (0o600, os.getuid())
    assert devsaved.load(path, want) == (MODULES, None)


def test_none_saved_is_no_reason(tmp_path: Path, want: dict[str, Any]) -> None:
    assert devsaved.load(tmp_path / "dev.devimports", want) == (None, None)


def test_saving_replaces_a_list_others_could_write_with_an_owner_only_one(
    tmp_path: Path, want: dict[str, Any]
) -> None:
    path = tmp_path / "dev.devimports"
    path.write_text(_saved(want))
    path.chmod(0o666)
    assert devsaved.load(path, want) == (None, "others may write it")
    before = path.stat().st_ino
    assert devsaved.save(path, want, MODULES)
    assert path.stat().st_ino != before and path.stat().st_mode & 0o777 == 0o600
    assert devsaved.load(path, want) == (MODULES, None)
    assert [p.name for p in tmp_path.iterdir()] == ["dev.devimports"]  # no temp file left


def _directory(path: Path) -> None:
    path.mkdir()


def _fifo(path: Path) -> None:
    os.mkfifo(path, 0o600)


def _link(path: Path) -> None:
    (path.parent / "elsewhere").write_text("{}")
    path.symlink_to(path.parent / "elsewhere")


@pytest.mark.timeout(10)  # a FIFO opened for reading must not wait for a writer
@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_directory, "it is not a file of this user's"),
        (_fifo, "it is not a file of this user's"),
        (_link, "it cannot be read (Too many levels of symbolic links)"),
    ],
    ids=["directory", "fifo", "symlink"],
)
def test_what_is_not_a_plain_file_is_ignored_without_a_hang(
    tmp_path: Path, want: dict[str, Any], make: Callable[[Path], None], why: str
) -> None:
    path = tmp_path / "dev.devimports"
    make(path)
    assert devsaved.load(path, want) == (None, why)


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file away")
def test_a_list_of_another_users_is_ignored(tmp_path: Path, want: dict[str, Any]) -> None:
    path = tmp_path / "dev.devimports"
    path.write_text(_saved(want))
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    assert devsaved.load(path, want) == (None, "it is not a file of this user's")


@pytest.fixture
def packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package directory on sys.path (as PYTHONPATH or a venv puts one), its mtime at 0."""
    directory = tmp_path / "extra" / "site-packages"
    directory.mkdir(parents=True)
    os.utime(directory, ns=(0, 0))
    monkeypatch.setattr(sys, "path", [*sys.path, str(directory)])
    yield directory


def test_the_key_changes_when_a_package_is_installed(tmp_path: Path, packages: Path) -> None:
    before = devsaved.key([tmp_path / "site"], "site.asgi:application")
    assert [str(packages), 0] in before["packages"]
    (packages / "newly_installed.py").write_text("VALUE = 1\n")
    after = devsaved.key([tmp_path / "site"], "site.asgi:application")
    assert after["packages"] != before["packages"]
    assert {k: v for k, v in after.items() if k != "packages"} == {
        k: v for k, v in before.items() if k != "packages"
    }


def test_the_key_names_the_project_its_settings_and_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "site.settings")
    got = devsaved.key([tmp_path / "a", tmp_path / "b"], "site.asgi:application")
    assert got["format"] == devsaved.FORMAT
    assert got["project"] == {"roots": [str(tmp_path / "a"), str(tmp_path / "b")],
                              "settings": "site.settings", "app": "site.asgi:application"}
    assert got["python"] == {"executable": sys.executable, "version": sys.version}
