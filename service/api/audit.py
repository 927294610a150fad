"""POST /v1/audit: audit one page (HTML in the body, or a URL fetched under the API's SSRF
rules) for missing, wrong and poor alt text, with a proposed fix per finding."""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.api.alt_text import answering
from service.api.deps import CallerDep, ServicesDep, charge, ready_engine
from service.api.errors import ApiError, documented
from service.audit import AuditOptions, AuditReport, PageInput, audit_pages
from service.audit.run import decode_html, file_loader
from service.fetch import FetchError

router = APIRouter(prefix="/v1", tags=["audit"])
MAX_HTML_CHARS = 5_000_000


class AuditRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"anyOf": [  # html, url or both; an explicit null counts as absent
                                  {"required": ["html"], "properties": {"html": {"type": "string"}}},
                                  {"required": ["url"], "properties": {"url": {"type": "string"}}}]})

    html: str | None = Field(None, max_length=MAX_HTML_CHARS,
                             description="The page's HTML. Give this, or url, or both (url then says where the "
                                         "page lives, so relative image addresses can be fetched).")
    url: str | None = Field(None, max_length=2000, description="The page's address; fetched when html is absent.")
    proposals: bool = Field(True, description="Propose alt text for each finding (needs the model; costs one "
                                              "image of the key's rate limit per proposal).")
    check_images: bool = Field(False, description="Draft every described image and report alt that disagrees.")
    max_alt_chars: int = Field(250, ge=20, le=10_000, description="too-long above this many characters.")

    @model_validator(mode="before")
    @classmethod
    def _integral_floats(cls, data):
        # JSON Schema counts 300.0 as an integer; strict mode alone would refuse it.
        value = data.get("max_alt_chars") if isinstance(data, dict) else None
        if isinstance(value, float) and value.is_integer():
            data = {**data, "max_alt_chars": int(value)}
        return data

    @model_validator(mode="after")
    def _one_source(self):
        if self.html is None and self.url is None:
            raise ValueError("give html, url or both")
        return self


EXAMPLE = {"html": '<html lang="en"><body><a href="/"><img src="logo.png" alt=""></a>'
                   '<img src="IMG_2041.JPG" alt="IMG_2041.JPG"></body></html>',
           "url": "https://example.org/", "proposals": False}


@router.post(
    "/audit", operation_id="createAudit", summary="Audit a page's images for WCAG 1.1.1",
    description="Findings per image (rule, severity, WCAG criterion, CSS selector, the element as written, "
                "reason, proposed alt, confidence) in the same JSON the CLI's `--format json` writes.",
    response_model=AuditReport, responses=documented(400, 401, 413, 422, 429, 502, 503, 504),
    openapi_extra={"requestBody": {"content": {"application/json": {"example": EXAMPLE}}}},
)
async def create_audit(body: AuditRequest, svc: ServicesDep,
                       who: CallerDep) -> AuditReport:
    engine = svc.engine
    fetcher = engine.fetcher
    async with answering(svc.settings):
        if body.html is not None:
            page = PageInput(body.url or "request", html=body.html, url=body.url)
        else:
            fetched = await fetcher.fetch(body.url, accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
            if fetched.content_type and fetched.content_type not in ("text/html", "application/xhtml+xml"):
                raise ApiError("fetch_failed", f"{body.url} is {fetched.content_type}, not an HTML page.",
                               reason="not_html")
            page = PageInput(body.url, html=decode_html(fetched.body), url=fetched.url)
        describer = None
        if body.proposals or body.check_images:
            ready_engine(svc)  # 503 + Retry-After while the model loads

            async def describer(pairs):
                charge(svc, who, len(pairs))
                return await engine.describe(pairs)

        async def load(url: str) -> bytes:
            return await fetcher.get(url)

        options = AuditOptions(max_alt_chars=body.max_alt_chars, proposals=body.proposals,
                               check_images=body.check_images, image_limits=svc.settings.image_limits())
        # file:// sources are never read for API callers: only http(s) through the SSRF-safe fetcher
        return await audit_pages([page], options, loader=_http_only(load), describer=describer)


def _http_only(load):
    inner = file_loader(load)

    async def guarded(url: str) -> bytes:
        if not url.lower().startswith(("http://", "https://")):
            raise FetchError("fetch_blocked", "scheme", "Only http(s) image addresses are fetched.")
        return await inner(url)

    return guarded
