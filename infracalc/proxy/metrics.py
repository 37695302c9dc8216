"""The proxy's Prometheus metrics, served on their own port (never on the port bubbles reach).

Labels are short, stable names (the ``label`` of a decision or a refusal), never hosts or bubble
ids, so that the number of series stays small whatever the bubbles ask for.
"""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.metrics import MetricWrapperBase

#: Seconds buckets for the latency the decision adds (OPA on loopback answers in about a millisecond).
DECISION_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
#: Seconds buckets for how long tunnels stay open.
DURATION_BUCKETS = (0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 14400)


class ProxyMetrics:
    """Every metric of one proxy, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "infracalc_egress_decisions",
            "Connections decided, by result (allow or deny) and outcome label.",
            ["result", "reason"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "infracalc_egress_refusals",
            "Requests refused before any policy was asked (malformed, unauthenticated, too slow, over a limit...), "
            "by label.",
            ["reason"],
            registry=self.registry,
        )
        self.bytes = Counter(
            "infracalc_egress_bytes",
            "Bytes relayed, by direction (upstream: from bubbles; downstream: to bubbles).",
            ["direction"],
            registry=self.registry,
        )
        self.tunnel_seconds = Histogram(
            "infracalc_egress_tunnel_duration_seconds",
            "How long connections stayed open, by why they ended.",
            ["ended_by"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "infracalc_egress_decision_seconds",
            "Time to decide a new connection (policy question, cached or not).",
            buckets=DECISION_BUCKETS,
            registry=self.registry,
        )
        self.open_tunnels = Gauge(
            "infracalc_egress_open_connections",
            "Connections open now that the policy allowed (relaying, or dialling their upstream).",
            registry=self.registry,
        )
        #: Set to functions by the proxy (read when scraped, nothing to do per connection).
        self.accepted = Gauge(
            "infracalc_egress_accepted_connections",
            "Connections open now, whatever their state (the global cap applies to these).",
            registry=self.registry,
        )
        self.unauthenticated = Gauge(
            "infracalc_egress_unauthenticated_connections",
            "Connections open now whose bubble has not authenticated yet (capped per source address).",
            registry=self.registry,
        )
        self.rate_buckets = Gauge(
            "infracalc_egress_bubble_rate_buckets",
            "Bubbles whose rate of new connections is being followed.",
            registry=self.registry,
        )
        self.cut = Counter(
            "infracalc_egress_connections_cut",
            "Open connections closed because a new decision refused them (revocation, expiry, CASD switch).",
            registry=self.registry,
        )
        self.events_pending = Gauge(
            "infracalc_egress_events_pending",
            "Decisions and tunnel ends waiting to be delivered to the service.",
            registry=self.registry,
        )
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}

    def labelled(self, metric: MetricWrapperBase, *values: str) -> Any:
        """``metric.labels(*values)``, remembered: label values are few and stable, and each look-up takes a lock."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def serve(self, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
        """Serve ``/metrics`` on ``host:port`` from a background thread; returns the server (to shut down)."""
        return start_http_server(port, addr=host, registry=self.registry)
