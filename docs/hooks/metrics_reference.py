"""The egress proxy's Prometheus metrics, from its own registry: name, type, labels and help text."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from infracalc.proxy.metrics import ProxyMetrics


def render() -> str:
    """The metrics as a Markdown table, with the names Prometheus exposes (counters end in ``_total``)."""
    lines = ["| metric | type | labels | what |", "|---|---|---|---|"]
    for metric in vars(ProxyMetrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        (family,) = metric.describe()
        name = f"{family.name}_total" if family.type == "counter" else family.name
        # The label names are not in the public description of a metric without samples.
        labels = ", ".join(f"`{label}`" for label in metric._labelnames) or "—"
        lines.append(f"| `{name}` | {family.type} | {labels} | {family.documentation} |")
    return "\n".join(lines) + "\n"
