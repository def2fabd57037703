"""Judgements drawn from a run's figures: per-round ratios, each launch/raw ratio against the A/A
noise, what the run's other figures say when one falls outside it, and the checks (limits
crossed). Pure: figures in, words and sentences out; nothing here measures, reads or writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from benchmarks.formatting import num, pct, spread
from benchmarks.results import (
    BigProjectSection,
    Judgement,
    Metric,
    OverheadProfile,
    Report,
    Summary,
    Verdict,
    summary,
)
from launcher import wire

METRICS: tuple[Metric, ...] = ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request")
METRIC_NAMES: dict[Metric, str] = {
    "rps": "req/s",
    "p50_ms": "p50 latency",
    "p99_ms": "p99 latency",
    "cpu_ms_per_request": "server CPU per request",
}
HIGHER_IS_BETTER = {"rps"}
# The launcher's own CPU, as a share of the server tree's, that counts as costing nothing.
CPU_SHARE_LIMIT = 0.005
# Fewer A/A rounds than this make no noise band worth judging by (the --quick run has 1).
MIN_ROUNDS = 3

_WORDS = {
    "within": "is within the A/A noise",
    "worse": "is worse than raw beyond the A/A noise",
    "better": "is better than raw beyond the A/A noise",
}


def ratios(b: Sequence[Mapping[str, Any]], a: Sequence[Mapping[str, Any]]) -> dict[Metric, Summary]:
    """Per-round B/A ratios of each metric, as median with min..max over rounds.

    Rounds where either side has no figure (zero or None) are left out, not counted as 0.
    """
    return {
        metric: summary(
            [y[metric] / x[metric] for x, y in zip(a, b, strict=True) if x[metric] and y[metric]]
        )
        for metric in METRICS
    }


def judge(metric: Metric, ratio: Summary, aa: Summary) -> Judgement:
    """Is the launch/raw median inside the A/A noise (its min..max), or worse, or better?

    'worse' means slower beyond the noise: a req/s ratio below the A/A minimum, or a latency
    or CPU-per-request ratio above the A/A maximum. 'better' is the mirror image: noise too.
    """
    median, low, high = ratio["median"], aa["min"], aa["max"]
    if min(ratio["n"], aa["n"]) < MIN_ROUNDS or median is None or low is None or high is None:
        return "n/a"
    below, above = median < low, median > high
    if not (below or above):
        return "within"
    return "worse" if below == (metric in HIGHER_IS_BETTER) else "better"


def cpu_share(share: float | None) -> Literal["ok", "over", "n/a"]:
    """The launcher's CPU share against its budget."""
    return "n/a" if share is None else ("ok" if share <= CPU_SHARE_LIMIT else "over")


def verdict(
    ratio: Mapping[Metric, Summary], aa_ratio: Mapping[Metric, Summary], share: float | None
) -> Verdict:
    """Every metric judged against the A/A noise, and the CPU share against its budget."""
    return {
        "rps": judge("rps", ratio["rps"], aa_ratio["rps"]),
        "p50_ms": judge("p50_ms", ratio["p50_ms"], aa_ratio["p50_ms"]),
        "p99_ms": judge("p99_ms", ratio["p99_ms"], aa_ratio["p99_ms"]),
        "cpu_ms_per_request": judge(
            "cpu_ms_per_request", ratio["cpu_ms_per_request"], aa_ratio["cpu_ms_per_request"]
        ),
        "cpu_share": cpu_share(share),
    }


def verdict_text(p: OverheadProfile, v: Verdict, limit: float) -> str:
    """Each judged ratio with its A/A range, then the CPU share against `limit`."""
    parts = [
        f"{METRIC_NAMES[m]} {num(p['ratio'][m]['median'])} "
        f"{_WORDS[v[m]]} ({spread(p['aa_ratio'][m])})"
        for m in METRICS
        if v.get(m, "n/a") != "n/a"
    ]
    parts.append(
        f"launcher CPU share {pct(p['cpu']['share'], 3)} "
        f"{'within' if v['cpu_share'] == 'ok' else 'above'} the {pct(limit, 1)} budget"
    )
    return "; ".join(parts)


def why(p: OverheadProfile, v: Verdict) -> str:
    """What the run's other figures say when a ratio falls outside the noise."""
    judged = [m for m in METRICS[:3] if v.get(m, "n/a") != "n/a"]
    if not judged:
        return f"Too few rounds to judge against the noise (fewer than {MIN_ROUNDS})."
    outside = [m for m in judged if v[m] != "within"]
    if not outside:
        return "The launcher costs nothing this run could measure."
    names = ", ".join(f"{METRIC_NAMES[m]} ({v[m]})" for m in outside)
    if v.get("cpu_ms_per_request") == "worse" or v["cpu_share"] != "ok":
        return (
            f"Outside the noise: {names}, and the server tree did more work per request under "
            f"the launcher (CPU per request {spread(p['ratio']['cpu_ms_per_request'])}) or the "
            "launcher itself used more than its budget: a real cost of the way the launcher runs "
            "this server; the command difference below is where to look."
        )
    wide = [m for m in outside if spread_covers_gap(p["ratio"][m], p["aa_ratio"][m])]
    noise = (
        f" The per-round launch/raw ratios of {', '.join(METRIC_NAMES[m] for m in wide)} span "
        "more than the gap between their median and the A/A range, so single rounds land on "
        "both sides of it: time the server did not get on this shared machine, which more "
        "rounds average out."
        if wide
        else ""
    )
    return (
        f"Outside the noise: {names}. The server did no more work per request under the "
        f"launcher (CPU per request {spread(p['ratio']['cpu_ms_per_request'])}, A/A "
        f"{spread(p['aa_ratio']['cpu_ms_per_request'])}), and the launcher itself used "
        f"{pct(p['cpu']['share'], 3)} of the CPU: the server accepts on its socket directly, "
        f"so the launcher is not on the request path.{noise}"
    )


def spread_covers_gap(r: Summary, aa: Summary) -> bool:
    """Do some rounds of launch/raw fall inside the A/A range, though the median does not?"""
    r_min, r_max, aa_min, aa_max = r["min"], r["max"], aa["min"], aa["max"]
    if r_min is None or r_max is None or aa_min is None or aa_max is None:
        return False
    return r["n"] > 1 and r_max >= aa_min and r_min <= aa_max


def differences(p: OverheadProfile) -> str:
    """The server command under launch against the raw one, flag by flag."""
    if "launch_command" not in p:
        return ""
    raw, launched = p["raw_command"].split(), p["launch_command"].split()
    runner = ""
    if launched[:2] == ["-m", wire.GUNICORN_MAIN] and raw[:2] == ["-m", "gunicorn"]:
        # gunicorn's own runner with the same flags, which leaves the files of the unix
        # sockets it is handed to the supervisor: compared flag by flag as gunicorn
        launched = raw[:2] + launched[2:]
        runner = f" Under launch gunicorn runs as `python -m {wire.GUNICORN_MAIN}`."
    if raw[:2] != launched[:2]:
        what = (
            " (the launcher's warm fork server, serving the same uvicorn settings)"
            if launched[:2] in (["-m", "launcher.child.devserver"], ["-m", "launcher.devserver"])
            else ""
        )
        return (
            f"Under launch the server is `python {' '.join(launched[:2])}`{what} where the raw "
            f"command runs `python {' '.join(raw[:2])}`."
        )
    only_raw = " ".join(flags(raw, launched))
    only_launch = " ".join(flags(launched, raw))
    if not (only_raw or only_launch):
        return "The server command under launch is the raw one, word for word." + runner
    return (
        f"The server command under launch differs from the raw one only in `{only_launch}` "
        f"(raw: `{only_raw}`): the supervisor holds the listening socket and passes it down, "
        "plus, for gunicorn, a private loopback socket the new generation is probed on before "
        "it takes over." + runner
    )


def flags(words: list[str], other: list[str]) -> list[str]:
    """Option/value pairs of `words` that `other` does not have."""
    theirs = set(pairs(other))
    return [" ".join(pair) for pair in pairs(words) if pair not in theirs]


def pairs(words: list[str]) -> list[tuple[str, ...]]:
    """A command line as options with their value (`--bind X`), and lone words."""
    out, i = [], 0
    while i < len(words):
        takes_value = i + 1 < len(words) and not words[i + 1].startswith("-")
        size = 2 if words[i].startswith("-") and takes_value else 1
        out.append(tuple(words[i : i + size]))
        i += size
    return out


def checks(data: Report) -> list[str]:
    """Findings derived from the figures: limits crossed, never new measurements."""
    found = []
    overhead = data.get("overhead")
    for p in overhead["profiles"] if overhead else []:
        share = p["cpu"]["share"]
        if share is not None and share > CPU_SHARE_LIMIT:
            found.append(
                f"{p['profile']}: launcher CPU share {pct(share, 3)} is above "
                f"{pct(CPU_SHARE_LIMIT, 1)}."
            )
        v = p.get("verdict")
        for metric in ("rps", "p99_ms"):
            if v and v.get(metric) == "worse":
                found.append(
                    f"{p['profile']}: {METRIC_NAMES[metric]} launch/raw "
                    f"{spread(p['ratio'][metric])} is worse than raw beyond the A/A noise "
                    f"{spread(p['aa_ratio'][metric])} (see its verdict)."
                )
        failed = p["failed"]
        if failed["launch"] > 1.5 * max(failed["raw"], failed["raw2"]) + 5:
            found.append(
                f"{p['profile']}: {failed['launch']} failed requests under launch, raw "
                f"{failed['raw']} and {failed['raw2']}."
            )
    reload = data.get("operations", {}).get("reload")
    runs = reload["runs"] if reload else []
    for r in runs:
        if r["server"] == "launch" and r["wrk"]["failed"]:
            raw = [x for x in runs if x["server"] == "raw" and x["connection"] == r["connection"]]
            beside = f" (raw gunicorn's own SIGHUP: {raw[0]['wrk']['failed']})" if raw else ""
            found.append(
                f"reload under load ({r['connection']}): {r['wrk']['failed']} failed requests over "
                f"{r['hups']} launcher reloads{beside}."
            )
        if r["reloads_done"] < r["hups"]:
            found.append(
                f"{r['server']}: only {r['reloads_done']} of {r['hups']} reloads finished."
            )
        if r["zombie_children"]:
            found.append(f"{r['server']}: {r['zombie_children']} zombie children after reloads.")
    launched = data.get("stops", {}).get("launch")
    if launched and launched["left_behind"]:
        found.append(
            f"{launched['left_behind']} process group(s) still alive 5 s after `launch` exited "
            f"(over {launched['stopped']} stops), killed by the benchmark."
        )
    dev = data.get("dev_reload")
    for s in dev["servers"] if dev else []:
        if s["server"] == "launch dev" and (s["failed_requests"] or s["timeouts"]):
            found.append(
                f"launch dev: {s['failed_requests']} failed polls, {s['timeouts']} edits never "
                "served."
            )
    big = data.get("big_project")
    for field, edit in big["edits"].items() if big else []:
        for s in edit["servers"]:
            if s["server"] == "launch dev" and (s["failed_requests"] or s["timeouts"]):
                found.append(
                    f"big project, launch dev, {field} edit: {s['failed_requests']} failed polls,"
                    f" {s['timeouts']} edits never served."
                )
    return found


# ----- the big project's goals -----------------------------------------------------------------

# (figure, limit, unit): what a big project should cost under the launcher, as ratios to the raw
# commands measured in the same run (or seconds, for the steps).
BIG_GOALS = (
    ("dev edit of a model module, launch dev / uvicorn --reload", 0.5, "x"),
    ("dev edit of a view module, launch dev / uvicorn --reload", 0.3, "x"),
    ("prod start without steps, launch / raw gunicorn", 1.10, "x"),
    ("before_start steps with nothing to do add", 0.3, " s"),
    ("validated launch reload / a raw gunicorn start", 1.5, "x"),
)


def big_goals(section: BigProjectSection) -> list[tuple[str, Summary, str, bool | None]]:
    """Each goal: (figure, measured, goal, met); met is None when nothing was measured. The
    model edit's goal also asks for 0 failed requests."""
    def edit(field: str) -> Summary:
        if field not in section["edits"]:
            return summary([])  # a run without the dev edits (--no-dev)
        by = {s["server"]: s for s in section["edits"][field]["servers"]}
        return by["launch dev"]["ratio_to_uvicorn_reload"]

    model = section["edits"].get("model", {"servers": []})
    failed = {s["server"]: s["failed_requests"] for s in model["servers"]}
    measured = (
        edit("model"),
        edit("view"),
        section["start"]["ratio_to_raw"]["launch, no before_start"],
        section["start"]["steps_add_s"],
        section["reload"]["ratio_to_raw_start"],
    )
    out = []
    for (figure, limit, unit), value in zip(BIG_GOALS, measured, strict=True):
        median = value["median"]
        met = None if median is None else median <= limit
        goal = f"<= {limit:g}{unit}"
        if figure.startswith("dev edit of a model"):
            goal += ", 0 failed requests"
            met = met and failed.get("launch dev", 0) == 0 if met is not None else None
        out.append((figure, value, goal, met))
    return out
