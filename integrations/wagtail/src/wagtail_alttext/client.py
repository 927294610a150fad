"""HTTP client for the alttext service: POST /v1/alt-text (multipart) and /v1/alt-text:batch."""
from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from . import conf


@dataclass
class ServiceError(Exception):
    """A failed call. ``retryable``: 429, 5xx, timeouts and an unreachable service; 4xx is not."""

    code: str
    message: str
    retryable: bool
    retry_after: int | None = None
    status: int | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class AltTextClient:
    def __init__(self, base_url: str | None = None, api_key: str | None = None, timeout: float | None = None) -> None:
        self.base_url = (base_url if base_url is not None else conf.get("SERVICE_URL")).rstrip("/")
        self.api_key = api_key if api_key is not None else conf.get("API_KEY")
        self.timeout = timeout if timeout is not None else conf.get("TIMEOUT")

    def _headers(self, request_id: str | None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if request_id:
            headers["X-Request-Id"] = request_id
        return headers

    def _post(self, path: str, request_id: str | None, **kwargs) -> dict:
        if not self.base_url:
            raise ServiceError("not_configured", "WAGTAIL_ALTTEXT['SERVICE_URL'] is not set.", retryable=False)
        try:
            response = httpx.post(self.base_url + path, headers=self._headers(request_id), timeout=self.timeout,
                                  follow_redirects=False, **kwargs)
        except httpx.TimeoutException as err:
            raise ServiceError("timeout", f"The alttext service did not answer in time: {err}", retryable=True) from err
        except httpx.HTTPError as err:
            raise ServiceError("unreachable", f"The alttext service could not be reached: {err}", retryable=True) from err
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 200 and isinstance(body, dict):
            return body
        error = body.get("error", {}) if isinstance(body, dict) else {}
        after = response.headers.get("Retry-After", "")
        status = response.status_code
        raise ServiceError(
            str(error.get("code") or f"http_{status}"),
            f"The alttext service answered {status}: {error.get('message') or response.reason_phrase}",
            retryable=status == 429 or status >= 500 or status == 200,
            retry_after=int(after) if after.isdigit() else None, status=status)

    def describe(self, image: bytes, filename: str, fields: dict, request_id: str | None = None) -> dict:
        """One image as a multipart upload, with the page fields (caption, context, existing_alt, ...)."""
        data = {k: str(v) for k, v in fields.items() if v not in (None, "")}
        return self._post("/v1/alt-text", request_id, data=data, files={"image": (filename, image)})

    def describe_batch(self, items: list[dict]) -> list[dict]:
        """Several images in one request; ``items`` carry ``id``, ``image`` (bytes) and page fields."""
        payload = []
        for item in items:
            row = {k: v for k, v in item.items() if k != "image" and v not in (None, "")}
            row["image_base64"] = base64.b64encode(item["image"]).decode()
            payload.append(row)
        body = self._post("/v1/alt-text:batch", "wagtail-backfill", json={"items": payload})
        if not isinstance(body.get("results"), list):
            raise ServiceError("bad_answer", "The service answered without results.", retryable=True)
        return body["results"]
