"""Dynamic batching: 32 concurrent requests share model calls, and every answer equals the
one the same image gets alone (the transformers-tests rule: batched == unbatched)."""
from __future__ import annotations

import asyncio

import httpx

from service.app import create_app
from service.pipeline import describe_batch
from tests.support.api import b64, metric, png, settings
from tests.support.drafters import PALETTE, ColourDrafter

N = 32


def request(i: int) -> dict:
    colour = list(PALETTE.values())[i % len(PALETTE)]
    body = {"image_base64": b64(png(tuple(min(255, c + i) for c in colour), size=(10 + i, 12)))}
    if i % 3 == 1:
        body |= {"caption": f"Photo {i} of the Leeds office", "caption_visible": i % 2 == 0}
    if i % 5 == 2:
        body |= {"role": "decorative"}
    if i % 7 == 3:
        body |= {"existing_alt": "Office", "max_chars": 40}
    return body


def comparable(result: dict) -> dict:
    draft = dict(result["draft"] or {}, latency_ms=None)  # timing differs run to run
    return dict(result, draft=draft)


def test_concurrent_requests_are_batched_and_match_unbatched(tmp_path):
    conf = settings(tmp_path, batch_size=8, batch_wait_ms=20, cache=False, queue_size=64)
    drafter = ColourDrafter(delay_s=0.05)
    app = create_app(conf, drafter)

    async def go():
        async with app.router.lifespan_context(app):
            await app.state.services.engine.wait_ready()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                responses = await asyncio.gather(*(client.post("/v1/alt-text", json=request(i)) for i in range(N)))
                metrics = (await client.get("/metrics")).text
        return responses, metrics

    responses, metrics = asyncio.run(go())
    assert [r.status_code for r in responses] == [200] * N

    assert metric(metrics, "alttext_batch_size_sum") == N
    calls = metric(metrics, "alttext_batch_size_count")
    assert calls < N / 2, f"{calls} model calls for {N} requests"
    assert metric(metrics, "alttext_batch_size_bucket", le="1.0") < calls  # some batch held more than one
    assert metric(metrics, "alttext_batch_size_bucket", le="8.0") == calls  # none over ALTTEXT_BATCH_SIZE
    drafted = sum(1 for i in range(N) if request(i).get("role") != "decorative")  # decorative: no model call
    assert max(drafter.batches) > 1 and sum(drafter.batches) == drafted

    from service.api.schemas import ImageInput
    from service.engine import decode_base64, split_item

    alone = ColourDrafter()
    for i, response in enumerate(responses):
        source, page = split_item(ImageInput.model_validate(request(i)).model_dump(exclude_none=True))
        expected = describe_batch(alone, [decode_base64(source["b64"], conf.max_image_bytes)], [page], conf)[0]
        assert comparable(response.json()) == comparable(expected.model_dump(mode="json")), i
    assert alone.batches == [1] * drafted
