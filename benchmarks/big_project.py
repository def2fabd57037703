"""A big project: the launcher against the raw commands on a site slow to import.

    .venv/bin/python -m benchmarks.big_project [--rounds N] [--no-write]

The heavy project of tests/projects.py (a CMS site with an API and apps of its own, about
1-1.5 s to import: the figure is measured in the run) is generated in a temp dir, migrated and
its static files collected once. Then, round after round, each round in another order:

- dev edit -> served: each dev server is started, then catalog/views.py (a view the URLconf
  registers) and catalog/models.py (a model module, imported by `django.setup()`) get a new
  `TOKEN = "..."` line in turn; /probe/ is polled every 10 ms on a fresh connection until it
  shows the new token and `SETTLE_S` more, counting refused, dropped and non-200 polls.
  `launch dev`, `uvicorn --reload` (twice: the A/A pair) and `manage.py runserver`. The raw
  uvicorn serves the project's `asgi.py` (Django's own, added here: the CMS's template has
  none, and uvicorn needs one).
- prod start -> first 200 on `/`: `launch prod-wsgi` (its migrate and collectstatic steps
  have nothing to do), the same without `before_start`, and the raw gunicorn command
  `launch show prod-wsgi` prints, with the same settings (twice: the A/A pair); 2 workers.
  Each keeps its port from round to round, as a service does, and starts once before the
  rounds, uncounted. Set apart: the launcher's own time (without `before_start` against raw
  gunicorn, round by round: the planner, the app check, the supervisor) and the time of
  Django's checks, measured on their own (`call_command("check")` after `django.setup()` in a
  fresh interpreter, production settings: what a start runs once before its first step).
- validated reload: `launch reload prod-wsgi` against a `launch prod-wsgi` kept running, from
  the command to its exit (the new generation serves), set against a raw gunicorn start.

Ratios are taken round by round and summarised as median (min..max), beside the A/A ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

from benchmarks.results import BigProjectSection, Summary, summary
from benchmarks.servers import LAUNCH, PYTHON, REPO, Server, free_port, http_get, stop_all
from tests.heavy_project import PROBE_FILES, PROBE_PATH, migrate, set_token
from tests.projects import HEAVY, generate

POLL_S = 0.01
SETTLE_S = 2.0  # after the new code is served: polled on, and a pause before the next edit
EDIT_TIMEOUT_S = 60.0
ROUNDS = 3
SECRETS = {
    "DJANGO_SECRET_KEY": "benchmark-big-project-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
}
DEV_SERVERS = ("launch dev", "uvicorn --reload", "uvicorn --reload (A/A)", "manage.py runserver")
EDITS = ("view", "model")
STARTS = ("raw gunicorn", "launch prod-wsgi", "launch, no before_start", "raw gunicorn (A/A)")
_ASGI = '''"""ASGI config for mysite: Django's own, for `uvicorn mysite.asgi:application`."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings.production")

application = get_asgi_application()
'''
_CHECKS = (
    "import django; django.setup(); import time; from django.core.management import "
    "call_command; t = time.perf_counter(); call_command('check', verbosity=0); "
    "print(time.perf_counter() - t)"
)
_IMPORT = (
    "import time; t = time.perf_counter(); import django; django.setup(); "
    "from django.urls import get_resolver; get_resolver().url_patterns; "
    "import sys; print(time.perf_counter() - t, time.process_time(), len(sys.modules))"
)


class Site:
    """The generated project in a temp dir, with the environment every server gets."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="launcher-big-"))
        self.project = generate(HEAVY, self.tmp)
        (self.project / "mysite" / "asgi.py").write_text(_ASGI)
        (self.tmp / "logs").mkdir()
        env = {k: v for k, v in os.environ.items()
               if k not in ("PORT", "WEB_CONCURRENCY", "DJANGO_SETTINGS_MODULE",
                            "LAUNCH_CONFIG_DIR", "PYTHONPATH")}
        self.env = {**env, **SECRETS, "WEB_CONCURRENCY": "2", "PYTHONUNBUFFERED": "1",
                    "LAUNCH_RUN_DIR": str(self.tmp / "run")}
        migrate(self.project)
        subprocess.run(
            [PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=self.project,
            env={**self.env, "DJANGO_SETTINGS_MODULE": "mysite.settings.production"},
            check=True, timeout=300,
        )
        self.nosteps = self.tmp / "prod-wsgi-nosteps.yaml"
        self.nosteps.write_text("extends: prod-wsgi\nbefore_start: []\n")
        self._logs = 0
        self.ports: dict[str, int] = {}

    def log(self, label: str) -> Path:
        self._logs += 1
        name = re.sub(r"[^\w.]+", "-", label)
        return self.tmp / "logs" / f"{name}-{self._logs}.log"

    def server(self, label: str, kind: str, argv: list[str], port: int,
               **env: str) -> Server:
        return Server(label, kind, argv, self.project, {**self.env, **env}, port, self.log(label))

    def import_seconds(self, times: int = 3) -> tuple[Summary, Summary, int]:
        """django.setup() + the URLconf in a fresh interpreter, dev settings: (wall seconds,
        CPU seconds of the whole interpreter, modules)."""
        wall, cpu, modules = [], [], 0
        for _ in range(times):
            out = subprocess.run(
                [PYTHON, "-c", _IMPORT], cwd=self.project, capture_output=True, text=True,
                env={**self.env, "DJANGO_SETTINGS_MODULE": "mysite.settings.dev"}, check=True,
            ).stdout.split()
            wall.append(float(out[0]))
            cpu.append(float(out[1]))
            modules = int(out[2])
        return summary(wall), summary(cpu), modules

    def checks_seconds(self, times: int = 3) -> Summary:
        """Django's checks alone, as a start runs them before its first step (production
        settings, the project already imported): wall seconds."""
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "mysite.settings.production"}
        return summary([
            float(subprocess.run([PYTHON, "-c", _CHECKS], cwd=self.project, env=env,
                                 capture_output=True, text=True, check=True).stdout.split()[-1])
            for _ in range(times)
        ])

    def remove(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


# ----- the servers ------------------------------------------------------------------------------


def dev_server(site: Site, name: str) -> Server:
    port = free_port()
    if name == "launch dev":
        return site.server(name, "launch", [LAUNCH, "dev", "--bind", f"127.0.0.1:{port}"], port)
    if name.startswith("uvicorn"):
        argv = [PYTHON, "-m", "uvicorn", "mysite.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--reload", "--lifespan", "off"]
        return site.server(name, "raw", argv, port, DJANGO_SETTINGS_MODULE="mysite.settings.dev")
    argv = [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}"]
    return site.server(name, "raw", argv, port)


def raw_gunicorn_argv(site: Site, port: int) -> tuple[list[str], dict[str, str]]:
    """The command `launch show prod-wsgi` prints, with the project's app for the wrapper."""
    out = subprocess.run(
        [LAUNCH, "show", "prod-wsgi", "--bind", f"127.0.0.1:{port}", "--json"],
        cwd=site.project, env=site.env, capture_output=True, text=True, check=True,
    )
    info = json.loads(out.stdout)
    env = {name: site.env[name] if value == "***" else value
           for name, value in info["env"].items()}
    wrapper = f"launcher.child.app:{info['interface']}"
    return [info["app"] if word == wrapper else word for word in info["argv"]], env


def start_server(site: Site, name: str, port_of: str = "") -> Server:
    """Each on its own port, the same every round: a service starts with the same command each
    time."""
    port = site.ports.setdefault(port_of or name, free_port())
    if name.startswith("raw"):
        argv, env = raw_gunicorn_argv(site, port)
        return site.server(name, "raw", argv, port, **env)
    profile = "prod-wsgi" if name == "launch prod-wsgi" else str(site.nosteps)
    argv = [LAUNCH, profile, "--bind", f"127.0.0.1:{port}"]
    return site.server(name, "launch", argv, port)


# ----- measuring --------------------------------------------------------------------------------


def edit_served(server: Server, path: Path, field: str) -> tuple[float | None, int, int]:
    """(seconds until the new token is served or None, failed polls, polls)."""
    token = f"{field}-{uuid.uuid4().hex[:8]}"
    set_token(path, token)
    saved = time.monotonic()
    served = None
    failed = polls = 0
    deadline = saved + EDIT_TIMEOUT_S
    while time.monotonic() < deadline:
        polls += 1
        try:
            status, body = http_get(server.port, PROBE_PATH, timeout=10)
            if status != 200:
                failed += 1
            elif served is None and f"{field}={token} ".encode() in body:
                served = time.monotonic() - saved
                deadline = time.monotonic() + SETTLE_S
        except OSError:
            failed += 1
        time.sleep(POLL_S)
    return served, failed, polls


def dev_round(site: Site, order: list[str], out: dict[str, dict[str, dict[str, Any]]]) -> None:
    for name in order:
        server = dev_server(site, name).start()
        print(f"  dev: {name}", flush=True)
        try:
            server.wait_ready(PROBE_PATH)
            time.sleep(SETTLE_S)
            for field in EDITS:
                seconds, failed, polls = edit_served(server, site.project / PROBE_FILES[field],
                                                     field)
                entry = out[field][name]
                entry["samples"].append(seconds)
                entry["failed_requests"] += failed
                entry["requests"] += polls
        finally:
            server.stop()


def start_round(site: Site, order: list[str], out: dict[str, list[float]]) -> None:
    for name in order:
        server = start_server(site, name).start()
        try:
            out[name].append(server.wait_ready("/"))
        finally:
            server.stop()


def reload_once(site: Site, target: Server) -> float:
    started = time.monotonic()
    result = subprocess.run([LAUNCH, "reload", "prod-wsgi"], cwd=site.project, env=target.env,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"launch reload: {result.returncode} {result.stdout}{result.stderr}")
    return time.monotonic() - started


def per_round(values: dict[str, list[Any]], a: str, b: str) -> Summary:
    """Round-by-round b/a, rounds where either is missing left out."""
    return summary([y / x for x, y in zip(values[a], values[b], strict=True)
                    if x is not None and y is not None and x > 0])


def run(rounds: int = ROUNDS, dev_edits: bool = True) -> BigProjectSection:
    site = Site()
    try:
        import_s, import_cpu, modules = site.import_seconds()
        checks_s = site.checks_seconds()
        print(f"big project: imports in {import_s['median']:.2f} s, "
              f"{import_cpu['median']:.2f} s CPU ({modules} modules); Django's checks "
              f"{checks_s['median']:.2f} s", flush=True)
        dev: dict[str, dict[str, dict[str, Any]]] = {
            field: {name: {"samples": [], "failed_requests": 0, "requests": 0}
                    for name in DEV_SERVERS}
            for field in (EDITS if dev_edits else ())
        }
        starts: dict[str, list[float]] = {name: [] for name in STARTS}
        reloads: list[float] = []
        target = start_server(site, "launch prod-wsgi", port_of="reload target")
        target.label = "reload target"
        target.env["LAUNCH_RUN_DIR"] = str(site.tmp / "run-reload")
        target.start()
        target.wait_ready("/")
        # One start of each, not counted: caches warm for all alike, and each launch variant
        # that keeps its run dir has the plan of a last start, as a service's restart does.
        start_round(site, list(STARTS), {name: [] for name in STARTS})
        for n in range(rounds):
            print(f"big project: round {n + 1}/{rounds}", flush=True)
            if dev_edits:
                dev_round(site, _rotated(DEV_SERVERS, n), dev)
            start_round(site, _rotated(STARTS, n), starts)
            reloads.append(reload_once(site, target))
        target.stop()
    finally:
        stop_all()
        site.remove()
    section = _section(rounds, import_s, modules, dev, starts, reloads, checks_s)
    section["import_cpu_seconds"] = import_cpu
    return section


def _rotated(names: tuple[str, ...], n: int) -> list[str]:
    k = n % len(names)
    return list(names[k:] + names[:k])


def _section(rounds: int, import_s: Summary, modules: int,
             dev: dict[str, dict[str, dict[str, Any]]], starts: dict[str, list[float]],
             reloads: list[float], checks_s: Summary) -> BigProjectSection:
    edits = {}
    for field, by_server in dev.items():
        samples = {name: e["samples"] for name, e in by_server.items()}
        edits[field] = {
            "servers": [
                {
                    "server": name,
                    "seconds": summary([s for s in e["samples"] if s is not None]),
                    "samples": e["samples"],
                    "failed_requests": e["failed_requests"],
                    "requests": e["requests"],
                    "timeouts": sum(1 for s in e["samples"] if s is None),
                    "ratio_to_uvicorn_reload": per_round(samples, "uvicorn --reload", name),
                }
                for name, e in by_server.items()
            ],
            "aa_ratio": per_round(samples, "uvicorn --reload", "uvicorn --reload (A/A)"),
        }
    steps = [a - b for a, b in zip(starts["launch prod-wsgi"], starts["launch, no before_start"],
                                   strict=True)]
    raw = starts["raw gunicorn"]
    own = [a - b for a, b in zip(starts["launch, no before_start"], raw, strict=True)]
    aa = [a - b for a, b in zip(starts["raw gunicorn (A/A)"], raw, strict=True)]
    return cast(BigProjectSection, {
        "measured_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "rounds": rounds,
        "settle_s": SETTLE_S,
        "poll_ms": POLL_S * 1e3,
        "import_seconds": import_s,
        "modules": modules,
        "edits": edits,
        "start": {
            "seconds": {name: summary(v) for name, v in starts.items()},
            "ratio_to_raw": {name: per_round(starts, "raw gunicorn", name) for name in STARTS},
            "steps_add_s": summary(steps),
            "launcher_own_s": summary(own),
            "aa_difference_s": summary(aa),
            "checks_s": checks_s,
        },
        "reload": {
            "seconds": summary(reloads),
            "ratio_to_raw_start": summary([r / s for r, s in zip(reloads, raw, strict=True)]),
        },
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.big_project", description=__doc__)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--no-write", action="store_true", help="print only, leave docs/ alone")
    parser.add_argument("--no-dev", action="store_true",
                        help="skip the dev edits (prod start and reload only; not written)")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args(argv)
    if not args.no_write and importlib.util.find_spec("matplotlib") is None:
        parser.error("writing docs/ draws plots: install the bench extra (benchmarks/run does)")
    section = run(args.rounds, dev_edits=not args.no_dev)
    from benchmarks import report, results
    from benchmarks.meta import meta
    from benchmarks.render_big_project import big_project

    print("\n".join(big_project(section)))
    if not args.no_write and not args.no_dev:
        path = args.out / "benchmarks.json"
        data = results.load(path) if path.exists() else {}
        data.setdefault("meta", meta(quick=False))
        data["big_project"] = section
        report.write(data, args.out)
        print(f"wrote {args.out}/benchmarks.md, benchmarks.json and plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
