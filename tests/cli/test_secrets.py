"""Secret masking over every output path, with real launcher processes.

One profile holds secrets of every kind the masking rule covers; a real launcher runs it, a
reload is refused twice (a numeric secret that fails validation, then settings that fail with
secrets in their message), and every place a value can surface is collected and checked:
`launch show` (text and JSON), `launch status` (text and JSON), the state file, the
supervisor's log, `launch reload`'s reply, and error messages.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import DEMO, ROOT, Env, Launch, free_port, start

# name -> (value in the profile, the part that must never be printed)
SECRETS = {
    "STRIPE_KEY": ("sk_live_stripe0001", "sk_live_stripe0001"),
    "SIGNING_KEY": ("signing-0002-value", "signing-0002-value"),
    "ENCRYPTION_KEY": ("encrypt-0003-value", "encrypt-0003-value"),
    "FERNET_KEYS": ("fernetA0004,fernetB0005", "fernetA0004"),
    "DB_PASSWORD": ("987654321", "987654321"),
    "DATABASE_URL": ("postgres://app:pa/ss#w@rd?x1@db.internal:5432/app", "pa/ss#w@rd?x1"),
    "CACHE_URL": ("redis://cache.internal:6379/0?password=qpass0006&db=1", "qpass0006"),
    "REDIS_ADDR": ("default:bare0007pw@redis.internal:6379", "bare0007pw"),
    "WEBHOOK_URL": ("https://hooks.example/x?token=tok0008value", "tok0008value"),
}
FROM_ENV = "tok-from-env-0009"  # the caller's API_TOKEN, interpolated into a step's argv
HIDDEN = [hidden for _, hidden in SECRETS.values()] + [FROM_ENV, "fernetB0005"]

LEAKY_SETTINGS = """\
import os
raise RuntimeError(
    "cannot reach " + os.environ["DATABASE_URL"] + " with " + os.environ["STRIPE_KEY"]
    + " and " + os.environ["API_TOKEN"]
)
"""


def profile_text(port: int, *, settings: str = "demo_site.settings",
                 db_password: str = '"987654321"') -> str:
    env = "".join(
        f"  {name}: {db_password if name == 'DB_PASSWORD' else json.dumps(value)}\n"
        for name, (value, _) in SECRETS.items()
    )
    return (
        f"chdir: {ROOT / 'demo_site'}\n"
        f"settings: {settings}\n"
        "app: demo_site.wsgi:application\n"
        f"bind: 127.0.0.1:{port}\n"
        "pythonpath: [extra]\n"
        f"before_start:\n  - [{sys.executable}, -c, pass, --token, '${{API_TOKEN}}']\n"
        f"env:\n{env}"
    )


def launch_cli(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "launcher", *args], cwd=DEMO,
                          env=env.vars(API_TOKEN=FROM_ENV), capture_output=True, text=True,
                          timeout=120)


def test_no_secret_reaches_any_output_path(env: Env, launch: list[Launch]) -> None:
    port = free_port()
    profile = env.tmp / "secrets.yaml"
    (env.tmp / "extra").mkdir()
    (env.tmp / "extra" / "leaky_settings.py").write_text(LEAKY_SETTINGS)
    profile.write_text(profile_text(port))
    outputs: dict[str, str] = {}

    show = launch_cli(env, "show", str(profile))
    assert show.returncode == 0, show.stderr
    outputs["show text"] = show.stdout
    show_json = launch_cli(env, "show", str(profile), "--json")
    assert show_json.returncode == 0, show_json.stderr
    outputs["show --json"] = show_json.stdout

    item = start(launch, env, str(profile), API_TOKEN=FROM_ENV)
    item.wait_for("[launch] serving", timeout=60)
    # Refused reloads: a numeric secret (a validation error), then settings whose error
    # carries secret values (the import check's last line).
    profile.write_text(profile_text(port, db_password="987654321"))
    numeric = launch_cli(env, "reload", "secrets")
    profile.write_text(profile_text(port, settings="leaky_settings"))
    leaky = launch_cli(env, "reload", "secrets")
    assert numeric.returncode == leaky.returncode == 1, numeric.stderr + leaky.stderr
    assert "DB_PASSWORD" in numeric.stderr and "secrets.yaml" in numeric.stderr, numeric.stderr
    assert "cannot reach postgres://app:***@db.internal" in leaky.stderr, leaky.stderr
    outputs["reload reply (validation)"] = numeric.stdout + numeric.stderr
    outputs["reload reply (settings)"] = leaky.stdout + leaky.stderr

    status = launch_cli(env, "status", "secrets")
    status_json = launch_cli(env, "status", "secrets", "--json")
    assert status.returncode == status_json.returncode == 0, status.stderr + status_json.stderr
    outputs["status text"] = status.stdout
    outputs["status --json"] = status_json.stdout
    (state,) = (env.tmp / "run").glob("*/secrets.json")
    outputs["state file"] = state.read_text()
    assert item.stop() == 0
    outputs["log"] = item.output

    # Error messages: the same failures at `launch show` and at start-up.
    profile.write_text(profile_text(port, db_password="987654321"))
    outputs["error (show)"] = launch_cli(env, "show", str(profile)).stderr
    profile.write_text(profile_text(port, settings="leaky_settings"))
    failed = launch_cli(env, str(profile))
    assert failed.returncode == 2, failed.stdout + failed.stderr
    outputs["error (start-up)"] = failed.stderr

    leaks = [
        f"{path}: {secret!r}" for path, text in outputs.items() for secret in HIDDEN
        if secret in text
    ]
    assert leaks == [], "\n".join(leaks) + "\n\n" + "\n".join(
        f"--- {path}\n{text}" for path, text in outputs.items()
    )
    # Not vacuous: every path said something, with a mask in it where a secret was.
    expected_in = {
        "show text": ["STRIPE_KEY=***", "FERNET_KEYS=***", "DATABASE_URL=postgres://app:***@",
                      "password=***", "default:***@redis", "token=***", "--token ***"],
        "show --json": ['"STRIPE_KEY": "***"', "postgres://app:***@db.internal"],
        "reload reply (validation)": ["value not shown", "reload failed"],
        "reload reply (settings)": ["RuntimeError: cannot reach", "with ***", "reload failed"],
        "status text": ["last reload reload failed", "with ***"],
        "status --json": ["with ***"],
        "state file": ["with ***"],
        "log": ["reload failed", "with ***", "value not shown"],
        "error (show)": ["key 'env.DB_PASSWORD'", "value not shown"],
        "error (start-up)": ["leaky_settings", "with ***"],
    }
    missing = [f"{path}: {want!r}" for path, wants in expected_in.items() for want in wants
               if want not in outputs[path]]
    assert missing == [], "\n".join(missing) + "\n\n" + "\n".join(
        f"--- {path}\n{text}" for path, text in outputs.items()
    )
    assert all("Traceback" not in text for text in outputs.values())
    assert Path(env.tmp / "run").is_dir()


def test_a_megabyte_value_goes_through_show(env: Env) -> None:
    """A long value (a certificate, a JSON blob) is masked in linear time: before, 20 KB took
    6 s and 1 MB minutes. One environment variable holds at most 128 KiB on Linux, so the
    value is eight of them; a password sits at its end."""
    parts = {f"PART{i}": base64.b64encode(os.urandom(96_000)).decode() for i in range(8)}
    password = "pw-at-the-end-0010"
    profile = env.tmp / "big.yaml"
    profile.write_text(
        "extends: prod-wsgi\n"
        "env:\n"
        f"  BLOB: \"{''.join(f'${{{name}}}' for name in parts)} postgres://u:{password}@db\"\n"
    )
    shown = subprocess.run(
        [sys.executable, "-m", "launcher", "show", str(profile), "--json"], cwd=DEMO,
        env=env.vars(**parts), capture_output=True, text=True, timeout=30,
    )
    assert shown.returncode == 0, shown.stderr
    blob = json.loads(shown.stdout)["env"]["BLOB"]
    assert len(blob) > 1_000_000
    assert password not in shown.stdout
    assert blob.endswith("postgres://u:***@db")
