"""HTTP API. The model loads in the background; /ready answers 503 until it is warm."""
from __future__ import annotations

import asyncio
import threading
import uuid
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse

from models.base import Drafter
from models.imageio import ImageError, load_image
from service.pipeline import describe
from service.result import AltResult, PageContext, Role
from service.settings import Settings, get_settings

_STATUS = {"invalid_image": 400, "image_too_large": 413, "unsupported_media_type": 415, "not_found": 400}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def create_app(settings: Settings | None = None, drafter: Drafter | None = None) -> FastAPI:
    settings = settings or get_settings()
    state: dict = {"drafter": drafter}
    # Backends hold one model each and are not thread-safe; one request drafts at a time.
    draft_lock = threading.Lock()

    def describe_locked(loaded, page: PageContext) -> AltResult:
        with draft_lock:
            return describe(state["drafter"], loaded, page, settings)

    async def load() -> None:
        from models.registry import load_drafter

        def build() -> Drafter:
            d = load_drafter(settings.model, **settings.drafter_options())
            if hasattr(d, "warm_up"):
                d.warm_up()
            return d

        state["drafter"] = await asyncio.to_thread(build)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        task = None if state["drafter"] is not None else asyncio.create_task(load())
        yield
        if task and not task.done():
            task.cancel()

    app = FastAPI(title="alttext", version="0.1.0", lifespan=lifespan)

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(
            {"error": {"code": exc.code, "message": exc.message, "request_id": request.state.request_id}},
            status_code=exc.status,
        )

    @app.get("/health", operation_id="health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", operation_id="ready")
    async def ready() -> JSONResponse:
        if state["drafter"] is None:
            return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "5"})
        return JSONResponse({"status": "ready", "model": state["drafter"].model.model_dump()})

    @app.post("/v1/alt-text", operation_id="createAltText", response_model=AltResult)
    async def alt_text(
        image: Annotated[UploadFile, File(description="The image file.")],
        caption: Annotated[str | None, Form(max_length=5000)] = None,
        context: Annotated[str | None, Form(max_length=20000)] = None,
        role: Annotated[Role, Form()] = "informative",
        lang: Annotated[str, Form(min_length=2, max_length=35)] = "en",
        existing_alt: Annotated[str | None, Form(max_length=5000)] = None,
        max_chars: Annotated[int | None, Form(ge=20, le=1000)] = None,
    ) -> AltResult:
        if state["drafter"] is None:
            raise ApiError(503, "overloaded", "model is still loading; retry shortly")
        data = await image.read(settings.max_image_bytes + 1)
        page = PageContext(caption=caption, context=context, role=role, lang=lang, existing_alt=existing_alt,
                           max_chars=max_chars)
        try:
            loaded = load_image(data, max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
        except ImageError as exc:
            raise ApiError(_STATUS.get(exc.code, 400), exc.code, str(exc)) from exc
        return await asyncio.to_thread(describe_locked, loaded, page)

    return app
