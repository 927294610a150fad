"""Asynchronous jobs: POST /v1/jobs (JSON or JSON Lines), status, paged results, cancel."""
from __future__ import annotations

import asyncio
import hashlib
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import ValidationError

from service.api.deps import CallerDep, ServicesDep, charge_items
from service.api.errors import ApiError, documented, validation_message
from service.api.schemas import HTTP_URL, BatchItem, Job, JobRequest, JobResults
from service.engine import clean_item
from service.fetch import FetchError
from service.webhooks import valid_secret

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JSONL_TYPES = ("application/jsonl", "application/x-ndjson", "application/json-lines")


def _job(summary: dict) -> Job:
    return Job(**summary, results_url=f"/v1/jobs/{summary['id']}/results")


@router.post(
    "",
    operation_id="createJob",
    summary="Start a job over many images",
    description="A JSON body (`items`, optional `webhook`) or JSON Lines (one item per line; a webhook URL "
                "can then go in `?webhook_url=`). Answers 202 with `Location`; poll it or wait for the webhook. "
                "An `Idempotency-Key` header makes retries safe: the same key and body give the same job.",
    status_code=202,
    response_model=Job,
    responses=documented(400, 401, 409, 413, 415, 422, 429, 503),
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}},
        "application/jsonl": {"schema": {"type": "string", "description": "One ImageInput object per line."},
                              "example": '{"id": "1042", "image_url": "https://example.org/a.jpg"}\n'},
    }}},
)
async def create_job(
    request: Request,
    response: Response,
    svc: ServicesDep,
    who: CallerDep,
    idempotency_key: Annotated[str | None, Header(max_length=255, description="Makes retries safe.")] = None,
    webhook_url: Annotated[str | None, Query(
        min_length=8, max_length=2048, pattern=HTTP_URL,
        description="Webhook URL, signed with the server's secret; a JSON body's `webhook` wins.",
    )] = None,
) -> Job:
    raw = await request.body()
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            body = JobRequest.model_validate_json(raw)
        except ValidationError as exc:
            raise ApiError("invalid_request", validation_message(exc.errors())) from exc
        items, webhook = body.items, body.webhook
        hook_url, hook_secret = (webhook.url, webhook.secret) if webhook else (webhook_url, None)
    elif ctype in JSONL_TYPES:
        items, hook_url, hook_secret = _jsonl(raw), webhook_url, None
    else:
        raise ApiError("unsupported_media_type", "Send application/json or application/jsonl.")
    if len(items) > svc.settings.max_job_items:
        raise ApiError("invalid_request", f"items: at most {svc.settings.max_job_items} per job.")
    if hook_url is not None:
        try:
            await svc.engine.fetcher.check(hook_url)
        except FetchError as exc:
            if exc.code == "fetch_blocked":  # refused now rather than failing hours later
                raise ApiError("fetch_blocked", f"webhook.url: {exc.message}", reason=exc.reason) from exc
        hook_secret = hook_secret or svc.settings.webhook_secret
        if not hook_secret:
            raise ApiError("invalid_request", "webhook: this server has no ALTTEXT_WEBHOOK_SECRET; send "
                                              "webhook.secret with the job.")
        if not valid_secret(hook_secret):
            raise ApiError("invalid_request", "webhook.secret: expected whsec_ followed by base64.")
    digest = hashlib.sha256(b"%s\n%s\n%s" % (ctype.encode(), (webhook_url or "").encode(), raw)).hexdigest()
    replay = idempotency_key is not None and await asyncio.to_thread(
        svc.jobs.find_idempotent, who.id, idempotency_key)
    if not replay:  # a retried POST returns the same job and costs nothing more
        charge_items(svc, who, len(items))  # a job spends the key's budget by image, like a batch
    # A reused Idempotency-Key raises IdempotencyConflict (409), answered by the one error handler.
    summary, created = await asyncio.to_thread(
        svc.jobs.create, who.id, [clean_item(item) for item in items],
        webhook_url=hook_url, webhook_secret=hook_secret, idempotency_key=idempotency_key,
        request_hash=digest)
    if not created and not replay:  # lost a race with an identical request: it paid
        svc.limiter.refund(who.id, who.rate_limit, len(items) - 1)
    if created and svc.wake_jobs:
        svc.wake_jobs.set()
    response.headers["Location"] = f"/v1/jobs/{summary['id']}"
    return _job(summary)


def _jsonl(raw: bytes) -> list[BatchItem]:
    items = []
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(BatchItem.model_validate_json(line))
        except ValidationError as exc:
            raise ApiError("invalid_request", validation_message(exc.errors(), prefix=(f"line {n}",))) from exc
    if not items:
        raise ApiError("invalid_request", "The body has no items.")
    return items


async def _owned(svc, who, job_id: str) -> dict:
    summary = await asyncio.to_thread(svc.jobs.get, job_id, who.id)
    if summary is None:  # someone else's job looks exactly like a missing one
        raise ApiError("not_found", f"No job {job_id!r}.")
    return summary


@router.get("/{job_id}", operation_id="getJob", summary="Job status and progress", response_model=Job,
            responses=documented(401, 404, 422, 429))
async def get_job(job_id: str, svc: ServicesDep, who: CallerDep) -> Job:
    return _job(await _owned(svc, who, job_id))


@router.delete("/{job_id}", operation_id="cancelJob", summary="Cancel a job",
               description="Items not yet described are dropped; finished results stay readable.",
               response_model=Job, responses=documented(401, 404, 422, 429))
async def cancel_job(job_id: str, svc: ServicesDep, who: CallerDep) -> Job:
    await _owned(svc, who, job_id)
    return _job(await asyncio.to_thread(svc.jobs.cancel, job_id, who.id))


@router.get("/{job_id}/results", operation_id="listJobResults", summary="A page of a job's results",
            description="Every item in input order with its status (`pending` until done). Pass `next_after` "
                        "back as `after` for the next page.",
            response_model=JobResults, responses=documented(401, 404, 422, 429))
async def list_job_results(
    job_id: str,
    svc: ServicesDep,
    who: CallerDep,
    after: Annotated[int, Query(ge=-1, le=10**9, description="Last index seen; -1 to start.")] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JobResults:
    await _owned(svc, who, job_id)
    items = await asyncio.to_thread(svc.jobs.items, job_id, after, limit + 1)
    more = len(items) > limit
    items = items[:limit]
    return JobResults(items=items, next_after=items[-1]["index"] if more else None)
