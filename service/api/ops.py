"""GET /health (process up), /ready (503 until the model is loaded and warm), /metrics."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.deps import ServicesDep
from service.api.schemas import Health, Ready

router = APIRouter(tags=["operations"])


@router.get("/health", operation_id="health", summary="The process is up", response_model=Health)
async def health() -> Health:
    return Health(status="ok")


@router.get("/ready", operation_id="ready", summary="The model is loaded and warm", response_model=Ready,
            responses={503: {"model": Ready, "description": "Still loading (Retry-After), failed to load, or the "
                                                          "remote model server does not answer (Retry-After)."}})
async def ready(svc: ServicesDep):
    engine = svc.engine
    if engine.is_ready:
        caps = engine.drafter.capabilities  # where it runs and in which precision: what an operator checks
        model = engine.drafter.model.model_dump() | {"device": caps.device}
        if caps.dtype:
            model["dtype"] = caps.dtype
        upstream = await engine.upstream_health()
        if upstream is not None and not upstream[0]:  # a remote model server that does not answer
            return JSONResponse(Ready(status="unavailable", model=model, detail=upstream[1]).model_dump(),
                                status_code=503, headers={"Retry-After": "5"})
        return Ready(status="ready", model=model, detail=upstream[1] if upstream else None)
    if engine.load_error:
        return JSONResponse(Ready(status="failed", detail=engine.load_error).model_dump(), status_code=503)
    return JSONResponse(Ready(status="loading").model_dump(), status_code=503, headers={"Retry-After": "5"})


@router.get("/metrics", operation_id="metrics", summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
            response_class=Response)
async def metrics(svc: ServicesDep) -> Response:
    return Response(svc.metrics.render(), media_type=CONTENT_TYPE_LATEST)
