"""`launch systemd-unit` with hostile values: nothing a profile or an option holds can start a
directive of its own in the unit (a newline, a NUL, a trailing backslash are refused).

The CLI runs in-process from the demo site (`ran`, `refused`), but for the file name that holds a
newline: that one is an argument of a real `python -m launcher` process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import DEMO, PYTHON, ROOT, Env, directives, ran, refused, verify

INJECTED = "ExecStartPre=/bin/touch /tmp/PWNED"
BASE = (
    f"app: demo_site.wsgi:application\nsettings: demo_site.settings\nchdir: {ROOT / 'demo_site'}\n"
)


def unit_refused(capsys: pytest.CaptureFixture[str], *args: str, needles: tuple[str, ...]) -> None:
    """`launch systemd-unit ARGS` in-process: one error line holding each needle."""
    line = refused(capsys, "systemd-unit", *args, stdout="")  # no unit, nothing to install
    for needle in needles:
        assert needle in line, line


@pytest.mark.parametrize(
    ("yaml_line", "key", "line", "why"),
    [
        ('chdir: "/x\\nExecStartPre=/bin/touch /tmp/PWNED"', "key 'chdir'", 4, "U+000A"),
        ('chdir: "/x\\rExecStartPre=/bin/touch /tmp/PWNED"', "key 'chdir'", 4, "U+000D"),
        # a real directory whose name ends in a backslash: systemd would join the next line
        ('chdir: "{tmp}/site\\\\"', "key 'chdir'", 4, "ends with a backslash"),
        ('description: "site \\0 x"', "key 'description'", 4, "U+0000"),
        ('description: "site \\e[31m red"', "key 'description'", 4, "U+001B"),
    ],
)
@pytest.mark.usefixtures("in_demo")
def test_hostile_profile_values_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, yaml_line: str, key: str, line: int,
    why: str,
) -> None:
    """Refused by the profile's own validation or, for what it lets through, by the unit's."""
    base = BASE.replace(f"chdir: {ROOT / 'demo_site'}\n", "") if "chdir" in yaml_line else BASE
    (tmp_path / "site\\").mkdir()
    yaml_line = yaml_line.replace("{tmp}", str(tmp_path))
    profile = tmp_path / "hostile.yaml"
    profile.write_text(base + "\n" * (line - 1 - base.count("\n")) + yaml_line + "\n")
    unit_refused(capsys, str(profile), needles=(f"{profile}:{line}", key, why))


@pytest.mark.usefixtures("in_demo")
@pytest.mark.parametrize("option", ["--user", "--group"])
def test_hostile_user_and_group_are_refused(
    capsys: pytest.CaptureFixture[str], option: str
) -> None:
    unit_refused(capsys, "prod-wsgi", option, "www-data\n" + INJECTED,
                 needles=(f"key '{option}'", "'\\n'"))


@pytest.mark.usefixtures("in_demo")
def test_hostile_unix_bind_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    unit_refused(capsys, "prod-wsgi", "--bind", "unix:/run/x.sock\n" + INJECTED,
                 needles=("key '--bind'", "control character"))


def test_hostile_profile_file_name_is_refused(env: Env, tmp_path: Path) -> None:
    """A real process, the name one of its arguments: refused with exit 2, one line, no unit."""
    profile = tmp_path / "site\nExecStartPre=touch PWNED.yaml"  # a file name holds no '/'
    profile.write_text(BASE)
    result = subprocess.run([PYTHON, "-m", "launcher", "systemd-unit", str(profile)], cwd=DEMO,
                            env=env.vars(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""  # no unit at all, so nothing to install by mistake
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("launch: error: ")
    assert "'\\n'" in lines[0] and "systemd unit" in lines[0], lines[0]


@pytest.mark.usefixtures("in_demo")
def test_a_multi_line_description_is_flattened_onto_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Plain whitespace, newlines included, is folded (YAML's `>` leaves one): no directive."""
    profile = tmp_path / "folded.yaml"
    profile.write_text(BASE + f'description: "my site\\n{INJECTED}\\n"\n')
    text = ran(capsys, "systemd-unit", str(profile))
    keys = directives(text)
    assert "Service.ExecStartPre" not in keys
    assert keys["Unit.Description"] == [f"launcher: folded (my site {INJECTED})"]
    unit = tmp_path / "launcher-folded.service"
    unit.write_text(text)
    verify(unit)


def test_the_injection_would_have_worked(tmp_path: Path) -> None:
    """The guard matters: systemd-analyze accepts a unit where a newline started a directive."""
    unit = tmp_path / "launcher-demo.service"
    unit.write_text(
        "[Unit]\nDescription=demo\n[Service]\nType=simple\nExecStart=/bin/true\n"
        f"WorkingDirectory=/x\n{INJECTED}\n[Install]\nWantedBy=multi-user.target\n"
    )
    assert directives(unit.read_text())["Service.ExecStartPre"] == ["/bin/touch /tmp/PWNED"]
    verify(unit)
