"""A small real server speaking the OpenAI chat-completions protocol on 127.0.0.1 (port 0).

It records every request body, counts requests in flight, and answers from a script: each entry
is used once (status, headers, body), then it falls back to a normal reply naming the image
number. Used by the openai backend tests; no mock of the client is involved.
"""
from __future__ import annotations

import asyncio
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


def completion(text: str, model: str, logprobs: list[float] | None = None) -> dict:
    choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
    if logprobs is not None:
        choice["logprobs"] = {"content": [
            {"token": f"t{i}", "logprob": lp, "bytes": None, "top_logprobs": []} for i, lp in enumerate(logprobs)
        ]}
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
            "choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


class FakeVLMServer:
    def __init__(self, models: tuple[str, ...] = ("tiny-vlm",)) -> None:
        self.models = models
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.script: list[tuple[int, dict, dict | None]] = []
        self.reply = "Sure! Here is the alt text: A red square on white."
        self.logprobs: list[float] | None = [-0.1, -0.2]
        self.delay_s = 0.0
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        app = FastAPI()

        @app.get("/v1/models")
        async def list_models():
            return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "test"}
                                               for m in self.models]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            with self.lock:
                self.bodies.append(body)
                self.headers.append(dict(request.headers))
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                scripted = self.script.pop(0) if self.script else None
            try:
                await asyncio.sleep(self.delay_s)
                if scripted is not None:
                    status, headers, payload = scripted
                    return JSONResponse(payload or {"error": {"message": f"scripted {status}"}}, status_code=status,
                                        headers=headers)
                return completion(self.reply, body["model"], self.logprobs)
            finally:
                with self.lock:
                    self.in_flight -= 1

        self.app = app
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                                     lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "FakeVLMServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake VLM server did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
