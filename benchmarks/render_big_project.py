"""The big project's section of docs/benchmarks.md, from its figures only."""

from __future__ import annotations

from benchmarks.formatting import rounds, spread, table
from benchmarks.results import BigProjectSection
from benchmarks.verdicts import big_goals

_EDITS = {
    "view": "a view module the URLconf registers (catalog/views.py)",
    "model": "a model module, imported by `django.setup()` (catalog/models.py)",
}


_APART = (
    ("launcher_own_s", "the launcher's own time: `launch, no before_start` - `raw gunicorn`"),
    ("aa_difference_s", "the same difference between the two raw starts (A/A)"),
    ("checks_s", "Django's checks alone (in-process, after `django.setup()`)"),
)


def big_project(section: BigProjectSection) -> list[str]:
    start, reload = section["start"], section["reload"]
    lines = [
        "## A big project",
        "",
        f"Measured {section['measured_at']}, {rounds(section['rounds'])}, each in another order,",
        "on the heavy project of tests/projects.py: a CMS site (`wagtail start`) with an API",
        "(django-rest-framework, django-filter), django-extensions and five apps of its own whose",
        f"models carry code; {section['modules']:,} modules, `django.setup()` + URLconf in",
        f"{spread(section['import_seconds'])} s in a fresh interpreter"
        + (f" ({spread(section['import_cpu_seconds'])} s of CPU)."
           if "import_cpu_seconds" in section else ".")
        + " Generated in a temp dir,",
        "migrated and its static files collected once; prod runs 2 workers.",
        "",
        "### Dev: edit -> new code served",
        "",
    ]
    if not section["edits"]:
        lines += ["Not measured in this run.", ""]
    else:
        lines += [
            "Each dev server is started in turn; then each module gets a new `TOKEN = \"...\"`",
            f"line; /probe/ is polled every {section['poll_ms']:g} ms on a fresh connection until",
            f"it shows it, then {section['settle_s']:g} s more (also the pause before the next",
            "edit). Failed = refused, dropped or non-200 polls. Ratios are taken round by round;",
            "the A/A row is a second `uvicorn --reload` against the first. The raw uvicorn serves",
            "Django's own `asgi.py`, added to the project for it.",
            "",
        ]
    for field, edit in section["edits"].items():
        rows = [
            [
                f"`{s['server']}`",
                spread(s["seconds"], 2),
                spread(s["ratio_to_uvicorn_reload"]),
                f"{s['failed_requests']} / {s['requests']}",
                str(s["timeouts"]),
            ]
            for s in edit["servers"]
        ]
        lines += [
            f"Edit of {_EDITS.get(field, field)}; A/A ratio {spread(edit['aa_ratio'])}:",
            "",
            *table(
                ["server", "edit -> served, s", "ratio to uvicorn --reload",
                 "failed / polled requests", "edits never served"],
                rows,
            ),
            "",
        ]
    ratio = start["ratio_to_raw"]
    lines += [
        "### Prod: start -> first 200 on /, and a validated reload",
        "",
        "`launch prod-wsgi` runs its `migrate` and `collectstatic` steps (nothing left to do) and",
        "Django's checks first; the raw gunicorn is the command `launch show prod-wsgi` prints,",
        "with the project's WSGI app and the same settings. Each keeps its port from round to",
        "round, as a service does, and starts once before the rounds, uncounted; every start",
        "makes its plan anew (no start cache). `launch reload prod-wsgi` is timed from the",
        "command to its exit (the new generation serves), set against the raw gunicorn start of",
        "the same round.",
        "",
        *table(
            ["", "seconds", "ratio to raw gunicorn"],
            [
                *([f"`{name}`", spread(s), spread(ratio.get(name))]
                  for name, s in start["seconds"].items()),
                ["steps with nothing to do add (Django's checks included)",
                 spread(start["steps_add_s"]), ""],
                *([[label, spread(start[key]), ""]  # type: ignore[literal-required]
                   for key, label in _APART if key in start]),
                ["`launch reload prod-wsgi`", spread(reload["seconds"]),
                 spread(reload["ratio_to_raw_start"])],
            ],
        ),
        "",
        "### Goals",
        "",
        *table(
            ["figure", "measured", "goal", "met"],
            [
                [figure, spread(value), goal, {True: "yes", False: "**no**", None: "n/a"}[met]]
                for figure, value, goal, met in big_goals(section)
            ],
        ),
        "",
    ]
    return lines

