"""The day-to-day sections of docs/benchmarks.md: start times, reloads under load, idle cost
and the dev reload, with the figures from other parts they are read against. Markdown only."""

from __future__ import annotations

from benchmarks.formatting import num, spread, table
from benchmarks.results import (
    PLOTS,
    DevReloadSection,
    IdleProfile,
    OperationsSection,
    OverheadProfile,
    OverheadSection,
    ReloadSection,
    StartProfile,
)


def operations(section: OperationsSection, overhead: OverheadSection | None) -> list[str]:
    lines = ["## Operations", ""]
    if "start" in section:
        lines += _start(section["start"])
    if "reload" in section:
        lines += _reload(section["reload"], overhead)
    if "idle" in section:
        lines += _idle(section["idle"])
    if "start" in section:
        lines += [f"![start times]({PLOTS['operations']})", ""]
    return lines


def _start(start: list[StartProfile]) -> list[str]:
    rows = []
    for p in start:
        s = p["seconds"]
        ratio = p["ratio_to_raw"]
        rows.append(
            [
                p["profile"],
                f"{spread(s['raw'])} ({p['raw_command']})",
                spread(s["launch"]),
                num(ratio["launch"]),
                spread(s["launch, no before_start"]),
                num(ratio["launch, no before_start"]),
            ]
        )
    return [
        "### Start -> first 200",
        "",
        "Seconds from starting the process to the first 200 from `/healthz`. Once the",
        "settings import, `launch` runs its before_start steps (migrate, collectstatic) one",
        "after the other, with the app's import check (and in dev the warm parent that",
        "imports Django) in subprocesses beside them; the 'no before_start' variant is the",
        "same profile with `before_start: []`, where only the import check comes first.",
        "",
        *table(
            ["profile", "raw s", "launch s", "launch/raw", "launch, no steps s", "ratio"],
            rows,
        ),
        "",
    ]


def _reload(rel: ReloadSection, overhead: OverheadSection | None) -> list[str]:
    pause = rel.get("pause_s", 2)
    rows = []
    for r in rel["runs"]:
        w = r["wrk"]
        errors = ", ".join(f"{k} {v}" for k, v in w["socket_errors"].items() if v) or "none"
        rows.append(
            [
                "`launch` (SIGHUP to launcher)"
                if r["server"] == "launch"
                else "raw gunicorn (SIGHUP to master)",
                r["connection"],
                f"{r['reloads_done']}/{r['hups']}",
                spread(r["reload_seconds"]),
                f"{w['requests']:,}",
                f"{w['failed']} (non-2xx/3xx {w['non_2xx_3xx']}; socket errors: {errors})",
                str(r["zombie_children"]),
            ]
        )
    return [
        "### Failed requests while reloading under load",
        "",
        f"{rel['profile']}: one wrk run (2 threads, 32 connections) against `{rel['path']}`",
        f"while SIGHUP is sent, waiting for each reload to finish and {pause:g} s more before",
        "the next. Reload time: for `launch`, until its log says the new generation serves",
        "(after its preflight checks); for raw gunicorn, until every new worker logged",
        "'Started server process'. Failed = non-2xx/3xx answers + wrk socket errors.",
        "'close' sends `Connection: close` (a new connection per request), so keep-alive",
        "connections closed under an in-flight request by a retiring server do not count.",
        *_worker_note(rel, overhead),
        "",
        *table(
            [
                "server",
                "connections",
                "reloads done",
                "reload s",
                "requests",
                "failed",
                "zombies after",
            ],
            rows,
        ),
        "",
        *_reload_reference(rel, overhead),
    ]


def _idle(idle: list[IdleProfile]) -> list[str]:
    rows = []
    for p in idle:
        rss, uss, cpu = p["rss_mib"], p["uss_mib"], p["cpu_ms"]
        ratio = p["launcher_to_leader_cpu"]
        rows.append(
            [
                p["profile"],
                f"{spread(rss['supervisor'], 1)} / {spread(uss['supervisor'], 1)}",
                f"{spread(rss['helpers'], 1)} / {spread(uss['helpers'], 1)}",
                f"{spread(rss['leader'], 1)} / {spread(uss['leader'], 1)} ({p['server_leader']})",
                f"{cpu['supervisor']:.1f} + {cpu['helpers']:.1f}",
                f"{cpu['leader']:.1f}",
                "n/a" if ratio is None else f"{ratio:.2f}",
            ]
        )
    seconds = idle[0]["seconds"] if idle else 0
    settle = idle[0].get("settle_s", 2) if idle else 0
    return [
        "### Supervisor memory and idle CPU",
        "",
        f"Each profile under `launch`, idle for {seconds:g} s (after {settle:g} s to settle).",
        "Memory is sampled each second (median (min..max), MiB); CPU is the whole window, ms.",
        "",
        *table(
            [
                "profile",
                "supervisor RSS / USS",
                "helpers RSS / USS",
                "server leader RSS / USS",
                "launcher CPU ms (supervisor + helpers)",
                "server leader CPU ms",
                "launcher/leader CPU",
            ],
            rows,
        ),
        "",
        *_master_reference(idle),
        *_reloader_reference(idle),
    ]


def _same_profile(rel: ReloadSection, overhead: OverheadSection | None) -> list[OverheadProfile]:
    """The overhead figures of the profile the reloads ran, if that part was measured."""
    profiles = overhead["profiles"] if overhead else []
    return [p for p in profiles if p["profile"] == rel["profile"]]


def _worker_note(rel: ReloadSection, overhead: OverheadSection | None) -> list[str]:
    """Which worker class both sides ran: the raw command is the one `launch show` prints."""
    same = _same_profile(rel, overhead)
    words = same[0]["raw_command"].split() if same else []
    if "--worker-class" not in words[:-1]:
        return []
    worker = words[words.index("--worker-class") + 1]
    note = (
        ": its drain answers a request that arrives on a kept-alive connection with"
        " `Connection: close` instead of closing the connection under it"
        if worker in ("launcher.child.workers.UvicornWorker", "launcher.workers.UvicornWorker")
        else ""
    )
    return [
        "Raw gunicorn runs the command `launch show` prints, so both sides run the worker class",
        f"`{worker}`{note}.",
    ]


def _master_reference(idle: list[IdleProfile]) -> list[str]:
    """The launcher's own processes against a raw gunicorn master of the same site."""
    rows = [
        [
            p["profile"],
            m["command"],
            f"{spread(m['rss_mib'], 1)} / {spread(m['uss_mib'], 1)}",
            f"{m['launcher_to_master_rss']:.2f}",
        ]
        for p in idle
        for m in p.get("raw_masters", [])
    ]
    if not rows:
        return []
    return [
        "The raw gunicorn master of the same site, idle over the same window: as `launch show`",
        "prints it, and without `--preload` (a master that never imports the app). The ratio is",
        "the launcher's own processes (supervisor + helpers, median RSS) over that master's.",
        "",
        *table(["profile", "raw master", "RSS / USS", "launcher/master RSS"], rows),
        "",
    ]


def _reloader_reference(idle: list[IdleProfile]) -> list[str]:
    """dev's supervisor against the process it replaces: uvicorn --reload's reloader."""
    raw = next((p["raw_reloader"] for p in idle if "raw_reloader" in p), None)
    if raw is None:
        return []
    ratio = raw["launcher_to_reloader_cpu"]
    return [
        "dev has no gunicorn master: its supervisor (which also watches the files) stands in",
        f"for {raw['command']}, run beside it over the same window: RSS / USS",
        f"{spread(raw['rss_mib'], 1)} / {spread(raw['uss_mib'], 1)} MiB, CPU "
        f"{raw['cpu_ms']:.1f} ms; launcher/reloader CPU "
        f"{'n/a' if ratio is None else f'{ratio:.2f}'}.",
        "",
    ]


def _reload_reference(rel: ReloadSection, overhead: OverheadSection | None) -> list[str]:
    """The same server without any reload, from the overhead runs: the failures' baseline."""
    same = _same_profile(rel, overhead)
    if not same:
        return []
    p = same[0]
    runs = sum(len(v) for v in p["runs"].values())
    requests = sum(r["requests"] for v in p["runs"].values() for r in v)
    failed = sum(p["failed"].values())
    return [
        f"Without any reload, the {rel['profile']} overhead runs above ({runs} keep-alive wrk",
        f"runs, raw and launch) had {failed} failed requests in {requests:,}.",
        "",
    ]


def dev_reload_table(section: DevReloadSection) -> str:
    rows = [
        [
            f"`{s['server']}`",
            spread(s["seconds"], 3),
            num(s.get("ratio_to_uvicorn_reload")),
            f"{s['failed_requests']} / {s['requests']}",
            str(s["timeouts"]),
        ]
        for s in section["servers"]
    ]
    return "\n".join(
        table(
            [
                "server",
                "edit -> new code served, s",
                "ratio to uvicorn --reload",
                "failed / polled requests",
                "edits never served",
            ],
            rows,
        )
    )


def dev_reload(section: DevReloadSection) -> list[str]:
    return [
        "## Dev: edit -> new code served",
        "",
        f"Measured {section['measured_at']}, one server at a time on a private copy of the demo",
        f'site. {section["edits"]} edit(s) per server, each rewriting the `MESSAGE = "..."` line',
        "of demo_site/views.py to a new value; /api/sync/ is polled every",
        f"{section['poll_ms']:g} ms on a fresh connection until it answers with the new value,",
        f"then {section['settle_s']:g} s more. Failed = refused, dropped or non-200 polls, during",
        "and after the switch. `uvicorn --reload` is the raw command `launch show dev` prints.",
        "",
        dev_reload_table(section),
        "",
    ]
