"""A failure at import in the project's code is printed from the project's first frame: the
launcher's frames that carried the import (here launcher.child.app's import_ref) are hidden and
counted; the final `Type: message` line stays; $LAUNCHER_FULL_TRACEBACK=1 shows every frame.
In-process: the real traceback of a real import, no server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from launcher import wire
from launcher.child.app import import_ref
from launcher.child.trace import format_exception, where


@pytest.mark.parametrize(
    ("source", "last_line", "project_line"),
    [
        ('VALUE = {}["missing"]\n', "KeyError: 'missing'", 'VALUE = {}["missing"]'),
        ("def broken(:\n", "SyntaxError: invalid syntax", "import brokenviews"),
        ('try:\n    {}["cause"]\nexcept KeyError as exc:\n    raise RuntimeError("at import") '
         "from exc\n", "RuntimeError: at import", 'raise RuntimeError("at import")'),
    ],
    ids=["exception", "syntax-error", "chained"],
)
def test_a_failure_at_import_shows_the_projects_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, last_line: str,
    project_line: str,
) -> None:
    (tmp_path / "brokenviews.py").write_text(source)
    (tmp_path / "brokenurls.py").write_text("import brokenviews\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(wire.FULL_TRACEBACK_ENV, raising=False)
    for name in ("brokenurls", "brokenviews"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(BaseException) as caught:
        import_ref("brokenurls:urlpatterns")
    text = format_exception(caught.value)
    lines = text.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert any(ln.startswith("  [") and "frames of the launcher" in ln for ln in lines), text
    assert f'File "{tmp_path / "brokenurls.py"}", line 1' in text
    assert project_line in text
    assert lines[-1].startswith(last_line), text
    assert "launcher/child/" not in text and "importlib" not in text, text
    if not isinstance(caught.value, SyntaxError):
        assert where(caught.value) == f"{tmp_path / 'brokenviews.py'}, line {source.count(chr(10))}"

    monkeypatch.setenv(wire.FULL_TRACEBACK_ENV, "1")
    full = format_exception(caught.value)
    assert "launcher/child/app.py" in full and full.splitlines()[-1] == lines[-1]
