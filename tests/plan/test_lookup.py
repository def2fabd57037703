"""Where `launch NAME` looks, as tables: a project's configs/ (nearest first, up to the project
root), then $LAUNCH_CONFIG_DIR, then the shipped profiles; `extends:` beside the file, then
further down that order, never the file itself. No processes: files under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.errors import ProfileError
from launcher.plan.loader import extends_chain, load_profile
from launcher.plan.lookup import (
    PROJECT,
    SHIPPED,
    SHIPPED_CONFIGS,
    SITE,
    list_profiles,
    locate,
    lookup_order,
)
from tests.conftest import write_files

APP = "app: demo_site.wsgi:application\n"

# A project (mysite, with manage.py) holding configs/ at its root and in a subdirectory, a
# directory above it with configs/ of its own (outside the project: never looked in), and two
# site-wide directories.
LAYOUT = {
    "outer/configs/a.yaml": APP,
    "outer/mysite/manage.py": "",
    "outer/mysite/configs/a.yaml": APP,
    "outer/mysite/configs/b.yaml": APP,
    "outer/mysite/configs/prod-wsgi.yaml": "extends: prod-wsgi\nworkers: 3\n",
    "outer/mysite/app/configs/b.yaml": APP,
    "outer/mysite/app/deep/.keep": "",
    "site1/c.yaml": APP,
    "site1/a.yaml": APP,
    "site2/c.yaml": APP,
    "site2/d.yaml": APP,
    "site2/prod-wsgi.yaml": "extends: prod-wsgi\nworkers: 5\n",
    "plain/configs/e.yaml": APP,
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_files(tmp_path, LAYOUT)


def sites(tree: Path, value: str = "site1:site2") -> dict[str, str]:
    return {"LAUNCH_CONFIG_DIR": ":".join(str(tree / d) for d in value.split(":"))}


@pytest.mark.parametrize(
    ("cwd", "site", "name", "expected", "origin"),
    [
        # the project's own profile wins over a site-wide one of the same name
        ("outer/mysite", "site1:site2", "a", "outer/mysite/configs/a.yaml", PROJECT),
        # nearest configs/ first, from any directory below it
        ("outer/mysite/app/deep", "", "b", "outer/mysite/app/configs/b.yaml", PROJECT),
        ("outer/mysite/app", "", "b", "outer/mysite/app/configs/b.yaml", PROJECT),
        ("outer/mysite/app/deep", "", "a", "outer/mysite/configs/a.yaml", PROJECT),
        # never above the project root (outer/configs/a.yaml is not the project's)
        ("outer/mysite/app", "site1", "a", "outer/mysite/configs/a.yaml", PROJECT),
        # $LAUNCH_CONFIG_DIR in its own order, first directory first
        ("outer/mysite", "site1:site2", "c", "site1/c.yaml", SITE),
        ("outer/mysite", "site2:site1", "c", "site2/c.yaml", SITE),
        ("outer/mysite", "site1:site2", "d", "site2/d.yaml", SITE),
        # a project's prod-wsgi hides the site-wide one and the shipped one
        ("outer/mysite", "site2", "prod-wsgi", "outer/mysite/configs/prod-wsgi.yaml", PROJECT),
        ("outer", "site2", "prod-wsgi", "site2/prod-wsgi.yaml", SITE),
        ("outer", "", "prod-wsgi", "SHIPPED/prod-wsgi.yaml", SHIPPED),
        # without a project: ./configs only
        ("plain", "", "e", "plain/configs/e.yaml", PROJECT),
        ("outer", "site1", "a", "outer/configs/a.yaml", PROJECT),
        ("plain/configs", "", "e", None, None),
        # a path is a path, whatever the order holds
        ("outer/mysite", "site1", "configs/a.yaml", "outer/mysite/configs/a.yaml", None),
        ("outer/mysite", "", "../../site1/c.yaml", "site1/c.yaml", None),
    ],
)
def test_which_file_launch_name_runs(
    tree: Path, cwd: str, site: str, name: str, expected: str | None, origin: str | None
) -> None:
    env = sites(tree, site) if site else {}
    if expected is None:
        with pytest.raises(ProfileError, match=f"unknown profile '{name}'"):
            locate(name, tree / cwd, env)
        return
    found = locate(name, tree / cwd, env)
    want = SHIPPED_CONFIGS / expected[8:] if expected.startswith("SHIPPED/") else tree / expected
    assert found.path == want
    assert (found.place.origin if found.place else None) == origin


def test_the_order_itself(tree: Path) -> None:
    order = lookup_order(tree / "outer/mysite/app/deep", sites(tree, "site1:site2:site1"))
    assert [(p.origin, p.directory) for p in order] == [
        (PROJECT, tree / "outer/mysite/app/configs"),
        (PROJECT, tree / "outer/mysite/configs"),
        (SITE, tree / "site1"),
        (SITE, tree / "site2"),
        (SHIPPED, SHIPPED_CONFIGS),
    ]
    # relative $LAUNCH_CONFIG_DIR entries are taken from the working directory
    relative = lookup_order(tree, {"LAUNCH_CONFIG_DIR": "site2::site1"})
    assert [p.directory for p in relative] == [
        tree / "configs", tree / "site2", tree / "site1", SHIPPED_CONFIGS
    ]
    # a project with no configs/ yet: where one would go (its root)
    assert lookup_order(tree / "outer/mysite/app/deep", {})[0].directory == (
        tree / "outer/mysite/app/configs"
    )


def test_unknown_names_every_directory_looked_in(tree: Path) -> None:
    with pytest.raises(ProfileError) as info:
        locate("nope", tree / "outer/mysite/app/deep", sites(tree))
    text = info.value.render()
    looked = ", ".join(
        str(d) for d in (tree / "outer/mysite/app/configs", tree / "outer/mysite/configs",
                         tree / "site1", tree / "site2", SHIPPED_CONFIGS)
    )
    assert f"looked in {looked} (profiles: " in text


@pytest.mark.parametrize(
    ("cwd", "site", "profile", "chain"),
    [
        # project -> site-wide -> shipped: each `extends: prod-wsgi` means the next one down
        ("outer/mysite", "site2", "prod-wsgi",
         ["outer/mysite/configs/prod-wsgi.yaml", "site2/prod-wsgi.yaml", "SHIPPED/prod-wsgi.yaml"]),
        ("outer/mysite", "", "prod-wsgi",
         ["outer/mysite/configs/prod-wsgi.yaml", "SHIPPED/prod-wsgi.yaml"]),
        # the reported case: $LAUNCH_CONFIG_DIR naming the project's own configs/ alone
        ("outer/mysite", "outer/mysite/configs", "prod-wsgi",
         ["outer/mysite/configs/prod-wsgi.yaml", "SHIPPED/prod-wsgi.yaml"]),
        # the same file named by its path: beside it (itself, skipped), then the whole order
        ("outer", "site2", "mysite/configs/prod-wsgi.yaml",
         ["outer/mysite/configs/prod-wsgi.yaml", "site2/prod-wsgi.yaml", "SHIPPED/prod-wsgi.yaml"]),
        ("outer/mysite", "", "prod-asgi", ["SHIPPED/prod-asgi.yaml", "SHIPPED/prod-wsgi.yaml"]),
    ],
)
def test_extends_chain(tree: Path, cwd: str, site: str, profile: str, chain: list[str]) -> None:
    env = sites(tree, site) if site else {}
    path = locate(profile, tree / cwd, env).path
    want = [SHIPPED_CONFIGS / c[8:] if c.startswith("SHIPPED/") else tree / c for c in chain]
    assert list(extends_chain(path, tree / cwd, env)) == want


def test_extends_beside_the_file_first_and_never_up(tree: Path) -> None:
    # beside the file first: a site file's `extends: c` is its own directory's c
    (tree / "site2/x.yaml").write_text("extends: c\n")
    chain = extends_chain(tree / "site2/x.yaml", tree / "outer/mysite", sites(tree))
    assert chain == (tree / "site2/x.yaml", tree / "site2/c.yaml")
    # a lower layer never reaches up: site1's `extends: b` skips the project's b.yaml
    (tree / "site1/y.yaml").write_text("extends: b\n")
    with pytest.raises(ProfileError) as info:
        extends_chain(tree / "site1/y.yaml", tree / "outer/mysite", sites(tree))
    assert "profile 'b' not found: no b.yaml beside it or in" in info.value.render()


def test_extends_only_itself_is_one_clear_line(tree: Path) -> None:
    """A project's mysite.yaml saying `extends: mysite` with no other mysite.yaml anywhere."""
    own = tree / "outer/mysite/configs/mysite.yaml"
    own.write_text(APP + "extends: mysite\n")
    with pytest.raises(ProfileError) as info:
        load_profile("mysite", cwd=tree / "outer/mysite", env=sites(tree))
    err = info.value
    assert (err.file, err.line, err.key) == (own, 2, "extends")
    text = err.render()
    assert "\n" not in text and "loops back" not in text
    assert text == (
        f"{own}:2: key 'extends': profile 'mysite' not found but this file itself (a file "
        f"never extends itself): no other mysite.yaml beside it or in {tree / 'site1'}, "
        f"{tree / 'site2'}, {SHIPPED_CONFIGS}"
    )


def test_a_real_loop_is_still_named(tree: Path) -> None:
    (tree / "plain/configs/p.yaml").write_text("extends: q\n")
    (tree / "plain/configs/q.yaml").write_text("extends: p\n")
    with pytest.raises(ProfileError, match=r"loops back on itself: p.yaml -> q.yaml -> p.yaml"):
        load_profile("p", cwd=tree / "plain", env={})


def test_list_marks_what_overrides_what(tree: Path) -> None:
    listed = {p.name: p for p in list_profiles(tree / "outer/mysite/app", sites(tree))}
    assert listed["a"].path == tree / "outer/mysite/configs/a.yaml"
    assert listed["a"].hides == (tree / "site1/a.yaml",)
    assert listed["b"].place.directory == tree / "outer/mysite/app/configs"
    assert listed["b"].hides == (tree / "outer/mysite/configs/b.yaml",)
    assert listed["c"].place.origin == SITE and listed["c"].hides == (tree / "site2/c.yaml",)
    assert listed["prod-wsgi"].hides == (tree / "site2/prod-wsgi.yaml",
                                         SHIPPED_CONFIGS / "prod-wsgi.yaml")
    assert listed["dev"].place.origin == SHIPPED and listed["dev"].hides == ()
    assert "e" not in listed
