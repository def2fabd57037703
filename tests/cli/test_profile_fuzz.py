"""Property-based test of the profile surface: whatever a profile holds, the answer is a plan or
one line naming the file, exit 0 or 2, never a traceback, a hang or a swell.

Profiles are generated with structure: a valid start (or none, or `extends:`), then valid keys
with wrong values, unknown and near-miss keys at every level, and YAML's odder features
(anchors, aliases, `<<:` merges, tags such as !!python/object, duplicate keys, deep nesting,
control characters, BOMs, Latin-1 and UTF-16). Most examples run `launch show` and `check`
in-process; a smaller sample runs `python -m launcher` to bound time and memory per process.

LAUNCH_FUZZ_EXAMPLES sets the number of in-process examples (100 by default, for CI's time; the
search for new cases is the nightly-sized run's, in the README: 20,000 with a random rather than
a fixed seed).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from launcher.cli import main
from launcher.plan.lookup import SHIPPED_CONFIGS
from launcher.plan.schema import Profile
from launcher.plan.sections import Health, Limits, Restart, UvicornSettings, Watch
from tests.conftest import ROOT, Env, free_port

EXAMPLES = int(os.environ.get("LAUNCH_FUZZ_EXAMPLES", "100"))
NIGHTLY = EXAMPLES > 1000
DEMO = ROOT / "demo_site"
WORKDIR = Path(tempfile.mkdtemp(prefix="launch-fuzz-"))

SECTIONS = {
    "uvicorn": UvicornSettings,
    "health": Health,
    "restart": Restart,
    "limits": Limits,
    "watch": Watch,
}
TOP_KEYS = [k for k in Profile.model_fields if k not in SECTIONS]
VALID_START = (
    f"chdir: {DEMO}\nsettings: demo_site.settings\napp: demo_site.wsgi:application\n"
    "health: {enabled: false}\n"
)
STARTS = [VALID_START, "extends: prod-wsgi\n", "extends: dev\n", ""]


# ----- scalars ------------------------------------------------------------------------------

NASTY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from(
            ["\n", "\r", "\t", "\0", "\x1b", "\x85", "\u2028", "\uff18", "\u0663", "%", "$"]
        ),
    ),
    max_size=20,
)
PLAIN_WORDS = st.sampled_from([
    "auto", "sync", "gthread", "uvicorn", "asgi", "eventlet", "on", "off", "yes", "no", "~",
    "null", "true", "False", "info", "trace", "127.0.0.1:8000", "[::1]:8001", "unix:/tmp/x.sock",
    "unix:relative", "0.0.0.0:70000", "/healthz", "healthz", "400MiB", "1e30", "1.0e+30", "-1",
    "0", "0x10", "0o17", "1_000", "12:30:00", "2001-12-14", ".inf", "-.inf", ".nan", "migrate",
    "demo_site.wsgi:application", "demo_site.settings", "a b c", "${HOME}", "${PORT:-8000}",
    "${LAUNCH_FUZZ_UNSET}", "$$", "${", "${PORT:-}", "mod:attr", ":", "-", "?",
])
NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr)
    .map(lambda s: {"inf": ".inf", "-inf": "-.inf", "nan": ".nan"}.get(s, s)),
    st.sampled_from(["1e20", "1.0e+20", "1e308", "1.0e+308", "9" * 400, "0.0000001"]),
)
TAGS = st.sampled_from([
    "!!python/object:os.system", "!!python/name:os.system", "!!python/object/apply:os.system",
    "!!binary", "!!int", "!!float", "!!str", "!!bool", "!!timestamp", "!!null", "!custom", "!",
])


def quoted(text: str) -> str:
    """A double-quoted YAML scalar: JSON escapes are YAML escapes, so any character gets in."""
    return json.dumps(text)


SCALARS = st.one_of(
    PLAIN_WORDS,
    NUMBERS,
    NASTY_TEXT.map(quoted),
    st.builds(lambda tag, word: f"{tag} {word}", TAGS, st.one_of(PLAIN_WORDS, NUMBERS)),
    st.sampled_from(["''", '""', "'it''s'", "|\n  block\n  text", ">-\n  folded"]),
)


def flow(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(st.one_of(PLAIN_WORDS, NUMBERS), children), max_size=3).map(
            lambda kvs: "{" + ", ".join(f"{k}: {v}" for k, v in kvs) + "}"
        ),
    )


INLINE_VALUES = st.recursive(
    st.one_of(SCALARS.filter(lambda s: "\n" not in s)), flow, max_leaves=8
)
DEEP = st.integers(min_value=20, max_value=600).map(lambda n: "[" * n + "]" * n)


# ----- keys ---------------------------------------------------------------------------------


def near_misses(key: str) -> st.SearchStrategy[str]:
    """A key as a person mistypes it: a letter dropped, doubled or swapped, case, dashes."""
    variants = {key.upper(), key.replace("_", "-"), key + "s", key[:-1] or key, key.title()}
    variants |= {key[:i] + key[i + 1 :] for i in range(len(key))}
    variants |= {key[:i] + key[i] + key[i:] for i in range(len(key))}
    return st.sampled_from(sorted(variants - {key}) or [key + "x"])


TOP_KEY = st.one_of(
    st.sampled_from(TOP_KEYS),
    st.sampled_from(TOP_KEYS).flatmap(near_misses),
    st.sampled_from(["extends", "<<", "~", "1", "true", "x-anchors", "? [a]", '"app"', "'bind'"]),
)


def section_entries(name: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    fields = sorted(SECTIONS[name].model_fields)
    key = st.one_of(st.sampled_from(fields), st.sampled_from(fields).flatmap(near_misses))
    return st.lists(st.tuples(key, INLINE_VALUES), max_size=4)


# ----- whole profiles -----------------------------------------------------------------------


@st.composite
def profile_text(draw: st.DrawFn) -> str:
    lines = [draw(st.sampled_from(STARTS))]
    anchors: list[str] = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        kind = draw(st.sampled_from(
            ["top", "top", "top", "section", "section", "alias", "merge", "deep", "laughs", "dup"]
        ))
        if kind == "top":
            value = draw(INLINE_VALUES)
            if draw(st.booleans()) and not value.startswith(("!", "&", "*", "|", ">")):
                anchor = f"a{len(anchors)}"
                anchors.append(anchor)
                value = f"&{anchor} {value}"
            lines.append(f"{draw(TOP_KEY)}: {value}\n")
        elif kind == "section":
            name = draw(st.sampled_from(sorted(SECTIONS)))
            header = draw(st.one_of(st.just(name), near_misses(name)))
            entries = draw(section_entries(name))
            lines.append(f"{header}:\n" + "".join(f"  {k}: {v}\n" for k, v in entries)
                         if entries else f"{header}: {{}}\n")
        elif kind == "alias" and anchors:
            lines.append(f"{draw(TOP_KEY)}: *{draw(st.sampled_from(anchors))}\n")
        elif kind == "merge" and anchors:
            section = draw(st.sampled_from(sorted(SECTIONS)))
            lines.append(f"{section}:\n  <<: *{draw(st.sampled_from(anchors))}\n")
        elif kind == "deep":
            lines.append(f"{draw(TOP_KEY)}: {draw(DEEP)}\n")
        elif kind == "laughs":
            levels = draw(st.integers(min_value=2, max_value=10))
            lines.append("x0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
            lines += [f"x{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n"
                      for i in range(1, levels)]
        elif kind == "dup":
            key = draw(st.sampled_from(TOP_KEYS))
            lines += [f"{key}: {draw(INLINE_VALUES)}\n", f"{key}: {draw(INLINE_VALUES)}\n"]
    return "".join(lines)


@st.composite
def profile_bytes(draw: st.DrawFn) -> bytes:
    text = draw(profile_text())
    encoding = draw(st.sampled_from(["utf-8"] * 12 + ["utf-8-sig", "latin-1", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(min_value=0, max_value=20)) == 0:  # a stray byte somewhere
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + bytes([draw(st.integers(min_value=0, max_value=255))]) + data[at:]
    return data


# ----- the properties -----------------------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def assert_one_line_naming_the_file(err: str, directory: Path) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("launch: error: "), err
    assert str(directory) in lines[0] or str(SHIPPED_CONFIGS) in lines[0], err
    return lines[0]


def assert_unit_is_intact(unit: str) -> None:
    """No profile value can add a directive: one ExecStart, and only `Name=value` lines."""
    assert sum(line.startswith("ExecStart=") for line in unit.splitlines()) == 1, unit
    for line in unit.splitlines():
        assert line == "" or line.startswith(("#", "[")) or re.match(r"[A-Z][A-Za-z]+=", line)
        assert not line.startswith(("ExecStartPre", "ExecStop")), unit


def fuzz_settings(examples: int, deadline: timedelta | None = timedelta(seconds=3)) -> settings:
    return settings(
        max_examples=examples,
        deadline=deadline,  # a hang, not a slow machine: bounded work is < 1 s
        derandomize=not NIGHTLY,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.function_scoped_fixture,  # `env`: one run dir and leak check per test
        ],
    )


@pytest.mark.timeout(max(120, 60 + EXAMPLES // 10))  # the nightly-sized run takes minutes
@fuzz_settings(EXAMPLES)
@given(data=profile_bytes())
def test_any_profile_gets_a_plan_or_one_line(data: bytes) -> None:
    directory = Path(tempfile.mkdtemp(dir=WORKDIR))
    path = directory / "fuzz.yaml"
    path.write_bytes(data)
    code, out, err = run_cli("show", str(path))
    assert code in (0, 2), err
    assert "Traceback" not in out + err
    if code == 2:
        line = assert_one_line_naming_the_file(err, directory)
        # every command refuses the same profile the same way
        assert run_cli("check", str(path)) == (2, "", err)
        assert run_cli("show", str(path), "--origins")[2] == err
        assert line
        return
    assert err == "" and out
    for args in (("show", "--json"), ("show", "--origins"), ("show", "--origins", "--json")):
        code, out, err = run_cli(args[0], str(path), *args[1:])
        assert (code, err) == (0, ""), err
    code, unit, err = run_cli("systemd-unit", str(path))
    assert (code, err) == (0, ""), err
    assert_unit_is_intact(unit)


SAMPLE = max(6, EXAMPLES // 80)  # each a process: 6 by default, 250 in the nightly run
PROBE = (
    "import re, sys\n"
    "from launcher.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
    "print(f'VmHWM {hwm}', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.mark.timeout(max(120, 60 + SAMPLE * 5))
@fuzz_settings(SAMPLE, deadline=None)  # bounded below: `check` starts Django, seconds
@given(data=profile_bytes(), command=st.sampled_from(["show", "check", "check"]))
@example(data=VALID_START.encode(), command="check")  # the whole check: import, Django checks
def test_any_profile_in_a_process_is_bounded(env: Env, data: bytes, command: str) -> None:
    """As an operator runs it: exit 0 or 2, no traceback, within seconds and ~100 MB."""
    directory = Path(tempfile.mkdtemp(dir=WORKDIR))
    path = directory / "fuzz.yaml"
    path.write_bytes(data)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, command, str(path), "--bind", f"127.0.0.1:{free_port()}"],
        cwd=directory, env=env.vars(), capture_output=True, text=True, timeout=60,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the command and the processes it waited for: a bound a busy machine
    # does not stretch, as it stretches the wall clock (the run's own timeout bounds that).
    elapsed = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    *lines, hwm = result.stderr.splitlines()
    assert result.returncode in (0, 2), result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if result.returncode == 2:
        assert_one_line_naming_the_file("\n".join(lines), directory)
    assert int(hwm.split()[1]) < 120 * 1024, hwm  # KiB; the interpreter and imports are ~40 MB
    # `check` of a valid profile imports Django in a child and runs its checks: seconds.
    assert elapsed < (30 if command == "check" and result.returncode == 0 else 5), elapsed
