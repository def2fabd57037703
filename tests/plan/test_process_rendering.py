"""The site's other processes beyond one machine, pure: a Deployment per process type (its
command, resources, grace period, names) and a systemd unit for one type (`--only`). No
process; `tests/cli/test_processes.py` validates the CLI's output strictly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from launcher.errors import ProfileError
from launcher.plan.k8s import render_k8s
from launcher.plan.model import LaunchPlan
from launcher.plan.unit import render_unit
from tests.conftest import COMMAND, IMAGE, LAUNCH, POD, container, plan_of, service

PROCESSES = """\
processes:
  worker:
    argv: [celery, -A, demo_site, worker]
    instances: 2
    max_memory: 300MiB
    stop_timeout: 600
  alerts: sendalerts
  asset_watch: [npm, run, dev]
"""


def documents(text: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all(text))


def kinds(text: str) -> list[tuple[str, str]]:
    return [(d["kind"], d["metadata"]["name"]) for d in documents(text)]


def test_a_deployment_per_process_type(tmp_path: Path) -> None:
    text = render_k8s(plan_of(tmp_path, POD + PROCESSES), image=IMAGE, command=COMMAND,
                      name=None)
    assert kinds(text) == [
        ("Deployment", "site"), ("Service", "site"), ("Deployment", "site-worker"),
        ("Deployment", "site-alerts"), ("Deployment", "site-asset-watch"),
    ]
    web, service_, worker, alerts, watch = documents(text)
    # Each pod runs one type; the web one keeps its Service and probes.
    assert container(web)["command"] == [*COMMAND, "--only", "web"]
    assert "readinessProbe" in container(web)
    assert container(worker)["command"] == [*COMMAND, "--only", "worker"]
    assert container(watch)["command"] == [*COMMAND, "--only", "asset_watch"]
    for deployment, component in ((worker, "worker"), (alerts, "alerts"),
                                  (watch, "asset-watch")):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels == {"app.kubernetes.io/name": "site",
                          "app.kubernetes.io/component": component}
        assert deployment["spec"]["selector"]["matchLabels"] == labels
        only = container(deployment)
        assert only["name"] == component
        assert not {"ports", "livenessProbe", "readinessProbe", "startupProbe"} & set(only)
    # The Service selects the web pods only.
    assert service_["spec"]["selector"]["app.kubernetes.io/component"] == "web"


@pytest.mark.parametrize(
    ("process", "requests", "limits", "grace"),
    [
        # requests: 100m/64Mi for the supervisor, 500m/128Mi (or the ceiling) per instance;
        # a limit only from the ceiling; grace: stop_timeout + 15 s for the supervisor's exit
        ("alerts: sendalerts", {"cpu": "600m", "memory": "192Mi"}, None, 45),
        ("alerts: {command: sendalerts, instances: 3, stop_timeout: 0}",
         {"cpu": "1600m", "memory": "448Mi"}, None, 15),
        ("alerts: {command: sendalerts, instances: 2, max_memory: 300MiB, stop_timeout: 600}",
         {"cpu": "1100m", "memory": "320Mi"}, {"memory": "664Mi"}, 615),
        ("alerts: {command: sendalerts, max_memory: 64MiB, stop_timeout: 2.5}",
         {"cpu": "600m", "memory": "128Mi"}, {"memory": "128Mi"}, 18),
    ],
)
def test_process_resources_and_grace_period(
    tmp_path: Path, process: str, requests: dict[str, str], limits: dict[str, str] | None,
    grace: int,
) -> None:
    plan = plan_of(tmp_path, POD + f"processes:\n  {process}\n")
    text = render_k8s(plan, image=IMAGE, command=COMMAND, name=None, only="alerts")
    (deployment,) = documents(text)
    resources = container(deployment)["resources"]
    assert resources["requests"] == requests
    assert resources.get("limits") == limits
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == grace


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        (None, ["site", "site", "site-worker", "site-alerts", "site-asset-watch"]),
        ("web", ["site", "site"]),
        ("worker", ["site-worker"]),
    ],
)
def test_only_one_type(tmp_path: Path, only: str | None, expected: list[str]) -> None:
    plan = plan_of(tmp_path, POD + PROCESSES)
    text = render_k8s(plan, image=IMAGE, command=COMMAND, name=None, only=only)
    assert [name for _, name in kinds(text)] == expected


def test_without_processes_the_web_command_is_unchanged(tmp_path: Path) -> None:
    text = render_k8s(plan_of(tmp_path, POD), image=IMAGE, command=COMMAND, name=None)
    assert container(documents(text)[0])["command"] == list(COMMAND)
    assert "--only" not in text


@pytest.mark.parametrize(
    ("processes", "line", "message"),
    [
        ("  a_b: x\n  a-b: y\n", 5, "its Deployment would be 'site-a-b', as process 'a_b'"),
        ("  " + "w" * 60 + ": x\n", 4, "is not a Kubernetes name"),
    ],
)
def test_process_names_that_cannot_be_deployments(
    tmp_path: Path, processes: str, line: int, message: str
) -> None:
    plan = plan_of(tmp_path, POD + "processes:\n" + processes)
    with pytest.raises(ProfileError) as caught:
        render_k8s(plan, image=IMAGE, command=COMMAND, name=None)
    assert (caught.value.file, caught.value.line) == (tmp_path / "site.yaml", line)
    assert message in caught.value.message


# ----- systemd --------------------------------------------------------------------------------


def test_the_unit_for_all_waits_for_the_longest_stop(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "graceful_timeout: 20\n" + PROCESSES)
    got = service(render_unit_text(plan, None))
    assert got["TimeoutStopSec"] == [str(20 + 15 + 600)]
    assert got["Type"] == ["notify"]
    web = service(render_unit_text(plan, "web"))  # the server alone
    assert web["TimeoutStopSec"] == [str(20 + 15)]


def test_a_unit_for_one_process_type(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, PROCESSES)
    text = render_unit_text(plan, "worker")
    got = service(text)
    assert got["Type"] == ["exec"]  # no readiness to report, no probe to watch
    assert got["TimeoutStopSec"] == [str(600 + 15)]
    assert "WatchdogSec" not in got and "NotifyAccess" not in got and "ExecReload" not in got
    assert got["ExecStart"] == [" ".join([*LAUNCH, "--only", "worker"])]
    assert "Description=launcher: site worker (celery -A demo_site worker)" in text
    assert "# Install as /etc/systemd/system/launcher-site-worker.service, then" in text


def render_unit_text(plan: LaunchPlan, only: str | None) -> str:
    launch = [*LAUNCH, *(("--only", only) if only else ())]
    return render_unit(plan, launch=launch, only=only)
