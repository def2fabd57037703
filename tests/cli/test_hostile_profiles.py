"""Hostile and mistaken profiles: each is refused with one line, exit 2, no traceback, fast.

Each case is a value that once escaped as a traceback, a hang or a crash loop. Most run the CLI
in-process (`launcher.cli.main`), where any exception other than the CLI's own refusal fails the
test by itself; a few run `python -m launcher` where the process as a whole matters.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from launcher.cli import main
from launcher.plan.reader import MAX_DEPTH, MAX_VALUES
from tests.conftest import ROOT, refused

DEMO = ROOT / "demo_site"
HEADER = f"chdir: {DEMO}\nsettings: demo_site.settings\napp: demo_site.wsgi:application\n"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


# ----- one bad value: file, line 4, key -----------------------------------------------------

NESTED = "[" * 500 + "]" * 500
# id: (what follows the 3-line header, key or None, fragment of the message)
VALUES = {
    "wrap-nested-500": (f"wrap: {NESTED}\n", None, f"nested more than {MAX_DEPTH} levels deep"),
    "control-char-raw": ('description: "a\x01b"\n', None, "character U+0001 is not allowed"),
    "control-char-escaped": ('description: "a\\u0001b"\n', "description",
                             "control character U+0001"),
    # (a newline in a description is folded onto one line: tests/run/test_systemd_injection.py)
    "description-escape": ('description: "x\\e[31mExecStartPre=/bin/touch /tmp/PWNED"\n',
                           "description", "control character U+001B"),
    "before-start-unclosed-quote": ("before_start: [\"migrate 'oops\"]\n", "before_start.0",
                                    "no closing quotation"),
    "before-start-empty-argv": ("before_start: [[]]\n", "before_start.0", "an empty command"),
    "before-start-blank": ("before_start: ['  ']\n", "before_start.0", "an empty step"),
    "wrap-empty-word": ('wrap: [""]\n', "wrap.0", "an empty word"),
    "backlog-1e20": ("backlog: 1e20\n", "backlog", "integer"),
    "backlog-1.0e+20": ("backlog: 1.0e+20\n", "backlog", "integer"),
    "backlog-too-big": ("backlog: 100000\n", "backlog", "less than or equal to 65535"),
    "health-timeout-1e308": ("health: {timeout: 1e308}\n", "health.timeout",
                             "less than or equal to 3600"),
    "health-timeout-1.0e+308": ("health: {timeout: 1.0e+308}\n", "health.timeout",
                                "less than or equal to 3600"),
    "health-interval-inf": ("health: {interval: .inf}\n", "health.interval", "less than or equal"),
    "health-interval-nan": ("health: {interval: .nan}\n", "health.interval", "less than or equal"),
    "health-host-crlf": ('health: {host: "example.com\\r\\nX-Evil: 1"}\n', "health.host",
                         "no spaces or line breaks"),
    "health-path-space": ('health: {path: "/a b"}\n', "health.path", "without spaces"),
    "timeout-1e30": ("timeout: 1e30\n", "timeout", "integer"),
    "timeout-1.0e+30": ("timeout: 1.0e+30\n", "timeout", "integer"),
    "timeout-two-days": ("timeout: 172800\n", "timeout", "less than or equal to 86400"),
    "graceful-timeout-huge": ("graceful_timeout: 99999999\n", "graceful_timeout",
                              "less than or equal to 86400"),
    "port-full-width": ("bind: 127.0.0.1:\uff18\uff10\uff10\uff11\n", "bind", "is not HOST:PORT"),
    "port-arabic-indic": ("bind: 127.0.0.1:٨٠٠١\n", "bind", "is not HOST:PORT"),
    "port-huge": (f"bind: 127.0.0.1:{'9' * 5000}\n", "bind", "is not HOST:PORT"),
    "bind-nul": ('bind: "unix:/tmp/a\\0b"\n', "bind", "control character"),
    "bind-unix-too-long": (f"bind: unix:/{'a' * 120}\n", "bind", "at most 107 bytes"),
    "workers-full-width": ("workers: \uff18\n", "workers", "whole number from 1 to 1024"),
    "workers-too-many": ("workers: 100000\n", "workers", "whole number from 1 to 1024"),
    "threads-too-many": ("threads: 5000\n", "threads", "less than or equal to 1024"),
    "keepalive-huge": ("keepalive: 1000000\n", "keepalive", "less than or equal to 3600"),
    "max-requests-huge": ("max_requests: 1000000000000\n", "max_requests", "less than or equal"),
    "restart-window-inf": ("restart: {window: .inf}\n", "restart.window", "less than or equal"),
    "restart-backoff-huge": ("restart: {backoff_max: 1.0e+9}\n", "restart.backoff_max",
                             "less than or equal"),
    "memory-ceiling-huge": ("limits: {max_worker_memory: 100PiB}\n",
                            "limits.max_worker_memory", "must be from 1MiB to 1PiB"),
    "ws-max-size-huge": ("uvicorn: {ws_max_size: 1000000000000}\n", "uvicorn.ws_max_size",
                         "less than or equal"),
    "ws-ping-inf": ("uvicorn: {ws_ping_interval: .inf}\n", "uvicorn.ws_ping_interval",
                    "less than or equal"),
    "root-path-newline": ('uvicorn: {root_path: "/a\\nb"}\n', "uvicorn.root_path",
                          "control character U+000A"),
    "env-nul": ('env: {A: "x\\0y"}\n', "env.A", "NUL byte"),
    "pythonpath-newline": ('pythonpath: ["a\\nb"]\n', "pythonpath.0", "control character"),
    "watch-include-empty": ("watch: {include: ['']}\n", "watch.include.0", "an empty word"),
    "python-object-tag": ("x: !!python/object:os.system {a: 1}\n", "x",
                          "YAML tag !!python/object:os.system is not supported"),
    "python-name-tag": ("x: !!python/name:os.system ''\n", None, "could not determine"),
    "set-tag": ("x: !!set {a, b}\n", "x", "YAML tag !!set is not supported"),
    "bad-int-tag": ("x: !!int zz\n", "x", "not a valid !!int value"),
    "int-of-5000-digits": (f"x: {'9' * 5000}\n", "x", "not a valid !!int value"),
    "complex-key": ("? [a]\n: 1\n", None, "a key must be a plain name"),
    "self-alias": ("x: &a [*a]\n", None, "alias *a has no anchor before it"),
    "second-document": ("---\ny: 2\n", None, "one YAML document"),
}


@pytest.mark.parametrize("case", list(VALUES))
def test_hostile_value_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    body, key, fragment = VALUES[case]
    path = write(tmp_path / "hostile.yaml", HEADER + body)
    for command in ("show", "check", "systemd-unit", "k8s"):
        image = ("--image", "registry.example.com/site:1") if command == "k8s" else ()
        line = refused(capsys, command, str(path), *image)
        where = f"launch: error: {path}:4: " + (f"key '{key}': " if key else "")
        assert line.startswith(where), line
        assert fragment in line, line


def test_settings_that_is_not_a_module_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "p.yaml", HEADER.replace("demo_site.settings", '"demo site\\n"'))
    line = refused(capsys, "show", str(path))
    assert line.startswith(f"launch: error: {path}:2: key 'settings': "), line
    assert "is not a dotted module path" in line


# ----- chdir --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chdir", "fragment"),
    [
        ("/nonexistent/launcher-test", "directory /nonexistent/launcher-test does not exist"),
        (str(DEMO / "manage.py"), "manage.py is not a directory"),
        ('"\\0"', "control character U+0000"),
        ('"/x\\nExecStartPre=/bin/touch /tmp/PWNED"', "control character U+000A"),
        ('""', "an empty word"),
    ],
)
def test_bad_chdir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], chdir: str, fragment: str
) -> None:
    path = write(tmp_path / "p.yaml", f"app: demo_site.wsgi:application\nchdir: {chdir}\n")
    for command in ("show", "check"):
        line = refused(capsys, command, str(path))
        assert line.startswith(f"launch: error: {path}:2: key 'chdir': "), line
        assert fragment in line


def test_chdir_symlink_loop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    path = write(tmp_path / "p.yaml", "app: demo_site.wsgi:application\nchdir: loop\n")
    line = refused(capsys, "show", str(path))
    assert line.startswith(f"launch: error: {path}:2: key 'chdir': directory "), line


# ----- the file itself ----------------------------------------------------------------------


def test_latin1_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "p.yaml", (HEADER + "description: café\n").encode("latin-1"))
    line = refused(capsys, "show", str(path))
    assert line == f"launch: error: {path}:4: not UTF-8 text (byte 0xe9); save the file as UTF-8"


def test_utf8_bom_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "p.yaml", b"\xef\xbb\xbf" + (HEADER + "description: caf\xc3\xa9\n")
                 .encode("latin-1"))
    assert main(["show", str(path)]) == 0
    assert "# café" in capsys.readouterr().out


def test_utf16_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "p.yaml", HEADER.encode("utf-16"))
    line = refused(capsys, "show", str(path))
    assert line.startswith(f"launch: error: {path}:1: not UTF-8 text"), line


def test_symlink_loop_as_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    line = refused(capsys, "show", str(tmp_path / "a.yaml"))
    assert line == f"launch: error: profile file {tmp_path / 'a.yaml'} is a symlink loop"


def test_directory_as_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mine.yaml").mkdir()
    for name in (str(tmp_path / "mine.yaml"), str(tmp_path) + "/"):
        line = refused(capsys, "show", name)
        assert line == f"launch: error: {name} is a directory, not a profile file"


def test_unreadable_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    path = write(tmp_path / "p.yaml", HEADER)
    path.chmod(0)
    line = refused(capsys, "show", str(path))
    assert line == f"launch: error: {path}: cannot read: Permission denied"


def test_extends_cycle_names_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path / "a.yaml", HEADER + "extends: b\n")
    b = write(tmp_path / "b.yaml", "description: b\nextends: c\n")
    write(tmp_path / "c.yaml", "extends: a.yaml\n")
    line = refused(capsys, "show", str(a))
    assert line == (
        f"launch: error: {tmp_path / 'c.yaml'}:1: key 'extends': extends loops back on itself: "
        "a.yaml -> b.yaml -> c.yaml -> a.yaml"
    )
    line = refused(capsys, "show", str(b))
    assert line.startswith(f"launch: error: {a}:4: key 'extends': extends loops back"), line


def test_extends_chain_of_1200(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(1200):
        write(tmp_path / f"c{i}.yaml", HEADER if i == 1199 else f"extends: c{i + 1}\n")
    started = time.process_time()  # CPU of this process: other work on the machine cannot count
    line = refused(capsys, "show", str(tmp_path / "c0.yaml"))
    assert time.process_time() - started < 1.0
    assert line == (
        f"launch: error: {tmp_path / 'c15.yaml'}:1: key 'extends': "
        "extends chain longer than 16 profiles"
    )


@pytest.mark.parametrize("ref", ['""', "[a]", "'bad\\0name'", "'" + "x" * 5000 + "'"])
def test_extends_that_names_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    path = write(tmp_path / "p.yaml", HEADER + f"extends: {ref}\n")
    line = refused(capsys, "show", str(path))
    assert line.startswith(f"launch: error: {path}:4: key 'extends': "), line


# ----- bounded work -------------------------------------------------------------------------


def bounded(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    """Refused within a second, and within a few tens of MB of Python allocations."""
    tracemalloc.start()
    started = time.process_time()  # CPU of this process: other work on the machine cannot count
    try:
        line = refused(capsys, "show", str(path))
        elapsed = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0, elapsed  # tracemalloc about halves the speed; alone it is < 1 s
    assert peak < 40 * 2**20, peak
    return line


def laughs(levels: int) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return HEADER + "\n".join(lines) + "\n"


def test_billion_laughs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "p.yaml", laughs(9))
    line = bounded(capsys, path)
    assert line.startswith(f"launch: error: {path}:"), line
    assert f"more than {MAX_VALUES} values (aliases expanding too far?)" in line


def test_merge_key_of_laughs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = HEADER + "b: &b {x: [1, 2, 3]}\n" + "".join(
        f"m{i}: &m{i} {{<<: [{', '.join(['*b' if i == 0 else f'*m{i - 1}'] * 10)}]}}\n"
        for i in range(8)
    )
    line = bounded(capsys, write(tmp_path / "p.yaml", text))
    assert "launch: error: " in line


def test_fifty_megabyte_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.yaml"
    with path.open("w") as handle:
        handle.write(HEADER + "watch:\n  exclude:\n")
        handle.write("    - x\n" * (50 * 2**20 // 8))
    line = bounded(capsys, path)
    assert line == (
        f"launch: error: {path}: too large: a profile and the files it extends may hold "
        "256 KiB together"
    )


def test_extends_shares_the_size_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    padding = "# " + "x" * 100 + "\n"
    write(tmp_path / "base.yaml", HEADER + padding * 1500)  # ~150 KiB
    path = write(tmp_path / "p.yaml", "extends: base\n" + padding * 1500)
    line = bounded(capsys, path)
    assert line.startswith(f"launch: error: {tmp_path / 'base.yaml'}: too large"), line


@pytest.mark.parametrize(
    "body",
    [
        "x: " + "[" * 30 + "1" + "]" * 30 + "\n" + "y: [" + ", ".join(["1"] * 30_000) + "]\n",
        "env:\n" + "".join(f"  K{i}: v{i}\n" for i in range(9_000)),
        "x: " + "{a: " * 40 + "1" + "}" * 40 + "\n",
        "x: " + "[" * 100_000,
    ],
    ids=["long-flow-list", "nine-thousand-env-vars", "deep-mapping", "unclosed-brackets"],
)
def test_largest_profiles_answer_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str
) -> None:
    path = write(tmp_path / "p.yaml", HEADER + body)
    assert path.stat().st_size <= 256 * 1024
    started = time.process_time()  # CPU of this process: other work on the machine cannot count
    code = main(["show", str(path)])
    elapsed = time.process_time() - started
    out, err = capsys.readouterr()
    assert code in (0, 2), out + err
    assert "Traceback" not in err
    assert elapsed < 1.5, elapsed


def test_billion_laughs_in_a_process(tmp_path: Path) -> None:
    """The whole process, as an operator runs it: answered at once, small, one line."""
    path = write(tmp_path / "p.yaml", laughs(12))
    code = (
        "import re, sys\n"
        "from launcher.cli import main\n"
        "code = main(sys.argv[1:])\n"
        # VmHWM, not ru_maxrss: that one carries the forking parent's peak across exec.
        "status = open('/proc/self/status').read()\n"
        "print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
        "sys.exit(code)\n"
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code, "show", str(path)],
        capture_output=True, text=True, timeout=30,
    )
    assert time.monotonic() - started < 10
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"more than {MAX_VALUES} values" in result.stderr
    assert int(result.stdout.strip()) < 80 * 1024  # KiB: the interpreter and its imports ~35


def test_fifo_as_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Never opened (that would block until a writer comes): refused from its type."""
    os.mkfifo(tmp_path / "p.yaml")
    line = refused(capsys, "show", str(tmp_path / "p.yaml"))
    assert line == f"launch: error: profile file {tmp_path / 'p.yaml'} is not a regular file"
