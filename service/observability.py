"""Prometheus metrics (one registry per app, so tests can build many) and JSON logs."""
from __future__ import annotations

import logging
import logging.config
import time
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("alttext_http_requests", "HTTP requests by route and status.",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("alttext_http_request_duration_seconds", "HTTP request latency by route and status.",
                                 ["route", "method", "status"], buckets=_LATENCY, registry=r)
        self.stage = Histogram("alttext_stage_duration_seconds",
                               "Time per stage: fetch and decode per image, draft and merge per model batch.",
                               ["stage"], buckets=_LATENCY, registry=r)
        self.queue_depth = Gauge("alttext_queue_depth", "Images waiting for the model.", ["priority"], registry=r)
        self.batch_size = Histogram("alttext_batch_size", "Images per model call.", buckets=_BATCH, registry=r)
        self.failures = Counter("alttext_failures", "Failed images and requests by error code and reason.",
                                ["code", "reason"], registry=r)
        self.cache = Counter("alttext_cache_lookups", "Result cache lookups.", ["result"], registry=r)
        self.job_items = Counter("alttext_job_items", "Job items finished, by outcome.", ["state"], registry=r)
        self.webhooks = Counter("alttext_webhook_deliveries", "Webhook delivery attempts by outcome.",
                                ["outcome"], registry=r)
        self.model_ready = Gauge("alttext_model_ready", "1 once the model is loaded and warm.", registry=r)
        self.upstream_latency = Histogram("alttext_upstream_request_duration_seconds",
                                          "Remote model server requests (openai: backend), retries included, "
                                          "by outcome (ok or our error code).", ["outcome"], buckets=_LATENCY,
                                          registry=r)
        self.upstream_errors = Counter("alttext_upstream_errors", "Failed remote model requests by error code.",
                                       ["code"], registry=r)
        self.upstream_up = Gauge("alttext_upstream_up", "1 when the remote model answered the last /ready check.",
                                 registry=r)

    def upstream_call(self, seconds: float, outcome: str) -> None:
        """Listener for a remote drafter: one finished request."""
        self.upstream_latency.labels(outcome).observe(seconds)
        if outcome != "ok":
            self.upstream_errors.labels(outcome).inc()

    @contextmanager
    def time(self, stage: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.stage.labels(stage).observe(time.perf_counter() - start)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger, message and the record's extra fields."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                         rename_fields={"asctime": "time", "levelname": "level", "name": "logger"})


class _DropColour(logging.Filter):
    """Uvicorn attaches an ANSI-coloured copy of each message; JSON logs want it once, plain."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


def logging_config(fmt: str = "json", level: str = "INFO") -> dict:
    """dictConfig for our loggers and uvicorn's. Uvicorn's access log is replaced by ours
    (service.access), which logs the route, status, duration and key id, never the key."""
    formatter = ({"()": json_formatter} if fmt == "json"
                 else {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "filters": {"no_colour": {"()": _DropColour}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr",
                                "filters": ["no_colour"]}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "service": {"handlers": ["stderr"], "level": level, "propagate": False},
        },
    }


def configure_logging(fmt: str = "json", level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(fmt, level))
