"""Start -> first 200 on generated projects: `launch` against the raw command a user would type.

    .venv/bin/python -m benchmarks.projects [--rounds N]

Generates a `django-admin startproject` site and a CMS-style one (settings package, no
asgi.py, see tests/projects.py) in a temp dir, then times, round after round in alternation:
`launch prod-wsgi` (its migrate and collectstatic steps included), `launch` of the same profile
without steps, raw `gunicorn PROJECT.wsgi:application` with the same worker settings (twice:
the A/A pair), `launch dev` and `manage.py runserver`. Prints each figure's median (min..max)
and the ratios to raw, with the A/A ratio as the noise floor. Every process started is stopped.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.projects import KINDS, generate  # noqa: E402

PYTHON = sys.executable
SECRETS = {
    "DJANGO_SECRET_KEY": "benchmark-project-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
    "WEB_CONCURRENCY": "2",
}


@dataclass(frozen=True)
class Variant:
    label: str
    argv: list[str]  # "{port}" is replaced


def variants(root: Path, kind: str) -> list[Variant]:
    settings = "mysite.settings.production" if kind == "cms" else "mysite.settings"
    nosteps = root / "nosteps.yaml"
    nosteps.write_text("extends: prod-wsgi\nbefore_start: []\n")
    gunicorn = [
        PYTHON, "-m", "gunicorn", "mysite.wsgi:application", "--bind", "127.0.0.1:{port}",
        "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--preload",
        "--no-control-socket", "--env", f"DJANGO_SETTINGS_MODULE={settings}",
    ]
    launch = [PYTHON, "-m", "launcher"]
    return [
        Variant("raw gunicorn", gunicorn),
        Variant("launch prod-wsgi", [*launch, "prod-wsgi", "--bind", "127.0.0.1:{port}"]),
        Variant("launch, no steps", [*launch, str(nosteps), "--bind", "127.0.0.1:{port}"]),
        Variant("raw gunicorn (A/A)", gunicorn),
        Variant("raw runserver", [PYTHON, "manage.py", "runserver", "--noreload", "{port}"]),
        Variant("launch dev", [*launch, "dev", "--bind", "127.0.0.1:{port}"]),
    ]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def first_200(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode} before answering")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/", headers={"Host": "localhost"})
            if conn.getresponse().status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.01)
    raise RuntimeError("no 200 in time")


def run_one(variant: Variant, root: Path, env: dict[str, str], log: Path) -> float:
    port = free_port()
    argv = [word.replace("{port}", str(port)) for word in variant.argv]
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        return first_200(port, proc)
    except RuntimeError as exc:
        tail = log.read_text(errors="replace")[-2000:]
        raise SystemExit(f"{variant.label} in {root}: {exc}\n{tail}") from None
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def prepare(root: Path, kind: str, env: dict[str, str]) -> None:
    """What a user does once before the raw commands: migrate, and collectstatic for prod."""
    for settings, args in (
        ("mysite.settings.dev" if kind == "cms" else "mysite.settings", ["migrate", "-v", "0"]),
        (
            "mysite.settings.production" if kind == "cms" else "mysite.settings",
            ["collectstatic", "--noinput", "-v", "0"],
        ),
    ):
        subprocess.run(
            [PYTHON, "-m", "launcher.child.manage", *args], cwd=root, check=True,
            env={**env, "DJANGO_SETTINGS_MODULE": settings,
                 "LAUNCHER_STATIC_ROOT": str(root / "staticfiles")},
        )


def describe(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}..{max(values):.2f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="launch-projects-") as tmp:
        env = {**os.environ, **SECRETS, "LAUNCH_RUN_DIR": str(Path(tmp) / "run")}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        for kind in KINDS:
            root = generate(kind, Path(tmp))
            prepare(root, kind, env)
            results: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for variant in variants(root, kind):
                    seconds = run_one(variant, root, env, Path(tmp) / f"{kind}.log")
                    results.setdefault(variant.label, []).append(seconds)
            raw = statistics.median(results["raw gunicorn"])
            runserver = statistics.median(results["raw runserver"])
            print(f"\n{kind}: start -> first 200 on /, {args.rounds} alternating rounds, 2 workers")
            for label, values in results.items():
                base = runserver if "dev" in label or "runserver" in label else raw
                ratio = statistics.median(values) / base
                print(f"  {label:<20} {describe(values):<28} ratio {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
