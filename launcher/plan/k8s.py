"""LaunchPlan -> a Kubernetes Deployment and Service (YAML). Renders only; applying is the user's.

Every number comes from the plan, the way the systemd unit's timeouts do (plan/unit.py): the
probes on the supervisor's admin listener give the launcher as long to recover by itself as
WatchdogSec does, and the grace period covers the preStop delay plus the drain. What reaches
the text is checked first (`check_k8s`) and written by a YAML emitter, which quotes it.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from launcher.errors import ProfileError
from launcher.plan.model import LaunchPlan, ProcessPlan
from launcher.plan.overrides import ONLY, overriding
from launcher.plan.procfile import WEB
from launcher.plan.unit import STOP_MARGIN, start_timeout, stop_timeout, watchdog_timeout

MIB = 2**20
# Requests per worker. CPU: `workers: auto` runs 2 x CPU + 1, about two workers per core, so
# half a core each. Memory: a Django worker after warm-up holds ~40-60 MB RSS on a bare site and
# ~100 MB on a real project (the CMS template imports ~100 MB), so 128 MiB.
WORKER_CPU_MILLI = 500
WORKER_MEMORY_MIB = 128
# The supervisor and the server's master: ~25 MB RSS each, mostly idle.
BASE_CPU_MILLI = 100
BASE_MEMORY_MIB = 64
# Pages the workers share (the interpreter, Django) are charged to the pod once; USS, which
# max_worker_memory bounds, leaves them out.
SHARED_MEMORY_MIB = 128

PROBE_TIMEOUT = 2  # seconds; the admin listener answers in milliseconds, this is for a busy node
STARTUP_PERIOD = 2
LIVENESS_PERIOD = 10
# After the pod leaves the Service's endpoints, kube-proxy and ingress controllers take a few
# seconds to stop sending it traffic; SIGTERM (and the listener's close) waits that long.
ENDPOINTS_DELAY = 5

SITE_PORT, ADMIN_PORT = "http", "admin"  # named container ports
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")  # DNS-1035 label: a Service's name
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?/)?"  # registry[:port]/
    rf"{_COMPONENT}(?:/{_COMPONENT})*"  # repository path
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"  # :tag
    r"(?:@sha256:[a-f0-9]{64})?"  # @digest
)


def readiness_period(plan: LaunchPlan) -> int:
    """The supervisor's readiness changes at most once per health interval: poll at that pace."""
    return min(max(math.ceil(plan.probe.interval), 1), 10)


def pre_stop_delay(plan: LaunchPlan) -> int:
    """Seconds between the pod leaving the endpoints and SIGTERM: propagation, plus one
    readiness period for anything that follows the pod's readiness rather than the endpoints."""
    return ENDPOINTS_DELAY + readiness_period(plan)


def grace_period(plan: LaunchPlan) -> int:
    """terminationGracePeriodSeconds counts from the start of preStop: the delay, then the drain
    (graceful_timeout) and the supervisor's exit, as TimeoutStopSec allows under systemd."""
    return pre_stop_delay(plan) + stop_timeout(plan)


def probes(plan: LaunchPlan) -> dict[str, dict[str, Any]]:
    """Startup, liveness and readiness on the admin listener, never on a worker.

    Startup allows what TimeoutStartSec does (before_start steps, then the startup probe).
    Liveness fails only after the launcher has had as long to recover by itself (stop, back
    off, start again) as half the WatchdogSec gives it: a restart from the kubelet in the middle
    of that would turn one slow recovery into a cascade. Readiness is taken at its word (the
    supervisor already counts failure_threshold), so one failure removes the pod."""

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": ADMIN_PORT},
            "periodSeconds": period,
            "timeoutSeconds": PROBE_TIMEOUT,
            "failureThreshold": failures,
        }

    recovery = watchdog_timeout(plan) / 2
    return {
        "startupProbe": probe(
            "/startupz", STARTUP_PERIOD, math.ceil(start_timeout(plan) / STARTUP_PERIOD)
        ),
        "livenessProbe": probe("/livez", LIVENESS_PERIOD, math.ceil(recovery / LIVENESS_PERIOD)),
        "readinessProbe": probe("/readyz", readiness_period(plan), 1),
    }


def resources(plan: LaunchPlan) -> dict[str, dict[str, str]]:
    """Requests from the worker count; a memory limit only where max_worker_memory bounds the
    workers (the launcher recycles one before the pod is OOM-killed). No CPU limit: throttling
    is what makes probes time out under load."""
    return _requests_and_limits(plan.workers, plan.max_worker_memory, SHARED_MEMORY_MIB)


def _requests_and_limits(
    count: int, ceiling: int | None, shared_mib: int
) -> dict[str, dict[str, str]]:
    """Requests for the supervisor and `count` workers or instances; a memory limit only where
    `ceiling` (bytes) bounds each, plus `shared_mib` the workers share (a preloaded master)."""
    per_one = WORKER_MEMORY_MIB
    limits = {}
    if ceiling:
        most = math.ceil(ceiling / MIB)
        per_one = min(per_one, most)
        limits["memory"] = f"{BASE_MEMORY_MIB + shared_mib + count * most}Mi"
    requests = {
        "cpu": f"{BASE_CPU_MILLI + count * WORKER_CPU_MILLI}m",
        "memory": f"{BASE_MEMORY_MIB + count * per_one}Mi",
    }
    return {"requests": requests, **({"limits": limits} if limits else {})}


def render_k8s(
    plan: LaunchPlan,
    *,
    image: str,
    command: Sequence[str],
    name: str | None,
    lookup_env: Mapping[str, str] | None = None,
    only: str | None = None,
) -> str:
    """A Deployment and a Service for the profile's server, and a Deployment for each of its
    other processes, as one multi-document YAML text (`only`: for that process type alone).

    `command` is the launch command the container runs in the image's working directory (the
    project); `lookup_env` what it needs there to find the profile as here (LAUNCH_CONFIG_DIR,
    plan/carry.py); `name` names the objects (default: the profile's name). Where the profile
    has other processes, each pod runs one type (`launch NAME --only TYPE`)."""
    lookup_env = dict(lookup_env or {})
    name = check_k8s(plan, image=image, command=[*command, *lookup_env.values()], name=name)
    assert plan.admin_bind is not None and plan.bind.port is not None  # check_k8s said so
    names = process_names(plan, name)
    one_type = [ONLY, WEB] if plan.processes else []
    documents = list(_web(plan, image, [*command, *one_type], name, lookup_env)) if (
        only in (None, WEB)) else []
    documents += [
        _process_deployment(plan, process, image, [*command, ONLY, process.name],
                            name, names[process.name], lookup_env)
        for process in plan.processes if only in (None, process.name)
    ]
    header = [
        f"# Generated by `launch k8s {plan.name}` from {plan.source}",
        "# Apply with: kubectl apply -f <this file>. Needs Kubernetes 1.30+ (preStop sleep).",
    ]
    if plan.processes:
        header.append("# One Deployment per process type, each pod running one: "
                      "`launch NAME --only TYPE`.")
    site = lookup_env.get("LAUNCH_CONFIG_DIR")
    if site:
        header.append(f"# The image must hold the profile's LAUNCH_CONFIG_DIR: {site}")
    if plan.deferred_env:
        needed = ", ".join(sorted(set(plan.deferred_env)))
        header.append(f"# The profile needs, in the Secret {name}-env: {needed}")
    body = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, explicit_start=True)
    return "\n".join(header) + "\n" + body


def process_names(plan: LaunchPlan, name: str) -> dict[str, str]:
    """Each process's Deployment name, `NAME-TYPE` as a Kubernetes name (lowercase, `-` for
    `_`); a name that cannot be one, or two processes that would share one, refused."""
    names: dict[str, str] = {}
    for process in plan.processes:
        kube = f"{name}-{process.name.lower().replace('_', '-')}"
        if not _NAME.fullmatch(kube):
            raise _process_error(plan, process.name, f"{kube!r} is not a Kubernetes name "
                                 "(lowercase letters, digits and '-', at most 63 characters): "
                                 "rename the process or give a shorter --name")
        clash = next((other for other, taken in names.items() if taken == kube), None)
        if clash is not None:
            raise _process_error(plan, process.name, f"its Deployment would be {kube!r}, as "
                                 f"process {clash!r}'s is: rename one")
        names[process.name] = kube
    return names


def process_resources(process: ProcessPlan) -> dict[str, dict[str, str]]:
    """Requests for the supervisor and each instance; a memory limit only where max_memory
    bounds each instance (the launcher restarts one that outgrows it before the pod's limit)."""
    return _requests_and_limits(process.instances, process.max_memory, 0)


def process_grace_period(process: ProcessPlan) -> int:
    """No endpoints to leave: the stop signal at once, stop_timeout for the running task, then
    the supervisor's exit (TimeoutStopSec's margin)."""
    return math.ceil(process.stop_timeout) + STOP_MARGIN


def _process_deployment(
    plan: LaunchPlan,
    process: ProcessPlan,
    image: str,
    command: Sequence[str],
    name: str,
    kube_name: str,
    lookup_env: Mapping[str, str],
) -> dict[str, Any]:
    """A Deployment without a Service or ports: the process serves nothing the cluster asks."""
    component = kube_name.removeprefix(f"{name}-")
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}
    container = _container(plan, component, image, command, _pod_env(plan, lookup_env),
                           process_resources(process), name)
    return _deployment(kube_name, labels, container, process_grace_period(process))


def _container(
    plan: LaunchPlan, component: str, image: str, command: Sequence[str],
    env: list[dict[str, str]], resources: dict[str, dict[str, str]], name: str,
    **serving: Any,
) -> dict[str, Any]:
    """Every pod's one container: `serving` (ports, probes, lifecycle) for the web one; the
    Secret of the profile's unset `${VAR}`s for each."""
    container: dict[str, Any] = {
        "name": component,
        "image": image,
        "command": list(command),
        "env": env,
        **serving,
        "resources": resources,
        "securityContext": {"allowPrivilegeEscalation": False},
    }
    if plan.deferred_env:
        container["envFrom"] = [{"secretRef": {"name": f"{name}-env"}}]
    return container


def _deployment(
    name: str, labels: dict[str, str], container: dict[str, Any], grace: int,
    *, strategy: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment of one container (no replicas: 1 by default, and a
    HorizontalPodAutoscaler's to set)."""
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}}
    if strategy is not None:
        spec["strategy"] = strategy
    metadata: dict[str, Any] = {"labels": labels}
    if annotations is not None:
        metadata["annotations"] = annotations
    spec["template"] = {
        "metadata": metadata,
        "spec": {"terminationGracePeriodSeconds": grace, "containers": [container]},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def _pod_env(plan: LaunchPlan, lookup_env: Mapping[str, str]) -> list[dict[str, str]]:
    """What every pod's `launch` needs beside the image: unbuffered output, what finds the
    profile as here, and settings that came from this shell."""
    env = [{"name": "PYTHONUNBUFFERED", "value": "1"}]
    # `launch` finds the profile (and what it extends) in the image as it did here.
    env += [{"name": key, "value": value} for key, value in lookup_env.items()]
    settings = plan.project.settings if plan.project else None
    if settings and settings.source.startswith("$"):  # from this shell: the pod has none
        env.append({"name": "DJANGO_SETTINGS_MODULE", "value": settings.value})
    return env


def _web(
    plan: LaunchPlan,
    image: str,
    command: Sequence[str],
    name: str,
    lookup_env: Mapping[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The server's Deployment, with its probes on the admin listener, and its Service."""
    assert plan.admin_bind is not None and plan.bind.port is not None  # check_k8s said so
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/component": WEB}
    env = _pod_env(plan, lookup_env)
    # The pod runs the worker count the requests are sized for (`workers: ${WEB_CONCURRENCY:-
    # auto}` would count the node's CPUs there, not this machine's).
    env.insert(1 + len(lookup_env), {"name": "WEB_CONCURRENCY", "value": str(plan.workers)})
    container = _container(
        plan, WEB, image, command, env, resources(plan), name,
        ports=[
            {"name": SITE_PORT, "containerPort": plan.bind.port, "protocol": "TCP"},
            {"name": ADMIN_PORT, "containerPort": plan.admin_bind.port, "protocol": "TCP"},
        ],
        **probes(plan),
        lifecycle={"preStop": {"sleep": {"seconds": pre_stop_delay(plan)}}},
    )
    deployment = _deployment(
        name, labels, container, grace_period(plan),
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        annotations={
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(plan.admin_bind.port),
            "prometheus.io/path": "/metrics",
        },
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": labels,
            # The site only: the admin listener (probes, metrics) stays inside the pod network.
            "ports": [{"name": SITE_PORT, "port": 80, "targetPort": SITE_PORT, "protocol": "TCP"}],
        },
    }
    return deployment, service


def check_k8s(plan: LaunchPlan, *, image: str, command: Sequence[str], name: str | None) -> str:
    """Refuse what a pod cannot serve, or what would not be a valid object; return the name."""
    bind, admin = plan.bind, plan.admin_bind
    if bind.is_unix or bind.host not in ("0.0.0.0", "::"):
        raise _error(
            plan,
            "bind",
            f"{bind} is not reachable in a pod (its IP is assigned at start): bind 0.0.0.0:PORT "
            "in the profile, or give --bind 0.0.0.0:PORT (it goes into the container command)",
        )
    if admin is None:
        raise _error(
            plan,
            "admin.bind",
            "launch k8s puts the probes on the admin listener: set admin.bind: 0.0.0.0:9100 "
            "in the profile, or give --admin-bind 0.0.0.0:9100",
        )
    if admin.host not in ("0.0.0.0", "::"):
        raise _error(
            plan,
            "admin.bind",
            f"{admin} is not reachable by the kubelet's probes: use 0.0.0.0:{admin.port} "
            f"(the Service does not expose it)",
        )
    if admin.port == bind.port:
        raise _error(plan, "admin.bind", f"port {admin.port} is the site's bind too")
    if not _IMAGE.fullmatch(image) or len(image) > 512:
        raise ProfileError(
            None, None, "--image", f"{image!r} is not an image reference such as "
            "registry.example.com/mysite:1.4"
        )
    chosen = name if name is not None else plan.name
    if not _NAME.fullmatch(chosen):
        where = "--name" if name is not None else None
        what = f"{chosen!r}" if name is not None else f"the profile's name {chosen!r}"
        raise ProfileError(
            None, None, where, f"{what} is not a Kubernetes name (lowercase letters, digits and "
            "'-', a letter first, at most 63 characters); give --name"
        )
    for word in command:
        if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in word):
            raise ProfileError(
                None, None, None, f"the container command word {word!r} holds a control character"
            )
    return chosen


class _Dumper(yaml.SafeDumper):
    """YAML as a person writes it: the labels repeated, not `&id001` anchors and aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _process_error(plan: LaunchPlan, name: str, message: str) -> ProfileError:
    """An error about a process: at the line that wrote it (a profile's, a Procfile's)."""
    process = plan.process(name)
    file, line = process.origin if process and process.origin else (plan.source, None)
    return ProfileError(file, line, f"processes.{name}", message)


def _error(plan: LaunchPlan, key: str, message: str) -> ProfileError:
    """An error about a profile key: the option that set it, or the file and line that did."""
    option = overriding(key.split("."), plan.overridden)
    if option:
        return ProfileError(None, None, option, message)
    file, line = plan.origins.get(key, (plan.source, None))
    return ProfileError(file, line, key, message)
