"""The committed OpenAPI schema is the contract: the app must match it, and the app must
honour it under property-based fuzzing (schemathesis, bounded)."""
from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from hypothesis import HealthCheck, settings as hsettings

from service.app import create_app
from service.openapi import current_schema, render
from tests.support.api import settings
from tests.support.drafters import ColourDrafter

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "openapi.json"


def test_committed_schema_matches_the_app():
    assert COMMITTED.read_text() == render(current_schema()), (
        "The API changed. If that was intended, run `.venv/bin/python -m service.openapi` and commit openapi.json."
    )


def test_every_operation_has_an_id_a_summary_and_error_envelopes():
    schema = json.loads(COMMITTED.read_text())
    ids = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            ids.append(op["operationId"])
            assert op.get("summary"), (method, path)
            if path.startswith("/v1/"):
                assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorEnvelope"}
    assert len(ids) == len(set(ids)) == 10
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # 422 uses our envelope too
    examples = schema["components"]["schemas"]["ImageInput"]["examples"]
    assert any("image_url" in e for e in examples) and any("image_base64" in e for e in examples)


async def _no_dns(host: str, port: int) -> list[str]:
    raise OSError("tests do not reach the network")


# One app for the whole fuzz run (schemathesis keeps its lifespan running). Keys are required,
# as on any non-loopback deployment, so the schema's security requirement holds.
_data = tempfile.mkdtemp(prefix="alttext-fuzz-")
atexit.register(shutil.rmtree, _data, ignore_errors=True)
_conf = settings(Path(_data), require_api_key=True, batch_wait_ms=0,
                 webhook_secret="whsec_" + "A" * 32)
_app = create_app(_conf, ColourDrafter(), resolver=_no_dns)
_, _KEY = _app.state.services.keys.create("fuzz", rate_limit=0)
# A schema-valid request may still carry bytes that are not an image, or a URL that is
# refused or unreachable: those answers (400, 413, 415, 502, 504) are the contract, not a bug.
# 422 stays an error for schema-valid data (the schema and the validator must agree), and
# 500 is always one.
_CONFIG = SchemathesisConfig.from_dict({"checks": {
    "positive_data_acceptance": {
        "expected-statuses": ["2xx", "400", "401", "404", "409", "413", "415", "429", "502", "503", "504"]},
    "not_a_server_error": {"expected-statuses": ["1xx", "2xx", "3xx", "4xx", "502", "503", "504"]},
}})
schemathesis.serializer.alias("application/jsonl", "text/plain")  # JSON Lines bodies are text
schema = schemathesis.openapi.from_path(COMMITTED, config=_CONFIG)
schema.app = _app


@schema.parametrize()
@hsettings(max_examples=25, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_api_honours_its_schema(case):
    # OpenAPI 3.1 can only call a JSON Lines body "a string", so a random string is "valid"
    # there; and in a form every value is text, so "{}" sent for a string field is not the
    # type error the fuzzer thinks it is. The JSON bodies of the same operations are fully
    # checked both ways, and the form and JSON Lines parsers have tests of their own.
    excluded = {"application/jsonl": [positive_data_acceptance],
                "multipart/form-data": [negative_data_rejection]}.get(case.media_type, [])
    case.call_and_validate(headers={"Authorization": f"Bearer {_KEY}"}, excluded_checks=excluded)
