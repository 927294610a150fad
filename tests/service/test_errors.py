"""One error family: every code has one status, the README's table lists exactly the codes the
service can send, and every error the service raises is a member of the family."""
from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest

from models.errors import CODES, AltTextError, ImageError, ImageTooLarge, item_error
from service.api.errors import ApiError
from service.batching import Overloaded
from service.fetch import FetchError
from service.jobs import IdempotencyConflict

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_codes() -> dict[str, int]:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", README.read_text(), re.M)
    return {code: int(status) for code, status in rows}


def test_readme_table_lists_every_code_with_its_status():
    assert readme_codes() == CODES
    assert {"internal", "method_not_allowed"} <= set(readme_codes())


@pytest.mark.parametrize("err, code, status, headers", [
    (ImageTooLarge("bytes", "too big"), "image_too_large", 413, {}),
    (FetchError("fetch_failed", "dns", "Could not resolve"), "fetch_failed", 502, {}),
    (Overloaded(7), "overloaded", 503, {"Retry-After": "7"}),
    (IdempotencyConflict(), "idempotency_conflict", 409, {}),
    (ApiError("rate_limited", "slow down", headers={"Retry-After": "3"}), "rate_limited", 429, {"Retry-After": "3"}),
])
def test_service_errors_share_one_base(err, code, status, headers):
    assert isinstance(err, AltTextError)
    assert (err.code, err.status, err.headers) == (code, status, headers)
    assert item_error(err).item() == {"code": code, "message": err.message}


def test_unknown_codes_are_refused_and_unexpected_errors_become_internal():
    with pytest.raises(ValueError, match="add it to models.errors.CODES"):
        AltTextError("x", "y", code="no_such_code")
    err = item_error(RuntimeError("CUDA out of memory"))
    assert (err.code, err.status, err.reason) == ("internal", 500, "internal")
    assert "CUDA" not in err.message  # internals are not echoed to callers


def test_errors_survive_pickling_with_their_fields():
    err = pickle.loads(pickle.dumps(ImageError("corrupt", "bad header", code="unsupported_media_type")))
    assert (type(err), err.code, err.reason, err.message) == (ImageError, "unsupported_media_type", "corrupt",
                                                             "bad header")
