"""``linkserver status``: the server's ``/metrics`` at a glance in a terminal.

:func:`parse` reads the Prometheus text format (the subset a server writes:
samples, ``# HELP`` / ``# TYPE`` comments, escaped label values) without
loading prometheus_client, so the command starts as fast as the others;
:func:`summary` turns one scrape, and optionally the one before, into a few
lines: what fired (with rates when there is an earlier scrape), history,
purge, subscriptions and losses, sessions and refused credentials, the
process.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]

_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse(text: str) -> Samples:
    """``{sample name: {labels: value}}``; lines it cannot read raise ValueError naming the line."""
    samples: Samples = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"line {number} of the metrics is not a sample: {line[:80]!r}")
        name, label_text, value = match.groups()
        labels: list[tuple[str, str]] = []
        if label_text:
            position = 0
            while position < len(label_text):
                label = _LABEL.match(label_text, position)
                if label is None:
                    raise ValueError(f"line {number} of the metrics has bad labels: {label_text[:80]!r}")
                raw = label.group(2)
                labels.append((label.group(1), re.sub(r"\\.", lambda m: _UNESCAPE.get(m[0], m[0]), raw)))
                position = label.end()
        samples.setdefault(name, {})[tuple(sorted(labels))] = float(value)
    return samples


def total(samples: Samples, name: str, **where: str) -> float:
    """The sum of ``name`` over the samples whose labels include ``where``."""
    return sum(
        value
        for labels, value in samples.get(name, {}).items()
        if all(dict(labels).get(k) == v for k, v in where.items())
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in samples.get(name, {}).items():
        key = dict(labels).get(label, "")
        out[key] = out.get(key, 0.0) + value
    return out


def quantile(samples: Samples, name: str, q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of histogram ``name`` (None: empty)."""
    buckets = sorted(
        (float(dict(labels)["le"]), count) for labels, count in samples.get(name + "_bucket", {}).items()
    )
    if not buckets or buckets[-1][1] <= 0:
        return None
    wanted = q * buckets[-1][1]
    return next(bound for bound, count in buckets if count >= wanted)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "> 10 s"
    return f"<= {value * 1000:g} ms" if value < 1 else f"<= {value:g} s"


def _top(counts: Mapping[str, float], limit: int = 5) -> str:
    ranked = sorted(((v, k) for k, v in counts.items() if v), reverse=True)
    parts = [f"{k} {_n(v)}" for v, k in ranked[:limit]]
    if len(ranked) > limit:
        parts.append(f"{len(ranked) - limit} more")
    return ", ".join(parts)


def _uptime(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h {minutes:02d}m" if days else f"{hours}h {minutes:02d}m"


def summary(url: str, now: Samples, before: Samples | None = None, elapsed: float = 0.0) -> list[str]:
    """Lines for a terminal; with ``before`` (scraped ``elapsed`` s earlier) rates as well."""

    def rate(name: str, **where: str) -> str:
        if before is None or elapsed <= 0:
            return ""
        return f", {(total(now, name, **where) - total(before, name, **where)) / elapsed:,.1f}/s"

    info = next(iter(now.get("linkserver_info", {})), ())
    labels = dict(info)
    started = total(now, "process_start_time_seconds") or total(now, "linkserver_start_time_seconds")
    head = f"LinkServer {labels.get('version', '?')} at {url} (node {labels.get('node_id', '?')}"
    head += f", history {labels.get('history', '?')})"
    if started:
        head += f", up {_uptime(time.time() - started)}"
    fired = by_label(now, "linkserver_events_fired_total", "event")
    by_level = by_label(now, "linkserver_events_fired_total", "level")
    levels = ", ".join(f"{k} {_n(v)}" for k, v in sorted(by_level.items(), key=lambda kv: -kv[1]) if v)
    lines = [
        head,
        f"fired          {_n(sum(fired.values()))} events{rate('linkserver_events_fired_total')}"
        + (f" ({levels})" if levels else ""),
    ]
    if fired:
        lines.append(f"  by event     {_top(fired)}")
    refused = by_label(now, "linkserver_fire_validation_failures_total", "event")
    lines.append(
        f"invalid data   {_n(sum(refused.values()))} fires refused"
        + (f" ({_top(refused)})" if refused else "")
    )
    if "linkserver_history_queue_depth" in now:
        p50 = quantile(now, "linkserver_history_commit_seconds", 0.5)
        p99 = quantile(now, "linkserver_history_commit_seconds", 0.99)
        batch = quantile(now, "linkserver_history_batch_size", 0.5)
        lines.append(
            f"history        queue {_n(total(now, 'linkserver_history_queue_depth'))}, "
            f"{_n(total(now, 'linkserver_history_events_committed_total'))} committed"
            f"{rate('linkserver_history_events_committed_total')} in "
            f"{_n(total(now, 'linkserver_history_transactions_total'))} transactions "
            f"(batch p50 <= {_n(batch or 0)}, commit p50 {_seconds(p50)}, p99 {_seconds(p99)}), "
            f"{_n(total(now, 'linkserver_history_retries_total'))} retries, "
            f"{_n(total(now, 'linkserver_history_events_failed_total'))} refused"
        )
    else:
        lines.append("history        in memory (nothing is stored)")
    lines.append(
        f"purge          {_n(total(now, 'linkserver_purge_removed_total'))} expired events removed in "
        f"{_n(total(now, 'linkserver_purge_runs_total'))} runs"
    )
    subs = by_label(now, "linkserver_subscriptions", "delivery")
    dropped = by_label(now, "linkserver_delivery_dropped_total", "where")
    kinds = ", ".join(f"{k} {_n(v)}" for k, v in sorted(subs.items()))
    lines.append(
        f"subscriptions  {_n(sum(subs.values()))} ({kinds}); "
        f"dropped {_n(sum(dropped.values()))}{rate('linkserver_delivery_dropped_total')}, "
        f"gaps {_n(total(now, 'linkserver_delivery_gaps_total'))}"
    )
    sessions = by_label(now, "linkserver_sessions", "kind")
    failures = by_label(now, "linkserver_authentication_failures_total", "kind")
    lines.append(
        f"sessions       {_n(sessions.get('login', 0))} logged in, "
        f"{_n(sessions.get('websocket', 0))} WebSockets; "
        f"refused {_n(failures.get('login', 0))} logins, {_n(failures.get('token', 0))} tokens"
    )
    lines.append(
        f"contexts       {_n(total(now, 'linkserver_contexts'))}"
        + (
            f"; process {total(now, 'process_resident_memory_bytes') / 2**20:,.0f} MiB resident, "
            f"{total(now, 'process_cpu_seconds_total'):,.1f} s CPU{rate('process_cpu_seconds_total')}"
            if "process_resident_memory_bytes" in now
            else ""
        )
    )
    return lines


def as_json(samples: Samples) -> dict[str, Any]:
    """The samples as ``{name: [{"labels": {...}, "value": v}]}``."""
    return {
        name: [{"labels": dict(labels), "value": value} for labels, value in sorted(values.items())]
        for name, values in sorted(samples.items())
    }
