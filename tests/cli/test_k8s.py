"""`launch k8s`, end to end: the real CLI's output passes `kubernetes-validate --strict` (its
bundled schemas, offline) for the newest Kubernetes it knows and for 1.30, the oldest with the
preStop sleep; bad input is one line and exit 2 (in-process: the CLI's own refusals)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from launcher.cli.k8s import pod_binds
from launcher.plan.build import build_plan
from launcher.plan.loader import load_profile
from tests.conftest import (
    PYTHON,
    ROOT,
    VALIDATE,
    Env,
    Launch,
    free_port,
    get,
    refused,
    validate,
)
from tests.lookup_sites import layout, place, site_text

DEMO = ROOT / "demo_site"
POD = ("--bind", "0.0.0.0:8000", "--admin-bind", "0.0.0.0:9100")
IMAGE = ("--image", "registry.example.com/demo-site:1.4")


def cli(env: Env, *args: str, cwd: Path = DEMO, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "launcher", "k8s", *args],
        cwd=cwd, env=env.vars(**extra), capture_output=True, text=True, timeout=60,
    )


SECRET_PROFILE = "extends: prod-wsgi\nenv:\n  DJANGO_SECRET_KEY: ${K8S_TEST_UNSET_SECRET}\n"


@pytest.mark.parametrize(
    ("profile", "extra", "name"),
    [
        ("prod-wsgi", (), "prod-wsgi"),
        ("prod-asgi", ("--log-format", "json"), "prod-asgi"),
        # a secret unset here: the pod takes it from a Secret (envFrom)
        ("shop_site.yaml", (), "shop"),
    ],
)
def test_output_passes_kubernetes_validate_strict(
    env: Env, tmp_path: Path, profile: str, extra: tuple[str, ...], name: str
) -> None:
    cwd = DEMO
    if profile.endswith(".yaml"):  # in a project's configs/, given by its path there
        cwd = layout(tmp_path).project
        (cwd / "configs" / profile).write_text(SECRET_PROFILE)
        profile = f"configs/{profile}"
    named = ("--name", name) if name != profile else ()
    # The pod's binds are given, or (prod-wsgi) left to launch k8s: the same command either way
    given = () if profile == "prod-wsgi" else POD
    result = cli(env, profile, *given, *IMAGE, *extra, *named, cwd=cwd, WEB_CONCURRENCY="3")
    assert result.returncode == 0, result.stderr
    manifest = tmp_path / "site.yaml"
    manifest.write_text(result.stdout)
    kinds = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(result.stdout)]
    assert kinds == [("Deployment", name), ("Service", name)]
    for version in ((), ("-k", "1.30.0")):
        report = validate(manifest, *version)
        assert report.count("passed for resource") == 2, report
    deployment = next(yaml.safe_load_all(result.stdout))
    (web,) = deployment["spec"]["template"]["spec"]["containers"]
    assert web["command"] == ["launch", profile, *POD, *extra]
    assert {"name": "WEB_CONCURRENCY", "value": "3"} in web["env"]
    if named:
        assert web["envFrom"] == [{"secretRef": {"name": "shop-env"}}]
        assert "in the Secret shop-env: K8S_TEST_UNSET_SECRET" in result.stdout
    else:
        assert "envFrom" not in web


def test_validator_refuses_what_strict_mode_should(tmp_path: Path) -> None:
    """The check has teeth: an unknown field in the container fails --strict."""
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n"
        "  selector: {matchLabels: {a: x}}\n  template:\n    metadata: {labels: {a: x}}\n"
        "    spec:\n      containers: [{name: web, image: 'x:1', preStopSleep: 5}]\n"
    )
    result = subprocess.run(
        [str(VALIDATE), "--strict", str(manifest)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "preStopSleep" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (POD, "launch: error: the following arguments are required: --image"),
        ((*POD, "--image", "Site:latest"), "key '--image': 'Site:latest' is not an image"),
        # what a pod cannot reach, given explicitly, is refused rather than rewritten
        ((*IMAGE, "--bind", "127.0.0.1:8000"), "key '--bind': 127.0.0.1:8000 is "
                                               "not reachable in a pod"),
        ((*IMAGE, "--bind", "unix:/tmp/site.sock"), "key '--bind': unix:/tmp/site.sock is "
                                                    "not reachable in a pod"),
        ((*IMAGE, "--bind", "0.0.0.0:8000", "--admin-bind", "9100"),
         "key '--admin-bind': 127.0.0.1:9100 is not reachable by the kubelet's probes"),
        ((*IMAGE, *POD, "--name", "Shop"), "key '--name': 'Shop' is not a Kubernetes name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...], expected: str,
) -> None:
    """In-process: the refusals are the CLI's own, before anything runs (the command as a
    process is proven by the tests above)."""
    monkeypatch.chdir(DEMO)
    assert expected in refused(capsys, "k8s", "prod-wsgi", *args)


# The project's case also runs on the oldest and newest supported versions, from the wheel
# (its `launch` script); where a profile is found is the same code in both tiers.
@pytest.mark.parametrize(
    ("case", "word"),
    [pytest.param("project", "mysite", marks=pytest.mark.installed), ("path", "deploy/web.yaml"),
     ("site", "sited")],
)
def test_the_container_serves_the_profile_it_was_rendered_from(
    env: Env, launch: list[Launch], tmp_path: Path, case: str, word: str
) -> None:
    """Render in the project (with $LAUNCH_CONFIG_DIR for the site-wide case), then run the
    container's command with the container's env in the project, as the image's working
    directory: it serves the same profile file."""
    where = layout(tmp_path)
    port, admin = free_port(), free_port()
    name, source = place(where, case, port)
    binds = ("--bind", f"0.0.0.0:{port}", "--admin-bind", f"0.0.0.0:{admin}")
    rendered = cli(
        env, name, *binds, *IMAGE, "--name", "site", cwd=where.project,
        LAUNCH_CONFIG_DIR=where.config_dir if case == "site" else "",
    )
    assert rendered.returncode == 0, rendered.stderr
    deployment = next(yaml.safe_load_all(rendered.stdout))
    (web,) = deployment["spec"]["template"]["spec"]["containers"]
    assert web["command"] == ["launch", word, *binds]
    pod_env = {item["name"]: item["value"] for item in web["env"]}
    assert pod_env.get("LAUNCH_CONFIG_DIR") == (where.config_dir if case == "site" else None)
    held = f"# The image must hold the profile's LAUNCH_CONFIG_DIR: {where.config_dir}"
    assert (held in rendered.stdout.splitlines()) == (case == "site")

    # The container: its command and env, in the project; nothing of this shell's lookup.
    shell = {k: v for k, v in env.vars().items()
             if k not in ("LAUNCH_CONFIG_DIR", "DJANGO_SETTINGS_MODULE")}
    process_env = {**shell, **pod_env}
    executable = Path(PYTHON).parent / web["command"][0]  # the console script
    shown = subprocess.run(
        [str(executable), "show", *web["command"][1:], "--json"], cwd=where.project,
        env=process_env, capture_output=True, text=True, timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["source"] == str(source)
    item = Launch(web["command"][1:], process_env, env.tmp / "pod.log", where.project).start()
    launch.append(item)
    item.wait_for(f"on 0.0.0.0:{port}", timeout=90)
    assert get(port, "/api/sync/")[0] == 200
    assert get(admin, "/readyz")[0] == 200
    assert item.stop() == 0


def test_a_profile_outside_the_project_is_refused(env: Env, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text(site_text(8000, "outside"))
    result = cli(env, str(outside), *POD, *IMAGE)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"launch: error: {outside}: outside the project {DEMO}: the container runs `launch` "
        f"there (the image's working directory); put the profile in {DEMO / 'configs'}, or in "
        "a directory of $LAUNCH_CONFIG_DIR the image holds"
    ]


@pytest.mark.parametrize(
    ("profile", "given", "needed"),
    [
        # the shipped profiles: loopback, no admin listener: both, on the profile's port
        ("bind: 127.0.0.1:8000\n", (None, None),
         [("--bind", "0.0.0.0:8000"), ("--admin-bind", "0.0.0.0:9100")]),
        ("bind: 127.0.0.1:8000\n", ("0.0.0.0:8000", None), [("--admin-bind", "0.0.0.0:9100")]),
        ("bind: 0.0.0.0:8080\nadmin: {bind: 9200}\n", (None, None),
         [("--admin-bind", "0.0.0.0:9200")]),
        ("bind: '[::]:8080'\nadmin: {bind: '0.0.0.0:9100'}\n", (None, None), []),
        # a unix socket, or an option given: render_k8s judges it, with its one line
        ("bind: unix:/tmp/site.sock\n", (None, "0.0.0.0:9100"), []),
        ("bind: 127.0.0.1:8000\n", ("127.0.0.1:8000", "127.0.0.1:9100"), []),
    ],
)
def test_a_pod_gets_the_binds_it_needs(
    tmp_path: Path, profile: str, given: tuple[str | None, str | None],
    needed: list[tuple[str, str]],
) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text("app: shop.wsgi:application\nsettings: shop.settings\n" + profile)
    plan = build_plan(load_profile(str(path), cwd=tmp_path, env={}), python="python", cpus=2,
                      env={}, cwd=tmp_path)
    assert pod_binds(plan, *given) == needed
