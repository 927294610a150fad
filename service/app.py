"""The HTTP API: FastAPI app wiring settings, storage, the model engine, jobs and webhooks.

The model loads in the background; /ready answers 503 until it is warm. Everything the
routes need hangs off ``app.state.services``.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from models.base import Drafter
from service.api import alt_text, audit, errors, jobs, ops
from service.api.deps import Services
from service.api.middleware import Admission, AllowedHosts, BodyLimit, OpsGuard, RequestContext
from service.api.schemas import ImageInput, JobRequest
from service.auth import KeyStore, RateLimiter
from service.cache import ResultCache
from service.db import connect
from service.engine import AltTextEngine
from service.fetch import Fetcher, Resolver
from service.jobs import JobRunner, JobStore
from service.observability import Metrics
from service.settings import Settings, get_settings
from service.webhooks import WebhookSender

log = logging.getLogger("service.app")
VERSION = "0.1.0"
DESCRIPTION = """Alt text for images: a vision model drafts, page context and WCAG rules finish.

Send an image with what the page says about it (caption, surrounding text, role, existing
alt) and get alt text back, with a confidence and a `needs_review` flag. Errors always come
as `{"error": {"code", "message", "request_id"}}`.
"""


def create_app(settings: Settings | None = None, drafter: Drafter | None = None, *,
               resolver: Resolver | None = None) -> FastAPI:
    """``drafter`` skips model loading (tests); ``resolver`` replaces DNS for outbound fetches (tests)."""
    settings = settings or get_settings()
    metrics = Metrics()
    db = connect(settings.db_url(), settings.db_busy_timeout_s)
    cache_db = connect(settings.cache_url, settings.db_busy_timeout_s) if settings.cache_url else db
    fetcher = Fetcher(allow=settings.fetch_allow, timeout_s=settings.fetch_timeout_s,
                      max_bytes=settings.max_image_bytes, max_redirects=settings.fetch_max_redirects,
                      resolver=resolver)
    hook_fetcher = Fetcher(allow=settings.fetch_allow, timeout_s=settings.webhook_timeout_s, max_bytes=2**16,
                           max_redirects=0, resolver=resolver)
    engine = AltTextEngine(settings, metrics, fetcher,
                           ResultCache(cache_db, settings.cache_max_entries) if settings.cache else None, drafter)
    store = JobStore(db)
    svc = Services(settings=settings, metrics=metrics, engine=engine, keys=KeyStore(db), jobs=store,
                   limiter=RateLimiter())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if settings.auth_required and not await asyncio.to_thread(svc.keys.list):
            log.warning("API keys are required here but none exist: create one with `alttext keys create`")
        # Loop-bound workers are made here, per lifespan, so the app can start again cleanly.
        sender = WebhookSender(store, hook_fetcher, settings.webhook_retry_delays_s, metrics)
        runner = JobRunner(store, engine, metrics, lease_s=settings.job_lease_s, chunk=2 * settings.batch_size,
                           on_finished=sender.wake.set)
        svc.wake_jobs = runner.wake
        tasks = [asyncio.create_task(engine.start(), name="model-load"),
                 asyncio.create_task(runner.run(), name="jobs"),
                 asyncio.create_task(sender.run(), name="webhooks")]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            _, stuck = await asyncio.wait(tasks, timeout=10)  # a stuck task must not hang the shutdown
            if stuck:
                log.error("tasks did not stop in time", extra={"tasks": [t.get_name() for t in stuck]})
            await engine.stop()
            await hook_fetcher.aclose()
            db.dispose()
            cache_db.dispose()

    app = FastAPI(title="alttext", version=VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.services = svc
    errors.install(app, metrics)
    for router in (alt_text.router, audit.router, jobs.router, ops.router):
        app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-Id"],
            expose_headers=["X-Request-Id", "Retry-After", "Location"], max_age=600,
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, max_json_bytes=settings.max_json_body_bytes,
                       json_budget=settings.json_bytes_in_flight, metrics=metrics)
    app.add_middleware(Admission, limit=settings.queue_size, paths=("/v1/alt-text", "/v1/alt-text:batch"),
                       retry_after=lambda: engine.batcher.retry_after() if engine.batcher else 5, metrics=metrics)
    if settings.auth_required and settings.protect_ops:
        async def verify(secret: str) -> bool:
            return await asyncio.to_thread(svc.keys.verify, secret) is not None

        app.add_middleware(OpsGuard, paths=("/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"),
                           verify=verify)
    app.add_middleware(AllowedHosts, names=settings.host_names)
    app.add_middleware(RequestContext, metrics=metrics)  # added last = outermost
    app.openapi = lambda: _openapi(app, settings)
    return app


def _openapi(app: FastAPI, settings: Settings) -> dict:
    """FastAPI's schema plus the request bodies routes parse themselves (multipart or JSON),
    with this deployment's item limits."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ImageInput, JobRequest):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in model_schema.pop("$defs", {}).items():
            components.setdefault(name, definition)
        components[model.__name__] = model_schema
    components["BatchRequest"]["properties"]["items"]["maxItems"] = settings.max_batch_items
    components["JobRequest"]["properties"]["items"]["maxItems"] = settings.max_job_items
    app.openapi_schema = schema
    return schema
