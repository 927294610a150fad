"""POST /v1/alt-text (one image: upload, URL or base64) and POST /v1/alt-text:batch."""
from __future__ import annotations

import asyncio
import json
from contextlib import asynccontextmanager

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile

from models.errors import item_error
from service.api.deps import CallerDep, EngineDep, ServicesDep, charge_items
from service.api.errors import ApiError, documented
from service.api.schemas import EXAMPLE_PNG_BASE64, BatchRequest, BatchResponse, ImageInput, ItemError, ItemResult
from service.engine import AltTextEngine, clean_item, split_item
from service.page import PageContext
from service.result import AltResult

router = APIRouter(prefix="/v1", tags=["alt text"])


@asynccontextmanager
async def answering(settings):
    """Run a describe call under the request deadline (engine errors are AltTextErrors already)."""
    try:
        async with asyncio.timeout(settings.request_timeout_s):
            yield
    except TimeoutError as exc:
        raise ApiError("timeout", f"No answer within {settings.request_timeout_s:g} s.") from exc


FORM_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}  # PHP's http_build_query sends 1/0


def _form_field(schema: dict) -> dict:
    """A page field as a form field: a form cannot send null, it leaves the field out."""
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default") or not options}
    field = {**rest, **options[0]} if options else rest
    if field.get("type") == "boolean":
        field = {k: v for k, v in field.items() if k != "default"} | {"type": "string", "enum": list(FORM_BOOLEANS)}
    return field


_MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["image"],
    "properties": {
        "image": {"type": "string", "format": "binary", "description": "The image file."},
        **{name: _form_field(field) for name, field in PageContext.model_json_schema()["properties"].items()},
    },
    "additionalProperties": False,
}


@router.post(
    "/alt-text",
    operation_id="createAltText",
    summary="Alt text for one image",
    description="Send the image as a multipart upload (field `image`) with the page fields as form fields, "
                "or as JSON with `image_url` or `image_base64`. Answers in the request, batched with "
                "other callers' images.",
    response_model=AltResult,
    responses=documented(400, 401, 413, 415, 422, 429, 502, 503, 504),
    openapi_extra={"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": _MULTIPART_SCHEMA,
                                "encoding": {"image": {"contentType": "image/*"}}},
        "application/json": {"schema": {"$ref": "#/components/schemas/ImageInput"},
                             "example": {"image_base64": f"data:image/png;base64,{EXAMPLE_PNG_BASE64}",
                                         "caption": "Our new office in Leeds"}},
    }}},
)
async def create_alt_text(request: Request, svc: ServicesDep, who: CallerDep, engine: EngineDep) -> AltResult:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    async with answering(svc.settings):
        if ctype == "multipart/form-data":
            image, page = await _from_form(request, engine)
        elif ctype == "application/json":
            item = ImageInput.model_validate(await _json(request))  # ValidationError -> 422 envelope
            source, page = split_item(clean_item(item))
            image = await engine.load(**source)
        else:
            raise ApiError("unsupported_media_type", "Send multipart/form-data (field 'image') or application/json.")
        return (await engine.describe([(image, page)]))[0]


async def _json(request: Request):
    try:
        return json.loads(await request.body())
    except RecursionError as exc:  # the batch and job routes parse with pydantic, which says the same
        raise ApiError("invalid_request", "The body is nested too deeply.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError("invalid_request", "The body is not valid JSON.") from exc


async def _from_form(request: Request, engine: AltTextEngine):
    form = await request.form(max_files=1, max_fields=len(PageContext.model_fields) + 1)
    try:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise ApiError("invalid_request", "image: attach the image file as the form field 'image'.")
        # A form cannot send null: an empty field means "not given" (JSON can still send "").
        fields = {k: v for k, v in form.items() if k != "image" and v != ""}
        unknown = set(fields) - set(PageContext.model_fields)
        if unknown:
            raise ApiError("invalid_request", f"Unknown form fields: {', '.join(sorted(unknown))}.")
        for name, field in PageContext.model_fields.items():
            if field.annotation is bool and name in fields:
                if fields[name] not in FORM_BOOLEANS:
                    raise ApiError("invalid_request", f"{name}: use true or false.")
                fields[name] = FORM_BOOLEANS[fields[name]]
        page = PageContext.model_validate(fields)
        data = await upload.read(engine.settings.max_image_bytes + 1)
    finally:
        await form.close()
    return await engine.load(data=data), page


@router.post(
    "/alt-text:batch",
    operation_id="createAltTextBatch",
    summary="Alt text for several images",
    description="Results come back in input order. An item that cannot be read gets an error of its own; "
                "the others still succeed.",
    response_model=BatchResponse,
    responses=documented(401, 413, 422, 429, 503, 504),
)
async def create_alt_text_batch(body: BatchRequest, svc: ServicesDep, who: CallerDep,
                                engine: EngineDep) -> BatchResponse:
    if len(body.items) > svc.settings.max_batch_items:
        raise ApiError("invalid_request", f"items: at most {svc.settings.max_batch_items} per batch; "
                                          "use POST /v1/jobs for more.")
    charge_items(svc, who, len(body.items))
    items = [clean_item(item) for item in body.items]
    async with answering(svc.settings):
        outcomes = await engine.describe_items(items)
    results = []
    for i, (item, outcome) in enumerate(zip(items, outcomes)):
        if isinstance(outcome, AltResult):
            results.append(ItemResult(index=i, id=item.get("id"), status="ok", result=outcome))
        else:
            err = item_error(outcome)
            svc.metrics.failures.labels(err.code, err.reason).inc()
            results.append(ItemResult(index=i, id=item.get("id"), status="error", error=ItemError(**err.item())))
    return BatchResponse(results=results)
