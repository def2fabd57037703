"""The PNG plots of a run (matplotlib, Agg: no display). Bars: medians; whiskers: min..max."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")


def draw(data: Mapping[str, Any], out: Path, names: dict[str, str]) -> None:
    if "overhead" in data:
        _overhead(data["overhead"], out / names["overhead"])
    if "matrix" in data:
        _matrix(data["matrix"], out / names["matrix"])
    if "operations" in data or "dev_reload" in data:
        _operations(data.get("operations", {}), data.get("dev_reload"), out / names["operations"])


def _bars(ax: Axes, x: float, s: dict[str, Any], width: float, color: str, label: str) -> None:
    """One bar at the median with a min..max whisker."""
    med = s.get("median")
    if med is None:
        return
    err = [[med - s["min"]], [s["max"] - med]]
    ax.bar(x, med, width, color=color, label=label, yerr=err, capsize=3, ecolor="#333333")


def _overhead(section: dict[str, Any], path: Path) -> None:
    profiles = section["profiles"]
    panels = (
        ("rps", "req/s ratio"),
        ("p50_ms", "p50 latency ratio"),
        ("p99_ms", "p99 latency ratio"),
        ("cpu_ms_per_request", "server CPU per request ratio"),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4), sharey=True)
    for ax, (metric, title) in zip(axes, panels, strict=True):
        for i, p in enumerate(profiles):
            if metric not in p["ratio"]:
                continue
            _bars(ax, i - 0.18, p["ratio"][metric], 0.35, COLORS[0], "launch / raw")
            _bars(ax, i + 0.18, p["aa_ratio"][metric], 0.35, COLORS[1], "A/A raw2 / raw")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(profiles)), [p["profile"] for p in profiles])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=2)
    fig.suptitle("launch vs raw server: median ratio over rounds (whiskers: min..max)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _matrix(section: dict[str, Any], path: Path) -> None:
    endpoints = section["endpoints"]
    servers = section["servers"]
    width = 0.8 / max(len(servers), 1)
    fig, ax = plt.subplots(figsize=(12, 5))
    for j, s in enumerate(servers):
        for i, e in enumerate(endpoints):
            x = i - 0.4 + width * (j + 0.5)
            _bars(ax, x, s["results"][e["path"]]["rps"], width, COLORS[j % len(COLORS)], s["label"])
    ax.set_xticks(range(len(endpoints)), [f"{e['label']}\n{e['path']}" for e in endpoints])
    ax.set_ylabel("requests/s (median, whiskers min..max)")
    ax.set_title("Demo site under wrk -t2 -c32, 2 workers each, all run by launch")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _operations(section: dict[str, Any], dev: dict[str, Any] | None, path: Path) -> None:
    panels = [p for p in (section.get("start"), dev) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    axes_iter = iter(axes[0])
    start = section.get("start")
    if start:
        ax = next(axes_iter)
        variants = list(start[0]["seconds"])
        width = 0.8 / len(variants)
        for i, p in enumerate(start):
            for j, v in enumerate(variants):
                x = i - 0.4 + width * (j + 0.5)
                _bars(ax, x, p["seconds"][v], width, COLORS[j], v)
        ax.set_xticks(range(len(start)), [p["profile"] for p in start])
        ax.set_ylabel("seconds to first 200 from /healthz")
        ax.set_title("Start -> first 200")
        _legend(ax)
    if dev:
        ax = next(axes_iter)
        for i, s in enumerate(dev["servers"]):
            _bars(ax, i, s["seconds"], 0.6, COLORS[i], s["server"])
        ax.set_xticks(range(len(dev["servers"])), [s["server"] for s in dev["servers"]])
        ax.set_ylabel("seconds from save to new code served")
        ax.set_title("Dev: edit -> new code served")
    for ax in axes[0]:
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _legend(ax: Axes) -> None:
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), fontsize=8)
