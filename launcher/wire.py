"""The protocol between the supervisor and the code running inside server processes.

Named constants only: environment variable names the plan sets and `launcher.child` reads,
and the launcher's own probe. Both sides import this module; it imports nothing.
"""

from __future__ import annotations

# The project's own app as `module:attribute`; empty: build it from the settings.
APP_ENV = "LAUNCHER_APP"
# "wsgi" or "asgi": which callable the server wants (an ASGI server may get a WSGI app).
INTERFACE_ENV = "LAUNCHER_INTERFACE"
# "prod": serve STATIC_ROOT (after collectstatic); "dev": as runserver, plus media; "off".
STATIC_ENV = "LAUNCHER_STATIC"
# Where collectstatic puts files when the settings name no STATIC_ROOT.
STATIC_ROOT_ENV = "LAUNCHER_STATIC_ROOT"
# "1": import the URLconf (every view) when the app loads, so a generation holds its own code.
WARM_URLS_ENV = "LAUNCHER_WARM_URLS"
# Under ASGI: threads per worker that run a Django project's sync views, one hop per request
# (launcher.child.sync_views); "0": every request takes the project's ASGIHandler.
SYNC_THREADS_ENV = "LAUNCHER_SYNC_THREADS"

# The launcher's own health answer, given inside the worker before Django's URL routing and
# host checks: it proves the app imported and the worker answers. `?deep=1` also asks every
# database for `SELECT 1`.
PROBE_PATH = "/__launcher__/health"
PROBE_DEEP_QUERY = "deep=1"
PROBE_USER_AGENT = "launcher-probe"
# The site URL the probe asks instead (`health.path`), so its requests stay out of the logs.
PROBE_PATH_ENV = "LAUNCHER_PROBE_PATH"

# The app check (`python -m launcher.child.check`) prints one JSON object per line.
CHECK_MODULE = "launcher.child.check"
# "1": the app check also reports what fits the project, WSGI or ASGI (for `launch check`).
CHECK_FIT_ENV = "LAUNCHER_CHECK_FIT"
MANAGE_MODULE = "launcher.child.manage"
APP_MODULE = "launcher.child.app"
# The planner: makes a plan in a process of its own and writes it, pickled, to its stdout
# (see launcher/cli/planner.py and launcher/run/planner.py).
PLANNER_MODULE = "launcher.cli.planner"


# The dev fork server comes in two tiers. The base (launcher.child.devserver) holds the
# third-party imports and talks on a SOCK_SEQPACKET socket: it says `warm HELD_JSON` or
# `broken MESSAGE` once; to `spawn` (with a command pipe and a status pipe as SCM_RIGHTS) it
# forks a setup tier and answers `spawned PID HELD_JSON`. HELD_JSON: {"files": the project
# files it imported, "missing": the files it looked for in vain, "ahead": what it imported
# ahead of the project, once it has, "saved": what became of the list an earlier base saved}.
# A setup tier runs django.setup(), reads `fork` on its command pipe and reports on its status
# pipe, one line each: `warm HELD_JSON`, `broken MESSAGE`, `forked PID`, `ready PID`,
# `failed PID MESSAGE` (a child's import failed), `exit PID CODE`.
DEVSERVER_MODULE = "launcher.child.devserver"
DEV_SPAWN = "spawn"
DEV_SPAWNED = "spawned"
DEV_FORK = "fork"
DEV_WARM = "warm"
DEV_BROKEN = "broken"
DEV_FORKED = "forked"
DEV_READY = "ready"
DEV_FAILED = "failed"
DEV_EXIT = "exit"
DEV_EVENTS = frozenset({DEV_WARM, DEV_BROKEN, DEV_FORKED, DEV_READY, DEV_FAILED, DEV_EXIT})

# Logs as JSON (`log_format: json`): "json" in the servers' environment, with the profile's
# name and the generation number for every line they write (launcher.child.jsonlog).
LOG_FORMAT_ENV = "LAUNCHER_LOG_FORMAT"
LOG_PROFILE_ENV = "LAUNCHER_LOG_PROFILE"
LOG_GENERATION_ENV = "LAUNCHER_LOG_GENERATION"
# gunicorn's `--logger-class` in JSON mode, and uvicorn's `--log-config` (a file beside
# launcher/child/jsonlog.py).
GUNICORN_JSON_LOGGER = "launcher.child.gunicorn_logger.JsonLogger"
UVICORN_JSON_LOG_CONFIG = "uvicorn_log.json"
# A start that pays one import: gunicorn preloading `launcher.child.app` with STATUS_FD_ENV
# set imports the project once in its master, answers the app check, runs Django's checks and
# the management-command steps in-process when ordered, then serves (launcher.child.prepare).
# Its options are JSON in PREPARE_ENV; it reads orders, one line each, from the ORDERS_FD_ENV
# descriptor, and says what happened, one JSON object a line (the app check's words, and the
# ones below), on STATUS_FD_ENV's.
# uvicorn serving in one process does the same while it loads the app. `python -m
# launcher.child.prepare` does it in a process that serves nothing, and exits when its orders
# end (dev, gunicorn without preload, uvicorn with workers).
PREPARE_MODULE = "launcher.child.prepare"
PREPARE_ENV = "LAUNCHER_PREPARE"
STATUS_FD_ENV = "LAUNCHER_STATUS_FD"
ORDERS_FD_ENV = "LAUNCHER_ORDERS_FD"
# Orders: `run INDEX WORDS_JSON` (a before_start step's manage.py words), `app` (build the app
# now, after the steps: the app check's verdict), `check WORDS_JSON` (Django's check, as a
# reload's preflight), `serve` (hand the app built to gunicorn, which then serves).
ORDER_RUN = "run"
ORDER_APP = "app"
ORDER_CHECK = "check"
ORDER_SERVE = "serve"
# Status keys: {"step": INDEX, "exit": CODE} once a step ended, with "skipped": WHY when it had
# nothing to do and "error": TEXT when Django's checks refused first; {"checked": "ok",
# "report": what it printed, as manage.py would} or {"error": {"key": "check", ...}} for a check
# order (PREPARE_ENV's "quiet": warnings printed nowhere else); {"serving": PID} just before
# the server serves.
STATUS_STEP = "step"
STATUS_EXIT = "exit"
STATUS_SKIPPED = "skipped"
STATUS_CHECKED = "checked"
STATUS_REPORT = "report"
STATUS_SERVING = "serving"
