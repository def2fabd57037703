"""Cross-layer timeout rules, pure: a profile in, the contradicting pairs of keys out."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.plan.build import build_plan
from launcher.plan.consistency import contradictions
from launcher.plan.loader import load_profile
from launcher.plan.lookup import SHIPPED_CONFIGS

# Quiet defaults for the rules not under test: no probe, a generous crash window.
BASE = "app: a.wsgi:application\nhealth: {enabled: false}\nrestart: {window: 86400}\n"

CASES = {
    # id: (profile after BASE, the pairs of keys that must be named)
    "consistent": ("", []),
    "probe-outlives-worker": (
        "timeout: 5\nhealth: {timeout: 10, interval: 20}\n", [("health.timeout", "timeout")]
    ),
    "probe-within-worker": ("timeout: 5\nhealth: {timeout: 4, interval: 20}\n", []),
    "worker-timeout-off": ("timeout: 0\nhealth: {timeout: 4, interval: 20}\n", []),
    "uvicorn-has-no-worker-timeout": (
        "server: uvicorn\ntimeout: 5\nhealth: {timeout: 10, interval: 20}\n", []
    ),
    "probes-overlap": (
        "health: {timeout: 5, interval: 5}\n", [("health.timeout", "health.interval")]
    ),
    "probe-off-overlap-ignored": ("health: {enabled: false, timeout: 9, interval: 5}\n", []),
    "sync-request-outlives-drain": (
        "timeout: 60\ngraceful_timeout: 10\n", [("graceful_timeout", "timeout")]
    ),
    "gthread-timeout-is-a-heartbeat": (
        "worker_class: gthread\ntimeout: 60\ngraceful_timeout: 10\n", []
    ),
    "dev-reload-drains-fast": ("reload: true\ntimeout: 60\ngraceful_timeout: 2\n", []),
    "drain-beyond-graceful": (
        "server: uvicorn\nreload: true\ngraceful_timeout: 2\nwatch: {drain_timeout: 5}\n",
        [("watch.drain_timeout", "graceful_timeout")],
    ),
    "backoff-inverted": (
        "restart: {backoff_initial: 10, backoff_max: 2, window: 100}\n",
        [("restart.backoff_initial", "restart.backoff_max")],
    ),
    "crash-loop-never-flaps": (
        "restart: {backoff_initial: 4, backoff_max: 30, max_crashes: 5, window: 60}\n",
        [("restart.window", "restart.max_crashes")],  # 4+8+16+30+30 = 88 s > 60 s
    ),
    "crash-loop-flaps": (
        "restart: {backoff_initial: 1, backoff_max: 30, max_crashes: 5, window: 60}\n", []
    ),
    "crash-loop-at-the-max-crashes-limit": (  # 10,000 backoffs, past a float's 2**1024
        "restart: {backoff_initial: 0.5, backoff_max: 30, max_crashes: 10000, window: 86400}\n",
        [("restart.window", "restart.max_crashes")],  # 31.5 + 9994 * 30 s > 86400 s
    ),
    "unhealthy-loop-never-flaps": (
        "health: {enabled: true, interval: 10, failure_threshold: 3, timeout: 2}\n"
        "restart: {window: 60}\n",
        [("health.interval", "restart.window")],
    ),
    "unhealthy-loop-flaps": (
        "health: {enabled: true, interval: 1, failure_threshold: 2, timeout: 0.5}\n"
        "restart: {window: 60}\n",
        [],
    ),
    "backoff-outlasts-watchdog": (
        "worker_class: gthread\ngraceful_timeout: 2\nhealth: {startup_timeout: 5}\n"
        "restart: {backoff_initial: 0.5, backoff_max: 600, window: 86400}\n",
        [("restart.backoff_max", "WatchdogSec")],  # 2 + 600 + 5 s > WatchdogSec=20
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rules(tmp_path: Path, case: str) -> None:
    body, expected = CASES[case]
    path = tmp_path / "p.yaml"
    text = BASE + body
    if "restart:" in body:
        text = text.replace("restart: {window: 86400}\n", "")
    if "health:" in body:
        text = text.replace("health: {enabled: false}\n", "")
    path.write_text(text)
    plan = build_plan(
        load_profile(str(path), cwd=tmp_path, env={}), python="python", cpus=2, env={}
    )
    found = contradictions(plan)
    assert sorted(c.keys for c in found) == sorted(expected)
    for c in found:  # each warning names both keys
        assert f"'{c.keys[0]}' vs '{c.keys[1]}': " in c.render()


@pytest.mark.parametrize("name", ["dev", "prod-wsgi", "prod-asgi"])
def test_shipped_profiles_are_consistent(name: str) -> None:
    demo = SHIPPED_CONFIGS.parents[1] / "demo_site"  # run inside a project, as users do
    loaded = load_profile(str(SHIPPED_CONFIGS / f"{name}.yaml"), cwd=demo, env={})
    plan = build_plan(loaded, python="python", cpus=2, env={}, cwd=demo)
    assert contradictions(plan) == []
