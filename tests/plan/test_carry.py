"""plan/carry.py: what a systemd unit and a pod carry so that `launch` there finds the profile
(and every file it extends) as it did here. Tables: a project and site-wide directories under
tmp_path, the lookup done again as the target would. tests/run/test_systemd.py and
tests/cli/test_k8s.py run what is rendered."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.errors import ProfileError
from launcher.plan.carry import Carried, for_pod, for_unit, reads_the_same
from launcher.plan.loader import load_profile
from tests.conftest import write_files

APP = "app: demo_site.wsgi:application\n"
LAYOUT = {
    "mysite/manage.py": "",
    "mysite/configs/site.yaml": APP,
    "mysite/configs/prod-wsgi.yaml": "extends: prod-wsgi\n",
    "mysite/configs/uses-site.yaml": "extends: sitebase\n",  # sitebase: only in site2
    "mysite/configs/far.yaml": "extends: ../../elsewhere/loose.yaml\n",
    "mysite/app/configs/sub.yaml": APP,
    "mysite/other/x.yaml": APP,
    "mysite/sitedir/e.yaml": APP,
    "site1/c.yaml": APP,
    "site2/c.yaml": APP,
    "site2/d.yaml": APP,
    "site2/sitebase.yaml": APP,
    "elsewhere/loose.yaml": APP,
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return write_files(tmp_path, LAYOUT)


def env_of(tree: Path, site: str) -> dict[str, str]:
    """LAUNCH_CONFIG_DIR as given, `T/` standing for the tree."""
    return {"LAUNCH_CONFIG_DIR": site.replace("T/", f"{tree}/")} if site else {}


def expand(tree: Path, text: str) -> str:
    return text.replace("T/", f"{tree}/")


@pytest.mark.parametrize(
    ("cwd", "site", "name", "workdir", "word", "dirs"),
    [
        # the project's own profile: by name, from the project, nothing else
        ("mysite", "", "site", "mysite", "site", ()),
        ("mysite", "T/site1:T/site2", "site", "mysite", "site", ()),
        ("mysite", "", "prod-wsgi", "mysite", "prod-wsgi", ()),
        ("mysite", "", "configs/site.yaml", "mysite", "site", ()),  # a path the lookup finds
        # shipped: by name
        ("mysite", "T/site1", "dev", "mysite", "dev", ()),
        # from $LAUNCH_CONFIG_DIR: every directory, absolute (a relative one made so)
        ("mysite", "T/site1:T/site2", "d", "mysite", "d", ("T/site1", "T/site2")),
        ("mysite", "../site1:../site2", "d", "mysite", "d", ("T/site1", "T/site2")),
        ("mysite", "T/site2:T/site1", "c", "mysite", "c", ("T/site2", "T/site1")),
        # a project profile extending one from $LAUNCH_CONFIG_DIR needs it too
        ("mysite", "T/site1:T/site2", "uses-site", "mysite", "uses-site", ("T/site1", "T/site2")),
        # the lookup from the project would not find it by name: its absolute path
        ("mysite/app", "", "sub", "mysite", "T/mysite/app/configs/sub.yaml", ()),
        ("mysite", "", "other/x.yaml", "mysite", "T/mysite/other/x.yaml", ()),
        # no project: the server's directory (here: elsewhere)
        ("elsewhere", "", "loose.yaml", "elsewhere", "T/elsewhere/loose.yaml", ()),
    ],
)
def test_what_the_unit_carries(
    tree: Path, cwd: str, site: str, name: str, workdir: str, word: str, dirs: tuple[str, ...]
) -> None:
    env = env_of(tree, site)
    loaded = load_profile(name, cwd=tree / cwd, env=env, defer_env=True)
    carried = for_unit(loaded, cwd=tree / cwd, env=env, server_dir=tree / "elsewhere")
    assert carried == Carried(
        tree / workdir, expand(tree, word), tuple(expand(tree, d) for d in dirs)
    )
    assert reads_the_same(carried, loaded.chain)  # and what it carries finds it again


@pytest.mark.parametrize(
    ("cwd", "site", "name", "word", "dirs"),
    [
        ("mysite", "", "site", "site", ()),
        ("mysite", "T/site1", "prod-wsgi", "prod-wsgi", ()),
        ("mysite", "", "dev", "dev", ()),
        # given by a path inside the project: that path, relative to the project
        ("mysite", "", "configs/site.yaml", "configs/site.yaml", ()),
        ("mysite", "", "other/x.yaml", "other/x.yaml", ()),
        ("mysite/other", "", "x.yaml", "other/x.yaml", ()),
        ("mysite/app", "", "sub", "app/configs/sub.yaml", ()),
        # from $LAUNCH_CONFIG_DIR: in the container's env, relative when inside the project
        ("mysite", "T/site1:T/site2", "d", "d", ("T/site1", "T/site2")),
        ("mysite", "sitedir", "e", "e", ("./sitedir",)),
        ("mysite", "T/site1:T/site2", "uses-site", "uses-site", ("T/site1", "T/site2")),
    ],
)
def test_what_the_pod_carries(
    tree: Path, cwd: str, site: str, name: str, word: str, dirs: tuple[str, ...]
) -> None:
    env = env_of(tree, site)
    loaded = load_profile(name, cwd=tree / cwd, env=env, defer_env=True)
    carried = for_pod(loaded, cwd=tree / cwd, env=env)
    assert carried == Carried(tree / "mysite", word, tuple(expand(tree, d) for d in dirs))
    assert reads_the_same(carried, loaded.chain)


@pytest.mark.parametrize(
    ("name", "file", "message"),
    [
        ("../elsewhere/loose.yaml", "T/elsewhere/loose.yaml", "outside the project T/mysite: "
         "the container runs `launch` there (the image's working directory); put the profile in "
         "T/mysite/configs, or in a directory of $LAUNCH_CONFIG_DIR the image holds"),
        ("far", "T/elsewhere/loose.yaml", "outside the project T/mysite: the container runs "
         "`launch` there (the image's working directory) and would not have this file"),
    ],
)
def test_the_pod_refuses_what_its_image_would_not_hold(
    tree: Path, name: str, file: str, message: str
) -> None:
    loaded = load_profile(name, cwd=tree / "mysite", env={}, defer_env=True)
    with pytest.raises(ProfileError) as info:
        for_pod(loaded, cwd=tree / "mysite", env={})
    assert info.value.render() == f"{expand(tree, file)}: {expand(tree, message)}"
