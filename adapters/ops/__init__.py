"""Operations: the /healthz and /metrics endpoint, and the metrics the rest of the bot reports to."""

from __future__ import annotations

from typing import Any

from adapters.ops.health import OpsServer, PlatformsStatus
from adapters.ops.metrics import JobsProvider, OpsMetrics, StateCounts
from bot.settings import MetricsConfig

__all__ = ["MetricsConfig", "OpsMetrics", "OpsServer", "create"]


def create(
    section: MetricsConfig | dict[str, Any],
    jobs_provider: JobsProvider,
    platforms_status: PlatformsStatus,
    state_counts: StateCounts | None = None,
) -> tuple[OpsMetrics, OpsServer | None]:
    """The metrics (always) and the server that serves them (only when a port is configured)."""
    config = section if isinstance(section, MetricsConfig) else MetricsConfig.model_validate(section)
    metrics = OpsMetrics(jobs_provider, state_counts)
    if config.port is None:
        return metrics, None
    server = OpsServer(jobs_provider, platforms_status, config.port, config.host, metrics=metrics)
    return metrics, server
