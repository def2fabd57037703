"""The benchmark's judgements, from small hand-made figures: no process, no wrk, no file."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.formatting import pct, scaled, spread
from benchmarks.results import Metric, OverheadProfile, Report, Summary, summary
from benchmarks.verdicts import (
    CPU_SHARE_LIMIT,
    METRICS,
    MIN_ROUNDS,
    big_goals,
    checks,
    cpu_share,
    differences,
    judge,
    pairs,
    ratios,
    spread_covers_gap,
    verdict,
    verdict_text,
    why,
)


def s(median: float, lo: float, hi: float, n: int = 7) -> Summary:
    return {"median": median, "min": lo, "max": hi, "n": n}


NOISE = s(1.0, 0.9, 1.1)  # an A/A band of ±10%


def overhead_profile(
    ratio: dict[Metric, Summary] | None = None,
    aa: dict[Metric, Summary] | None = None,
    *,
    share: float | None = 0.001,
    failed: tuple[int, int, int] = (0, 0, 0),
    raw_command: str = "-m gunicorn app:wsgi --bind 127.0.0.1:8000 --workers 2",
    launch_command: str | None = "-m gunicorn app:wsgi --bind fd://3 --workers 2",
) -> OverheadProfile:
    """A profile's overhead figures: every ratio inside the noise unless given."""
    ratio = {**dict.fromkeys(METRICS, NOISE), **(ratio or {})}
    aa = {**dict.fromkeys(METRICS, NOISE), **(aa or {})}
    p: dict[str, Any] = {
        "profile": "prod-wsgi",
        "path": "/api/sync/",
        "raw_command": raw_command,
        "dropped_flags": "",
        "server_processes": {"raw": 3, "launch": 3, "raw2": 3},
        "runs": {"raw": [], "launch": [], "raw2": []},
        "rps": {},
        "ratio": ratio,
        "aa_ratio": aa,
        "failed": dict(zip(("raw", "launch", "raw2"), failed, strict=True)),
        "cpu": {
            "windows": [],
            "launcher_s": 0.0,
            "server_s": 1.0,
            "share": share,
            "share_per_window": summary([]),
        },
    }
    if launch_command is not None:
        p["launch_command"] = launch_command
    p["verdict"] = verdict(p["ratio"], p["aa_ratio"], share)
    return p


# ----- the summary every repeated figure is reported as ---------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {"median": None, "min": None, "max": None, "n": 0}),
        ([2.0], {"median": 2.0, "min": 2.0, "max": 2.0, "n": 1}),
        ([3.0, 1.0, 2.0], {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}),
        ([4.0, 1.0, 2.0, 3.0], {"median": 2.5, "min": 1.0, "max": 4.0, "n": 4}),
    ],
)
def test_summary_is_median_min_max(values: list[float], expected: Summary) -> None:
    assert summary(values) == expected


# ----- per-round ratios --------------------------------------------------------------------------


def run(rps: float, p50: float, p99: float, cpu: float | None) -> dict[str, Any]:
    return {"rps": rps, "p50_ms": p50, "p99_ms": p99, "cpu_ms_per_request": cpu}


def test_ratios_are_taken_round_by_round() -> None:
    raw = [run(100, 10, 20, 2.0), run(200, 10, 40, 2.0), run(100, 20, 20, 4.0)]
    launch = [run(90, 11, 30, 2.0), run(220, 10, 40, 3.0), run(100, 10, 10, 4.0)]
    r = ratios(launch, raw)
    # req/s: 0.9, 1.1, 1.0 -> the median of the per-round ratios, not a ratio of medians
    assert r["rps"] == pytest.approx(s(1.0, 0.9, 1.1, 3))
    assert r["p50_ms"] == pytest.approx(s(1.0, 0.5, 1.1, 3))
    assert r["p99_ms"] == pytest.approx(s(1.0, 0.5, 1.5, 3))
    assert r["cpu_ms_per_request"] == pytest.approx(s(1.0, 1.0, 1.5, 3))


def test_a_round_without_a_figure_is_left_out_not_counted_as_zero() -> None:
    raw = [run(100, 10, 20, None), run(0, 10, 20, 2.0), run(100, 10, 20, 2.0)]
    launch = [run(50, 10, 20, 2.0), run(80, 10, 20, 2.0), run(150, 10, 20, 3.0)]
    r = ratios(launch, raw)
    assert r["rps"] == pytest.approx(s(1.0, 0.5, 1.5, 2))  # round 2 had 0 req/s on raw
    assert r["cpu_ms_per_request"] == pytest.approx(s(1.25, 1.0, 1.5, 2))  # round 1: no CPU


def test_ratios_refuse_rounds_that_do_not_pair_up() -> None:
    with pytest.raises(ValueError):
        ratios([run(1, 1, 1, 1)], [run(1, 1, 1, 1), run(1, 1, 1, 1)])


# ----- one ratio against the A/A noise ---------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "ratio", "expected"),
    [
        ("rps", s(0.95, 0.8, 1.2), "within"),
        ("rps", s(0.9, 0.8, 1.2), "within"),  # on the A/A minimum: still inside
        ("rps", s(1.1, 0.8, 1.2), "within"),  # on the A/A maximum
        ("rps", s(0.85, 0.8, 0.9), "worse"),  # fewer req/s than the noise explains
        ("rps", s(1.2, 1.1, 1.3), "better"),
        ("p50_ms", s(1.2, 1.1, 1.3), "worse"),  # slower beyond the noise
        ("p99_ms", s(0.8, 0.7, 0.85), "better"),
        ("cpu_ms_per_request", s(1.15, 1.1, 1.2), "worse"),
        ("cpu_ms_per_request", s(0.85, 0.8, 0.9), "better"),
        ("rps", s(0.5, 0.5, 0.5, MIN_ROUNDS - 1), "n/a"),  # too few rounds to judge
        ("rps", {"median": None, "min": None, "max": None, "n": 0}, "n/a"),
    ],
)
def test_judge_against_the_aa_band(metric: Metric, ratio: Summary, expected: str) -> None:
    assert judge(metric, ratio, NOISE) == expected


def test_too_few_aa_rounds_judge_nothing() -> None:
    assert judge("rps", s(0.5, 0.4, 0.6), s(1.0, 0.9, 1.1, MIN_ROUNDS - 1)) == "n/a"


@pytest.mark.parametrize(
    ("share", "expected"),
    [
        (None, "n/a"),
        (0.0, "ok"),
        (CPU_SHARE_LIMIT, "ok"),
        (CPU_SHARE_LIMIT * 1.01, "over"),
    ],
)
def test_cpu_share_against_its_budget(share: float | None, expected: str) -> None:
    assert cpu_share(share) == expected


def test_verdict_judges_every_metric_and_the_cpu_share() -> None:
    ratio = {
        "rps": s(0.8, 0.7, 0.85),
        "p50_ms": s(1.0, 0.95, 1.05),
        "p99_ms": s(0.8, 0.7, 0.85),
        "cpu_ms_per_request": s(1.0, 1.0, 1.0, 1),
    }
    aa = dict.fromkeys(ratio, NOISE)
    assert verdict(ratio, aa, 0.01) == {
        "rps": "worse",
        "p50_ms": "within",
        "p99_ms": "better",
        "cpu_ms_per_request": "n/a",
        "cpu_share": "over",
    }


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (s(0.85, 0.7, 0.95), True),  # median below the band, but the max reaches into it
        (s(0.85, 0.8, 0.89), False),  # every round below the band
        (s(1.2, 1.15, 1.3), False),  # every round above it
        (s(1.2, 0.5, 1.3), True),
        (s(0.85, 0.85, 0.85, 1), False),  # one round has no spread
    ],
)
def test_spread_covers_gap(ratio: Summary, expected: bool) -> None:
    assert spread_covers_gap(ratio, NOISE) is expected


# ----- the sentences of a verdict --------------------------------------------------------------


def test_verdict_text_names_each_ratio_beside_its_noise() -> None:
    p = overhead_profile({"rps": s(0.8, 0.7, 0.85), "p50_ms": s(0.95, 0.9, 1.0, 2)}, share=0.00123)
    text = verdict_text(p, p["verdict"], CPU_SHARE_LIMIT)
    assert text == (
        "req/s 0.80 is worse than raw beyond the A/A noise (1.00 (0.90..1.10)); "
        "p99 latency 1.00 is within the A/A noise (1.00 (0.90..1.10)); "
        "server CPU per request 1.00 is within the A/A noise (1.00 (0.90..1.10)); "
        "launcher CPU share 0.123% within the 0.5% budget"
    )  # p50 had 2 rounds: not judged, so not named


def test_verdict_text_says_when_the_cpu_share_is_over_its_budget() -> None:
    p = overhead_profile(share=0.02)
    assert verdict_text(p, p["verdict"], 0.01).endswith(
        "launcher CPU share 2.000% above the 1.0% budget"
    )


def test_why_with_every_ratio_inside_the_noise() -> None:
    p = overhead_profile()
    assert why(p, p["verdict"]) == "The launcher costs nothing this run could measure."


def test_why_with_too_few_rounds() -> None:
    short = s(1.0, 1.0, 1.0, 1)
    p = overhead_profile(dict.fromkeys(("rps", "p50_ms", "p99_ms"), short))
    assert why(p, p["verdict"]) == (
        f"Too few rounds to judge against the noise (fewer than {MIN_ROUNDS})."
    )


def test_why_blames_the_launcher_when_the_server_did_more_work() -> None:
    p = overhead_profile({"rps": s(0.8, 0.75, 0.85), "cpu_ms_per_request": s(1.3, 1.2, 1.4)})
    text = why(p, p["verdict"])
    assert text.startswith("Outside the noise: req/s (worse), and the server tree did more work")
    assert "CPU per request 1.30 (1.20..1.40)" in text
    assert "a real cost of the way the launcher runs this server" in text


def test_why_blames_the_launcher_when_its_own_cpu_is_over_budget() -> None:
    p = overhead_profile({"p99_ms": s(1.5, 1.4, 1.6)}, share=0.05)
    assert "a real cost" in why(p, p["verdict"])


def test_why_points_at_the_machine_when_the_server_did_no_more_work() -> None:
    p = overhead_profile({"rps": s(0.85, 0.6, 0.95), "p99_ms": s(1.3, 1.2, 1.4)}, share=0.0012)
    text = why(p, p["verdict"])
    assert text.startswith("Outside the noise: req/s (worse), p99 latency (worse). ")
    assert "launcher itself used 0.120% of the CPU" in text
    assert "not on the request path" in text
    # req/s rounds reach into the band (0.95 >= 0.9), p99's never do (1.2 > 1.1)
    assert "The per-round launch/raw ratios of req/s span more than the gap" in text


def test_why_does_not_call_it_noise_when_no_round_reaches_the_band() -> None:
    p = overhead_profile({"p99_ms": s(1.3, 1.2, 1.4)})
    text = why(p, p["verdict"])
    assert "not on the request path." in text
    assert "per-round" not in text


# ----- the server command under launch against the raw one ------------------------------------


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (
            "-m gunicorn app --bind X -w 2",
            [("-m", "gunicorn"), ("app",), ("--bind", "X"), ("-w", "2")],
        ),
        ("--preload --bind X", [("--preload",), ("--bind", "X")]),  # a flag before a flag
        ("--reload", [("--reload",)]),  # the last word has no value
    ],
)
def test_pairs_keeps_options_with_their_values(words: str, expected: list[tuple[str, ...]]) -> None:
    assert pairs(words.split()) == expected


def test_differences_names_only_the_flags_that_differ() -> None:
    p = overhead_profile()
    assert differences(p).startswith(
        "The server command under launch differs from the raw one only in `--bind fd://3` "
        "(raw: `--bind 127.0.0.1:8000`)"
    )


def test_differences_of_identical_commands() -> None:
    same = "-m uvicorn app:asgi --host 127.0.0.1 --port 8000"
    p = overhead_profile(raw_command=same, launch_command=same)
    assert differences(p) == "The server command under launch is the raw one, word for word."


def test_differences_when_another_program_serves() -> None:
    p = overhead_profile(
        raw_command="-m uvicorn app:asgi --port 8000",
        launch_command="-m launcher.devserver '{}'",
    )
    assert differences(p) == (
        "Under launch the server is `python -m launcher.devserver` (the launcher's warm fork "
        "server, serving the same uvicorn settings) where the raw command runs "
        "`python -m uvicorn`."
    )


def test_differences_without_a_recorded_launch_command() -> None:
    assert differences(overhead_profile(launch_command=None)) == ""


# ----- the checks --------------------------------------------------------------------------


def reload_run(server: str, connection: str, failed: int, done: int = 3, zombies: int = 0) -> Any:
    return {
        "server": server,
        "connection": connection,
        "hups": 3,
        "reloads_done": done,
        "reload_seconds": s(1.0, 1.0, 1.0, done),
        "wrk": {"failed": failed},
        "zombie_children": zombies,
        "log_failures": [],
    }


def test_a_clean_run_crosses_no_limit() -> None:
    data: Report = {
        "overhead": {"wrk": "wrk", "rounds": 7, "profiles": [overhead_profile(failed=(3, 9, 4))]},
        "operations": {
            "reload": {"profile": "p", "path": "/", "runs": [reload_run("launch", "close", 0)]}
        },
        "stops": {"launch": {"stopped": 10, "left_behind": 0}},
    }
    # 9 failed under launch against 3 and 4 raw: within 1.5 x 4 + 5
    assert checks(data) == []


def test_checks_find_every_limit_crossed() -> None:
    p = overhead_profile(
        {"rps": s(0.8, 0.75, 0.85), "p99_ms": s(1.5, 1.4, 1.6)}, share=0.01, failed=(2, 20, 4)
    )
    data: Report = {
        "overhead": {"wrk": "wrk", "rounds": 7, "profiles": [p]},
        "operations": {
            "reload": {
                "profile": "prod-asgi",
                "path": "/",
                "runs": [
                    reload_run("launch", "keep-alive", 5),
                    reload_run("raw", "keep-alive", 7, done=2, zombies=1),
                    reload_run("launch", "close", 2),
                ],
            }
        },
        "stops": {"launch": {"stopped": 30, "left_behind": 2}},
        "dev_reload": {
            "measured_at": "now",
            "edits": 5,
            "poll_ms": 10,
            "settle_s": 1.5,
            "servers": [
                {
                    "server": "launch dev",
                    "command": "",
                    "seconds": s(0.1, 0.1, 0.1, 4),
                    "samples": [],
                    "failed_requests": 3,
                    "requests": 100,
                    "timeouts": 1,
                },
                {
                    "server": "uvicorn --reload",
                    "command": "",
                    "seconds": s(0.5, 0.5, 0.5, 5),
                    "samples": [],
                    "failed_requests": 40,  # not the launcher's: no finding
                    "requests": 100,
                    "timeouts": 0,
                },
            ],
        },
    }
    assert checks(data) == [
        "prod-wsgi: launcher CPU share 1.000% is above 0.5%.",
        "prod-wsgi: req/s launch/raw 0.80 (0.75..0.85) is worse than raw beyond the A/A noise "
        "1.00 (0.90..1.10) (see its verdict).",
        "prod-wsgi: p99 latency launch/raw 1.50 (1.40..1.60) is worse than raw beyond the A/A "
        "noise 1.00 (0.90..1.10) (see its verdict).",
        "prod-wsgi: 20 failed requests under launch, raw 2 and 4.",  # 20 > 1.5 x 4 + 5
        "reload under load (keep-alive): 5 failed requests over 3 launcher reloads "
        "(raw gunicorn's own SIGHUP: 7).",
        "raw: only 2 of 3 reloads finished.",
        "raw: 1 zombie children after reloads.",
        "reload under load (close): 2 failed requests over 3 launcher reloads.",
        "2 process group(s) still alive 5 s after `launch` exited (over 30 stops), killed by "
        "the benchmark.",
        "launch dev: 3 failed polls, 1 edits never served.",
    ]


@pytest.mark.parametrize(
    ("failed", "found"),
    [
        ((2, 11, 4), False),  # at 1.5 x the worse raw side + 5: still the raw servers' noise
        ((2, 12, 4), True),
        ((4, 12, 2), True),  # the worse raw side counts, whichever it is
        ((0, 5, 0), False),
        ((0, 6, 0), True),
    ],
)
def test_failed_requests_under_launch_against_both_raw_servers(
    failed: tuple[int, int, int], found: bool
) -> None:
    p = overhead_profile(failed=failed)
    data: Report = {"overhead": {"wrk": "wrk", "rounds": 7, "profiles": [p]}}
    line = f"prod-wsgi: {failed[1]} failed requests under launch, raw {failed[0]} and {failed[2]}."
    assert checks(data) == ([line] if found else [])


def test_checks_of_an_empty_run() -> None:
    assert checks({}) == []


# ----- how a figure is written ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary_", "digits", "unit", "expected"),
    [
        (None, 2, "", "n/a"),
        ({"median": None, "min": None, "max": None, "n": 0}, 2, "", "n/a"),
        (s(1234.4, 1000, 1500, 1), 0, "", "1,234"),  # one sample: the value alone
        (s(1.0, 0.9, 1.234), 2, "", "1.00 (0.90..1.23)"),
        (s(0.1, 0.05, 0.2), 3, "%", "0.100% (0.050..0.200)"),
    ],
)
def test_spread(summary_: Summary | None, digits: int, unit: str, expected: str) -> None:
    assert spread(summary_, digits, unit) == expected


def test_a_share_in_percent() -> None:
    assert pct(0.00123, 3) == "0.123%"
    assert pct(None) == "n/a"
    assert pct(float("nan")) == "n/a"
    assert scaled(s(0.001, 0.0005, 0.002, 3), 100) == pytest.approx(s(0.1, 0.05, 0.2, 3))


# ----- the big project's goals ----------------------------------------------------------------


def big_section(model: float, view: float, start: float, steps: float, reload: float,
                failed: int = 0, timeouts: int = 0) -> Any:
    def edit(ratio: float) -> Any:
        return {
            "servers": [
                {"server": "launch dev", "seconds": s(1.0, 1.0, 1.0, 3), "samples": [],
                 "failed_requests": failed, "requests": 100, "timeouts": timeouts,
                 "ratio_to_uvicorn_reload": s(ratio, ratio, ratio, 3)},
                {"server": "uvicorn --reload", "seconds": s(1.0, 1.0, 1.0, 3), "samples": [],
                 "failed_requests": 7, "requests": 100, "timeouts": 0,
                 "ratio_to_uvicorn_reload": s(1.0, 1.0, 1.0, 3)},
            ],
            "aa_ratio": s(1.0, 0.9, 1.1, 3),
        }

    return {
        "measured_at": "now", "rounds": 3, "settle_s": 2.0, "poll_ms": 10.0,
        "import_seconds": s(1.2, 1.1, 1.3, 3), "modules": 1955,
        "edits": {"view": edit(view), "model": edit(model)},
        "start": {
            "seconds": {},
            "ratio_to_raw": {"launch, no before_start": s(start, start, start, 3)},
            "steps_add_s": s(steps, steps, steps, 3),
        },
        "reload": {"seconds": s(1.0, 1.0, 1.0, 3), "ratio_to_raw_start": s(reload, reload,
                                                                          reload, 3)},
    }


@pytest.mark.parametrize(
    ("figures", "failed", "met"),
    [
        ((0.5, 0.3, 1.10, 0.3, 1.5), 0, [True] * 5),  # each exactly at its limit
        ((0.51, 0.31, 1.11, 0.31, 1.51), 0, [False] * 5),
        ((0.2, 0.1, 1.0, 0.0, 1.0), 1, [False, True, True, True, True]),  # a failed poll
        ((1.7, 0.15, 1.27, 9.4, 1.75), 0, [False, True, False, False, False]),
    ],
)
def test_big_project_goals(figures: tuple[float, ...], failed: int, met: list[bool]) -> None:
    goals = big_goals(big_section(*figures, failed=failed))
    assert [g[3] for g in goals] == met
    assert [g[1]["median"] for g in goals] == list(figures)
    assert goals[0][2] == "<= 0.5x, 0 failed requests" and goals[3][2] == "<= 0.3 s"


def test_big_project_goals_not_measured_are_not_judged() -> None:
    section = big_section(0.1, 0.1, 1.0, 0.0, 1.0)
    section["reload"]["ratio_to_raw_start"] = summary([])
    assert big_goals(section)[4][3] is None


def test_checks_name_failed_polls_of_launch_dev_on_the_big_project() -> None:
    data: Report = {"big_project": big_section(0.4, 0.1, 1.0, 0.1, 1.2, failed=2, timeouts=1)}
    assert checks(data) == [
        "big project, launch dev, view edit: 2 failed polls, 1 edits never served.",
        "big project, launch dev, model edit: 2 failed polls, 1 edits never served.",
    ]


def test_a_run_without_the_dev_edits_judges_only_the_prod_figures() -> None:
    """`benchmarks.big_project --no-dev`: the dev goals are not measured, the others judged."""
    section = big_section(0.4, 0.1, 1.05, 0.2, 1.2)
    section["edits"] = {}
    assert [g[3] for g in big_goals(section)] == [None, None, True, True, True]
