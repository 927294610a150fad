"""Shared state and the dependencies routes declare: who is calling, and is the model up."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.errors import ApiError
from service.auth import KeyStore, RateLimiter
from service.engine import AltTextEngine
from service.jobs import JobStore
from service.observability import Metrics
from service.settings import Settings


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    engine: AltTextEngine
    keys: KeyStore
    jobs: JobStore
    limiter: RateLimiter
    wake_jobs: asyncio.Event | None = None


@dataclass(frozen=True)
class Caller:
    id: str                      # api key id, or "anonymous"
    rate_limit: int              # per minute; 0 = unlimited


def services(request: Request) -> Services:
    return request.app.state.services


bearer = HTTPBearer(auto_error=False, description="An API key from `alttext keys create`.")


async def caller(request: Request, svc: Annotated[Services, Depends(services)],
                 creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Caller:
    unauthorized = ApiError("unauthorized", "Send a valid API key as 'Authorization: Bearer <key>'.",
                            headers={"WWW-Authenticate": "Bearer"})
    if creds is None:
        if svc.settings.auth_required:
            raise unauthorized
        return Caller("anonymous", 0)
    key = await asyncio.to_thread(svc.keys.verify, creds.credentials)
    if key is None:  # a wrong key is refused even where keys are optional: fail early, not later
        raise unauthorized
    request.state.key_id = key.id  # for the access log; the key itself is never logged
    caller = Caller(key.id, svc.settings.rate_limit_per_minute if key.rate_limit is None else key.rate_limit)
    charge(svc, caller, 1)
    return caller


def charge(svc: Services, who: Caller, cost: int) -> None:
    """Take ``cost`` from the caller's budget or answer 429 with Retry-After."""
    wait = svc.limiter.take(who.id, who.rate_limit, cost)
    if wait:
        raise ApiError("rate_limited", "This API key is over its rate limit; slow down.",
                       headers={"Retry-After": str(max(1, round(wait + 0.5)))})


def charge_items(svc: Services, who: Caller, items: int, already: int = 1) -> None:
    """Batches and jobs spend the budget by image (the caller dependency took ``already``).
    A request with more images than the key may describe in a minute can never fit: it is
    refused as invalid (422), not 429, so clients do not retry it for ever."""
    if who.rate_limit and items > who.rate_limit:
        raise ApiError("invalid_request", f"items: this API key may describe {who.rate_limit} images a minute; "
                                          f"send at most {who.rate_limit} per request.", reason="over_key_budget")
    charge(svc, who, items - already)


def ready_engine(svc: Annotated[Services, Depends(services)]) -> AltTextEngine:
    if not svc.engine.is_ready:
        raise ApiError("overloaded", "The model is still loading; retry shortly.", reason="loading",
                       headers={"Retry-After": "5"})
    return svc.engine


CallerDep = Annotated[Caller, Depends(caller)]
ServicesDep = Annotated[Services, Depends(services)]
EngineDep = Annotated[AltTextEngine, Depends(ready_engine)]
